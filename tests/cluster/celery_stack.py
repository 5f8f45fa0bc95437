"""docker-compose.yaml's ``celery`` profile as local processes (scripts/compose_local.py), for tests.

:func:`celery_stack` gives it fresh Postgres databases (Airflow's metadata, the rule store, the
application database), a Redis of its own on a free port (never the machine's shared one), an SMTP
receiver on loopback, and an env file like a user's ``.env``; it yields a :class:`Cluster` and stops
every process by PID on exit.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from scripts.compose_local import LocalStack
from tests.airflow.notify_helpers import Inbox
from tests.standalone import free_port

API = "/automations/api/v1"


class Redis:
    """A redis-server of the test's own on loopback, restartable on the same port."""

    def __init__(self, folder: Path, password: str) -> None:
        self.port = free_port()
        self.password = password
        self.log = folder / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--requirepass",
                self.password, "--save", "", "--appendonly", "no", "--logfile", str(self.log)]  # fmt: skip
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 20
        while not self.ping():
            if time.monotonic() > deadline:
                raise AssertionError(f"redis-server did not answer on {self.port}: {self.log.read_text()}")
            time.sleep(0.1)

    def ping(self) -> bool:
        done = subprocess.run(
            ["redis-cli", "-p", str(self.port), "--no-auth-warning", "-a", self.password, "ping"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        return done.stdout.strip() == "PONG"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@dataclass
class Cluster:
    """The running stack: its API, databases, Redis, mail and processes."""

    stack: LocalStack
    base_url: str
    app: sa.Engine
    store: sa.Engine
    metadata: sa.Engine
    redis: Redis
    inbox: Inbox
    admin_password: str

    def client(self) -> httpx.Client:
        token = httpx.post(
            f"{self.base_url}/auth/token", json={"username": "admin", "password": self.admin_password}
        )
        token.raise_for_status()
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)

    def logs(self, chars: int = 2500) -> str:
        return "\n".join(
            f"--- {r.name} ---\n{r.log_tail(chars)}" for rs in self.stack.replicas.values() for r in rs
        )

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
        """``check()``'s first truthy value (HTTP and database errors count as "not yet")."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(httpx.HTTPError, sa.exc.OperationalError):
                value = check()
                if value:
                    return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{self.logs()}")
            time.sleep(interval)

    def run_dag(self, client: httpx.Client, dag_id: str, timeout: float = 240) -> tuple[str, str]:
        """Trigger a run through Airflow's API; its id and final state."""
        created = client.post(f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None})
        assert created.status_code == 200, created.text
        run_id = created.json()["dag_run_id"]
        return run_id, self.run_state(client, dag_id, run_id, timeout)

    def run_state(self, client: httpx.Client, dag_id: str, run_id: str, timeout: float = 240) -> str:
        def finished() -> str | None:
            state = client.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}").json()["state"]
            return state if state in {"success", "failed"} else None

        return str(self.wait_for(f"run {run_id} of {dag_id} to finish", finished, timeout))

    def worker_of(self, dag_id: str, run_id: str, task_id: str) -> list[str]:
        """The Celery workers whose logs show they executed this task of this run."""
        needle = f"dag_id={dag_id}/run_id={run_id}/task_id={task_id}/"
        return [
            replica.name
            for replica in self.stack.replicas.get("airflow-worker", [])
            if needle in replica.log.read_text(errors="replace")
        ]


def deactivate(client: httpx.Client, kind: str, name: str) -> None:
    """Switch a stored definition off through the REST view, as a user would (GET its ETag, PATCH)."""
    stored = client.get(f"{API}/{kind}s/{name}")
    stored.raise_for_status()
    off = client.patch(
        f"{API}/{kind}s/{name}", json={"active": False}, headers={"If-Match": stored.headers["ETag"]}
    )
    off.raise_for_status()


def _env_file(path: Path, values: Mapping[str, str]) -> None:
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    path.chmod(0o600)


@contextlib.contextmanager
def celery_stack(
    folder: Path,
    create_database: Callable[[], str],
    *,
    workers: int = 2,
    extra: Mapping[str, str] | None = None,
    overrides: Mapping[str, str] | None = None,
) -> Iterator[Cluster]:
    """Start docker-compose.yaml's celery profile here (see the module docstring). ``extra``: more
    variables of the env file; ``overrides``: process environment set past the compose file (only
    benchmarks use it, to add a DAG of their own)."""
    urls = {name: sa.make_url(create_database()) for name in ("AIRFLOW_DB", "RULE_STORE_DB", "APP_DB")}
    admin_password = secrets.token_urlsafe(12)
    redis = Redis(folder, secrets.token_urlsafe(16))
    redis.start()
    inbox = Inbox()
    smtp_port = free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    api_port = free_port()
    some = urls["AIRFLOW_DB"]
    values = {
        "POSTGRES_PASSWORD": "unused-trust-auth",
        "AIRFLOW_FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "AIRFLOW_JWT_SECRET": secrets.token_urlsafe(64),
        "AIRFLOW_API_SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW_ADMIN_PASSWORD": admin_password,
        "REDIS_PASSWORD": redis.password,
        "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": smtp_port,
                "extra": {"from_email": "automation@example.com"},
            }
        ),
        "AIRFLOW_EXECUTOR": "CeleryExecutor",
        "CELERY_WORKERS": str(workers),
        "CELERY_WORKER_CONCURRENCY": "4",
        "POSTGRES_USER": str(some.username),
        "POSTGRES_HOST": str(some.host),
        "POSTGRES_PORT": str(some.port or 5432),
        **{name: str(url.database) for name, url in urls.items()},
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(redis.port),
        "AIRFLOW_API_BIND": "127.0.0.1",
        "AIRFLOW_API_HOST": "127.0.0.1",
        "AIRFLOW_API_PORT": str(api_port),
        "AIRFLOW_PUBLIC_URL": f"http://127.0.0.1:{api_port}",
        "AIRFLOW_PARALLELISM": "8",
        **(extra or {}),
    }
    env_file = folder / ".env"
    _env_file(env_file, values)
    stack = LocalStack(env_file, folder / "state", profiles=["celery"], overrides=dict(overrides or {}))
    engines = {
        name: sa.create_engine(url.set(drivername="postgresql+psycopg2")) for name, url in urls.items()
    }
    cluster = Cluster(
        stack, f"http://127.0.0.1:{api_port}", engines["APP_DB"], engines["RULE_STORE_DB"],
        engines["AIRFLOW_DB"], redis, inbox, admin_password,
    )  # fmt: skip
    try:
        stack.up(timeout=420, say=lambda line: None)
        yield cluster
    finally:
        stack.down()
        for engine in engines.values():
            engine.dispose()
        smtp.stop()
        redis.stop()
