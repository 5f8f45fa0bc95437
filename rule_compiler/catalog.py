"""The catalog: per organization, which connections, tables and columns rules may use.

Nothing at run time trusts a name that is not in it: validation checks every connection, table,
column and foreign-key path against it, and record actions only touch what it allows. It is plain
data (a YAML/JSON document stored, versioned, in the rule store) so it is pure and fast to test.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, Field, model_validator

from rule_compiler.definitions.common import FIELD_PATH_SEPARATOR, Identifier, Slug, StrictModel
from rule_compiler.errors import InvalidValueError
from rule_compiler.storage_locations import storage_location_problem

ColumnType = Literal["text", "integer", "numeric", "boolean", "timestamp", "date", "json", "other"]
ConnectionKind = Literal["database", "http", "smtp", "slack", "storage"]


class Column(StrictModel):
    """A column rules may read or write."""

    type: ColumnType = "text"
    nullable: bool = True
    primary_key: bool = False


class ForeignKey(StrictModel):
    """``orders.customer_id -> customers.id``, walked in field paths by its ``name`` (``customer``)."""

    name: Identifier
    column: Identifier
    references_table: Identifier
    references_column: Identifier = "id"


class Table(StrictModel):
    """A table rules may use, with the columns they may touch."""

    columns: dict[str, Column] = Field(min_length=1)
    foreign_keys: list[ForeignKey] = Field(default_factory=list)
    soft_delete_column: Identifier | None = None
    writable: bool = True
    unique_keys: list[list[Identifier]] = Field(
        default_factory=list,
        description="unique constraints besides the primary key (what `create_record.upsert_on` may name)",
    )
    capture_installed: bool | None = Field(
        default=None,
        exclude_if=lambda value: value is None,  # catalogs without it dump (and hash) as before
        description="whether change capture is installed on the table (set by `catalog sync` and "
        "`events install`/`uninstall`); unset: unknown. Event rules on a table without it only warn",
    )

    @property
    def primary_key(self) -> list[str]:
        return [name for name, column in self.columns.items() if column.primary_key]

    def is_unique_key(self, columns: list[str]) -> bool:
        """Whether ``columns`` (in any order) are the primary key or one of the unique keys."""
        wanted = set(columns)
        return any(wanted == set(key) for key in [self.primary_key, *self.unique_keys] if key)

    def foreign_key(self, name: str) -> ForeignKey | None:
        return next((fk for fk in self.foreign_keys if fk.name == name), None)


def _valid_location(location: str) -> str:
    problem = storage_location_problem(location)
    if problem:
        raise ValueError(problem)
    return location


StorageLocation = Annotated[str, Field(max_length=500), AfterValidator(_valid_location)]


class Connection(StrictModel):
    """An Airflow connection id the organization may use, and what it points at: a database's tables,
    a storage connection's locations."""

    kind: ConnectionKind = "database"
    tables: dict[str, Table] = Field(default_factory=dict)
    locations: list[StorageLocation] = Field(
        default_factory=list,
        max_length=50,
        exclude_if=lambda value: not value,  # catalogs without it dump (and hash) as before
        description="storage connections only, at least one: the URL prefixes report files may be "
        "written under with this connection (s3://acme-reports/, file:///srv/reports/acme/)",
    )
    query_role: Identifier | None = Field(
        default=None,
        exclude_if=lambda value: value is None,  # catalogs without it dump (and hash) as before
        description="database connections only (Postgres): the restricted role author SQL (report "
        "queries, data triggers) runs as, with SET LOCAL ROLE; it may only SELECT the catalog's "
        "tables (`rule-compiler catalog grants` prints the statements). Set by a platform administrator",
    )

    @model_validator(mode="after")
    def _locations_only_for_storage(self) -> Self:
        if self.kind == "storage" and not self.locations:
            raise ValueError(
                "a storage connection lists the places reports may be written under in `locations`, "
                "e.g. locations: [s3://acme-reports/] or [file:///srv/reports/acme/]"
            )
        if self.kind != "storage" and self.locations:
            raise ValueError(f"a {self.kind} connection has no `locations`; only a storage connection does")
        if self.kind == "storage" and self.tables:
            raise ValueError("a storage connection has no tables")
        if self.kind != "database" and self.query_role is not None:
            raise ValueError(f"a {self.kind} connection has no `query_role`; only a database connection does")
        return self


