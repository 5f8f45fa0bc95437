#!/usr/bin/env bash
# Run `airflow standalone` (scheduler, dag-processor, triggerer, api-server) in the foreground of this
# terminal, with this repository's environment (scripts/airflow-env.sh), until Ctrl-C.
#
#   scripts/run-standalone.sh            # what `make run` ends with
#   scripts/run-standalone.sh --check    # only the checks below (already running? port free?)
#   AIRFLOW__API__PORT=8081 scripts/run-standalone.sh    # another port (`make run PORT=8081` sets it)
#
# - refuses if the API port (AIRFLOW__API__PORT, default 8080) is taken or a standalone from this
#   repo (this AIRFLOW_HOME) is already running;
# - the task log servers' ports (8793, 8794): when one is taken (another Airflow on this machine) and
#   its variable (AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT, ..._TRIGGER_LOG_SERVER_PORT) is not set,
#   a free port is used instead;
# - logs to $AIRFLOW_HOME/standalone.log (the previous run's log is kept as standalone.log.1);
# - writes $AIRFLOW_HOME/standalone.pid (the pid is also the process group id of every component);
# - waits up to STANDALONE_WAIT_SECONDS (120) for /api/v2/monitor/health to report every component
#   healthy, then prints the URLs and the login;
# - Ctrl-C, SIGINT, SIGTERM or SIGHUP to this script: SIGINT to standalone (its clean shutdown path), up
#   to 30 s, then SIGTERM to the whole process group, then SIGKILL; the pid file is removed. `kill PID`
#   (SIGTERM) from another shell stops it like Ctrl-C; the PID is printed at the start.
# - email: unless AIRFLOW_CONN_SMTP_DEFAULT is set (or AUTOMATION_DEMO_MAIL=off), starts the demo mail sink
#   (scripts/demo_mail_sink.py) on loopback and points smtp_default at it: every message the demo sends is
#   written to $AUTOMATION_DEMO_MAIL_DIR (default $AIRFLOW_HOME/mail) as an .eml file, nothing leaves the
#   machine. The sink is stopped (by its pid) after standalone.
#
# `airflow standalone` only shuts its components down on KeyboardInterrupt, and bash starts
# background jobs with SIGINT ignored, which Python keeps: so it is launched through a tiny Python
# exec wrapper that restores SIGINT and makes it a session (process group) leader.
set -euo pipefail

# Started as a background job of a non-interactive shell (`make run &` in a script, CI), this script
# itself starts with SIGINT ignored, and bash cannot trap a signal that was ignored on entry: `kill
# -INT` would do nothing. Re-exec once (same PID) with SIGINT restored, so SIGINT stops it as SIGTERM
# and Ctrl-C do.
sigint_ignored() {
    local mask
    mask="$(awk '/^SigIgn:/ {print $2}' "/proc/$$/status" 2>/dev/null)" || return 1
    [ -n "$mask" ] && (((16#$mask & 2) != 0))
}
if [ -z "${RUN_STANDALONE_SIGINT_RESTORED:-}" ] && sigint_ignored; then
    export RUN_STANDALONE_SIGINT_RESTORED=1
    exec python3 -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])' "$BASH" "${BASH_SOURCE[0]}" "$@"
fi
unset RUN_STANDALONE_SIGINT_RESTORED

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
# shellcheck source=scripts/airflow-env.sh
source "$REPO_ROOT/scripts/airflow-env.sh"

HOST="${AIRFLOW__API__HOST}"
PORT="${AIRFLOW__API__PORT}"
case "$HOST" in 0.0.0.0 | "" | "::") PROBE_HOST=127.0.0.1 ;; *) PROBE_HOST="$HOST" ;; esac
BASE_URL="http://${PROBE_HOST}:${PORT}"
HEALTH_URL="${BASE_URL}/api/v2/monitor/health"
LOG_FILE="$AIRFLOW_HOME/standalone.log"
PID_FILE="$AIRFLOW_HOME/standalone.pid"
WAIT_SECONDS="${STANDALONE_WAIT_SECONDS:-120}"
STOP_SECONDS="${STANDALONE_STOP_SECONDS:-30}"
MAIL_DIR="${AUTOMATION_DEMO_MAIL_DIR:-$AIRFLOW_HOME/mail}"
MAIL_LOG="$AIRFLOW_HOME/mail-sink.log"
MAIL_PID=""
MAIL_NOTE="smtp_default from your AIRFLOW_CONN_SMTP_DEFAULT"

