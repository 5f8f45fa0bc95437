"""Request caps: a body-size limit (413) and a per-user rate limit (429 with ``Retry-After``).

The rate limit uses the `limits` package (fixed window per user id). Its storage is a `limits`
storage URI: ``rulestore://`` (the default) counts in the rule store's database, one budget shared by
every api-server worker (:mod:`rule_engine.api.rate_limit_storage`); ``memory://`` counts in each
api-server process (each worker then allows the full rate); ``redis://...`` and the other `limits`
storages work too.
"""

from __future__ import annotations

import json
import math
import time
from typing import Annotated, Any
from urllib.parse import urlparse

from fastapi import Depends, HTTPException, Request, status
from limits import parse
from limits.storage import StorageTypes, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rule_compiler.store import RuleStore
from rule_engine.api.deps import CurrentUser
from rule_engine.api.rate_limit_storage import SCHEME, RuleStoreStorage


class BodySizeLimit:
    """ASGI middleware: answer 413 to a body over ``max_bytes`` (declared or streamed)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(send)
            return
        seen = 0
        responded = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:  # a chunked body: FastAPI answers this as a 413
                    raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, self._message())
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal responded
            responded = responded or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except HTTPException as exc:
            if exc.status_code != status.HTTP_413_CONTENT_TOO_LARGE or responded:
                raise
            await self._too_large(send)

    def _message(self) -> str:
        return f"the request body is larger than {self.max_bytes} bytes"

    async def _too_large(self, send: Send) -> None:
        body = json.dumps({"detail": self._message()}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status.HTTP_413_CONTENT_TOO_LARGE,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def storage_for(storage_uri: str, store: RuleStore | None) -> StorageTypes:
    """The `limits` storage of ``storage_uri``; ``rulestore://`` counts in ``store``."""
    if urlparse(storage_uri).scheme == SCHEME:
        return RuleStoreStorage(storage_uri, store=store)
    return storage_from_string(storage_uri)


class RateLimiter:
    """``limit`` (a `limits` string such as ``"300/minute"``) per user, in ``storage_uri``.

    ``store`` is where ``rulestore://`` counts (default: the configured rule store).
    """

    def __init__(self, limit: str, storage_uri: str, store: RuleStore | None = None) -> None:
        self.item = parse(limit)
        self.limiter = FixedWindowRateLimiter(storage_for(storage_uri, store))

    def retry_after(self, user_id: str) -> int | None:
        """Count one request; None when allowed, else the seconds until the window resets."""
        if self.limiter.hit(self.item, "automation-api", user_id):
            return None
        reset_at = self.limiter.get_window_stats(self.item, "automation-api", user_id).reset_time
        return max(1, math.ceil(reset_at - time.time()))


def rate_limit(request: Request, user: CurrentUser) -> None:
    """App-level dependency: 429 with ``Retry-After`` when the caller is over their rate."""
    limiter: RateLimiter | None = request.app.state.rate_limiter
    if limiter is None:
        return
    wait = limiter.retry_after(str(user.get_id()))
    if wait is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many requests; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )


RateLimited = Annotated[Any, Depends(rate_limit)]
