"""The demo's mail sink (``scripts/demo_mail_sink.py``, started by ``make run``): a real process on
loopback; a report email sent through the engine's SMTP sender with the connection the sink
announces lands as an ``.eml`` file; it stops on SIGTERM and when its parent is gone."""

from __future__ import annotations

import email
import email.policy
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from rule_compiler.runtime.report_delivery import report_email
from tests.airflow.report_support import DemoMailSink, running_demo_mail_sink
from tests.conftest import ROOT

SINK = ROOT / "scripts" / "demo_mail_sink.py"
DEADLINE_SECONDS = 20.0
T = TypeVar("T")


def _eventually(probe: Callable[[], T | None], what: str) -> T:
    """Poll ``probe`` until it returns something (a deadline, not a timing assertion)."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def _connection(path: Path) -> dict[str, object] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[DemoMailSink]:
    with running_demo_mail_sink(tmp_path, DEADLINE_SECONDS) as running:
        yield running


@pytest.mark.airflow
def test_a_report_email_sent_to_the_sink_lands_as_an_eml_file(
    sink: DemoMailSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rule_engine.hooks.smtp import SmtpSender

    process, folder, connection = sink.process, sink.folder, sink.connection
    assert connection["host"] == "127.0.0.1" and isinstance(connection["port"], int) and connection["port"]
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(connection))
    sender = SmtpSender("smtp_default")
    message = report_email(
        sender=sender.sender,
        recipients=["sales-ops@acme.example"],
        subject="Weekly sales → demo",
        text="Report acme/weekly-sales\n",
        html_document="<p>Weekly sales</p>",
        attachments=[("weekly-sales.csv", b"day,orders\n2026-11-16,3\n")],
        message_id="<demo-key@acme.example>",
    )
    sender.send(message)

    saved = _eventually(lambda: sorted(folder.glob("*.eml")) or None, "an .eml file")
    assert len(saved) == 1 and not list(folder.glob("*.partial"))
    received = email.message_from_bytes(saved[0].read_bytes(), policy=email.policy.default)
    assert received["From"] == "automation@acme.example" and received["To"] == "sales-ops@acme.example"
    assert received["Subject"] == "Weekly sales → demo"
    assert received["Message-ID"] == "<demo-key@acme.example>"
    assert [(part.get_filename(), part.get_payload(decode=True)) for part in received.iter_attachments()] == [
        ("weekly-sales.csv", b"day,orders\n2026-11-16,3\n")
    ]

    sender.send(message)  # a second message gets a file of its own
    assert len(_eventually(lambda: sorted(folder.glob("*.eml"))[1:] or None, "a second .eml")) == 1

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=DEADLINE_SECONDS) == 0
    assert process.stdout is not None
    output = process.stdout.read()
    assert f"{saved[0].name}: from automation@acme.example to sales-ops@acme.example" in output
    assert "demo mail sink: stopped" in output


def test_the_sink_stops_when_the_process_that_started_it_is_gone(tmp_path: Path) -> None:
    """As when ``run-standalone.sh`` is killed outright: no sink left behind."""
    announced = tmp_path / "smtp.json"
    starter = (
        "import subprocess, sys\n"
        f"child = subprocess.Popen([sys.executable, {str(SINK)!r}, '--folder', {str(tmp_path / 'mail')!r},"
        f" '--connection-file', {str(announced)!r}, '--exit-with-parent'])\n"
        "print(child.pid, flush=True)\n"
        "import time; time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", starter], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    sink_pid = int(parent.stdout.readline())
    try:
        _eventually(lambda: _connection(announced), "the sink's connection file")
        parent.kill()
        parent.wait()
        parent.stdout.close()
        _eventually(lambda: True if not _alive(sink_pid) else None, "the sink to exit")
    finally:
        if _alive(sink_pid):
            os.kill(sink_pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie, exited but not yet reaped by init, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
