#!/usr/bin/env bash
# Prepare the local deployment: databases migrated, demo data and example rules loaded.
#
#   scripts/setup-demo.sh            # `make run`, before it starts Airflow: keeps existing demo data
#   scripts/setup-demo.sh --reset    # `make demo-reset`: demo app DB back to its seed data
#
# Every step is idempotent. Uses the environment of scripts/airflow-env.sh (so AUTOMATION_STORE_URL
# or AIRFLOW_CONN_APP_DB set beforehand point it at Postgres instead of the SQLite files).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO_ROOT"
# shellcheck source=scripts/airflow-env.sh
source scripts/airflow-env.sh

RESET=0
case "${1:-}" in
    --reset) RESET=1 ;;
    "") ;;
    *)
        echo "usage: scripts/setup-demo.sh [--reset]" >&2
        exit 2
        ;;
esac

CATALOG=include/catalog/acme.yaml
DEMO_TABLES=(orders) # tables of app_db whose changes the event rules watch

step() { printf '==> %s\n' "$*"; }
timed() {
    local start=$SECONDS status=0
    "$@" || status=$?
    printf '    (%ss%s)\n' "$((SECONDS - start))" "$( ((status == 0)) || echo ", FAILED with exit code $status")"
    return "$status"
}

# logged FILE COMMAND...: output to FILE; shown when the command fails.
logged() {
    local log="$1" status=0
    shift
    "$@" >"$log" 2>&1 || status=$?
    if ((status != 0)); then tail -n 30 "$log" >&2; fi
    return "$status"
}

redact_url() { printf '%s' "$1" | sed -E 's#(://[^:/@]*):[^@]*@#\1:***@#'; }
step "environment: AIRFLOW_HOME=$AIRFLOW_HOME, rule store $(redact_url "$AUTOMATION_STORE_URL")"

if [ "$RESET" = 0 ]; then
    step "airflow db migrate (log: $AIRFLOW_HOME/db-migrate.log)"
    timed logged "$AIRFLOW_HOME/db-migrate.log" airflow db migrate
    step "rule-compiler db upgrade"
    timed rule-compiler db upgrade
fi

# app_db as airflow-env.sh defined it is create_demo_db.py's default file; a connection set by the
# user (Postgres, say) is resolved through Airflow (slower: it imports Airflow).
demo_db_args=(--conn-id app_db)
case " ${AUTOMATION_ENV_VARS:-} " in
    *" AIRFLOW_CONN_APP_DB "*) demo_db_args=() ;;
esac
if [ "$RESET" = 1 ]; then
    step "demo app DB (connection app_db): reset to the seed data"
    timed python include/demo/create_demo_db.py "${demo_db_args[@]}"
else
    step "demo app DB (connection app_db): create if missing"
    timed python include/demo/create_demo_db.py "${demo_db_args[@]}" --if-missing
fi

step "rule-compiler catalog apply $CATALOG"
timed rule-compiler catalog apply "$CATALOG"

# The REST view (/automations) takes a user's organization from their membership: without one, the
# admin (a platform admin, AUTOMATION_API_ADMINS) would have to add ?organization=acme to every call.
step "REST view: Airflow admins ($AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS) get an admin membership of the catalog's organization"
timed python scripts/demo_admins.py "$CATALOG"

# Event capture (outbox table + row triggers) for the event rules, once the CLI offers it. Recreating
# the demo tables drops their triggers, so this runs after every (re)creation; it is idempotent. After
# the catalog: install records `capture_installed` in the stored catalog that lists the table.
if rule-compiler events install --help >/dev/null 2>&1; then
    for table in "${DEMO_TABLES[@]}"; do
        step "rule-compiler events install --connection app_db --table $table"
        timed rule-compiler events install --connection app_db --table "$table"
    done
else
    step "event capture: skipped ('rule-compiler events install' is not available yet)"
fi

# Example definitions: condition templates, rules (some use the templates), reports and workflows
# (include/workflows-waiting/: delays and approvals assigned to the demo's admin, a member of acme
# since scripts/demo_admins.py ran above). One `apply` stores the templates first, so the rules can
# `use` them.
examples=()
for dir in include/templates include/rule-templates include/rules include/rules-using-templates include/reports include/workflows include/workflows-waiting; do
    if [ -d "$dir" ] && [ -n "$(find "$dir" -name '*.y*ml' -print -quit)" ]; then
        examples+=("$dir/")
    fi
done
if ((${#examples[@]})); then
    step "rule-compiler apply ${examples[*]}"
    timed rule-compiler apply "${examples[@]}"
else
    step "rule-compiler apply: no example definitions under include/rules/ yet"
fi

# Reports (include/reports/) store their files through ObjectStoragePath under this folder and email
# them through the Airflow connection smtp_default (see docs/operations.md, "Reports"), which
# scripts/run-standalone.sh points at the demo mail sink unless it is set already.
REPORTS_STORAGE="${AUTOMATION_REPORTS_STORAGE:-$AIRFLOW_HOME/reports}"
case "$REPORTS_STORAGE" in
    *://*) ;; # a bucket: nothing to create here
    *) mkdir -p "$REPORTS_STORAGE" ;;
esac
step "reports: files stored under $REPORTS_STORAGE"
if [ -n "${AIRFLOW_CONN_SMTP_DEFAULT+x}" ]; then
    step "email: through your smtp_default (AIRFLOW_CONN_SMTP_DEFAULT)"
else
    case "${AUTOMATION_DEMO_MAIL:-on}" in
        off | 0 | false | no)
            step "email: smtp_default is not set (AUTOMATION_DEMO_MAIL=$AUTOMATION_DEMO_MAIL): email deliveries fail"
            ;;
        *) step "email: \`make run\` keeps every message as an .eml file in ${AUTOMATION_DEMO_MAIL_DIR:-$AIRFLOW_HOME/mail}/" ;;
    esac
fi
