"""Catalog sync: reflect a live database into catalog tables, and merge them into a catalog.

Pure (SQLAlchemy's inspector on an engine the caller gives; no Airflow), for SQLite and Postgres::

    notes: list[str] = []
    tables = reflect_tables(engine, ["customers", "orders"], notes=notes)   # None: every table
    merged = merge_connection(current, organization="acme", connection_id="app_db", tables=tables)
    merged.catalog        # the new Catalog; merged.changes: what differs from ``current``

Reflection maps column types to catalog types (:func:`catalog_type`), keeps nullability and the
primary key, records whether change capture is installed on each table (``capture_installed``), and
turns each single-column foreign key into a hop named after its column (``customer_id`` →
``customer``; a column without ``_id`` gets ``<column>_ref``). Composite foreign
keys, and names a field path cannot spell (not identifiers, or containing ``__``), are skipped with
a note. Merging replaces the synced connection's tables and keeps what an administrator chose:
each kept table's ``soft_delete_column`` (while the column exists) and ``writable``, the hop names of
foreign keys that still exist, and every other connection.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import types as sa_types

from rule_compiler.catalog import Catalog, Column, ColumnType, Connection, ForeignKey, Table
from rule_compiler.definitions.common import FIELD_PATH_SEPARATOR, IDENTIFIER_RE, MAX_NAME_LENGTH
from rule_compiler.errors import RuleEngineError
from rule_compiler.events import capture

__all__ = [
    "INTERNAL_TABLE_PREFIXES",
    "CatalogChanges",
    "MergeResult",
    "ReflectionError",
    "catalog_type",
    "foreign_key_name",
    "merge_connection",
    "organizations_using",
    "reflect_tables",
]

#: Tables the rule engine or migration tools keep in application databases; never synced by default.
INTERNAL_TABLE_PREFIXES = ("rule_engine_", "alembic_version")

#: Checked in order: Boolean before Integer (some dialects derive one from the other); TIMESTAMP is a
#: DateTime, JSONB a JSON, Text/VARCHAR/Enum a String.
_TYPE_MAP: tuple[tuple[type[sa_types.TypeEngine[Any]], ColumnType], ...] = (
    (sa_types.Boolean, "boolean"),
    (sa_types.Integer, "integer"),
    (sa_types.Numeric, "numeric"),
    (sa_types.Float, "numeric"),  # not a Numeric subclass in SQLAlchemy 2.1
    (sa_types.DateTime, "timestamp"),
    (sa_types.Date, "date"),
    (sa_types.JSON, "json"),
    (sa_types.String, "text"),
)


class ReflectionError(RuleEngineError):
    """The database could not be reflected (a table is missing, the connection failed)."""


def catalog_type(column_type: Any) -> ColumnType:
    """The catalog type of a reflected SQLAlchemy type (``other`` when none fits)."""
    for sa_type, name in _TYPE_MAP:
        if isinstance(column_type, sa_type):
            return name
    return "other"


def foreign_key_name(column: str) -> str:
    """The hop name of a foreign key on ``column``: ``customer_id`` → ``customer``, else ``<column>_ref``."""
    if column.endswith("_id") and len(column) > 3 and not column[:-3].endswith("_"):
        return column[:-3]
    return f"{column}_ref"


def _usable(name: str) -> bool:
    """Whether a field path can name it: an identifier without the ``__`` hop separator."""
    return (
        bool(IDENTIFIER_RE.match(name)) and len(name) <= MAX_NAME_LENGTH and FIELD_PATH_SEPARATOR not in name
    )


def _is_internal(name: str) -> bool:
    return name.startswith(INTERNAL_TABLE_PREFIXES)


def reflect_tables(
    engine: sa.Engine, tables: Sequence[str] | None = None, *, notes: list[str] | None = None
) -> dict[str, Table]:
    """The catalog ``Table`` of each of ``tables`` (None: every table of the default schema).

    Raises :class:`ReflectionError` when a named table does not exist or the database cannot be
    read. What had to be left out is appended to ``notes``.
    """
    notes = notes if notes is not None else []
    try:
        inspector = sa.inspect(engine)
        existing = sorted(inspector.get_table_names())
        if tables is None:
            chosen = [name for name in existing if not _is_internal(name)]
        else:
            missing = [name for name in tables if name not in existing]
            if missing:
                raise ReflectionError(
                    f"no table {', '.join(repr(m) for m in missing)} in the database "
                    f"(its tables: {', '.join(existing) or 'none'})"
                )
            chosen = list(dict.fromkeys(tables))
        reflected: dict[str, Table] = {}
        for name in chosen:
            if not _usable(name):
                notes.append(f"table '{name}' skipped: rules cannot name it (not a plain identifier)")
                continue
            table = _reflect_one(inspector, name, notes)
            if table is not None:
                reflected[name] = table
    except sa.exc.SQLAlchemyError as exc:
        raise ReflectionError(f"cannot read the database schema: {exc}") from exc
    reflected = _with_capture_state(engine, reflected, notes)
    for name, table in reflected.items():
        for fk in table.foreign_keys:
            if fk.references_table not in reflected:
                notes.append(
                    f"{name}.{fk.column} refers to table '{fk.references_table}', which is not synced: "
                    f"paths through '{fk.name}' fail validation until it is"
                )
    return reflected


def _with_capture_state(engine: sa.Engine, tables: dict[str, Table], notes: list[str]) -> dict[str, Table]:
    """Each table with ``capture_installed`` set (left unknown on databases capture does not support)."""
    if engine.dialect.name not in ("postgresql", "sqlite") or not tables:
        return tables
    try:
        states = {state.table: state for state in capture.status(engine, list(tables))}
    except (sa.exc.SQLAlchemyError, capture.CaptureError) as exc:
        notes.append(f"change capture state unknown: {exc}")
        return tables
    for state in states.values():
        if state.stale_columns:
            notes.append(
                f"{state.table}: change capture misses columns {', '.join(state.stale_columns)}; "
                f"re-run `rule-compiler events install` for it"
            )
    return {
        name: table.model_copy(update={"capture_installed": states[name].installed})
        for name, table in tables.items()
    }


def _reflect_one(inspector: Any, name: str, notes: list[str]) -> Table | None:
    pk_columns = set(inspector.get_pk_constraint(name).get("constrained_columns") or [])
    columns: dict[str, Column] = {}
    for info in inspector.get_columns(name):
        column_name = str(info["name"])
        if not _usable(column_name):
            notes.append(
                f"column {name}.{column_name} skipped: rules cannot name it (not a plain identifier)"
            )
            continue
        is_pk = column_name in pk_columns
        columns[column_name] = Column(
            type=catalog_type(info["type"]),
            nullable=bool(info.get("nullable", True)) and not is_pk,
            primary_key=is_pk,
        )
    if not columns:
        notes.append(f"table '{name}' skipped: it has no column rules can name")
        return None
    return Table(
        columns=columns,
        foreign_keys=_foreign_keys(inspector, name, columns, notes),
        unique_keys=_unique_keys(inspector, name, columns),
    )


def _unique_keys(inspector: Any, name: str, columns: Mapping[str, Column]) -> list[list[str]]:
    """Unique constraints and unique indexes whose columns rules can name, without duplicates."""
    found: list[list[str]] = []
    candidates = [info.get("column_names") or [] for info in inspector.get_unique_constraints(name)]
    candidates += [
        info.get("column_names") or [] for info in inspector.get_indexes(name) if info.get("unique")
    ]
    for names in candidates:
        key = [str(n) for n in names if n is not None]
        if key and len(key) == len(names) and all(n in columns for n in key) and key not in found:
            found.append(key)
    return sorted(found)


def _foreign_keys(
    inspector: Any, name: str, columns: Mapping[str, Column], notes: list[str]
) -> list[ForeignKey]:
    found: list[ForeignKey] = []
    taken: set[str] = set()
    for info in inspector.get_foreign_keys(name):
        local, remote = list(info.get("constrained_columns") or []), list(info.get("referred_columns") or [])
        target = str(info.get("referred_table") or "")
        if len(local) != 1 or len(remote) != 1:
            notes.append(
                f"composite foreign key {name}({', '.join(local)}) -> {target} skipped: "
                "field paths follow single-column foreign keys"
            )
            continue
        hop = foreign_key_name(local[0])
        if local[0] not in columns or not _usable(target) or not _usable(remote[0]) or not _usable(hop):
            notes.append(f"foreign key {name}.{local[0]} -> {target}.{remote[0]} skipped: not nameable")
            continue
        if hop in taken:
            notes.append(f"foreign key {name}.{local[0]} skipped: hop name '{hop}' is already used")
            continue
        taken.add(hop)
        found.append(
            ForeignKey(name=hop, column=local[0], references_table=target, references_column=remote[0])
        )
    return sorted(found, key=lambda fk: fk.name)


# -- merging ----------------------------------------------------------------------------------------


@dataclass
class CatalogChanges:
    """What a sync changed in one connection: tables, columns and foreign keys, added or removed."""

    connection_id: str
    created_catalog: bool = False
    added_connection: bool = False
    tables_added: list[str] = field(default_factory=list)
    tables_removed: list[str] = field(default_factory=list)
    #: table -> lines such as ``+ column shipped_at (timestamp)``, ``~ total: text -> numeric``
    table_changes: dict[str, list[str]] = field(default_factory=dict)
    #: admin choices that were kept or had to be dropped
    kept: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(
            self.created_catalog
            or self.added_connection
            or self.tables_added
            or self.tables_removed
            or self.table_changes
        )

    def summary_lines(self, tables: Mapping[str, Table]) -> list[str]:
        """Human-readable lines, one per added/removed table and per changed column or key."""
        lines = [
            f"+ table {name} ({_count(len(tables[name].columns), 'column')})" for name in self.tables_added
        ]
        lines += [f"- table {name}" for name in self.tables_removed]
        for name, changes in sorted(self.table_changes.items()):
            lines += [f"~ {name}: {change}" for change in changes]
        return lines


@dataclass(frozen=True)
class MergeResult:
    """The merged catalog and what changed."""

    catalog: Catalog
    changes: CatalogChanges


def merge_connection(
    current: Catalog | None, *, organization: str, connection_id: str, tables: Mapping[str, Table]
) -> MergeResult:
    """``current`` with connection ``connection_id``'s tables replaced by ``tables`` (admin choices kept)."""
    changes = CatalogChanges(connection_id)
    if current is None:
        changes.created_catalog = True
        current = Catalog(organization=organization)
    elif current.organization != organization:
        raise ValueError(f"catalog of '{current.organization}' given to merge into '{organization}'")
    previous = current.connections.get(connection_id)
    if previous is None:
        changes.added_connection = True
    elif previous.kind != "database":
        changes.kept.append(f"connection '{connection_id}' was a {previous.kind} connection; now database")
    old_tables = previous.tables if previous is not None else {}
    merged_tables = {
        name: _keep_admin_choices(name, table, old_tables.get(name), changes)
        for name, table in sorted(tables.items())
    }
    changes.tables_added = sorted(set(merged_tables) - set(old_tables))
    changes.tables_removed = sorted(set(old_tables) - set(merged_tables))
    for name in sorted(set(merged_tables) & set(old_tables)):
        lines = _table_diff(old_tables[name], merged_tables[name])
        if lines:
            changes.table_changes[name] = lines
    connections = dict(current.connections)
    role = previous.query_role if previous is not None and previous.kind == "database" else None
    connections[connection_id] = Connection(kind="database", tables=merged_tables, query_role=role)
    catalog = Catalog(organization=organization, connections=dict(sorted(connections.items())))
    return MergeResult(catalog, changes)


