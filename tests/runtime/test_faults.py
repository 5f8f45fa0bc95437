"""The fault-point test hook: inert unless named, a real SIGKILL when named, once with a marker file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from rule_compiler.runtime.faults import FAULTPOINT_ENV, ONCE_ENV, POINTS, faultpoint
from tests.conftest import ROOT

SCRIPT = (
    "from rule_compiler.runtime.faults import faultpoint\n"
    "print('before', flush=True)\n"
    "faultpoint('records.after_commit')\n"
    "print('after', flush=True)\n"
)


def _run(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {FAULTPOINT_ENV, ONCE_ENV}}
    return subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_without_the_variable_nothing_happens() -> None:
    result = _run()
    assert result.returncode == 0 and result.stdout.split() == ["before", "after"]


def test_another_point_named_nothing_happens() -> None:
    result = _run(**{FAULTPOINT_ENV: "records.before_effect"})
    assert result.returncode == 0 and result.stdout.split() == ["before", "after"]


def test_the_named_point_kills_the_process_with_sigkill() -> None:
    result = _run(**{FAULTPOINT_ENV: "records.after_commit"})
    assert result.returncode == -signal.SIGKILL
    assert result.stdout.split() == ["before"]


def test_with_a_marker_file_it_fires_once(tmp_path: Path) -> None:
    marker = tmp_path / "fired"
    env = {FAULTPOINT_ENV: "records.after_commit", ONCE_ENV: str(marker)}

    first = _run(**env)
    second = _run(**env)

    assert first.returncode == -signal.SIGKILL and marker.exists()
    assert second.returncode == 0 and second.stdout.split() == ["before", "after"]


def test_in_process_it_is_a_no_op_for_other_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAULTPOINT_ENV, "webhooks.before_send")
    for name in POINTS:
        if name != "webhooks.before_send":
            faultpoint(name)  # returns: this very test process would die otherwise


@pytest.mark.parametrize("name", POINTS)
def test_every_point_is_wired_into_the_action_code(name: str) -> None:
    sources = {
        "records": ROOT / "rule_compiler" / "runtime" / "record_effects.py",
        "webhooks": ROOT / "plugins" / "rule_engine" / "operators" / "webhooks.py",
        "outbox": ROOT / "plugins" / "rule_engine" / "triggers" / "outbox.py",
    }
    text = sources[name.split(".", 1)[0]].read_text()
    assert text.count(f'faultpoint("{name}")') == 1
