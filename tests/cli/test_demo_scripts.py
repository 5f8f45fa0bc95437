"""``make run``'s scripts, with a stand-in ``airflow`` on PATH (it answers the health check as healthy
and records how it was stopped): ``scripts/run-standalone.sh`` stops standalone on SIGINT and on
SIGTERM even when started as a background job of a non-interactive shell (which starts it with
SIGINT ignored), and says how to stop it; ``make run PORT=...`` reaches the scripts; and
``scripts/setup-demo.sh`` applies the catalog before installing event capture."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

FAKE_AIRFLOW = textwrap.dedent(
    """\
    #!/usr/bin/env python3
    # A stand-in for `airflow standalone`: healthy on AIRFLOW__API__PORT until SIGINT (or SIGTERM).
    import http.server, json, os, signal, sys

    stopped = os.path.join(os.environ["AIRFLOW_HOME"], "fake-standalone.stopped")
    names = ("metadatabase", "scheduler", "triggerer", "dag_processor")

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({name: {"status": "healthy"} for name in names}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    def on_term(signum, frame):
        raise SystemExit("SIGTERM")

    signal.signal(signal.SIGTERM, on_term)
    server = http.server.HTTPServer(("127.0.0.1", int(os.environ["AIRFLOW__API__PORT"])), Health)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        how = "SIGINT"
    except SystemExit as exc:
        how = str(exc)
    with open(stopped, "w") as handle:
        handle.write(how)
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def fake_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a `make run` whose `airflow` is the stand-in, in a throwaway home."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    airflow = bin_dir / "airflow"
    airflow.write_text(FAKE_AIRFLOW)
    airflow.chmod(0o755)
    home = tmp_path / "home"
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AUTOMATION"))},
        "PATH": f"{bin_dir}:{ROOT / '.venv' / 'bin'}:{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__API__PORT": str(_free_port()),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
        "AUTOMATION_DEMO_MAIL": "off",
        "STANDALONE_WAIT_SECONDS": "60",
        "STANDALONE_STOP_SECONDS": "10",
    }


def _wait_for(what: str, check: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@contextlib.contextmanager
def _background_run(env: dict[str, str], log: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """run-standalone.sh as `script &` of a non-interactive shell (so with SIGINT ignored); its pid."""
    shell = subprocess.Popen(
        ["bash", "-c", 'scripts/run-standalone.sh >"$1" 2>&1 </dev/null & echo $!; wait $!', "run", str(log)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert shell.stdout is not None
        pid = int(shell.stdout.readline())
        yield shell, pid
    finally:  # whatever is left when the test failed: the shell's group, standalone's own session
        with contextlib.suppress(ProcessLookupError):
            os.killpg(shell.pid, signal.SIGKILL)
        shell.wait(timeout=10)
        pid_file = Path(env["AIRFLOW_HOME"]) / "standalone.pid"
        with contextlib.suppress(ProcessLookupError, FileNotFoundError, ValueError):
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_background_run_stops_standalone_on_sigint_and_sigterm(
    fake_env: dict[str, str], tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    log = tmp_path / "run.log"
    home = Path(fake_env["AIRFLOW_HOME"])
    with _background_run(fake_env, log) as (shell, pid):
        _wait_for("the banner", lambda: "  Stop " in (log.read_text() if log.exists() else ""))
        printed = log.read_text()
        assert f"from another shell: kill {pid}" in printed  # says how to stop it, by its pid
        standalone_pid = int((home / "standalone.pid").read_text())

        os.kill(pid, sig)
        assert shell.wait(timeout=60) == code
    printed = log.read_text()
    assert "stopping airflow standalone" in printed and "stopped in" in printed
    assert (home / "fake-standalone.stopped").read_text() == "SIGINT"  # its clean shutdown path
    assert not (home / "standalone.pid").exists()
    with pytest.raises(ProcessLookupError):
        os.kill(standalone_pid, 0)


def test_make_run_passes_port_to_the_scripts() -> None:
    probe = 'portcheck: ; @echo "port=$${AIRFLOW__API__PORT:-unset}"'
    env = {k: v for k, v in os.environ.items() if k != "AIRFLOW__API__PORT"}
    ran = subprocess.run(
        ["make", "--no-print-directory", "--eval", probe, "portcheck", "PORT=8081"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert ran.stdout.strip() == "port=8081"
    dry = subprocess.run(
        ["make", "--no-print-directory", "-n", "run", "PORT=8081"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "scripts/setup-demo.sh" in dry.stdout and "scripts/run-standalone.sh" in dry.stdout


def test_setup_demo_applies_the_catalog_before_installing_event_capture(tmp_path: Path) -> None:
    """The catalog is stored first, so installing capture on app_db.orders records it there (no
    "no stored catalog lists app_db.orders" on the way); then the definitions are applied."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AUTOMATION"))}
    env |= {"AIRFLOW_HOME": str(tmp_path / "home"), "PATH": f"{ROOT / '.venv' / 'bin'}:{env['PATH']}"}
    ran = subprocess.run(
        ["scripts/setup-demo.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    out = ran.stdout
    assert "no stored catalog lists" not in out + ran.stderr
    assert "catalog of acme: version 1" in out
    assert "catalog of acme: capture installed on orders (version 2)" in out
    assert out.index("catalog apply") < out.index("events install") < out.index("created   rule__acme__")
