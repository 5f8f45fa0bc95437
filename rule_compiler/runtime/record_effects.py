"""Record effects, exactly once: each effect and its ledger row commit in one transaction.

The ledger lives in the application database the effect touches (docs/architecture.md §3.5,
ADR 0003). Its primary key is the idempotency key, so a retried or duplicated task that reaches the
same effect finds the key taken and changes nothing. Values are always bound parameters, cast to the
live column types.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from rule_compiler.canonical import canonical_json
from rule_compiler.clock import utcnow
from rule_compiler.errors import PermanentActionError, RetryableActionError, RuleEngineError
from rule_compiler.runtime.faults import faultpoint
from rule_compiler.runtime.rows import reflect_table
from rule_compiler.sql_dialects import conflict_insert, table_exists

LEDGER_TABLE = "rule_engine_ledger"
_ledger_metadata = sa.MetaData()
ledger = sa.Table(
    LEDGER_TABLE,
    _ledger_metadata,
    sa.Column("idempotency_key", sa.String(64), primary_key=True),
    sa.Column("rule_id", sa.String(200), nullable=False),
    sa.Column("action_id", sa.String(100), nullable=False),
    sa.Column("occurrence_id", sa.String(250), nullable=False),
    sa.Column("row_key", sa.Text, nullable=True),
    sa.Column("effect", sa.Text, nullable=False),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)

Outcome = Literal["applied", "already_applied", "missing_row"]


class _MissingRowError(RuleEngineError):
    """The row to change is gone; raised inside the transaction so nothing is committed."""


@dataclass(frozen=True)
class Effect:
    """Who asks for an effect: the ledger row's identity."""

    idempotency_key: str
    rule_id: str
    action_id: str
    occurrence_id: str
    row_key: str | None


@dataclass(frozen=True)
class Timeouts:
    """How long one effect's statements may run, and wait for a lock, before giving up (retryable)."""

    statement_ms: int = 30_000
    lock_ms: int = 5_000


def _set_timeouts(conn: sa.Connection, timeouts: Timeouts) -> None:
    """Per-transaction limits: a stuck query or a held row lock fails the attempt instead of hanging."""
    if conn.dialect.name == "postgresql":  # set_config(..., true) is SET LOCAL, in one round trip
        conn.execute(
            sa.text(
                "SELECT set_config('statement_timeout', :statement, true), "
                "set_config('lock_timeout', :lock, true)"
            ),
            {"statement": f"{int(timeouts.statement_ms)}ms", "lock": f"{int(timeouts.lock_ms)}ms"},
        )
    elif conn.dialect.name == "sqlite":  # SQLite has one lock, the database's: wait this long for it
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(timeouts.lock_ms)}")


def ensure_ledger(engine: sa.Engine) -> None:
    """Create the ledger table in the application database if it is not there yet (a cheap existence
    check first: even ``CREATE TABLE IF NOT EXISTS`` costs a DDL round trip at each task start)."""
    with engine.connect() as conn:
        if table_exists(conn, LEDGER_TABLE):
            return
    try:
        with engine.begin() as conn:
            conn.execute(sa.schema.CreateTable(ledger, if_not_exists=True))
    except sa.exc.DBAPIError:  # two first tasks raced on Postgres' catalog: fine if the table is there
        if not sa.inspect(engine).has_table(LEDGER_TABLE):
            raise


def cast_value(column: sa.Column[Any], value: Any) -> Any:
    """Cast a literal or rendered template to the column's type; PermanentActionError when impossible."""
    if value is None:
        return None
    kind = column.type
    try:
        if isinstance(kind, sa.Boolean):
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered not in {"true", "false", "1", "0", "yes", "no"}:
                    raise ValueError(value)
                return lowered in {"true", "1", "yes"}
            return bool(value)
        if isinstance(kind, sa.Integer):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if isinstance(kind, sa.Numeric | sa.Float):
            return decimal.Decimal(str(value))
        if isinstance(kind, sa.DateTime):
            return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
        if isinstance(kind, sa.Date):
            return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
        if isinstance(kind, sa.JSON):
            return value
        if isinstance(value, dict | list):
            return json.dumps(value)
        return str(value)
    except (ValueError, TypeError, ArithmeticError):
        raise PermanentActionError(
            f"value {value!r} cannot be stored in column '{column.name}' of type {kind}"
        ) from None


def _claim(conn: sa.Connection, effect: Effect, description: Mapping[str, Any]) -> bool:
    """Insert the ledger row; False when the key is already there (the effect happened before)."""
    exists = conn.execute(
        sa.select(ledger.c.idempotency_key).where(ledger.c.idempotency_key == effect.idempotency_key)
    ).first()
    if exists:
        return False
    conn.execute(
        ledger.insert().values(
            idempotency_key=effect.idempotency_key,
            rule_id=effect.rule_id,
            action_id=effect.action_id,
            occurrence_id=effect.occurrence_id,
            row_key=effect.row_key,
            effect=canonical_json(dict(description)),
            applied_at=utcnow(),
        )
    )
    return True


