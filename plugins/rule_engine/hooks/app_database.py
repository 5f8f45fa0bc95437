"""Application databases: the one seam from an Airflow connection id to a SQLAlchemy engine.

Everything of the plugin that reads or writes an application database gets its engine here: the
operators (through :class:`AppDatabaseHook`), the outbox trigger, the REST view (events, catalog
sync, the health route's consumer lag, the rule tester's related rows) and the ``rule-compiler``
console script (docs/architecture.md §1, "Connections"). This module owns three things, once:

* **connection → URL.** The connection is read through Airflow (env var, secrets backend or
  metadata DB) and its provider hook builds the engine (``get_sqlalchemy_engine``; the Postgres
  provider picks the driver, ``postgresql+psycopg`` with psycopg 3), with ``pool_pre_ping`` and
  ``hide_parameters`` (bound values never reach logs or error messages).
* **the process-wide engine cache.** One engine per (connection id, connection URI), so every task,
  trigger and request of a process shares one pool per database, and a connection edited in Airflow
  (new host, rotated password) gets a new engine (the one it replaces is disposed: its idle
  connections close, connections still checked out finish their work). The lock guards the
  dictionary only: reading the connection, building the engine and every query run on it happen
  outside it, so a slow database (or slow author SQL) never holds up another caller.
* **the error mapping.** A missing connection raises :class:`~rule_compiler.errors.ConnectionNotFoundError`,
  one that is no SQL database :class:`~rule_compiler.errors.ConnectionUnusableError` (both
  :class:`~rule_compiler.errors.AppDatabaseError`, naming the connection id). Callers word them for
  their audience: REST routes answer 503, the CLI prints the message and exits 2, a task fails.
  Whether the database answers is seen when a query runs (engines connect lazily), by the caller.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import Any

import sqlalchemy as sa
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from rule_compiler.errors import AppDatabaseError, ConnectionNotFoundError, ConnectionUnusableError

__all__ = [
    "AppDatabaseError",
    "AppDatabaseHook",
    "ConnectionNotFoundError",
    "ConnectionUnusableError",
    "engine_for",
]

#: What every application-database engine is made with.
ENGINE_KWARGS: dict[str, Any] = {"pool_pre_ping": True, "hide_parameters": True}

#: Engines by (connection id, connection URI): the one cache of the process. Guarded by ``_LOCK``.
_ENGINES: dict[tuple[str, str], sa.Engine] = {}
_LOCK = threading.Lock()


def engine_for(conn_id: str) -> sa.Engine:
    """The engine of Airflow connection ``conn_id``'s database: the same object for every caller of
    the process while the connection is unchanged.

    Raises :class:`ConnectionNotFoundError` or :class:`ConnectionUnusableError`.
    """
    connection = _connection(conn_id)
    key = (conn_id, str(connection.get_uri()))
    with _LOCK:
        engine = _ENGINES.get(key)
    if engine is not None:
        return engine
    created = _create(conn_id, connection)  # builds, never connects: outside the lock all the same
    with _LOCK:
        engine = _ENGINES.setdefault(key, created)
        if engine is created:  # the connection's engines of earlier URIs are replaced
            stale = [other for other in _ENGINES if other[0] == conn_id and other != key]
            unused = [_ENGINES.pop(other) for other in stale]
        else:  # another thread stored one first: that is the one everybody gets
            unused = [created]
    for old in unused:
        old.dispose()
    return engine


def _connection(conn_id: str) -> Any:
    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise ConnectionNotFoundError(conn_id) from None


def _create(conn_id: str, connection: Any) -> sa.Engine:
    conn_type = connection.conn_type or "untyped"
    try:
        hook = connection.get_hook()
    except Exception as exc:  # an unknown type, or its provider is not installed
        reason = " ".join(str(exc).split())[:200]
        raise ConnectionUnusableError(conn_id, f"no hook for its type '{conn_type}' ({reason})") from None
    get_engine = getattr(hook, "get_sqlalchemy_engine", None)
    if get_engine is None:
        raise ConnectionUnusableError(conn_id, f"it is a '{conn_type}' connection, not a SQL database")
    engine: sa.Engine = get_engine(engine_kwargs=dict(ENGINE_KWARGS))
    return engine


class AppDatabaseHook(BaseHook):
    """The database of Airflow connection ``conn_id``, for operators: :attr:`engine` is
    :func:`engine_for` (any provider hook with ``get_sqlalchemy_engine``)."""

    conn_name_attr = "conn_id"
    hook_name = "Rule engine records"

    def __init__(self, conn_id: str) -> None:
        super().__init__()
        self.conn_id = conn_id

    @cached_property
    def engine(self) -> sa.Engine:
        return engine_for(self.conn_id)
