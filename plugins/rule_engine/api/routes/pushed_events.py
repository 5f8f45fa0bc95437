"""``/events``: changes that applications push themselves, into the outbox of the database they changed.

For tables that cannot carry capture triggers. A pushed event lands in the same outbox
(``rule_engine_outbox`` of the connection's database) as trigger-captured ones, so event rules
cannot tell them apart. Only connections and tables of the caller's catalog are accepted, and the
client's event id makes a push idempotent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Path, Request, Response, status
from fastapi.exceptions import RequestValidationError

from rule_compiler.catalog import Table
from rule_compiler.definitions import Event
from rule_compiler.definitions.common import IDENTIFIER_RE, MAX_NAME_LENGTH
from rule_compiler.errors import AppDatabaseError
from rule_compiler.events.outbox_rows import (
    LOCK_NOT_AVAILABLE,
    EventConflictError,
    append_event,
    ensure_outbox,
    event_key,
    get_event,
)
from rule_compiler.store import RuleStore
from rule_engine.api import definition_ops as ops
from rule_engine.api.deps import Editor, StoreDep
from rule_engine.api.quotas import charge_event
from rule_engine.api.routes.error_responses import errors
from rule_engine.api.schemas import EventCreate, EventPublic
from rule_engine.hooks import app_database

router = APIRouter(prefix="/events", tags=["events"])

ConnectionName = Annotated[
    str,
    Path(max_length=MAX_NAME_LENGTH, pattern=IDENTIFIER_RE.pattern, description="an Airflow connection id"),
]
OutboxId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the outbox id of the event")]


def _app_engine(conn_id: str) -> sa.Engine:
    """The engine of ``conn_id`` from the plugin's one connection seam; a connection Airflow cannot
    give (the catalog lists it, the deployment lacks it) is a 503."""
    try:
        return app_database.engine_for(conn_id)
    except AppDatabaseError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"connection '{conn_id}' is in your catalog but {exc.reason}; ask the platform administrators",
        ) from None


class OutboxEngines:
    """The engines events go to, each with its outbox created (or upgraded) on first use.

    Engines come from ``open_engine`` (the plugin's one connection seam and its process-wide cache:
    the same engine for a connection until the connection changes in Airflow); this class only
    remembers which engine's outbox is ensured, so a connection edited to point at another database
    gets its outbox there too. No lock of ours is held while waiting on a database: the lock of this
    class only guards its dictionaries, and ensuring a connection's outbox is serialized by a lock of
    that connection alone, so a database that is slow or whose outbox lock is held elsewhere delays
    only the pushes to that connection (and ``ensure_outbox`` gives up on its lock after
    :data:`~rule_compiler.events.outbox_rows.ENSURE_LOCK_TIMEOUT_SECONDS`: a 503).
    """

    def __init__(self, open_engine: Callable[[str], sa.Engine] = _app_engine) -> None:
        self._open = open_engine
        self._ready: dict[str, sa.Engine] = {}  # connection id -> the engine whose outbox is ensured
        self._opening: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, conn_id: str) -> sa.Engine:
        engine = self._open(conn_id)
        with self._lock:
            if self._ready.get(conn_id) is engine:
                return engine
            opening = self._opening.setdefault(conn_id, threading.Lock())
        with opening:
            with self._lock:
                if self._ready.get(conn_id) is engine:  # ensured while this request waited its turn
                    return engine
            # a failure is not remembered: the next request tries again
            with _database_errors(conn_id), engine.begin() as conn:
                ensure_outbox(conn)
            with self._lock:
                self._ready[conn_id] = engine
            return engine

    def dispose(self) -> None:
        """Forget every ensured outbox and close the idle connections of their engines."""
        with self._lock:
            engines, self._ready = list(self._ready.values()), {}
        for engine in engines:
            engine.dispose()


@contextmanager
def _database_errors(conn_id: str) -> Iterator[None]:
    """The application database's failures as answers: unreachable 503, a value it cannot store 422."""
    try:
        yield
    except sa.exc.DataError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"the database of connection '{conn_id}' cannot store this event: {str(exc.orig).strip()}",
        ) from None
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        if _sqlstate(exc) == LOCK_NOT_AVAILABLE:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                f"the outbox of connection '{conn_id}' is locked by another session (being created or "
                "upgraded); try again later",
                headers={"Retry-After": "5"},
            ) from None
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"the database of connection '{conn_id}' is unreachable; try again later",
            headers={"Retry-After": "5"},
        ) from None


def _sqlstate(exc: sa.exc.DBAPIError) -> str | None:
    orig = exc.orig
    code = getattr(orig, "pgcode", None) or getattr(getattr(orig, "diag", None), "sqlstate", None)
    return str(code) if code else None


def _engines(request: Request) -> OutboxEngines:
    engines: OutboxEngines = request.app.state.outbox_engines
    return engines


