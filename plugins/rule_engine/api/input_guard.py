"""Malformed input answered 422 before any route runs (ASGI middleware).

Some input no route can use, and would otherwise fail deep inside: a NUL or other control character in
the path or the query (Postgres refuses NUL in text: the store's error was a 5xx), and JSON bodies
nested deeper than :data:`~rule_compiler.loading.MAX_NESTING_DEPTH` levels (the parser's recursion
gave a 400, or a ``RecursionError`` further on), holding ``NaN``/``Infinity``/``1e400`` (no JSON
number; canonical JSON then failed with a 500) or a NUL character in any string or key. Each answers
422 with an :class:`~rule_engine.api.schemas.ErrorBody` whose errors carry the JSON path (``query.rule``,
``path``, ``actions[0].values.note``). Nothing here reads the store, so it runs before
authentication; the body size limit (413) stays outside it.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from fastapi import status
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rule_compiler.errors import Issue
from rule_compiler.loading import MAX_NESTING_DEPTH
from rule_compiler.validation.paths import DOCUMENT
from rule_compiler.validation.structural import raw_value_issues

#: Control characters (C0 and DEL): never part of a name, a slug or a filter value.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
DETAIL = "the request is not valid"


def _control_message(what: str) -> str:
    return f"{what} may not contain control characters (such as NUL, newline or tab)"


def request_line_issues(path: str, query_string: bytes) -> list[Issue]:
    """Control characters in the (decoded) path or in a query parameter's name or value."""
    issues: list[Issue] = []
    if _CONTROL.search(path):
        issues.append(Issue("path", _control_message("the path"), "control_character"))
    query = query_string.decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True, errors="replace"):
        if _CONTROL.search(name) or _CONTROL.search(value):
            shown = _CONTROL.sub("?", name)[:100]
            issues.append(Issue(f"query.{shown}", _control_message("a query parameter"), "control_character"))
    return issues


def is_json(headers: dict[bytes, bytes]) -> bool:
    """Whether FastAPI reads the body as JSON (no content type, ``application/json``, ``*/*+json``)."""
    raw = headers.get(b"content-type")
    if raw is None:
        return True
    media = raw.decode("latin-1").split(";", 1)[0].strip().lower()
    subtype = media.rsplit("/", 1)[-1]
    return subtype == "json" or subtype.endswith("+json")


def body_issues(body: bytes) -> list[Issue]:
    """What a JSON body may hold nowhere (nesting, non-finite numbers, NUL); invalid JSON is left to
    FastAPI's own answer."""
    if not body.strip():
        return []
    try:
        value: Any = json.loads(body)
    except RecursionError:
        message = f"nests more than {MAX_NESTING_DEPTH} levels of mappings and lists"
        return [Issue(DOCUMENT, message, "too_deep")]
    except ValueError:  # not JSON (or not UTF-8): FastAPI answers it as json_invalid
        return []
    return raw_value_issues(value)


class InputGuard:
    """ASGI middleware: 422 for control characters in the path or query and for malformed JSON bodies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        issues = request_line_issues(scope.get("path", ""), scope.get("query_string", b""))
        if issues:
            await _refuse(send, issues)
            return
        headers = dict(scope.get("headers", ()))
        if scope.get("method") not in {"POST", "PUT", "PATCH"} or not is_json(headers):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        body = bytearray()
        while True:  # the body size limit (outside) bounds this
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        if issues := body_issues(bytes(body)):
            await _refuse(send, issues)
            return
        replay = iter(messages)

        async def replaying_receive() -> Message:
            message = next(replay, None)
            return message if message is not None else await receive()

        await self.app(scope, replaying_receive, send)


async def _refuse(send: Send, issues: list[Issue]) -> None:
    payload = {"detail": DETAIL, "errors": [issue.as_dict() for issue in issues]}
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status.HTTP_422_UNPROCESSABLE_CONTENT,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
