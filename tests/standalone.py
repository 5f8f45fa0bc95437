"""``airflow standalone`` for end-to-end tests and benchmarks: start it in a throwaway home, wait for
things with a deadline, log in, stop it by PID.

No pytest here (``benchmarks/event_latency.py`` uses it too): a wait that times out raises
:class:`StandaloneTimeoutError`, an ``AssertionError`` carrying the tail of the standalone log.

Stopping: standalone stops its children only on SIGINT, which a background job inherits as ignored,
so the launcher resets SIGINT before ``exec`` and runs in its own session; :func:`stop` sends SIGINT to
its PID, then SIGKILL to what is left of its process group after a grace period.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
LAUNCHER = (
    "import os, signal; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execvp('airflow', ['airflow', 'standalone'])"
)
HEALTH_PATH = "/api/v2/monitor/health"


class StandaloneTimeoutError(AssertionError):
    """A wait ran past its deadline; the message ends with the standalone log's tail."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def connection_env(url: str) -> str:
    """``AIRFLOW_CONN_<ID>`` JSON for a SQLAlchemy URL of a Postgres or SQLite database."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return json.dumps({"conn_type": "sqlite", "host": parsed.database})
    connection = {
        "conn_type": "postgres",
        "host": parsed.host,
        "port": parsed.port or 5432,
        "login": parsed.username,
        "password": parsed.password,
        "schema": parsed.database,
    }
    return json.dumps({key: value for key, value in connection.items() if value is not None})


@dataclass
class Standalone:
    """A running ``airflow standalone``: where it answers, its home and its combined log."""

    base_url: str
    home: Path
    log: Path
    process: subprocess.Popen[bytes]
    started_at: float

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else "(no log)"

    def explain(self, response: httpx.Response) -> str:
        """A failed response with the standalone's log lines that name its error ID (Airflow's 500s
        hide the cause behind "look for ID …"), else the log tail."""
        text = response.text
        match = re.search(r"look for ID (\w+)", text)
        if match is None or not self.log.exists():
            return f"{response.status_code} {text}\nstandalone log tail:\n{self.log_tail()}"
        lines = self.log.read_text(errors="replace").splitlines()
        hits = [i for i, line in enumerate(lines) if match.group(1) in line]
        excerpt = "\n".join(line for i in hits for line in lines[max(0, i - 5) : i + 60])
        return f"{response.status_code} {text}\nstandalone log around {match.group(1)}:\n{excerpt}"

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
        """``check()``'s first truthy value; HTTP errors count as "not yet"; raises after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise StandaloneTimeoutError(
                    f"standalone exited ({self.process.returncode}) while waiting for {what}; "
                    f"log tail:\n{self.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                value = check()
                if value:
                    return value
            if time.monotonic() >= deadline:
                raise StandaloneTimeoutError(
                    f"timed out after {timeout:.0f} s waiting for {what}; standalone log tail:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(interval)

    def client(self, timeout: float = 30) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=timeout)

    def wait_healthy(self, timeout: float = 180) -> float:
        """Wait until the api-server answers its health check; seconds since the start."""
        with self.client() as client:
            self.wait_for("the api-server", lambda: client.get(HEALTH_PATH).status_code == 200, timeout)
        return time.monotonic() - self.started_at

    def token(self, username: str, password: str) -> str:
        """A JWT from ``POST /auth/token`` (SimpleAuthManager)."""
        with self.client() as client:
            response = client.post("/auth/token", json={"username": username, "password": password})
        if response.status_code != 201:
            raise AssertionError(f"login of {username} failed: {response.status_code} {response.text}")
        return str(response.json()["access_token"])


def pages(client: httpx.Client, path: str, key: str) -> list[dict[str, Any]]:
    """Every item of a paginated Airflow REST collection (``limit``/``offset``, ``total_entries``)."""
    items: list[dict[str, Any]] = []
    while True:
        response = client.get(path, params={"limit": 100, "offset": len(items)})
        response.raise_for_status()
        page = response.json()
        items.extend(page[key])
        if len(items) >= page["total_entries"] or not page[key]:
            return items


def dags_unpaused(client: httpx.Client, dag_ids: Iterable[str]) -> bool:
    """Every DAG is known to the api-server and unpaused."""
    found = [client.get(f"/api/v2/dags/{dag_id}") for dag_id in dag_ids]
    return all(r.status_code == 200 and r.json()["is_paused"] is False for r in found)


def dags_idle(client: httpx.Client, dag_ids: Iterable[str]) -> bool:
    """No queued asset event (a run about to be created) and no queued or running run for any DAG."""
    dag_ids = list(dag_ids)
    for dag_id in dag_ids:
        queued = client.get(f"/api/v2/dags/{dag_id}/assets/queuedEvents")
        queued.raise_for_status()
        if queued.json()["total_entries"]:
            return False
    for dag_id in dag_ids:
        active = client.get(
            f"/api/v2/dags/{dag_id}/dagRuns", params={"state": ["queued", "running"], "limit": 1}
        )
        active.raise_for_status()
        if active.json()["total_entries"]:
            return False
    return True


def outbox_trigger_listening(app: sa.Engine) -> bool:
    """The outbox trigger runs: its producer holds a LISTEN session on the (Postgres) app database."""
    with app.connect() as conn:
        return (
            conn.execute(
                sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND query ILIKE 'LISTEN %' AND pid <> pg_backend_pid()"
                )
            ).first()
            is not None
        )


def query_rows(engine: sa.Engine, sql: str, **params: Any) -> list[dict[str, Any]]:
    """The rows of one SQL query (a test's look into the application or store database)."""
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(sql), params)]


def standalone_env(
    home: Path,
    port: int,
    *,
    metadata_url: str,
    users: Mapping[str, tuple[str, str]],
    dags_folder: Path = ROOT / "dags",
    parallelism: int = 4,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a small standalone in ``home``: its metadata in the (empty) database at
    ``metadata_url``, no examples, ``parallelism`` workers, the repo's plugins, loopback ports, the given
    users (``name -> (role, password)``)."""
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({name: password for name, (_, password) in users.items()}))
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(
            f"{name}:{role}" for name, (role, _) in users.items()
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__API_AUTH__JWT_SECRET": "standalone-secret-" + "y" * 64,
        **(extra or {}),
    }


@contextlib.contextmanager
def run_standalone(
    home: Path,
    *,
    metadata_url: str,
    users: Mapping[str, tuple[str, str]],
    dags_folder: Path = ROOT / "dags",
    parallelism: int = 4,
    env: Mapping[str, str] | None = None,
) -> Iterator[Standalone]:
    """Start ``airflow standalone`` with its home in ``home`` (created) and its metadata in the empty
    database at ``metadata_url``; stop it by PID on exit.

    The metadata database is Postgres in every test: on SQLite (standalone's default, one writer at a
    time) the api-server, scheduler, dag-processor and triggerer contend for the file, and a request
    that meets a held lock fails with a 500 "Database error" (seen once under a full ``make test``)."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    environment = standalone_env(
        home,
        port,
        metadata_url=metadata_url,
        users=users,
        dags_folder=dags_folder,
        parallelism=parallelism,
        extra=env,
    )
    log = home / "standalone.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER],
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Standalone(f"http://127.0.0.1:{port}", home, log, process, time.monotonic())
    try:
        yield running
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes], grace: float = 45) -> None:
    """SIGINT to standalone's PID only (it stops its components; a SIGINT to the whole group also hits
    the LocalExecutor workers and leaves the scheduler waiting for them), then SIGKILL to whatever of
    its process group is left after ``grace`` s."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGINT)
    deadline = time.monotonic() + grace
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
    while _group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