def _keep_admin_choices(name: str, table: Table, old: Table | None, changes: CatalogChanges) -> Table:
    if old is None:
        return table
    soft_delete = old.soft_delete_column
    if soft_delete is not None and soft_delete not in table.columns:
        changes.kept.append(
            f"{name}: soft_delete_column '{soft_delete}' dropped: the column no longer exists"
        )
        soft_delete = None
    elif soft_delete is not None:
        changes.kept.append(f"{name}: kept soft_delete_column '{soft_delete}'")
    if not old.writable:
        changes.kept.append(f"{name}: kept writable: false")
    old_names = {(fk.column, fk.references_table, fk.references_column): fk.name for fk in old.foreign_keys}
    renamed = [
        fk.model_copy(
            update={"name": old_names.get((fk.column, fk.references_table, fk.references_column), fk.name)}
        )
        for fk in table.foreign_keys
    ]
    if len({fk.name for fk in renamed}) == len(renamed):
        foreign_keys = sorted(renamed, key=lambda fk: fk.name)
    else:  # a kept name collides with a new one: fall back to the reflected names
        foreign_keys = table.foreign_keys
    return Table(
        columns=table.columns,
        foreign_keys=foreign_keys,
        soft_delete_column=soft_delete,
        writable=old.writable,
        unique_keys=table.unique_keys,
        capture_installed=table.capture_installed,
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def _describe_column(column: Column) -> str:
    flags: list[str] = [column.type]
    if column.primary_key:
        flags.append("primary key")
    elif not column.nullable:
        flags.append("not null")
    return ", ".join(flags)


def _describe_fk(fk: ForeignKey) -> str:
    return f"{fk.name} ({fk.column} -> {fk.references_table}.{fk.references_column})"


def _table_diff(old: Table, new: Table) -> list[str]:
    lines = [
        f"+ column {n} ({_describe_column(new.columns[n])})" for n in _sorted_diff(new.columns, old.columns)
    ]
    lines += [f"- column {n}" for n in _sorted_diff(old.columns, new.columns)]
    for name in sorted(set(old.columns) & set(new.columns)):
        before, after = old.columns[name], new.columns[name]
        if before != after:
            lines.append(f"column {name}: {_describe_column(before)} -> {_describe_column(after)}")
    old_fks = {fk.name: fk for fk in old.foreign_keys}
    new_fks = {fk.name: fk for fk in new.foreign_keys}
    lines += [f"+ foreign key {_describe_fk(new_fks[n])}" for n in _sorted_diff(new_fks, old_fks)]
    lines += [f"- foreign key {_describe_fk(old_fks[n])}" for n in _sorted_diff(old_fks, new_fks)]
    for name in sorted(set(old_fks) & set(new_fks)):
        if old_fks[name] != new_fks[name]:
            lines.append(f"foreign key {_describe_fk(old_fks[name])} -> {_describe_fk(new_fks[name])}")
    if old.soft_delete_column != new.soft_delete_column:
        lines.append(f"soft_delete_column: {old.soft_delete_column} -> {new.soft_delete_column}")
    if old.capture_installed != new.capture_installed:
        was, now = _capture_state(old.capture_installed), _capture_state(new.capture_installed)
        lines.append(f"change capture: {was} -> {now}")
    return lines


def _capture_state(installed: bool | None) -> str:
    return {True: "installed", False: "not installed", None: "unknown"}[installed]


def _sorted_diff(a: Iterable[str], b: Iterable[str]) -> list[str]:
    return sorted(set(a) - set(b))


def organizations_using(catalogs: Mapping[str, Catalog], connection_id: str) -> list[str]:
    """The organizations whose catalog lists ``connection_id`` (to pick one when ``--org`` is not given)."""
    return sorted(org for org, catalog in catalogs.items() if connection_id in catalog.connections)
