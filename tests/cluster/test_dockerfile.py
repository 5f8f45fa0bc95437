"""The Dockerfile's install steps, run here in a fresh virtualenv (no Docker engine runs on the
development machines): its ``COPY`` instructions become copies into a folder standing for the image's
file system (honouring .dockerignore), its ``RUN pip install`` lines run with that venv's pip. Then
the installed project imports, its CLI answers and ``pip check`` finds nothing broken.

One difference, on purpose: ``--no-cache-dir`` is dropped so this machine's pip cache serves the
downloads (the image keeps it, to stay small). The base image's own Airflow is not there: the venv
starts empty, which is stricter (every requirement must come from requirements.txt).
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.compose_local import ROOT

pytestmark = pytest.mark.slow


def _instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [(m[1], m[2].strip()) for m in re.finditer(r"^(FROM|ENV|COPY|RUN|WORKDIR)\s+(.*)$", text, re.M)]


def _ignored(path: str, patterns: list[str]) -> bool:
    return any(
        fnmatch.fnmatch(path, p)
        or fnmatch.fnmatch(path, p + "/*")
        or fnmatch.fnmatch(path, "*/" + p.lstrip("*/"))
        for p in patterns
    )


def _copy_context(source: str, target: Path) -> None:
    """``COPY <source> <target>`` from the build context (the repository's tracked files)."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    files = [f for f in listed.decode().split("\0") if f and (ROOT / f).is_file()]
    if source != ".":
        files = [f for f in files if f == source]
    for name in files:
        if _ignored(name, patterns):
            continue
        destination = target / name if source == "." else target
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, destination)


def test_the_dockerfiles_install_steps_work_in_a_fresh_virtualenv(tmp_path: Path) -> None:
    image = tmp_path / "image"
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "VIRTUAL_ENV": str(venv)}
    variables: dict[str, str] = {}

    def here(text: str) -> str:
        text = re.sub(r"\$\{(\w+)\}", lambda m: variables[m[1]], text)
        return text.replace("/opt/", f"{image}/opt/")

    ran = []
    for instruction, argument in _instructions():
        if instruction == "FROM":
            assert argument == "apache/airflow:3.3.2-python3.11"
        elif instruction == "ENV":
            name, _, value = argument.partition("=")
            variables[name] = value
        elif instruction == "COPY":
            parts = [p for p in argument.split() if not p.startswith("--")]
            _copy_context(parts[0], Path(here(parts[1])))
        elif instruction == "RUN":
            command = here(argument).replace("--no-cache-dir ", "")
            assert command.startswith("pip install "), f"a RUN step this test does not know: {command}"
            done = subprocess.run(command, shell=True, env=env, capture_output=True, text=True, check=False)  # noqa: S602
            assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            ran.append(command)
    assert len(ran) == 2, ran

    project = image / "opt" / "rule-engine"
    assert (project / "dags" / "automation_dags.py").is_file()
    assert (project / "plugins" / "rule_engine" / "ui_dist").is_dir()
    assert not (project / ".venv").exists() and not (project / ".git").exists()
    python = str(venv / "bin" / "python")
    imports = (
        "import airflow, airflow.providers.celery, celery, asyncpg, psycopg2, rule_compiler, rule_engine"
    )
    subprocess.run([python, "-c", imports], env=env, check=True, cwd=tmp_path)
    cli = subprocess.run(
        [str(venv / "bin" / "rule-compiler"), "--help"], env=env, capture_output=True, text=True, check=False
    )
    assert cli.returncode == 0 and "validate" in cli.stdout, cli.stderr
    check = subprocess.run(
        [python, "-m", "pip", "check"], env=env, capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout
