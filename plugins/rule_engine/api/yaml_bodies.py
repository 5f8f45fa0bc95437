"""Definitions in YAML: ``Content-Type: application/yaml`` on the routes that take a definition.

The operations of :data:`YAML_OPERATIONS` (create, replace and validate of every kind of the REST
table, and the catalog's replace) also accept ``application/yaml``
(and its older names ``application/x-yaml`` and ``text/yaml``). The body is read with the CLI's
loader (:func:`rule_compiler.loading.parse_document`: safe tags only, duplicate keys refused, nesting
capped) and handed to the route as the JSON document it stands for: the same schema, the same checks
and the same answers as the same definition sent as JSON.

For each YAML request, in this order:

1. the body size limit (:class:`~rule_engine.api.limits.BodySizeLimit`, the outermost middleware) has
   bounded the bytes: a declared ``Content-Length`` over the cap is 413 before anything here runs, and
   a streamed body is counted as it arrives (413 as soon as it passes the cap, before any parsing);
2. the caller is authenticated with Airflow's ``get_user`` (the app-level dependency the route runs
   again): without a valid token the request goes on unparsed and the route answers 401 or 403 as it
   would for any body, so an anonymous client never makes the server parse YAML;
3. the body is parsed in a worker thread (PyYAML is pure Python: a large document takes a while, and
   the event loop keeps serving meanwhile) by the CLI's loader (:func:`rule_compiler.loading.parse_document`),
   which refuses the first anchor or alias before anything is built (422 ``yaml_alias``: a few hundred
   bytes of nested aliases stand for gigabytes of JSON), and answers 422 ``yaml_invalid`` with the
   line, or ``too_deep`` past 64 levels;
4. the resulting JSON goes through the input guard's own check
   (:func:`rule_engine.api.input_guard.body_issues`: non-finite numbers such as ``.nan``, NUL, lone
   surrogates, nesting; 422 at the value's JSON path), as a JSON body does in the middleware;
5. the route receives it as ``Content-Type: application/json``.

YAML values that JSON has no form for: dates and timestamps become ISO 8601 strings (what a JSON
client would send); ``!!binary`` and ``!!set`` values are 422.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Iterable
from typing import Any

import anyio
from airflow.api_fastapi.core_api.security import bearer_scheme, get_user
from fastapi import FastAPI, HTTPException, status
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rule_compiler.errors import DefinitionLoadError, Issue, UsageError
from rule_compiler.loading import ALIAS_MESSAGE, MAX_DOCUMENT_BYTES, NESTING_MESSAGE, parse_document
from rule_compiler.validation.paths import DOCUMENT
from rule_engine.api.error_handlers import error_response
from rule_engine.api.input_guard import DETAIL as GUARD_DETAIL
from rule_engine.api.input_guard import body_issues
from rule_engine.api.resource_kinds import API_KINDS

#: The media types read as YAML; the first is the registered one (RFC 9512), documented in OpenAPI.
YAML_MEDIA_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")

#: The operations (OpenAPI operation ids) whose body may be YAML: the definition writes and dry runs.
YAML_OPERATIONS = frozenset(
    {
        *(f"{row.tag}-{verb}_{row.slug}" for row in API_KINDS for verb in ("create", "replace", "validate")),
        "catalog-replace_catalog",
    }
)

READ_DETAIL = "the YAML body cannot be read"


class YamlBodyError(UsageError):
    """The YAML body is refused: ``status_code`` with ``detail`` and the issues at their paths."""

    def __init__(self, detail: str, issues: list[Issue], status_code: int = 422) -> None:
        super().__init__(detail)
        self.detail = detail
        self.issues = issues
        self.status_code = status_code


def is_yaml(content_type: str | None) -> bool:
    """Whether a ``Content-Type`` header names YAML (parameters such as ``charset`` ignored)."""
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower() in YAML_MEDIA_TYPES


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.date):  # datetime is a date too
        return value.isoformat()
    kinds: dict[type, str] = {bytes: "!!binary", set: "!!set"}
    kind = kinds.get(type(value), type(value).__name__)
    raise TypeError(f"a YAML {kind} value has no JSON form")


def yaml_to_json(raw: bytes) -> bytes:
    """The JSON document a YAML body stands for; :class:`YamlBodyError` when it is refused."""
    if len(raw) > MAX_DOCUMENT_BYTES:
        message = f"a YAML body may be at most {MAX_DOCUMENT_BYTES} bytes (this one has {len(raw)})"
        raise YamlBodyError(message, [], status.HTTP_413_CONTENT_TOO_LARGE)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        message = f"the body is not UTF-8 text (byte {exc.start}); send YAML as UTF-8"
        raise YamlBodyError(READ_DETAIL, [Issue(DOCUMENT, message, "yaml_invalid")]) from None
    try:
        document = parse_document(text, source="the request body", fmt="yaml")
    except DefinitionLoadError as exc:
        codes = {NESTING_MESSAGE: "too_deep", ALIAS_MESSAGE: "yaml_alias"}
        code = next((c for m, c in codes.items() if exc.issue.message.startswith(m)), "yaml_invalid")
        message = exc.issue.message + (f" (line {exc.line})" if exc.line is not None else "")
        raise YamlBodyError(READ_DETAIL, [Issue(DOCUMENT, message, code)]) from None
    try:
        body = json.dumps(document, default=_json_default).encode()
    except (TypeError, ValueError) as exc:
        raise YamlBodyError(READ_DETAIL, [Issue(DOCUMENT, str(exc), "yaml_not_json")]) from None
    if issues := body_issues(body):  # exactly what the input guard checks in a JSON body
        raise YamlBodyError(GUARD_DETAIL, issues)
    return body


async def _authenticated(scope: Scope) -> bool:
    """Whether Airflow's ``get_user`` accepts the request's credentials (bearer token or UI cookie)."""
    request = Request(scope)
    try:
        await get_user(request, None, await bearer_scheme(request))
    except HTTPException:
        return False
    return True


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body (the size limit's ``receive`` raises 413 past the cap); None on a disconnect."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return bytes(body)


class YamlBody:
    """ASGI wrapper of one route's app: a YAML body becomes the JSON body the route expects."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        content_type = dict(scope.get("headers", ())).get(b"content-type", b"").decode("latin-1")
        if scope["type"] != "http" or not is_yaml(content_type) or not await _authenticated(scope):
            await self.app(scope, receive, send)
            return
        raw = await _read_body(receive)
        if raw is None:  # the client went away
            return
        try:
            body = await anyio.to_thread.run_sync(yaml_to_json, raw)
        except YamlBodyError as exc:
            await error_response(exc.status_code, exc.detail, exc.issues or None)(scope, receive, send)
            return
        headers = [
            (k, v) for k, v in scope.get("headers", ()) if k not in {b"content-type", b"content-length"}
        ]
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        sent = False

        async def json_receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app({**scope, "headers": headers}, json_receive, send)


def accept_yaml_bodies(app: FastAPI, operations: Collection[str] = YAML_OPERATIONS) -> None:
    """Let the routes of ``operations`` take YAML bodies (call after the routers are included)."""
    found = set()
    for route in app.routes:
        if isinstance(route, APIRoute) and route.unique_id in operations:
            route.app = YamlBody(route.app)
            found.add(route.unique_id)
    if missing := set(operations) - found:
        raise RuntimeError(f"YAML bodies for operations the app does not have: {sorted(missing)}")


def document_yaml_bodies(schema: dict[str, Any], operations: Iterable[str] = YAML_OPERATIONS) -> None:
    """Add ``application/yaml`` (same schema as ``application/json``) to those operations' bodies."""
    wanted = set(operations)
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or operation.get("operationId") not in wanted:
                continue
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                content.setdefault(YAML_MEDIA_TYPES[0], dict(content["application/json"]))
            body = operation.get("requestBody")
            if body is not None:
                note = "JSON, or the same document as YAML (`Content-Type: application/yaml`)."
                body.setdefault("description", note)
