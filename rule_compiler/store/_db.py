"""Engines, transactions and error translation for the rule store.

Every database call of the store goes through :meth:`Database.transaction`, which turns driver and
SQLAlchemy errors into the project's :class:`~rule_compiler.errors.StoreError` family: a store that
cannot be reached becomes :class:`StoreUnavailableError` (the DAG loader then serves its snapshot),
a broken uniqueness rule :class:`ConflictError`, and the message names the URL with its password
masked.

SQLite engines created here get real transactions: ``PRAGMA foreign_keys=ON``, WAL journaling (the
DAG parser reads while workers write the automation log), a busy timeout, and an explicit
``BEGIN`` (``BEGIN IMMEDIATE`` for writes) so that reads and DDL are transactional too.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from rule_compiler.errors import ConflictError, StoreError, StoreUnavailableError

SQLITE_BUSY_TIMEOUT_S = 30
PG_CONNECT_TIMEOUT_S = 10
_WRITE_OPTION = "rule_store_write"
_POSTGRES_DRIVERS_WITH_CONNECT_TIMEOUT = {"psycopg2", "psycopg"}
UPGRADE_HINT = "run `rule-compiler db upgrade` to create or migrate its tables"


def mask_url(url: str | sa.URL) -> str:
    """The URL with its password replaced by ``***``."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparseable database URL>"


class UtcDateTime(sa.TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite stores it naive, in UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the rule store only takes timezone-aware times")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def create_engine(url: str) -> sa.Engine:
    """An engine for ``url`` (SQLite gets the transaction fixes described above)."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise StoreError(f"invalid rule store URL {mask_url(url)!r}: {exc}") from exc
    backend = parsed.get_backend_name()
    connect_args: dict[str, Any] = {}
    if backend == "sqlite":
        connect_args["timeout"] = SQLITE_BUSY_TIMEOUT_S
    elif (
        backend == "postgresql"
        and parsed.get_driver_name() in _POSTGRES_DRIVERS_WITH_CONNECT_TIMEOUT
        and "connect_timeout" not in parsed.query
    ):
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
    try:
        engine = sa.create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
    except (sa.exc.SQLAlchemyError, ImportError) as exc:
        raise StoreError(f"cannot use rule store URL {mask_url(url)!r}: {exc}") from exc
    if backend == "sqlite":
        _use_sqlite_transactions(engine, wal=parsed.database not in (None, "", ":memory:"))
    return engine


def _use_sqlite_transactions(engine: sa.Engine, *, wal: bool) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # pysqlite must not BEGIN on its own; "begin" below does
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            if wal:
                _ensure_wal(cursor)
        finally:
            cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        write = connection.get_execution_options().get(_WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _ensure_wal(cursor: Any) -> None:
    """Switch the file to WAL once (the mode persists in the file), never failing a connection.

    Switching needs an exclusive lock, and SQLite answers BUSY at once (no busy-timeout wait) when
    waiting could deadlock with another connection's write; that connection, or a later one, switches.
    """
    try:
        if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            cursor.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc) and "busy" not in str(exc):
            raise


class Database:
    """A lazily created engine plus transactions that speak the store's error language."""

    def __init__(self, url: str, engine: sa.Engine | None = None) -> None:
        self.url = url
        self.masked_url = mask_url(url)
        self._engine = engine

    @property
    def engine(self) -> sa.Engine:
        """The engine, created on first use (creating it does not connect)."""
        if self._engine is None:
            self._engine = create_engine(self.url)
        return self._engine

    def dispose(self) -> None:
        """Close pooled connections."""
        if self._engine is not None:
            self._engine.dispose()

    @contextmanager
    def transaction(self, *, write: bool = False, single_read: bool = False) -> Iterator[sa.Connection]:
        """One transaction: committed when the block ends, rolled back when it raises.

        ``single_read`` is for a block that runs one SELECT: on a server database it runs in
        autocommit mode, which saves the BEGIN and COMMIT round trips (the DAG loader's query).
        """
        try:
            connection = self.engine.connect()
        except sa.exc.SQLAlchemyError as exc:
            raise StoreUnavailableError(
                f"cannot reach the rule store at {self.masked_url}: {_reason(exc)}"
            ) from exc
        try:
            with connection:
                if write:
                    connection.execution_options(**{_WRITE_OPTION: True})
                elif single_read and connection.dialect.name != "sqlite":
                    connection.execution_options(isolation_level="AUTOCOMMIT")
                with connection.begin():
                    yield connection
        except StoreError:
            raise
        except sa.exc.SQLAlchemyError as exc:
            raise self.translate(exc) from exc

    def translate(self, exc: sa.exc.SQLAlchemyError) -> StoreError:
        """The store error that best describes a failed statement."""
        reason = _reason(exc)
        where = f"the rule store at {self.masked_url}"
        if isinstance(exc, sa.exc.DBAPIError):
            if exc.connection_invalidated or "database is locked" in reason:
                return StoreUnavailableError(f"lost or could not get {where}: {reason}")
            if "no such table" in reason or getattr(exc.orig, "pgcode", None) == "42P01":
                return StoreError(f"{where} has no schema ({UPGRADE_HINT}): {reason}")
            if isinstance(exc, sa.exc.IntegrityError):
                return ConflictError(f"a write to {where} broke a uniqueness or reference rule: {reason}")
        return StoreError(f"{where} failed: {reason}")


def _reason(exc: sa.exc.SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return " ".join(text.split()) or type(exc).__name__
