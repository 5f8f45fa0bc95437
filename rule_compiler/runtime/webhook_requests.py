"""Webhook deliveries without I/O of their own: request building, signing, classification, ledger SQL.

Requests are signed per Standard Webhooks (``webhook-id``, ``webhook-timestamp``,
``webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>``) with the ``standardwebhooks``
package; ``webhook-id`` is the action's idempotency key, the same on every retry, so receivers can
deduplicate. The delivery ledger (docs/architecture.md §3.5) is a rule store table (migrations
0002, 0003): a key recorded as ``delivered`` is never sent again, and each row keeps the request
without signature or secret, so ``rule-compiler webhooks redeliver`` can send it again under the
same ``webhook-id``.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa
from standardwebhooks import Webhook

from rule_compiler.canonical import canonical_json
from rule_compiler.errors import PermanentActionError, RefusedError, RetryableActionError
from rule_compiler.runtime.rendering import render_for_action
from rule_compiler.store import rollups
from rule_compiler.store.tables import webhook_deliveries

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
    """One rendered request, before signing. ``body`` is the exact text that is sent and signed.

    ``path`` is the rendered path under a connection's base URL (None for a plain ``url``): what the
    ledger keeps instead of the URL, since a base URL may itself carry a token.
    """

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    path: str | None = None


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
    path: str | None = None
    if base_url is not None:
        path = str(render_for_action(params.get("path"), context, "path") or "")
        url = join_url(base_url, path)
    else:
        url = str(render_for_action(params.get("url") or "", context, "url"))
        if not url:
            raise PermanentActionError("call_webhook needs a connection (and path) or a url")
    headers = check_headers(render_for_action(params.get("headers") or {}, context, "headers"))
    body_value = render_for_action(params.get("body"), context, "body")
    body = "" if body_value is None else canonical_json(body_value)
    if body:
        headers.setdefault("Content-Type", "application/json")
    return WebhookRequest(method=method, url=url, headers=headers, body=body, path=path)


def stored_request(request: WebhookRequest, *, connection: str | None) -> dict[str, Any]:
    """What the ledger keeps to redeliver: never signature headers or secrets, and under a
    connection its id and the path rather than the URL (the base URL may hold a token)."""
    kept: dict[str, Any] = {
        "method": request.method,
        "headers": dict(request.headers),
        "body": request.body,
        "connection": connection,
    }
    if connection is not None and request.path is not None:
        kept["path"] = request.path
    else:
        kept["url"] = request.url
    return kept


def request_from_stored(stored: Mapping[str, Any], *, base_url: str | None) -> WebhookRequest:
    """The request to send again: under a connection, its current base URL joined with the path."""
    path = stored.get("path")
    if path is not None:
        if base_url is None:
            raise PermanentActionError("the stored request needs its connection's base URL")
        url = join_url(base_url, str(path))
    else:
        url = str(stored["url"])
    return WebhookRequest(
        method=str(stored["method"]),
        url=url,
        headers=check_headers(stored.get("headers") or {}),
        body=str(stored.get("body") or ""),
        path=path,
    )


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


def start_attempt(
    engine: sa.Engine,
    delivery: Delivery,
    now: dt.datetime,
    *,
    request: Mapping[str, Any] | None = None,
) -> int | None:
    """Count one more attempt and return its number; None when the key was already delivered.

    ``request`` (from :func:`stored_request`) is kept for redelivery, with the organization.
    """
    kept = {"request_json": canonical_json(dict(request))} if request is not None else {}
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
                    organization=organization_of(delivery.rule_id),
                    **kept,
                )
            )
            return 1
        attempts = int(row.attempts) + 1
        conn.execute(
            deliveries.update()
            .where(deliveries.c.idempotency_key == delivery.idempotency_key)
            .values(
                status="sending",
                attempts=attempts,
                updated_at=now,
                organization=organization_of(delivery.rule_id),
                **kept,
            )
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
    """Record how an attempt ended: ``delivered``, ``retrying`` or ``failed``, and count the attempt in
    the webhook analytics in the same transaction (``rollups.webhook_attempt_share``)."""
    with engine.begin() as conn:
        before = conn.execute(
            rollups.locked(conn, sa.select(deliveries).where(deliveries.c.idempotency_key == key))
        ).first()
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
        if before is not None:
            attempt = rollups.webhook_attempt_share(dict(before._mapping), status, now)
            rollups.apply(conn, rollups.Share(), attempt)


def organization_of(rule_id: str) -> str:
    """The organization part of a rule id (``acme/push-orders`` → ``acme``)."""
    return rule_id.partition("/")[0]


class RedeliveryRefusedError(RefusedError, ValueError):
    """A key that cannot be redelivered: unknown, ambiguous, without a stored request, or delivered."""


def find_delivery(engine: sa.Engine, key: str) -> dict[str, Any]:
    """The ledger row of a full key or a unique prefix of at least 8 characters."""
    text = key.strip().lower()
    row = delivery_row(engine, text)
    if row is not None:
        return row
    if len(text) < 8 or not re.fullmatch(r"[0-9a-f]+", text):
        raise RedeliveryRefusedError(f"no webhook delivery has the key '{key}'")
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(deliveries).where(deliveries.c.idempotency_key.startswith(text)).limit(2)
        ).all()
    if not rows:
        raise RedeliveryRefusedError(f"no webhook delivery has the key '{key}'")
    if len(rows) > 1:
        raise RedeliveryRefusedError(f"the key prefix '{key}' names several deliveries: give more of it")
    return dict(rows[0]._mapping)


def stored_request_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """The request a ledger row kept for redelivery; refused when it has none."""
    raw = row.get("request_json")
    if not raw:
        raise RedeliveryRefusedError(
            f"delivery {row['idempotency_key']} has no stored request (it was recorded before "
            "requests were kept, or never got as far as sending): it cannot be redelivered"
        )
    stored = json.loads(raw)
    if not isinstance(stored, dict):
        raise RedeliveryRefusedError(f"delivery {row['idempotency_key']} has an unreadable stored request")
    return stored


def start_redelivery(engine: sa.Engine, key: str, now: dt.datetime, *, force: bool = False) -> int:
    """Count one more attempt of an existing delivery; a delivered one only with ``force``."""
    with engine.begin() as conn:
        row = conn.execute(
            sa.select(deliveries.c.status, deliveries.c.attempts).where(deliveries.c.idempotency_key == key)
        ).first()
        if row is None:
            raise RedeliveryRefusedError(f"no webhook delivery has the key '{key}'")
        if row.status == "delivered" and not force:
            raise RedeliveryRefusedError(
                f"delivery {key} was already delivered; use --force to send it again "
                "(receivers that deduplicate on webhook-id will ignore it)"
            )
        attempts = int(row.attempts) + 1
        conn.execute(
            deliveries.update()
            .where(deliveries.c.idempotency_key == key)
            .values(status="sending", attempts=attempts, updated_at=now)
        )
        return attempts


def list_deliveries(
    engine: sa.Engine,
    *,
    organization: str | None = None,
    status: str | None = None,
    rule_id: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Ledger rows, most recently updated first, filtered by organization, status and rule."""
    query = sa.select(deliveries).order_by(deliveries.c.updated_at.desc(), deliveries.c.idempotency_key)
    if organization is not None:
        query = query.where(
            sa.or_(
                deliveries.c.organization == organization,
                deliveries.c.rule_id.startswith(f"{organization}/", autoescape=True),
            )
        )
    if status is not None:
        query = query.where(deliveries.c.status == status)
    if rule_id is not None:
        query = query.where(deliveries.c.rule_id == rule_id)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query.limit(max(1, limit)))]
