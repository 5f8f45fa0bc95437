#!/usr/bin/env bash
# Create .venv (Python 3.11+) and install the pinned requirements and the project into it.
#
#   scripts/make-venv.sh STAMP        # what `make venv` runs when STAMP does not exist yet
#
# STAMP (.venv/.installed-<hash of requirements*.txt + pyproject.toml>) is written at the end, so
# the next `make venv` is instant until one of those files changes. PYTHON picks the interpreter
# that creates a missing venv (default: python3.11, else python3).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
STAMP="${1:?usage: make-venv.sh STAMP}"
VENV=.venv

say() { printf '==> %s\n' "$*"; }

# pip prints these for every find-links/index location of the machine's pip config that does not
# exist on this machine: noise, not news.
quiet_pip() {
    local status=0
    "$VENV/bin/python" -m pip --disable-pip-version-check "$@" 2>&1 |
        { grep -v -E '^WARNING: (Location|Url) .* is ignored' || true; } || status=$?
    return "$status"
}

version_ok() { # python >= 3.11, < 3.15 (pyproject's requires-python)
    "$1" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] < (3, 15) else 1)' 2>/dev/null
}

if [ -x "$VENV/bin/python" ] && ! version_ok "$VENV/bin/python"; then
    say "$VENV has $("$VENV/bin/python" --version 2>&1 || echo 'a broken python'); recreating it"
    rm -rf "$VENV"
fi

if [ ! -x "$VENV/bin/python" ]; then
    if [ -z "${PYTHON:-}" ]; then
        PYTHON="$(command -v python3.11 || command -v python3 || true)"
    fi
    if [ -z "$PYTHON" ] || ! version_ok "$PYTHON"; then
        echo "make venv: need Python 3.11 to 3.14 (found: ${PYTHON:-none}${PYTHON:+ $("$PYTHON" --version 2>&1)})." >&2
        echo "make venv: install it, or point PYTHON at one: make venv PYTHON=/usr/bin/python3.11" >&2
        exit 1
    fi
    say "creating $VENV with $PYTHON ($("$PYTHON" --version 2>&1))"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
fi

start=$SECONDS
say "installing pinned requirements (first run takes 1-2 min)"
quiet_pip install -q -r requirements-dev.txt
say "installing the project (pip install -e . --no-deps)"
quiet_pip install -q -e . --no-deps
if ! "$VENV/bin/python" -m pip check >/dev/null 2>&1; then
    say "WARNING: pip check reports conflicts:"
    "$VENV/bin/python" -m pip check 2>&1 | sed 's/^/    /' || true
fi
rm -f "$VENV"/.installed-*
touch "$STAMP"
say "venv ready in $((SECONDS - start))s: $("$VENV/bin/python" --version), airflow $("$VENV/bin/pip" show apache-airflow 2>/dev/null | sed -n 's/^Version: //p')"
