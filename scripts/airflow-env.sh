# shellcheck shell=bash
# Local Airflow environment for this repository.
#
#   source scripts/airflow-env.sh      # then: airflow dags list, rule-compiler list, ...
#
# Sourced by the make targets (run, demo-reset) and by scripts/run-standalone.sh. Works from any
# directory, in bash and zsh. Every variable that is already set in the environment is kept as it is
# (for example AUTOMATION_STORE_URL pointing at Postgres, or AIRFLOW_CONN_APP_DB at another
# database); only missing ones get the defaults below. The names of the variables this file set are
# kept in AUTOMATION_ENV_VARS, so `make test` can keep them out of the test run.
#
# State lives in $AIRFLOW_HOME (default <repo>/.airflow), created on first use:
#   jwt_secret       the api-server's JWT signing secret (generated once, mode 600)
#   passwords.json   SimpleAuthManager passwords; admin's is generated once and kept (mode 600)
#   airflow.db       Airflow's metadata DB; automation.db the rule store; demo_app.db the demo app DB

# --- where the repository is -----------------------------------------------------------------------
if [ -n "${BASH_VERSION:-}" ]; then
    _are_src="${BASH_SOURCE[0]}"
elif [ -n "${ZSH_VERSION:-}" ]; then
    # shellcheck disable=SC2296
    _are_src="${(%):-%x}"
else
    _are_src="$0"
fi
AUTOMATION_REPO_ROOT="$(cd "$(dirname "$_are_src")/.." && pwd -P)"
export AUTOMATION_REPO_ROOT
unset _are_src

# Sourcing again keeps the list from the first time (those values are still this file's defaults).
AUTOMATION_ENV_VARS="${AUTOMATION_ENV_VARS:-}"

# _are_default NAME VALUE: export NAME=VALUE unless NAME is already set (even to an empty string).
_are_default() {
    if eval "[ -z \"\${$1+x}\" ]"; then
        eval "export $1=\"\$2\""
        case " $AUTOMATION_ENV_VARS " in
            *" $1 "*) ;;
            *) AUTOMATION_ENV_VARS="${AUTOMATION_ENV_VARS:+$AUTOMATION_ENV_VARS }$1" ;;
        esac
    else
        eval "export $1"
    fi
}

# _are_python: a python3 to run small helpers with (the venv's when it exists).
_are_python() {
    if [ -x "$AUTOMATION_REPO_ROOT/.venv/bin/python" ]; then
        "$AUTOMATION_REPO_ROOT/.venv/bin/python" "$@"
    else
        python3 "$@"
    fi
}

# --- the venv's commands first: `airflow standalone` starts its components as `airflow` via PATH ------
case ":${PATH}:" in
    *":$AUTOMATION_REPO_ROOT/.venv/bin:"*) ;;
    *) export PATH="$AUTOMATION_REPO_ROOT/.venv/bin:$PATH" ;;
esac

# --- Airflow -------------------------------------------------------------------------------------------
_are_default AIRFLOW_HOME "$AUTOMATION_REPO_ROOT/.airflow"
mkdir -p "$AIRFLOW_HOME"
_are_default AIRFLOW__CORE__DAGS_FOLDER "$AUTOMATION_REPO_ROOT/dags"
_are_default AIRFLOW__CORE__PLUGINS_FOLDER "$AUTOMATION_REPO_ROOT/plugins"
_are_default AIRFLOW__CORE__LOAD_EXAMPLES False
# LocalExecutor forks `parallelism` workers up front: keep it small on a 2-core machine.
_are_default AIRFLOW__CORE__PARALLELISM 4
_are_default AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG 4
# Look for new/changed DAG files every 30 s instead of 300 s, so new specs show up fast.
_are_default AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL 30
_are_default AIRFLOW__API__HOST 127.0.0.1
_are_default AIRFLOW__API__PORT 8080
_are_default AIRFLOW__CORE__EXECUTION_API_SERVER_URL "http://${AIRFLOW__API__HOST}:${AIRFLOW__API__PORT}/execution/"

# A long JWT secret, generated once (Airflow's own default is 16 bytes, too short for HS512).
if eval '[ -z "${AIRFLOW__API_AUTH__JWT_SECRET+x}" ]'; then
    _are_secret_file="$AIRFLOW_HOME/jwt_secret"
    if [ ! -s "$_are_secret_file" ]; then
        (umask 077 && _are_python -c 'import secrets; print(secrets.token_urlsafe(64))' >"$_are_secret_file")
    fi
    chmod 600 "$_are_secret_file"
    _are_default AIRFLOW__API_AUTH__JWT_SECRET "$(cat "$_are_secret_file")"
    unset _are_secret_file
fi

# SimpleAuthManager: user admin (role admin); its password is generated once and kept in the file.
# Airflow adds a generated password for any other listed user that the file lacks.
_are_default AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS "admin:admin"
_are_default AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE "$AIRFLOW_HOME/passwords.json"
if [ ! -s "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" ]; then
    (umask 077 && _are_python -c 'import json, secrets; print(json.dumps({"admin": secrets.token_urlsafe(12)}))' \
        >"$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
fi

# --- the rule engine -------------------------------------------------------------------------------------
_are_default AUTOMATION_STORE_URL "sqlite:///$AIRFLOW_HOME/automation.db"
# Airflow users who administer the REST view (/automations): they create organizations' first members.
_are_default AUTOMATION_API_ADMINS admin

# The demo application database (customers/orders): a SQLite file, as Airflow connection `app_db`.
# include/demo/create_demo_db.py --conn-id app_db creates it wherever this connection points.
_are_demo_db="$AIRFLOW_HOME/demo_app.db"
_are_demo_db_json="$(printf '%s' "$_are_demo_db" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"
_are_default AIRFLOW_CONN_APP_DB "{\"conn_type\": \"sqlite\", \"host\": \"$_are_demo_db_json\"}"
unset _are_demo_db _are_demo_db_json

export AUTOMATION_ENV_VARS
unset -f _are_default _are_python
