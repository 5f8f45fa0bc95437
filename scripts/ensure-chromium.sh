#!/usr/bin/env bash
# Make sure Debian's Chromium is installed at /usr/bin/chromium: the browser test of the REST view's
# docs page (tests/api/test_standalone_e2e.py) drives it through Playwright. Playwright's own browser
# downloads cannot be used here (`playwright install` is never run), so the browser is the distro's.
#
#   present                  -> says which, exit 0
#   missing, running as root -> apt-get update && apt-get install -y chromium (printed), exit 0 when
#                               it worked, exit 1 when it did not
#   missing, not root        -> says how to install it; exit 1 when CI=true (the browser test would
#                               fail there), else exit 0 with a warning that it will be skipped
#
# CHROMIUM overrides the path (default /usr/bin/chromium; the tests read the same variable).
set -euo pipefail

BROWSER="${CHROMIUM:-/usr/bin/chromium}"

in_ci() {
    case "${CI:-}" in
        1 | true | TRUE | True | yes) return 0 ;;
        *) return 1 ;;
    esac
}

# Exit for "Chromium cannot be had": a failure under CI, a warning elsewhere.
give_up() {
    echo "chromium: $1" >&2
    if in_ci; then
        echo "chromium: CI=true, so this is an error: the browser test would fail." >&2
        exit 1
    fi
    echo "chromium: WARNING: the browser test will be skipped (it fails under CI=true)." >&2
    exit 0
}

version_of() { "$1" --version 2>/dev/null | head -n 1 || true; }

if [ -x "$BROWSER" ]; then
    echo "chromium: $BROWSER ($(version_of "$BROWSER"))"
    exit 0
fi

if [ "$BROWSER" != /usr/bin/chromium ]; then
    give_up "CHROMIUM=$BROWSER is not an executable file."
fi

if [ "$(id -u)" != 0 ]; then
    give_up "$BROWSER is missing; install Debian's package as root: apt-get update && apt-get install -y chromium"
fi
if ! command -v apt-get >/dev/null 2>&1; then
    give_up "$BROWSER is missing and there is no apt-get to install it with (a Debian package: chromium)."
fi

echo "chromium: $BROWSER is missing; installing Debian's package (about 1-2 min):"
export DEBIAN_FRONTEND=noninteractive
echo "chromium: apt-get update"
if ! apt-get update -q 2>&1 | sed 's/^/chromium:   /'; then
    echo "chromium: ERROR: 'apt-get update' failed (see above)." >&2
    exit 1
fi
echo "chromium: apt-get install -y --no-install-recommends chromium fonts-liberation"
if ! apt-get install -y -q --no-install-recommends chromium fonts-liberation 2>&1 | sed 's/^/chromium:   /'; then
    echo "chromium: ERROR: 'apt-get install -y chromium' failed (see above)." >&2
    exit 1
fi
if [ ! -x "$BROWSER" ]; then
    echo "chromium: ERROR: the package installed but $BROWSER is still missing." >&2
    exit 1
fi
echo "chromium: installed $BROWSER ($(version_of "$BROWSER"))"
