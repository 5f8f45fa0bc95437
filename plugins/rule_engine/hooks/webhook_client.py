"""Outbound webhook calls: the Airflow connection (base URL, secrets) and an SSRF-guarded transport.

Not built on ``HttpHook`` (it joins URLs as strings and follows redirects). The transport checks
the URL (:func:`rule_compiler.netpolicy.check_webhook_url`), resolves the host once and checks every
address (:func:`rule_compiler.netpolicy.resolve_and_check`), then connects only to those checked
addresses through a pinned ``httpcore`` network backend: the Host header, TLS SNI and certificate
verification keep the original host name. Redirects are never followed; the response body is read
up to :data:`MAX_RESPONSE_BYTES` and the whole call is bounded in time.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx
from airflow.sdk import BaseHook

from rule_compiler.netpolicy import (
    IPAddress,
    Resolver,
    allowed_hosts,
    check_webhook_url,
    resolve_and_check,
)
from rule_compiler.runtime.webhook_requests import (
    MAX_RESPONSE_BYTES,
    WebhookRetryableError,
    base_url_from_connection,
    parse_secrets,
)

CONNECT_TIMEOUT_SECONDS = 5.0
#: Upper bound of one call, whatever the action's timeout.
MAX_CALL_SECONDS = 60.0
#: Raw bytes are capped, so ask for them uncompressed (no decompression bombs, readable logs).
_DEFAULT_HEADERS = {"Accept-Encoding": "identity", "User-Agent": "automation-rule-engine-webhooks"}


class WebhookHook(BaseHook):
    """Reads a webhook connection: ``host`` (a full base URL, or host with ``schema``/``port``) and
    the signing secrets in ``password`` (several, separated by spaces, while keys rotate)."""

    conn_name_attr = "conn_id"
    hook_name = "Rule engine webhook"

    def __init__(self, conn_id: str) -> None:
        super().__init__()
        self.conn_id = conn_id

    def base_url_and_secrets(self) -> tuple[str, list[str]]:
        connection = self.get_connection(self.conn_id)
        secrets = parse_secrets(connection.password)
        _mask(secrets)
        base_url = base_url_from_connection(
            host=connection.host, schema=connection.schema, port=connection.port, conn_id=self.conn_id
        )
        return base_url, secrets


def _mask(secrets: Iterable[str]) -> None:
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - older SDKs
        return
    for secret in secrets:
        mask_secret(secret)


class PinnedBackend(httpcore.NetworkBackend):
    """Connects to the checked addresses of one host only; anything else is refused."""

    def __init__(
        self, host: str, addresses: list[IPAddress], inner: httpcore.NetworkBackend | None = None
    ) -> None:
        self.host = host
        self.addresses = addresses
        self.inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        if host.strip("[]").lower() != self.host.strip("[]"):
            raise httpcore.ConnectError(f"connection to an unchecked host '{host}' refused")
        last: Exception | None = None
        for address in self.addresses:
            try:
                return self.inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise last or httpcore.ConnectError("no address to connect to")

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not allowed")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class PinnedTransport(httpx.HTTPTransport):
    """An httpx transport whose connections go only to the pinned, checked addresses."""

    def __init__(self, backend: PinnedBackend) -> None:
        super().__init__(retries=0)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=1,
            retries=0,
            network_backend=backend,
        )


@dataclass(frozen=True)
class WebhookResponse:
    """What came back: status, Retry-After, and at most MAX_RESPONSE_BYTES of body."""

    status: int
    retry_after: str | None
    body: bytes
    truncated: bool
    elapsed_ms: int


def send_webhook(
    *,
    method: str,
    url: str,
    headers: dict[str, str],
    body: str,
    timeout: float = 30.0,
    resolver: Resolver | None = None,
    allow_hosts: frozenset[str] | None = None,
    network_backend: httpcore.NetworkBackend | None = None,
) -> WebhookResponse:
    """One guarded call. BlockedURLError (permanent) before any byte is sent to a refused address;
    WebhookRetryableError for timeouts and connection errors. HTTP statuses are returned, not raised."""
    allow = allowed_hosts() if allow_hosts is None else allow_hosts
    target = check_webhook_url(url, allow_hosts=allow)
    addresses = resolve_and_check(target.host, target.port, resolver=resolver, allow_private_hosts=allow)
    total = max(1.0, min(timeout, MAX_CALL_SECONDS))
    deadline = time.monotonic() + total
    transport = PinnedTransport(PinnedBackend(target.host, addresses, network_backend))
    started = time.monotonic()
    try:
        with (
            httpx.Client(
                transport=transport,
                follow_redirects=False,
                trust_env=False,
                timeout=httpx.Timeout(total, connect=min(CONNECT_TIMEOUT_SECONDS, total)),
            ) as client,
            client.stream(
                method, url, headers={**_DEFAULT_HEADERS, **headers}, content=body.encode("utf-8")
            ) as response,
        ):
            chunks: list[bytes] = []
            size = 0
            truncated = False
            for chunk in response.iter_raw():
                chunks.append(chunk)
                size += len(chunk)
                if size >= MAX_RESPONSE_BYTES:
                    truncated = size > MAX_RESPONSE_BYTES or _more(response)
                    break
                if time.monotonic() > deadline:
                    raise WebhookRetryableError(f"webhook call took longer than {total:.0f} s")
            data = b"".join(chunks)[:MAX_RESPONSE_BYTES]
            return WebhookResponse(
                status=response.status_code,
                retry_after=response.headers.get("retry-after"),
                body=data,
                truncated=truncated,
                elapsed_ms=int((time.monotonic() - started) * 1000),
            )
    except httpx.TimeoutException as exc:
        raise WebhookRetryableError(f"webhook call timed out ({type(exc).__name__})") from None
    except httpx.TransportError as exc:
        raise WebhookRetryableError(f"webhook connection failed ({type(exc).__name__}: {exc})") from None


def _more(response: httpx.Response) -> bool:
    length = response.headers.get("content-length")
    return not (length is not None and length.isdigit() and int(length) <= MAX_RESPONSE_BYTES)
