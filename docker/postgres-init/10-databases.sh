#!/usr/bin/env bash
# Postgres's first start (docker-entrypoint-initdb.d): the rule store's and the application's
# databases beside Airflow's (POSTGRES_DB), all owned by POSTGRES_USER.
set -euo pipefail
for db in "${RULE_STORE_DB:-rule_store}" "${APP_DB:-demo_app}"; do
    echo "creating database $db"
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
        -c "CREATE DATABASE \"$db\" OWNER \"$POSTGRES_USER\""
done
