"""Change capture: row triggers that write every insert, update and delete of a table to the outbox.

``install`` is idempotent (it replaces the triggers, so re-running it after a schema change picks up
new columns), ``uninstall`` drops them (the outbox and its events stay), ``status`` says which tables
are captured and whether a SQLite trigger is out of date with its table's columns.

- Postgres: one PL/pgSQL function for every table (``to_jsonb`` of OLD/NEW, the primary key columns
  passed as trigger arguments, changed columns computed by comparing the two rows, the actor from
  the transaction's ``automation.actor`` setting), then ``pg_notify`` so a listener wakes at once.
  ``install`` replaces the function, so re-running it upgrades every captured table of the database.
- SQLite: three triggers per table that list the columns explicitly (SQLite has no row-to-JSON), so
  they must be re-installed when columns change; ``status`` reports that. SQLite has no session
  settings: its events carry no actor.

An update that changes nothing writes no event. Identifiers are checked against the database and
quoted by SQLAlchemy's preparer; nothing from a definition is ever spliced in unchecked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from rule_compiler.definitions.common import IDENTIFIER_RE
from rule_compiler.errors import RuleEngineError
from rule_compiler.events.outbox_rows import NOTIFY_CHANNEL, OUTBOX_TABLE, ensure_outbox

FUNCTION_NAME = "rule_engine_capture"
#: The transaction-local setting the Postgres trigger reads as the change's actor (ADR 0013): the
#: application runs ``SET LOCAL automation.actor = 'alice'`` (or ``set_config(..., true)``) in the
#: transaction that makes the change.
ACTOR_SETTING = "automation.actor"
TRIGGER_PREFIX = "rule_engine_capture_"
_SQLITE_OPERATIONS = {"insert": "created", "update": "updated", "delete": "deleted"}
_SQLITE_NOW = "strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')"


class CaptureError(RuleEngineError):
    """Capture cannot be installed on this table (unknown, no primary key, unsupported database)."""


@dataclass(frozen=True)
class CaptureStatus:
    """Whether a table's changes reach the outbox."""

    table: str
    installed: bool
    stale_columns: list[str] = field(default_factory=list)  # SQLite: columns the triggers miss

    @property
    def up_to_date(self) -> bool:
        return self.installed and not self.stale_columns


def install(engine: sa.Engine, table: str) -> CaptureStatus:
    """Create the outbox (if missing) and the capture triggers of ``table``; safe to re-run."""
    with engine.begin() as conn:
        columns, primary_key = _describe(conn, table)
        ensure_outbox(conn)
        if conn.dialect.name == "postgresql":
            _install_postgres(conn, table, primary_key)
        elif conn.dialect.name == "sqlite":
            _install_sqlite(conn, table, columns, primary_key)
        else:
            raise CaptureError(f"change capture supports Postgres and SQLite, not {conn.dialect.name}")
    return status(engine, [table])[0]


def uninstall(engine: sa.Engine, table: str) -> bool:
    """Drop ``table``'s capture triggers; True when there were some. Outbox rows are kept."""
    _check_identifier(table)
    was_installed = status(engine, [table])[0].installed
    with engine.begin() as conn:
        quote = conn.dialect.identifier_preparer.quote
        if conn.dialect.name == "postgresql":
            if _table_exists(conn, table):
                conn.exec_driver_sql(
                    f"DROP TRIGGER IF EXISTS {quote(TRIGGER_PREFIX + table)} ON {quote(table)}"
                )
        else:
            for operation in _SQLITE_OPERATIONS:
                conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {quote(_sqlite_trigger(table, operation))}")
    return was_installed


def status(engine: sa.Engine, tables: Sequence[str] | None = None) -> list[CaptureStatus]:
    """The capture state of ``tables`` (default: every table that has capture triggers)."""
    with engine.connect() as conn:
        installed = _installed_tables(conn)
        names = sorted(installed) if tables is None else list(tables)
        result = []
        for name in names:
            stale: list[str] = []
            if name in installed and conn.dialect.name == "sqlite" and _table_exists(conn, name):
                columns, _ = _describe(conn, name)
                stale = [c for c in columns if c not in installed[name]]
            result.append(CaptureStatus(name, name in installed, stale))
        return result


# --- Postgres ---------------------------------------------------------------------------------

# DDL cannot bind parameters: only our constants are formatted in here.
_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {FUNCTION_NAME}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_row jsonb := CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN to_jsonb(OLD) END;
    new_row jsonb := CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN to_jsonb(NEW) END;
    key_row jsonb := '{{}}'::jsonb;
    changed jsonb;
    key_column text;
    event_id bigint;
BEGIN
    FOREACH key_column IN ARRAY TG_ARGV LOOP
        key_row := key_row || jsonb_build_object(key_column, COALESCE(new_row, old_row) -> key_column);
    END LOOP;
    IF TG_OP = 'UPDATE' THEN
        SELECT COALESCE(jsonb_agg(n.key ORDER BY n.key), '[]'::jsonb) INTO changed
        FROM jsonb_each(new_row) AS n
        WHERE n.value IS DISTINCT FROM old_row -> n.key;
        IF changed = '[]'::jsonb THEN
            RETURN NULL;
        END IF;
    END IF;
    INSERT INTO {OUTBOX_TABLE}
        (table_name, operation, key_json, old_json, new_json, changed_json, created_at, actor)
    VALUES (
        TG_TABLE_NAME,
        CASE TG_OP WHEN 'INSERT' THEN 'created' WHEN 'UPDATE' THEN 'updated' ELSE 'deleted' END,
        key_row, old_row, new_row, changed, now(),
        left(NULLIF(current_setting('{ACTOR_SETTING}', true), ''), 200)
    )
    RETURNING id INTO event_id;
    PERFORM pg_notify('{NOTIFY_CHANNEL}', TG_TABLE_NAME || ':' || event_id);
    RETURN NULL;