class Catalog(StrictModel):
    """Everything one organization's rules may name."""

    organization: Slug
    connections: dict[str, Connection] = Field(default_factory=dict)


class ResolvedField:
    """A field path resolved against the catalog: the joins it walks and the column it ends on."""

    __slots__ = ("column", "column_name", "hops", "path", "table_name")

    def __init__(
        self, path: str, hops: list[tuple[str, ForeignKey]], table_name: str, column_name: str, column: Column
    ) -> None:
        self.path = path
        self.hops = hops  # [(from_table, fk), ...]
        self.table_name = table_name
        self.column_name = column_name
        self.column = column


class FieldResolutionError(InvalidValueError):
    """A field path names a hop or column the catalog does not have; the message says which."""


def resolve_field(connection: Connection, table_name: str, path: str) -> ResolvedField:
    """Walk ``customer__region__name`` from ``table_name`` through foreign keys to a column."""
    parts = path.split(FIELD_PATH_SEPARATOR)
    current_name = table_name
    current = connection.tables[table_name]
    hops: list[tuple[str, ForeignKey]] = []
    for hop in parts[:-1]:
        fk = current.foreign_key(hop)
        if fk is None:
            known = ", ".join(fk.name for fk in current.foreign_keys) or "none"
            raise FieldResolutionError(
                f"'{hop}' in field '{path}' is not a foreign key of table '{current_name}' "
                f"(its foreign keys: {known})"
            )
        target = connection.tables.get(fk.references_table)
        if target is None:
            raise FieldResolutionError(
                f"'{hop}' in field '{path}' leads to table '{fk.references_table}', "
                "which is not in the catalog"
            )
        hops.append((current_name, fk))
        current_name, current = fk.references_table, target
    column_name = parts[-1]
    column = current.columns.get(column_name)
    if column is None:
        raise FieldResolutionError(
            f"field '{path}': table '{current_name}' has no column '{column_name}' "
            f"(its columns: {', '.join(sorted(current.columns))})"
        )
    return ResolvedField(path, hops, current_name, column_name, column)


def field_paths(
    connection: Connection, table_name: str, *, max_hops: int = 2, limit: int = 500
) -> list[tuple[str, ColumnType]]:
    """What a condition on ``table_name`` may name: its columns, then the columns reached through up to
    ``max_hops`` foreign keys (``customer__tier``), each with its type; at most ``limit``, breadth first.

    Every path returned resolves with :func:`resolve_field`.
    """
    found: list[tuple[str, ColumnType]] = []
    level: list[tuple[str, str]] = [("", table_name)]  # (prefix, table)
    for depth in range(max_hops + 1):
        following: list[tuple[str, str]] = []
        for prefix, name in level:
            table = connection.tables.get(name)
            if table is None:
                continue
            for column_name, column in table.columns.items():
                if len(found) >= limit:
                    return found
                found.append((f"{prefix}{column_name}", column.type))
            if depth < max_hops:
                following += [
                    (f"{prefix}{fk.name}{FIELD_PATH_SEPARATOR}", fk.references_table)
                    for fk in table.foreign_keys
                ]
        level = following
    return found


def query_role_of(catalog: Catalog | Mapping[str, Any] | None, conn_id: str) -> str | None:
    """The query role the catalog names for connection ``conn_id`` (None: none, or no such connection)."""
    if catalog is None:
        return None
    if isinstance(catalog, Catalog):
        connection = catalog.connections.get(conn_id)
        return None if connection is None else connection.query_role
    raw = (catalog.get("connections") or {}).get(conn_id) or {}
    role = raw.get("query_role") if isinstance(raw, Mapping) else None
    return str(role) if role else None
