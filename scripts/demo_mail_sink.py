"""The demo's mail sink: an SMTP server on loopback that keeps every message it receives as an
``.eml`` file and delivers nothing.

    python scripts/demo_mail_sink.py --folder .airflow/mail [--host 127.0.0.1] [--port 0]
                                     [--connection-file FILE] [--exit-with-parent]

``scripts/run-standalone.sh`` (``make run``) starts it and points the Airflow connection
``smtp_default`` at it (unless ``AIRFLOW_CONN_SMTP_DEFAULT`` is set already), so the demo's report
and notification emails succeed and can be opened from ``$AIRFLOW_HOME/mail/``. Port 0 (the default)
lets the system pick a free port. Once it accepts connections it writes ``--connection-file``: the
Airflow connection (JSON, for ``AIRFLOW_CONN_SMTP_DEFAULT``) that reaches it. It stops on SIGTERM or
SIGINT (unless started with SIGINT ignored, as a script's background job is: then the script stops it
after standalone), and with ``--exit-with-parent`` also when the process that started it is gone.
Uses aiosmtpd (requirements-dev.txt, which ``make venv`` installs).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP

#: Report emails may carry 20 MB of attachments (more when raised), base64-encoded in the message.
MAX_MESSAGE_BYTES = 128 * 1024 * 1024
PARENT_POLL_SECONDS = 1.0
#: The sender of the demo's emails (the SMTP connection's ``from_email``).
FROM_EMAIL = "automation@acme.example"


class EmlFolder:
    """An aiosmtpd handler writing each message, as received, to ``<folder>/<UTC time>-<n>.eml``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._numbers = itertools.count(1)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        path = self.save(bytes(envelope.content))
        print(f"{path.name}: from {envelope.mail_from} to {', '.join(envelope.rcpt_tos)}", flush=True)
        return "250 OK: kept by the demo mail sink"

    def save(self, content: bytes) -> Path:
        """Write one message; the name sorts in arrival order and never overwrites."""
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        target = self.folder / f"{stamp}-{next(self._numbers):04d}.eml"
        partial = target.with_name(target.name + ".partial")  # a reader never sees half a message
        partial.write_bytes(content)
        partial.replace(target)
        return target


def smtp_connection(host: str, port: int) -> dict[str, Any]:
    """The Airflow connection (``AIRFLOW_CONN_SMTP_DEFAULT``) that reaches the sink: no TLS, no login."""
    return {"conn_type": "smtp", "host": host, "port": port, "extra": {"from_email": FROM_EMAIL}}


async def serve(
    folder: Path, host: str, port: int, connection_file: Path | None, exit_with_parent: bool
) -> None:
    """Accept messages until SIGTERM/SIGINT (or the parent process is gone)."""
    folder.mkdir(parents=True, exist_ok=True)
    loop = asyncio.get_running_loop()
    handler = EmlFolder(folder)
    server = await loop.create_server(
        lambda: SMTP(
            handler,
            hostname="demo-mail-sink",  # not socket.getfqdn(): that may wait on DNS
            data_size_limit=MAX_MESSAGE_BYTES,
            enable_SMTPUTF8=True,
        ),
        host=host,
        port=port,
    )
    bound = int(server.sockets[0].getsockname()[1])
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # a background job of a script: its pid
        loop.add_signal_handler(signal.SIGINT, stop.set)  # stops it, not the terminal's Ctrl-C
    watcher = asyncio.create_task(_stop_when_orphaned(os.getppid(), stop)) if exit_with_parent else None
    if connection_file is not None:
        partial = connection_file.with_name(connection_file.name + ".partial")
        partial.write_text(json.dumps(smtp_connection(host, bound)) + "\n", encoding="utf-8")
        partial.replace(connection_file)
    print(f"demo mail sink: listening on {host}:{bound}, writing messages to {folder}", flush=True)
    async with server:
        await stop.wait()
    if watcher is not None:
        watcher.cancel()
    print("demo mail sink: stopped", flush=True)


async def _stop_when_orphaned(parent: int, stop: asyncio.Event) -> None:
    while os.getppid() == parent:
        await asyncio.sleep(PARENT_POLL_SECONDS)
    stop.set()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--folder", type=Path, required=True, help="where the .eml files go")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback)")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: a free one)")
    parser.add_argument(
        "--connection-file", type=Path, help="once listening, write the Airflow connection (JSON) here"
    )
    parser.add_argument("--exit-with-parent", action="store_true", help="stop when the parent exits")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.folder, args.host, args.port, args.connection_file, args.exit_with_parent))
    except OSError as exc:
        print(f"demo mail sink: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