say() { printf '==> %s\n' "$*"; }
err() { printf 'run-standalone: %s\n' "$*" >&2; }

if ! command -v airflow >/dev/null 2>&1; then
    err "no 'airflow' command on PATH: run 'make venv' first."
    exit 1
fi

# --- one standalone per repository ---------------------------------------------------------------------
if [ -f "$PID_FILE" ]; then
    old_pid="$(tr -dc '0-9' <"$PID_FILE" || true)"
    if [ -n "$old_pid" ] && kill -0 "$old_pid" 2>/dev/null &&
        { tr '\0' ' ' <"/proc/$old_pid/cmdline"; } 2>/dev/null | grep -q 'standalone'; then
        err "airflow standalone is already running for this repository (pid $old_pid, log $LOG_FILE)."
        err "Stop it with Ctrl-C in its terminal (or kill -INT $old_pid, its clean shutdown)."
        exit 1
    fi
    say "removing stale pid file $PID_FILE (pid ${old_pid:-?} is not running)"
    rm -f "$PID_FILE"
fi

port_in_use() { (exec 3<>"/dev/tcp/$PROBE_HOST/$1") 2>/dev/null; }

if port_in_use "$PORT"; then
    err "port $PORT on $PROBE_HOST is already in use, so the api-server could not start."
    if command -v ss >/dev/null 2>&1; then
        ss -ltnpH "sport = :$PORT" 2>/dev/null | sed 's/^/run-standalone:   /' >&2 || true
    fi
    err "Stop whatever listens there, or use another port: make run PORT=8081"
    err "(or AIRFLOW__API__PORT=8081 scripts/run-standalone.sh when the demo is already set up)"
    exit 1
fi

# free_port: a port the kernel hands out now (free at this moment).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# Task logs are served by a log server per component (worker 8793, triggerer 8794): with another
# Airflow on this machine those ports are taken, so take free ones unless they were chosen explicitly.
for log_server in WORKER:8793 TRIGGER:8794; do
    variable="AIRFLOW__LOGGING__${log_server%%:*}_LOG_SERVER_PORT"
    log_port="${!variable:-${log_server##*:}}"
    if port_in_use "$log_port"; then
        if [ -z "${!variable:-}" ] && [ "${1:-}" != --check ]; then
            export "$variable=$(free_port)"
            say "port $log_port (${log_server%%:*} log server) is in use: using ${!variable} ($variable)"
        elif [ -n "${!variable:-}" ]; then
            say "WARNING: port $log_port ($variable) is in use: task logs may not show in the UI"
        fi
    fi
done

if [ "${1:-}" = --check ]; then
    exit 0
fi

# --- the demo mail sink (smtp_default) ------------------------------------------------------------------
# stop_mail_sink: SIGTERM to the sink's pid, up to 5 s, then SIGKILL.
stop_mail_sink() {
    local deadline
    [ -n "$MAIL_PID" ] || return 0
    kill -TERM "$MAIL_PID" 2>/dev/null || true
    deadline=$((SECONDS + 5))
    while kill -0 "$MAIL_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    kill -KILL "$MAIL_PID" 2>/dev/null || true
    wait "$MAIL_PID" 2>/dev/null || true
    MAIL_PID=""
}

