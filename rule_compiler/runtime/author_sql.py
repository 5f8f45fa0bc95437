"""Where author SQL runs: a read-only transaction with statement and lock timeouts, under the
catalog's restricted role when it names one, on a connection that leaves nothing behind.

Report queries (:mod:`rule_compiler.reporting.queries`) and data triggers
(:mod:`rule_compiler.runtime.data_query`) both run here, after :func:`~rule_compiler.sql_check.
check_read_only` proved the SQL is made only of allowed functions and constructs. This is the
defence when that proof misses something (a function whose body writes, a future parser gap):

* **Postgres**: ``SET TRANSACTION READ ONLY``; ``statement_timeout`` (the query's timeout),
  ``lock_timeout`` (:data:`LOCK_TIMEOUT_SECONDS`: a lock held elsewhere fails the query quickly
  instead of queueing it, and every later lock request behind it) and
  ``idle_in_transaction_session_timeout`` set with ``SET LOCAL``; with a role, the role is checked
  (:func:`check_query_role`: no superuser, no BYPASSRLS, no write or create privilege anywhere) and
  taken with ``SET LOCAL ROLE``. Always rolled back; then session advisory locks are released and
  the connection is closed rather than returned to the pool, so nothing the query did to its session
  (a lock, a setting, a dblink connection) outlives it.
* **SQLite**: ``PRAGMA query_only`` and a progress-handler deadline, restored afterwards.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from rule_compiler.definitions.common import IDENTIFIER_RE, MAX_NAME_LENGTH
from rule_compiler.errors import RuleEngineError

#: How long author SQL waits for a lock (Postgres ``lock_timeout``), at most its statement timeout.
LOCK_TIMEOUT_SECONDS = 5
#: The least ``idle_in_transaction_session_timeout``: a worker that stalls while its read-only
#: transaction is open (between fetches of a report's cursor) is disconnected by the server after
#: this long, or after the statement timeout when that is longer.
MIN_IDLE_IN_TRANSACTION_SECONDS = 60
_SQLITE_PROGRESS_STEPS = 10_000


class AuthorSqlError(RuleEngineError):
    """Author SQL cannot run here as configured (database kind, query role); the message says why."""


@contextmanager
def author_sql_connection(
    engine: sa.Engine, timeout_seconds: float, *, role: str | None = None
) -> Iterator[sa.Connection]:
    """A connection in :func:`read_only_transaction`, closed afterwards instead of going back to the
    pool (Postgres), so that no session state author SQL left can reach the next user of the pool."""
    conn = engine.connect()
    try:
        with read_only_transaction(conn, timeout_seconds, role=role) as read_only:
            yield read_only
    finally:
        end_session(conn)


def end_session(conn: sa.Connection) -> None:
    """Release what a session may hold past a rollback and close it for good (Postgres); SQLite has
    no such state, its connection goes back to the pool."""
    try:
        if conn.dialect.name == "postgresql" and not conn.invalidated and not conn.closed:
            with contextlib.suppress(sa.exc.SQLAlchemyError):  # best effort: the connection goes anyway
                if conn.in_transaction():
                    conn.rollback()
                conn.exec_driver_sql("SELECT pg_advisory_unlock_all()")
                conn.rollback()
            conn.invalidate()  # the DBAPI connection is closed; the pool opens a fresh one next time
    finally:
        conn.close()


@contextmanager
def read_only_transaction(
    conn: sa.Connection, timeout_seconds: float = 30, *, role: str | None = None
) -> Iterator[sa.Connection]:
    """A transaction in which the database refuses every write, stops a statement at the deadline and
    a lock wait after :data:`LOCK_TIMEOUT_SECONDS`, and (Postgres) acts as ``role`` when given.

    ``conn`` must not be in a transaction yet. Always rolled back; on SQLite the connection's
    ``query_only`` setting is restored afterwards.
    """
    if conn.in_transaction():
        raise AuthorSqlError("a read-only transaction needs a connection with no transaction open")
    dialect = conn.dialect.name
    if dialect not in ("postgresql", "sqlite"):
        raise AuthorSqlError(f"queries run on SQLite and Postgres, not {dialect}")
    if role is not None and dialect != "postgresql":
        raise AuthorSqlError(
            f"the catalog names query role '{role}' for this connection, but roles are a Postgres "
            f"feature and this is {dialect}: remove `query_role` from the catalog"
        )
    with conn.begin() as transaction:
        try:
            if dialect == "postgresql":
                _postgres_limits(conn, timeout_seconds)
                if role is not None:
                    check_query_role(conn, role)
                    conn.exec_driver_sql(f"SET LOCAL ROLE {_quoted_role(conn, role)}")
                yield conn
            else:
                with _sqlite_query_only(conn.connection.driver_connection, timeout_seconds):
                    yield conn
        finally:
            transaction.rollback()


def _postgres_limits(conn: sa.Connection, timeout_seconds: float) -> None:
    statement_ms = max(1, int(timeout_seconds * 1000))
    conn.exec_driver_sql("SET TRANSACTION READ ONLY")
    conn.execute(
        sa.text(
            "SELECT set_config('statement_timeout', :statement, true), "
            "set_config('lock_timeout', :lock, true), "
            "set_config('idle_in_transaction_session_timeout', :idle, true)"
        ),
        {
            "statement": f"{statement_ms}ms",
            "lock": f"{min(statement_ms, LOCK_TIMEOUT_SECONDS * 1000)}ms",
            "idle": f"{max(statement_ms, MIN_IDLE_IN_TRANSACTION_SECONDS * 1000)}ms",
        },
    )


@contextmanager
def _sqlite_query_only(raw: Any, timeout_seconds: float) -> Iterator[None]:
    """``PRAGMA query_only`` (connection-wide, so set on the driver connection and restored) and a
    progress handler that interrupts the statement past the deadline."""
    before = raw.execute("PRAGMA query_only").fetchone()[0]
    deadline = time.monotonic() + timeout_seconds
    raw.execute("PRAGMA query_only = ON")
    raw.set_progress_handler(lambda: int(time.monotonic() > deadline), _SQLITE_PROGRESS_STEPS)
    try:
        yield
    finally:
        raw.set_progress_handler(None, 0)
        raw.execute(f"PRAGMA query_only = {'ON' if before else 'OFF'}")


def valid_role_name(role: str) -> bool:
    """Whether ``role`` is a plain identifier (what the catalog accepts as a query role)."""
    return len(role) <= MAX_NAME_LENGTH and IDENTIFIER_RE.fullmatch(role) is not None


def _quoted_role(conn: sa.Connection, role: str) -> str:
    if not valid_role_name(role):
        raise AuthorSqlError(f"query role {role[:80]!r} is not a plain identifier (letters, digits, _)")
    return str(conn.dialect.identifier_preparer.quote_identifier(role))


def check_query_role(conn: sa.Connection, role: str) -> None:
    """Refuse a query role that could do more than read: a superuser, one that bypasses row-level
    security, creates roles or databases, replicates, is a member of a predefined ``pg_*`` role
    (``pg_read_all_data``, ``pg_write_server_files``...), holds any write privilege (INSERT, UPDATE,
    DELETE, TRUNCATE, REFERENCES, TRIGGER on a table or its columns, USAGE or UPDATE on a sequence),
    may CREATE in a schema or the database, or that the connection's user cannot switch to.

    Privileges held through membership count (``has_table_privilege`` follows inheritance). Raises
    :class:`AuthorSqlError` naming the problem and how to fix it.
    """
    if not valid_role_name(role):
        raise AuthorSqlError(f"query role {role[:80]!r} is not a plain identifier (letters, digits, _)")
    found = (
        conn.execute(
            sa.text(
                "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolreplication, "
                "pg_has_role(current_user, oid, 'MEMBER') AS usable FROM pg_roles WHERE rolname = :role"
            ),
            {"role": role},
        )
        .mappings()
        .one_or_none()
    )
    if found is None:
        raise AuthorSqlError(
            f"query role '{role}' does not exist in this database: create it (`rule-compiler catalog "
            "grants` prints the statements) or remove `query_role` from the catalog"
        )
    powers = [
        name
        for name, held in (
            ("SUPERUSER", found["rolsuper"]),
            ("BYPASSRLS", found["rolbypassrls"]),
            ("CREATEROLE", found["rolcreaterole"]),
            ("CREATEDB", found["rolcreatedb"]),
            ("REPLICATION", found["rolreplication"]),
        )
        if held
    ]
    problems = [f"it has {', '.join(powers)}"] if powers else []
    for what, query in _PRIVILEGE_CHECKS:
        names = list(conn.execute(sa.text(query), {"role": role}).scalars())
        if names:
            shown = ", ".join(str(n) for n in names[:5]) + (", ..." if len(names) > 5 else "")
            problems.append(f"{what}: {shown}")
    if problems:
        raise AuthorSqlError(
            f"query role '{role}' may do more than read, so author SQL does not run under it: "
            f"{'; '.join(problems)}. Give it SELECT on the catalog's tables only "
            "(`rule-compiler catalog grants` prints the statements)"
        )
    if not found["usable"]:
        raise AuthorSqlError(
            f"the connection's user cannot act as query role '{role}': GRANT {role} TO <that user>"
        )


#: (what, query listing the offending names) — each query binds ``:role``; ``pg_catalog``,
#: ``information_schema``, ``pg_toast`` and ``pg_temp_*`` are the server's own schemas.
_PRIVILEGE_CHECKS: tuple[tuple[str, str], ...] = (
    (  # pg_read_all_data, pg_write_server_files...: each reaches past the catalog's tables
        "it is a member of predefined roles",
        "SELECT rolname FROM pg_roles WHERE rolname LIKE 'pg\\_%' AND rolname <> :role "
        "AND pg_has_role(:role, oid, 'MEMBER') ORDER BY rolname",
    ),
    (
        "it may write to tables",
        "SELECT n.nspname || '.' || c.relname "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') "
        "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%' "
        "AND CASE WHEN c.relkind IN ('r', 'p', 'v', 'm', 'f') THEN "
        "has_table_privilege(:role, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER') "
        "OR has_any_column_privilege(:role, c.oid, 'INSERT, UPDATE, REFERENCES') END ORDER BY 1",
    ),
    (
        "it may use sequences (nextval)",
        "SELECT n.nspname || '.' || c.relname "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'S' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%' "
        "AND CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(:role, c.oid, 'USAGE, UPDATE') END "
        "ORDER BY 1",  # CASE: Postgres may test the privilege before the relkind otherwise
    ),
    (
        "it may CREATE in schemas",
        "SELECT n.nspname FROM pg_namespace n "
        "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%' "
        "AND has_schema_privilege(:role, n.oid, 'CREATE') ORDER BY 1",
    ),
    (
        "it may CREATE in the database",
        "SELECT current_database() WHERE has_database_privilege(:role, current_database(), 'CREATE')",
    ),
)