def _pk_clause(table: sa.Table, primary_key: list[str], key_values: list[Any]) -> Any:
    return sa.and_(*(table.c[name] == value for name, value in zip(primary_key, key_values, strict=True)))


def apply_effect(
    engine: sa.Engine,
    effect: Effect,
    *,
    operation: Literal["insert", "update", "delete", "soft_delete"],
    table_name: str,
    primary_key: list[str],
    key_values: list[Any] | None,
    values: Mapping[str, Any] | None = None,
    soft_delete_column: str | None = None,
    upsert_on: Sequence[str] | None = None,
    timeouts: Timeouts | None = None,
) -> Outcome:
    """Apply one effect and record it in the ledger in the same transaction.

    ``timeouts`` bound the transaction's statements and lock waits; running into one is retryable.

    An ``insert`` with ``upsert_on`` (columns of a unique key) updates the row holding that key
    instead of failing on it (``INSERT ... ON CONFLICT (...) DO UPDATE``, Postgres and SQLite).
    """
    faultpoint("records.before_effect")
    try:
        with engine.begin() as conn:
            _set_timeouts(conn, timeouts or Timeouts())
            table = reflect_table(conn, table_name)
            missing = sorted(set(values or {}) - set(table.c.keys()))
            if missing:
                raise PermanentActionError(
                    f"table '{table_name}' has no column {', '.join(repr(m) for m in missing)} any more; "
                    "the database changed since the catalog was synced"
                )
            bound = {name: cast_value(table.c[name], value) for name, value in (values or {}).items()}
            if not _claim(conn, effect, {"op": operation, "table": table_name, "columns": sorted(bound)}):
                return "already_applied"
            statement = _statement(
                table,
                operation,
                primary_key=primary_key,
                key_values=key_values,
                bound=bound,
                soft_delete_column=soft_delete_column,
                upsert_on=upsert_on,
                dialect=conn.dialect.name,
            )
            if conn.execute(statement).rowcount == 0 and operation != "insert":
                raise _MissingRowError  # rolls back the ledger claim too
            faultpoint("records.after_effect_before_commit")
        faultpoint("records.after_commit")
        return "applied"
    except _MissingRowError:
        return "missing_row"
    except sa.exc.IntegrityError as exc:
        if _is_ledger_conflict(exc):
            return "already_applied"  # a concurrent duplicate committed first
        raise PermanentActionError(f"the database refused the change: {_short(exc)}") from None
    except (sa.exc.DataError, sa.exc.ProgrammingError) as exc:
        raise PermanentActionError(f"the database refused the change: {_short(exc)}") from None
    except sa.exc.NoSuchTableError:
        raise PermanentActionError(f"table '{table_name}' does not exist in the database") from None
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        if _is_schema_error(exc):
            raise PermanentActionError(f"the database refused the change: {_short(exc)}") from None
        raise RetryableActionError(f"database unavailable: {_short(exc)}") from None


def _statement(
    table: sa.Table,
    operation: str,
    *,
    primary_key: list[str],
    key_values: list[Any] | None,
    bound: Mapping[str, Any],
    soft_delete_column: str | None,
    upsert_on: Sequence[str] | None = None,
    dialect: str = "",
) -> Any:
    if operation == "insert":
        return _upsert(table, bound, upsert_on, dialect) if upsert_on else table.insert().values(**bound)
    if key_values is None:
        raise PermanentActionError(f"{operation} on '{table.name}' needs a row, and none was given")
    where = _pk_clause(table, primary_key, key_values)
    if operation == "update":
        return table.update().where(where).values(**bound)
    if operation == "soft_delete":
        return table.update().where(where).values({soft_delete_column: True})
    return table.delete().where(where)


def _upsert(table: sa.Table, bound: Mapping[str, Any], upsert_on: Sequence[str], dialect: str) -> Any:
    """``INSERT ... ON CONFLICT (upsert_on) DO UPDATE SET`` the other values (dialect-specific)."""
    insert = conflict_insert(dialect, table)
    if insert is None:
        raise PermanentActionError(f"upsert is supported on Postgres and SQLite, not on {dialect}")
    statement = insert.values(**bound)
    updates = {name: statement.excluded[name] for name in bound if name not in upsert_on}
    if not updates:
        return statement.on_conflict_do_nothing(index_elements=list(upsert_on))
    return statement.on_conflict_do_update(index_elements=list(upsert_on), set_=updates)


def _is_ledger_conflict(exc: sa.exc.IntegrityError) -> bool:
    text = str(exc.orig).lower()
    return LEDGER_TABLE in text or "idempotency_key" in text


def _is_schema_error(exc: Exception) -> bool:
    """SQLite reports schema mistakes as OperationalError; retrying them cannot help."""
    text = str(getattr(exc, "orig", exc)).lower()
    return (
        text.startswith(("no such column", "no such table", "table "))
        or "has no column named" in text
        or "on conflict clause does not match" in text
    )


def _short(exc: Exception) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig if orig is not None else exc).strip().splitlines()[0][:300]
