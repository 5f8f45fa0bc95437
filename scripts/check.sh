#!/usr/bin/env bash
# The stages behind `make lint` and `make test`, each under a header, with a summary at the end.
#
#   scripts/check.sh lint     # ruff check, ruff format --check, mypy
#   scripts/check.sh test     # Postgres up (scripts/ensure-postgres.sh), Chromium installed
#                             # (scripts/ensure-chromium.sh), the lint stages, the UI bundle against
#                             # its sources (scripts/check-ui.sh), pytest -n 2
#
# Every stage runs even when an earlier one failed (one run shows every problem); the exit code is 1
# when any stage failed. Extra pytest arguments: PYTEST_ARGS="-k store -x" make test.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
BIN=.venv/bin
MODE="${1:-test}"

# `source scripts/airflow-env.sh` in this shell would point the tests at the development Airflow home
# and rule store (tests/conftest.py only fills in variables that are not set): drop what it set.
if [ -n "${AUTOMATION_ENV_VARS:-}" ]; then
    for name in $AUTOMATION_ENV_VARS; do unset "$name"; done
    unset AUTOMATION_ENV_VARS
fi

declare -a STAGES=() RESULTS=() TIMES=()
TOTAL=0
FAILED=0

case "$MODE" in
    lint) TOTAL=3 ;;
    test) TOTAL=7 ;;
    *)
        echo "usage: scripts/check.sh lint|test" >&2
        exit 2
        ;;
esac

# stage NAME COMMAND...: run one stage under a header and record how it went.
stage() {
    local name="$1" start status=0
    shift
    STAGES+=("$name")
    printf '\n==> [%d/%d] %s\n' "${#STAGES[@]}" "$TOTAL" "$name"
    start=$SECONDS
    "$@" || status=$?
    TIMES+=("$((SECONDS - start))s")
    if ((status == 0)); then
        RESULTS+=("ok")
    else
        RESULTS+=("FAILED (exit $status)")
        FAILED=1
    fi
}

PYTEST_LAST_LINE=""
# shellcheck disable=SC2317  # called through `stage`
run_pytest() {
    local status=0 log color=""
    log="$(mktemp)"
    [ -t 1 ] && color="--color=yes" # output goes through tee: keep colours on a terminal
    # shellcheck disable=SC2086  # PYTEST_ARGS is split on purpose
    "$BIN/pytest" -n 2 $color ${PYTEST_ARGS:-} tests/ 2>&1 | tee "$log" || status=$?
    # pytest's closing line ("== 12 passed in 3.4s =="), repeated as the last line of the summary.
    PYTEST_LAST_LINE="$(sed 's/\x1b\[[0-9;]*m//g' "$log" |
        grep -E '^(=+ )?(no tests ran|[0-9]+ (passed|failed|errors?|skipped|deselected|xfailed|xpassed)).* in [0-9.]+s' |
        tail -n 1 || true)"
    rm -f "$log"
    if ((status == 5)); then
        echo "ERROR: pytest collected no tests (exit 5): a suite that runs nothing proves nothing."
    fi
    return "$status"
}

if [ "$MODE" = test ]; then
    stage "postgres: scripts/ensure-postgres.sh" scripts/ensure-postgres.sh
    stage "chromium: scripts/ensure-chromium.sh" scripts/ensure-chromium.sh
fi
stage "lint: ruff check ." "$BIN/ruff" check .
stage "lint: ruff format --check ." "$BIN/ruff" format --check .
stage "lint: mypy (packages from pyproject.toml)" "$BIN/mypy"
if [ "$MODE" = test ]; then
    stage "ui: scripts/check-ui.sh (bundle = build of ui/)" scripts/check-ui.sh
    stage "tests: pytest -n 2 tests/ ${PYTEST_ARGS:-}" run_pytest
fi

printf '\n==> summary (make %s)\n' "$MODE"
for i in "${!STAGES[@]}"; do
    printf '    %-48s %-18s %s\n' "${STAGES[$i]}" "${RESULTS[$i]}" "${TIMES[$i]}"
done
if ((FAILED)); then
    printf '==> make %s: FAILED\n' "$MODE"
else
    printf '==> make %s: all stages passed\n' "$MODE"
fi
if [ -n "$PYTEST_LAST_LINE" ]; then
    printf '%s\n' "$PYTEST_LAST_LINE"
fi
exit "$FAILED"