END
$$
"""  # noqa: S608


def _install_postgres(conn: sa.Connection, table: str, primary_key: list[str]) -> None:
    quote = conn.dialect.identifier_preparer.quote
    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('rule_engine_capture'))")
    conn.exec_driver_sql(_PG_FUNCTION)
    trigger = quote(TRIGGER_PREFIX + table)
    arguments = ", ".join("'" + column + "'" for column in primary_key)  # identifiers, checked
    conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {trigger} ON {quote(table)}")
    conn.exec_driver_sql(
        f"CREATE TRIGGER {trigger} AFTER INSERT OR UPDATE OR DELETE ON {quote(table)} "
        f"FOR EACH ROW EXECUTE FUNCTION {FUNCTION_NAME}({arguments})"
    )


# --- SQLite -----------------------------------------------------------------------------------


def _sqlite_trigger(table: str, operation: str) -> str:
    return f"{TRIGGER_PREFIX}{table}_{operation}"


def _install_sqlite(conn: sa.Connection, table: str, columns: list[str], primary_key: list[str]) -> None:
    quote = conn.dialect.identifier_preparer.quote

    def row_json(alias: str) -> str:
        return "json_object(" + ", ".join(f"'{c}', {alias}.{quote(c)}" for c in columns) + ")"

    key_json = {
        alias: "json_object(" + ", ".join(f"'{c}', {alias}.{quote(c)}" for c in primary_key) + ")"
        for alias in ("NEW", "OLD")
    }
    differs = " OR ".join(f"OLD.{quote(c)} IS NOT NEW.{quote(c)}" for c in columns)
    changed = (
        "(SELECT json_group_array(name) FROM ("  # noqa: S608 - checked identifiers in DDL
        + " UNION ALL ".join(
            f"SELECT '{c}' AS name WHERE OLD.{quote(c)} IS NOT NEW.{quote(c)}" for c in sorted(columns)
        )
        + "))"
    )
    bodies = {
        "insert": ("", key_json["NEW"], "NULL", row_json("NEW"), "NULL"),
        "update": (f" WHEN {differs}", key_json["NEW"], row_json("OLD"), row_json("NEW"), changed),
        "delete": ("", key_json["OLD"], row_json("OLD"), "NULL", "NULL"),
    }
    for operation, (when, key, old, new, changed_sql) in bodies.items():
        name = quote(_sqlite_trigger(table, operation))
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
        conn.exec_driver_sql(
            f"CREATE TRIGGER {name} AFTER {operation.upper()} ON {quote(table)} FOR EACH ROW{when} BEGIN "  # noqa: S608
            f"INSERT INTO {OUTBOX_TABLE} "
            "(table_name, operation, key_json, old_json, new_json, changed_json, created_at) "
            f"VALUES ('{table}', '{_SQLITE_OPERATIONS[operation]}', {key}, {old}, {new}, "
            f"{changed_sql}, {_SQLITE_NOW}); END"
        )


# --- shared -----------------------------------------------------------------------------------


def _check_identifier(name: str) -> None:
    if not re.fullmatch(IDENTIFIER_RE, name):
        raise CaptureError(f"'{name}' is not a plain table or column name (letters, digits, _)")


def _table_exists(conn: sa.Connection, table: str) -> bool:
    return bool(sa.inspect(conn).has_table(table))


def _describe(conn: sa.Connection, table: str) -> tuple[list[str], list[str]]:
    """The table's columns and primary key, each name checked to be a plain identifier."""
    _check_identifier(table)
    if table == OUTBOX_TABLE:
        raise CaptureError("the outbox itself cannot be captured")
    inspector = sa.inspect(conn)
    if not inspector.has_table(table):
        raise CaptureError(f"table '{table}' does not exist in this database")
    columns = [str(c["name"]) for c in inspector.get_columns(table)]
    primary_key = list(inspector.get_pk_constraint(table).get("constrained_columns") or [])
    if not primary_key:
        raise CaptureError(f"table '{table}' has no primary key; events identify rows by it")
    for name in columns:
        _check_identifier(name)
    return columns, primary_key


def _installed_tables(conn: sa.Connection) -> dict[str, set[str]]:
    """Captured tables → the columns their triggers write (Postgres: every column, so empty)."""
    if conn.dialect.name == "postgresql":
        rows = conn.execute(
            sa.text(
                "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE NOT t.tgisinternal AND t.tgname LIKE :pattern"
            ),
            {"pattern": r"rule\_engine\_capture\_%"},
        )
        return {str(row[0]): set() for row in rows}
    found: dict[str, set[str]] = {}
    rows = conn.execute(
        sa.text(
            "SELECT tbl_name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE :p ESCAPE '\\'"
        ),
        {"p": r"rule\_engine\_capture\_%\_update"},
    )
    for table, sql in rows:
        found[str(table)] = set(re.findall(r"IS NOT NEW\.\"?(\w+)\"?", str(sql)))
    return found
