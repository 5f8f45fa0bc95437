"""A tiny local webhook receiver for tests: verifies Standard Webhooks signatures independently.

The verification below is written from the spec (standard-webhooks ``spec/standard-webhooks.md``),
not with the ``standardwebhooks`` package the code under test uses: HMAC-SHA256 over
``{webhook-id}.{webhook-timestamp}.{body}`` with the base64-decoded ``whsec_`` secret, compared
with each space-separated ``v1,<base64>`` signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def verify_signature(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Independent Standard Webhooks check (any one ``v1`` signature matching is enough)."""
    msg_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not (msg_id and timestamp.isdigit() and signatures):
        return False
    if abs(time.time() - int(timestamp)) > 300:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    for item in signatures.split(" "):
        version, _, value = item.partition(",")
        if version == "v1" and hmac.compare_digest(base64.b64decode(value), expected):
            return True
    return False


@dataclass
class Reply:
    status: int = 200
    body: bytes = b'{"ok": true}'
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Receiver:
    """Records every request; ``deliveries`` holds the first verified request per webhook-id."""

    secret: str | None = None
    replies: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    deliveries: dict[str, dict[str, Any]] = field(default_factory=dict)
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        with self.lock:
            verified = self.secret is not None and verify_signature(self.secret, headers, body)
            entry = {
                "method": method,
                "path": path,
                "headers": headers,
                "body": body,
                "verified": verified,
            }
            self.requests.append(entry)
            reply = self.replies.pop(0) if self.replies else Reply()
            msg_id = headers.get("webhook-id")
            if 200 <= reply.status < 300 and msg_id and verified and msg_id not in self.deliveries:
                self.deliveries[msg_id] = {**entry, "json": json.loads(body or b"null")}
            return reply


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            reply = receiver.handle(self.command, self.path, headers, body)
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def running_receiver(secret: str | None = None) -> Iterator[Receiver]:
    receiver = Receiver(secret=secret)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