def _catalog_tables(store: RuleStore, organization: str, conn_id: str) -> dict[str, Table]:
    """The tables ``conn_id`` has in the organization's catalog (404 when it is not in it)."""
    catalog = ops.catalog_of(store, organization)
    if catalog is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"organization '{organization}' has no catalog yet, so it has no connection '{conn_id}'",
        )
    connection = catalog.connections.get(conn_id)
    if connection is None:
        allowed = ", ".join(sorted(c for c, v in catalog.connections.items() if v.kind == "database"))
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"connection '{conn_id}' is not in the catalog of organization '{organization}' "
            f"(its database connections: {allowed or 'none'})",
        )
    if connection.kind != "database":
        _invalid(
            {"connection": conn_id},
            [("connection", f"connection '{conn_id}' is a {connection.kind} connection, not a database")],
        )
    return connection.tables


def _invalid(body: dict[str, Any], problems: list[tuple[str, str]]) -> NoReturn:
    raise RequestValidationError(
        [{"loc": ("body", path), "msg": message, "type": "event"} for path, message in problems], body=body
    )


def _event_of(body: EventCreate, tables: dict[str, Table]) -> Event:
    """The event to store, its key as the primary key columns (422 at the body's paths otherwise)."""
    data = body.model_dump()
    table = tables.get(body.table)
    if table is None:
        allowed = ", ".join(sorted(tables)) or "none"
        message = (
            f"table '{body.table}' is not in the catalog for connection '{body.connection}' "
            f"(allowed tables: {allowed})"
        )
        _invalid(data, [("table", message)])
    problems = []
    if body.operation in {"created", "updated"} and body.new is None:
        problems.append(("new", f"an event of operation '{body.operation}' needs the row after it ('new')"))
    if body.operation == "created" and body.old is not None:
        problems.append(("old", "a created row has no row before it: leave 'old' out"))
    if body.operation == "deleted" and body.new is not None:
        problems.append(("new", "a deleted row has no row after it: leave 'new' out"))
    event = Event(
        connection=body.connection,
        table=body.table,
        operation=body.operation,
        key=body.key,
        new=body.new,
        old=body.old,
    )
    key: dict[str, Any] = {}
    try:
        key = event_key(event, table.primary_key)
    except ValueError as exc:
        problems.append(("key", str(exc)))
    if problems:
        _invalid(data, problems)
    return event.model_copy(update={"key": key})


def _public(event: Event, client_id: str | None, conn_id: str) -> EventPublic:
    return EventPublic(
        id=str(event.id),
        client_id=client_id,
        connection=conn_id,
        table=event.table,
        operation=event.operation,
        key=event.key,
        new=event.new,
        old=event.old,
        changed_fields=event.changed_fields,
        occurred_at=event.occurred_at,
        actor=event.actor,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={
        status.HTTP_200_OK: {
            "model": EventPublic,
            "description": "The event id was pushed before with the same change: the stored event",
        },
        **errors(409, 413),
    },
)
def push_event(
    body: EventCreate, principal: Editor, store: StoreDep, request: Request, response: Response
) -> EventPublic:
    """Store a change event in the outbox of the connection's database (201; 200 when already stored).

    The connection and table must be in your organization's catalog. ``id`` is yours: sending the
    same event again answers 200 with the stored event and writes nothing; the same id with a
    different change answers 409. The event records you as its ``actor``: runs it triggers can be
    found with ``GET /logs?actor=``.
    """
    tables = _catalog_tables(store, principal.organization, body.connection)
    # the caller is the change's actor (ADR 0013): never taken from the body
    event = _event_of(body, tables).model_copy(update={"actor": principal.username})
    charge_event(store, principal.organization)
    engine = _engines(request).get(body.connection)
    try:
        with _database_errors(body.connection), engine.begin() as conn:
            stored, created = append_event(conn, event, client_id=body.id)
    except EventConflictError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    if not created:
        response.status_code = status.HTTP_200_OK
    location = request.url_for("read_event", connection=body.connection, event_id=str(stored.id))
    response.headers["Location"] = str(location)
    return _public(stored, body.id, body.connection)


@router.get("/{connection}/{event_id}", responses=errors())
def read_event(
    connection: ConnectionName, event_id: OutboxId, principal: Editor, store: StoreDep, request: Request
) -> EventPublic:
    """One event of the connection's outbox (pushed or captured), of a table in your catalog."""
    tables = _catalog_tables(store, principal.organization, connection)
    engine = _engines(request).get(connection)
    with _database_errors(connection), engine.connect() as conn:
        found = get_event(conn, event_id)
    if found is None or found[0].table not in tables:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no event {event_id} of your tables in the outbox of '{connection}'"
        )
    event, client_id = found
    return _public(event, client_id, connection)
