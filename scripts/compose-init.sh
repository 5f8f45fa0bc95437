#!/usr/bin/env bash
# docker-compose.yaml's init service (also run by scripts/compose_local.py): everything the other
# services need before they start, each step idempotent, so it runs on every `up`.
#
#   1. the admin's password (SimpleAuthManager's passwords file, from AIRFLOW_ADMIN_PASSWORD);
#   2. scripts/setup-demo.sh: Airflow's migrations (`airflow db migrate`) first, then the rule
#      store's (`rule-compiler db upgrade`), the application database's tables when missing, the
#      catalog, the admin's membership of its organization, event capture and `apply` of include/;
#   3. `rule-compiler limits sync`: an Airflow pool of its own for every organization (the stored size,
#      else AUTOMATION_ORG_POOL_SLOTS), so one organization's burst cannot take the others' slots.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$REPO_ROOT"

: "${AIRFLOW_ADMIN_PASSWORD:?set AIRFLOW_ADMIN_PASSWORD (docker-compose.yaml passes it from .env)}"
: "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:?the compose environment sets it}"

passwords="$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
echo "==> admin's password: $passwords"
mkdir -p "$(dirname "$passwords")"
(umask 077 && python -c 'import json, os, sys
json.dump({"admin": os.environ["AIRFLOW_ADMIN_PASSWORD"]}, open(sys.argv[1], "w"))' "$passwords")

mkdir -p "${AUTOMATION_REPORTS_STORAGE:-/opt/airflow/reports}"
scripts/setup-demo.sh

echo "==> rule-compiler limits sync (an Airflow pool for every organization)"
rule-compiler limits sync --actor compose-init
