"""Webhook deliveries without I/O of their own: request building, signing, classification, ledger SQL.

Requests are signed per Standard Webhooks (``webhook-id``, ``webhook-timestamp``,
``webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>``) with the ``standardwebhooks``
package; ``webhook-id`` is the action's idempotency key, the same on every retry, so receivers can
deduplicate. The delivery ledger (DESIGN §6) lives in the rule store's database, created on first
use like the record ledger: a key recorded as ``delivered`` is never sent again.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa
from standardwebhooks import Webhook

from rule_compiler.canonical import canonical_json
from rule_compiler.errors import PermanentActionError, RetryableActionError
from rule_compiler.store.schema import webhook_deliveries
from rule_compiler.templating import render_value

#: Bytes of a response body read at most (the rest is never downloaded).
MAX_RESPONSE_BYTES = 64 * 1024
#: Characters of a response body kept in the ledger and the task log.
MAX_LOGGED_BODY = 1_000
#: Longest Retry-After we honour; longer answers are capped.
MAX_RETRY_AFTER_SECONDS = 3_600
#: Headers an author may not set: transport-level ones and the signature's own.
_RESERVED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer", "keep-alive"}
)
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")
DELIVERY_TABLE = webhook_deliveries.name


class WebhookRetryableError(RetryableActionError):
    """A retryable delivery failure; ``retry_after`` (seconds) when the receiver said when."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class WebhookRequest:
    """One rendered request, before signing. ``body`` is the exact text that is sent and signed."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


def base_url_from_connection(
    *, host: str | None, schema: str | None = None, port: int | None = None, conn_id: str = "?"
) -> str:
    """The base URL of a connection: ``host`` as a full URL, or scheme (``schema``), host and port."""
    text = (host or "").strip()
    if not text:
        raise PermanentActionError(f"connection '{conn_id}' has no host (the webhook base URL)")
    if "://" in text:
        parts = urlsplit(text)
        if port and parts.port is None:
            parts = parts._replace(netloc=f"{parts.netloc}:{port}")
        return urlunsplit(parts)
    scheme = (schema or "").lower() if (schema or "").lower() in {"http", "https"} else "https"
    return f"{scheme}://{text}" + (f":{port}" if port else "")


def join_url(base_url: str, path: str | None) -> str:
    """``base_url`` plus ``path``; a path that would change scheme or authority is refused."""
    if not path:
        return base_url
    relative = urlsplit(path)
    if relative.scheme or relative.netloc or path.startswith("//") or "\\" in path:
        raise PermanentActionError("webhook path must be a path on the connection's host, not a URL")
    base = urlsplit(base_url)
    joined_path = base.path.rstrip("/") + "/" + relative.path.lstrip("/")
    query = "&".join(q for q in (base.query, relative.query) if q)
    url = urlunsplit((base.scheme, base.netloc, joined_path, query, ""))
    if urlsplit(url).netloc != base.netloc:
        raise PermanentActionError("webhook path changes the host of the connection's base URL")
    return url


def check_headers(headers: Mapping[str, Any]) -> dict[str, str]:
    """Author headers as strings; reserved, signature and malformed headers are refused."""
    checked: dict[str, str] = {}
    for name, value in headers.items():
        text = str(value)
        lowered = name.lower()
        if not _HEADER_NAME.match(name) or lowered in _RESERVED_HEADERS or lowered.startswith("webhook-"):
            raise PermanentActionError(f"header '{name[:100]}' may not be set by a rule")
        if any(c in text for c in "\r\n\x00") or len(text) > 8_000:
            raise PermanentActionError(f"header '{name}' has an invalid value")
        checked[name] = text
    return checked


def build_request(
    params: Mapping[str, Any], context: Mapping[str, Any], *, base_url: str | None
) -> WebhookRequest:
    """Render method, path (or url), headers and body in the sandbox; the body as canonical JSON."""
    method = str(params.get("method") or "POST").upper()
    if base_url is not None:
        url = join_url(base_url, render_value(params.get("path"), context))
    else:
        url = str(render_value(params.get("url") or "", context))
        if not url:
            raise PermanentActionError("call_webhook needs a connection (and path) or a url")
    headers = check_headers(render_value(params.get("headers") or {}, context))
    body_value = render_value(params.get("body"), context)
    body = "" if body_value is None else canonical_json(body_value)
    if body:
        headers.setdefault("Content-Type", "application/json")
    return WebhookRequest(method=method, url=url, headers=headers, body=body)


def parse_secrets(password: str | None) -> list[str]:
    """Signing secrets from a connection password: several, separated by spaces, during rotation."""
    return [s for s in (password or "").split() if s]


def signature_headers(
    secrets: Sequence[str], msg_id: str, timestamp: dt.datetime, body: str
) -> dict[str, str]:
    """The Standard Webhooks headers; one ``v1,`` signature per secret (key rotation)."""
    if not secrets:
        return {}
    moment = timestamp.astimezone(dt.UTC)
    try:
        signatures = [Webhook(secret).sign(msg_id, moment, body) for secret in secrets]
    except Exception as exc:  # a malformed secret: say which kind of problem, never the secret
        raise PermanentActionError(f"a webhook signing secret is not valid ({type(exc).__name__})") from None
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), capped; else None."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(min(int(text), MAX_RETRY_AFTER_SECONDS))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, min((when - now).total_seconds(), float(MAX_RETRY_AFTER_SECONDS)))


def classify_response(status: int, retry_after: str | None, now: dt.datetime) -> Exception | None:
    """None for 2xx; a retryable error for 408, 429 and 5xx; a permanent one otherwise (3xx included)."""
    if 200 <= status < 300:
        return None
    if status in {408, 429} or 500 <= status < 600:
        return WebhookRetryableError(
            f"receiver answered HTTP {status}", retry_after=parse_retry_after(retry_after, now)
        )
    if 300 <= status < 400:
        return PermanentActionError(f"receiver answered HTTP {status} (a redirect, never followed)")
    return PermanentActionError(f"receiver answered HTTP {status}")


def truncate_body(body: bytes, limit: int = MAX_LOGGED_BODY) -> str:
    """The start of a response body as text, for the ledger and the log."""
    text = body.decode("utf-8", errors="replace")
    return text if len(text) <= limit else text[:limit] + "…"


# --- the delivery ledger ---------------------------------------------------------------------

deliveries = webhook_deliveries  # a rule store table, created by its migrations (0002, 0003)


@dataclass(frozen=True)
class Delivery:
    """Who a delivery is for: the ledger row's identity."""

    idempotency_key: str
    rule_id: str
    action_id: str
    occurrence_id: str
    row_key: str | None