# start_mail_sink: start it, wait for the connection it announces, export AIRFLOW_CONN_SMTP_DEFAULT.
start_mail_sink() {
    local announced="$AIRFLOW_HOME/mail-sink.conn.json" connection="" tries
    rm -f "$announced"
    python "$REPO_ROOT/scripts/demo_mail_sink.py" --folder "$MAIL_DIR" --connection-file "$announced" \
        --exit-with-parent >"$MAIL_LOG" 2>&1 </dev/null &
    MAIL_PID=$!
    for ((tries = 0; tries < 100; tries++)); do # up to 10 s
        if [ -s "$announced" ]; then
            connection="$(cat "$announced")"
            break
        fi
        kill -0 "$MAIL_PID" 2>/dev/null || break
        sleep 0.1
    done
    rm -f "$announced"
    if [ -z "$connection" ]; then
        say "WARNING: the demo mail sink did not start (log: $MAIL_LOG); email deliveries will fail"
        tail -n 5 "$MAIL_LOG" 2>/dev/null | sed 's/^/    /' || true
        stop_mail_sink
        MAIL_NOTE="smtp_default not set: email deliveries fail (the demo mail sink did not start)"
        return 0
    fi
    export AIRFLOW_CONN_SMTP_DEFAULT="$connection"
    local port
    port="$(printf '%s' "$connection" | sed -n 's/.*"port": *\([0-9][0-9]*\).*/\1/p')"
    MAIL_NOTE="smtp_default → demo mail sink on 127.0.0.1:${port}; every email lands in $MAIL_DIR/*.eml"
    say "demo mail sink on 127.0.0.1:${port} (pid $MAIL_PID): emails are written to $MAIL_DIR/"
}

case "${AUTOMATION_DEMO_MAIL:-on}" in
    off | 0 | false | no) MAIL_NOTE="smtp_default not set (AUTOMATION_DEMO_MAIL=$AUTOMATION_DEMO_MAIL): email fails" ;;
    *) if [ -z "${AIRFLOW_CONN_SMTP_DEFAULT+x}" ]; then start_mail_sink; fi ;;
esac

# --- start -----------------------------------------------------------------------------------------------
[ -f "$LOG_FILE" ] && mv -f "$LOG_FILE" "$LOG_FILE.1"
say "starting airflow standalone (AIRFLOW_HOME=$AIRFLOW_HOME; log: $LOG_FILE)"
say "to stop it: Ctrl-C here, or from another shell: kill $$   (SIGTERM; kill -INT $$ works too)"
LAUNCHER='
import os, signal
try:
    os.setsid()  # own session and process group: Ctrl-C in this terminal reaches only this script
except OSError:
    pass  # already a group leader
signal.signal(signal.SIGINT, signal.SIG_DFL)  # un-ignore SIGINT: standalone stops its children on it
os.execvp("airflow", ["airflow", "standalone"])
'
python -c "$LAUNCHER" >"$LOG_FILE" 2>&1 </dev/null &
SA_PID=$!
echo "$SA_PID" >"$PID_FILE"
STOPPING=0

# standalone itself is alive (not exited, not a zombie waiting to be reaped).
standalone_running() {
    local state
    state="$(ps -o stat= -p "$SA_PID" 2>/dev/null || true)"
    [ -n "$state" ] && [ "${state#Z}" = "$state" ]
}
# Started from a terminal that has since hung up (closed window, lost ssh session).
ON_TTY=0
[ -t 1 ] && ON_TTY=1
terminal_gone() { ((ON_TTY)) && ! [ -t 1 ]; }

# The live (non-zombie) processes of standalone's session: it and every component it started.
session_pids() { ps -o pid=,stat= --sid "$SA_PID" 2>/dev/null | awk '$2 !~ /^Z/ {print $1}'; }
group_alive() { [ -n "$(session_pids)" ]; }
# signal_session SIG: the process group first, then any member that moved to a group of its own.
signal_session() {
    local pid
    kill "-$1" -- "-$SA_PID" 2>/dev/null || true
    for pid in $(session_pids); do kill "-$1" "$pid" 2>/dev/null || true; done
}

# Ctrl-C / SIGTERM / exit: SIGINT to standalone, up to STOP_SECONDS, then TERM (and KILL) the group.
stop_standalone() {
    local why="$1" deadline stop_start=$SECONDS
    set +e # keep going even if the terminal is gone and printing fails
    trap '' INT TERM HUP
    if ((STOPPING)); then return; fi
    STOPPING=1
    if group_alive; then
        printf '\n'
        say "stopping airflow standalone ($why): SIGINT to pid $SA_PID, waiting up to ${STOP_SECONDS}s"
        kill -INT "$SA_PID" 2>/dev/null || true
        deadline=$((SECONDS + STOP_SECONDS))
        while group_alive && ((SECONDS < deadline)); do sleep 0.5; done
        if group_alive; then
            say "still running after ${STOP_SECONDS}s: SIGTERM to process group $SA_PID"
            signal_session TERM
            deadline=$((SECONDS + 10))
            while group_alive && ((SECONDS < deadline)); do sleep 0.5; done
            if group_alive; then
                say "still running: SIGKILL to process group $SA_PID"
                signal_session KILL
            fi
        fi
        say "stopped in $((SECONDS - stop_start))s"
    fi
    wait "$SA_PID" 2>/dev/null || true
    rm -f "$PID_FILE"
    stop_mail_sink # after standalone: a task still sending mail finishes first
}
trap 'stop_standalone "Ctrl-C"; exit 130' INT
trap 'stop_standalone "SIGTERM"; exit 143' TERM
# Standalone has a session of its own, so a closed terminal would not reach it: stop it here.
trap 'stop_standalone "terminal closed"; exit 129' HUP
trap 'stop_standalone "exit"' EXIT