def delivery_row(engine: sa.Engine, key: str) -> dict[str, Any] | None:
    """The ledger row of ``key``, or None."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(deliveries).where(deliveries.c.idempotency_key == key)).first()
    return dict(row._mapping) if row is not None else None


def start_attempt(engine: sa.Engine, delivery: Delivery, now: dt.datetime) -> int | None:
    """Count one more attempt and return its number; None when the key was already delivered."""
    with engine.begin() as conn:
        row = conn.execute(
            sa.select(deliveries.c.status, deliveries.c.attempts).where(
                deliveries.c.idempotency_key == delivery.idempotency_key
            )
        ).first()
        if row is not None and row.status == "delivered":
            return None
        if row is None:
            conn.execute(
                deliveries.insert().values(
                    idempotency_key=delivery.idempotency_key,
                    rule_id=delivery.rule_id,
                    action_id=delivery.action_id,
                    occurrence_id=delivery.occurrence_id,
                    row_key=delivery.row_key,
                    status="sending",
                    attempts=1,
                    updated_at=now,
                )
            )
            return 1
        attempts = int(row.attempts) + 1
        conn.execute(
            deliveries.update()
            .where(deliveries.c.idempotency_key == delivery.idempotency_key)
            .values(status="sending", attempts=attempts, updated_at=now)
        )
        return attempts


def finish_attempt(
    engine: sa.Engine,
    key: str,
    *,
    status: str,
    now: dt.datetime,
    response_status: int | None = None,
    response_body: str | None = None,
    error: str | None = None,
) -> None:
    """Record how an attempt ended: ``delivered``, ``retrying`` or ``failed``."""
    with engine.begin() as conn:
        conn.execute(
            deliveries.update()
            .where(deliveries.c.idempotency_key == key)
            .values(
                status=status,
                response_status=response_status,
                response_body=response_body,
                error=error[:2_000] if error else None,
                updated_at=now,
            )
        )