# --- wait for health ---------------------------------------------------------------------------------------
# Prints the components that are not healthy yet ("" when all are); fails when nothing answers.
unhealthy_components() {
    local body
    body="$(curl -fsS --max-time 3 "$HEALTH_URL" 2>/dev/null)" || return 1
    python -c '
import json, sys
try:
    health = json.loads(sys.argv[1])
except ValueError:
    print("(unreadable health answer)")
    raise SystemExit(0)
names = ("metadatabase", "scheduler", "triggerer", "dag_processor")
print(" ".join(n for n in names if (health.get(n) or {}).get("status") != "healthy"))
' "$body"
}

printf '==> waiting for %s ' "$HEALTH_URL"
start=$SECONDS
healthy=0
pending="api-server"
while ((SECONDS - start < WAIT_SECONDS)); do
    if terminal_gone; then
        stop_standalone "terminal closed"
        exit 129
    fi
    if ! standalone_running; then
        printf '\n'
        status=0
        wait "$SA_PID" || status=$?
        err "airflow standalone exited during start-up (exit code $status). Last lines of $LOG_FILE:"
        tail -n 40 "$LOG_FILE" >&2 || true
        rm -f "$PID_FILE"
        stop_mail_sink
        trap - EXIT
        exit 1
    fi
    if pending="$(unhealthy_components)"; then
        if [ -z "$pending" ]; then
            healthy=1
            break
        fi
    else
        pending="api-server"
    fi
    printf '.'
    sleep 1
done
printf ' %ss\n' "$((SECONDS - start))"
if ((healthy)); then
    say "healthy: metadatabase, scheduler, triggerer, dag_processor"
else
    say "WARNING: not healthy after ${WAIT_SECONDS}s (waiting on: ${pending:-?}); still running, see $LOG_FILE"
fi

# --- tell the user ------------------------------------------------------------------------------------------
admin_password="$(python -c '
import json, sys
try:
    print(json.load(open(sys.argv[1])).get("admin", "?"))
except (OSError, ValueError):
    print("?")
' "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")"
cat <<EOF

  Airflow UI     ${BASE_URL}
  Rules API      ${BASE_URL}/automations/api/v1/   (signed in as admin: an admin of acme)
  API docs       ${BASE_URL}/automations/docs   (Airflow's own REST API: ${BASE_URL}/docs)
  Login          admin / ${admin_password}   (from ${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE})
  Log            ${LOG_FILE}
  Email          ${MAIL_NOTE}
  Shell          source scripts/airflow-env.sh   (then: airflow dags list, rule-compiler list)

  Stop           Ctrl-C here, or from another shell: kill $$   (SIGTERM or SIGINT to this script;
                 it stops standalone by its pid, $SA_PID, and the mail sink)

EOF

# --- run until standalone exits or we are told to stop ------------------------------------------------------
# Poll instead of a blocking `wait`: when the terminal closes under `make run`, only make (the session
# leader) gets SIGHUP and it just waits for this script, so noticing the hung-up terminal is our job.
while standalone_running; do
    if terminal_gone; then
        stop_standalone "terminal closed"
        exit 129
    fi
    sleep 1 &
    wait $! || true
done
status=0
wait "$SA_PID" || status=$?
if ((STOPPING == 0)); then
    err "airflow standalone exited (exit code $status); last lines of $LOG_FILE:"
    tail -n 20 "$LOG_FILE" >&2 || true
    stop_standalone "standalone exited"
    trap - EXIT
    exit "$((status == 0 ? 1 : status))"
fi
