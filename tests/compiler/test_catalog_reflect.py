"""Catalog sync's pure half: reflecting SQLite and Postgres into catalog tables, and merging them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
import yaml

from rule_compiler.catalog import Catalog, Column, Connection, ForeignKey, Table, resolve_field
from rule_compiler.catalog_reflect import (
    ReflectionError,
    catalog_type,
    foreign_key_name,
    merge_connection,
    organizations_using,
    reflect_tables,
)
from tests.conftest import DEMO_CATALOG


def _schema() -> sa.MetaData:
    metadata = sa.MetaData()
    sa.Table(
        "regions",
        metadata,
        sa.Column("code", sa.String(8), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
    )
    sa.Table(
        "customers",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("tier", sa.String(20)),
        sa.Column("region", sa.String(8), sa.ForeignKey("regions.code")),
        sa.Column("credit_limit", sa.Numeric(12, 2)),
        sa.Column("score", sa.Float),
        sa.Column("vip", sa.Boolean),
        sa.Column("born", sa.Date),
        sa.Column("created_at", sa.DateTime(timezone=True)),
        sa.Column("profile", sa.JSON),
        sa.Column("opens_at", sa.Time),
        sa.Column("big", sa.BigInteger),
        sa.Column("Odd Name", sa.Text),
        sa.Column("a__b", sa.Text),
        sa.Column("email", sa.Text, unique=True),
        sa.UniqueConstraint("tier", "region"),
        sa.Index("ix_customers_score", "score", unique=True),
        sa.Index("ix_customers_odd", "Odd Name", unique=True),  # a column rules cannot name
    )
    sa.Table(
        "orders",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id")),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("total", sa.Numeric(12, 2)),
        sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    sa.Table(
        "lines",
        metadata,
        sa.Column("order_id", sa.Integer, primary_key=True),
        sa.Column("line_no", sa.Integer, primary_key=True),
        sa.Column("sku", sa.Text),
    )
    sa.Table(
        "line_notes",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("order_id", sa.Integer),
        sa.Column("line_no", sa.Integer),
        sa.ForeignKeyConstraint(["order_id", "line_no"], ["lines.order_id", "lines.line_no"]),
    )
    sa.Table("rule_engine_ledger", metadata, sa.Column("idempotency_key", sa.String(64), primary_key=True))
    return metadata


@pytest.fixture
def engine(any_db_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(any_db_url)
    _schema().create_all(engine)
    yield engine
    engine.dispose()


def test_reflects_types_keys_and_foreign_keys(engine: sa.Engine) -> None:
    notes: list[str] = []
    tables = reflect_tables(engine, ["customers", "orders", "regions"], notes=notes)
    customers = tables["customers"]
    types = {name: column.type for name, column in customers.columns.items()}
    assert types == {
        "id": "integer",
        "name": "text",
        "tier": "text",
        "region": "text",
        "credit_limit": "numeric",
        "score": "numeric",
        "vip": "boolean",
        "born": "date",
        "created_at": "timestamp",
        "profile": "json",
        "opens_at": "other",
        "big": "integer",
        "email": "text",
    }
    assert customers.unique_keys == [["email"], ["score"], ["tier", "region"]]
    assert customers.is_unique_key(["region", "tier"]) and customers.is_unique_key(["id"])
    assert not customers.is_unique_key(["tier"])
    assert customers.columns["id"] == Column(type="integer", nullable=False, primary_key=True)
    assert customers.columns["name"].nullable is False and customers.columns["tier"].nullable is True
    assert customers.foreign_keys == [
        ForeignKey(name="region_ref", column="region", references_table="regions", references_column="code")
    ]
    orders = tables["orders"]
    assert orders.primary_key == ["id"]
    assert orders.foreign_keys == [
        ForeignKey(
            name="customer", column="customer_id", references_table="customers", references_column="id"
        )
    ]
    assert orders.columns["deleted"] == Column(type="boolean", nullable=False)
    assert any("Odd Name" in note for note in notes) and any("a__b" in note for note in notes)
    # the reflection is a usable catalog: field paths walk the reflected foreign keys
    connection = Connection(tables=tables)
    assert resolve_field(connection, "orders", "customer__region_ref__name").column.type == "text"


@pytest.mark.postgres
def test_postgres_specific_types(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "CREATE TABLE things (id bigserial primary key, doc jsonb, tags text[], ref uuid, "
                    "amount double precision, price money, at timestamptz not null, day date, "
                    "label varchar(20), flag boolean, n smallint, d interval)"
                )
            )
        table = reflect_tables(engine, ["things"])["things"]
    finally:
        engine.dispose()
    assert {name: column.type for name, column in table.columns.items()} == {
        "id": "integer",
        "doc": "json",
        "tags": "other",
        "ref": "other",
        "amount": "numeric",
        "price": "other",
        "at": "timestamp",
        "day": "date",
        "label": "text",
        "flag": "boolean",
        "n": "integer",
        "d": "other",
    }
    assert table.columns["at"].nullable is False and table.primary_key == ["id"]


def test_all_tables_by_default_without_internal_ones_and_composite_keys_noted(engine: sa.Engine) -> None:
    notes: list[str] = []
    tables = reflect_tables(engine, None, notes=notes)
    assert sorted(tables) == ["customers", "line_notes", "lines", "orders", "regions"]
    assert tables["lines"].primary_key == ["order_id", "line_no"]
    assert tables["line_notes"].foreign_keys == []
    assert any("composite foreign key line_notes(order_id, line_no) -> lines skipped" in n for n in notes)


def test_unknown_table_is_an_error_naming_the_tables(engine: sa.Engine) -> None:
    with pytest.raises(ReflectionError, match=r"no table 'invoices'.*its tables: customers"):
        reflect_tables(engine, ["orders", "invoices"])


def test_fk_to_an_unsynced_table_is_noted(engine: sa.Engine) -> None:
    notes: list[str] = []
    reflect_tables(engine, ["orders"], notes=notes)
    assert any("refers to table 'customers', which is not synced" in note for note in notes)


@pytest.mark.parametrize(
    ("column", "hop"),
    [
        ("customer_id", "customer"),
        ("region", "region_ref"),
        ("id", "id_ref"),
        ("parent__id", "parent__id_ref"),
    ],
)
def test_foreign_key_names(column: str, hop: str) -> None:
    assert foreign_key_name(column) == hop


def test_catalog_type_falls_back_to_other() -> None:
    assert catalog_type(sa.Interval()) == "other"
    assert catalog_type(sa.types.NullType()) == "other"
    assert catalog_type(sa.Enum("a", "b")) == "text"
    assert catalog_type(sa.TIMESTAMP()) == "timestamp"


# -- merging -------------------------------------------------------------------------------------


def _demo() -> Catalog:
    return Catalog.model_validate(yaml.safe_load(DEMO_CATALOG.read_text()))


def test_merge_keeps_admin_choices_and_other_connections(engine: sa.Engine) -> None:
    current = _demo()
    current = current.model_copy(
        update={
            "connections": {
                **current.connections,
                "app_db": Connection(
                    tables={
                        **current.connections["app_db"].tables,
                        "customers": current.connections["app_db"]
                        .tables["customers"]
                        .model_copy(update={"writable": False}),
                    }
                ),
            }
        }
    )
    reflected = reflect_tables(engine, ["customers", "orders", "regions"])
    result = merge_connection(current, organization="acme", connection_id="app_db", tables=reflected)
    merged = result.catalog.connections["app_db"]
    assert merged.tables["orders"].soft_delete_column == "deleted"
    assert merged.tables["customers"].writable is False
    assert merged.tables["regions"].writable is True
    for other in ("warehouse", "crm_api", "smtp_default", "slack_oncall"):
        assert result.catalog.connections[other] == current.connections[other]
    changes = result.changes
    assert changes.changed and changes.tables_added == ["regions"] and changes.tables_removed == []
    orders_changes = changes.table_changes["orders"]
    assert "- column priority" in orders_changes and "- column note" in orders_changes
    assert "column status: text -> text, not null" in orders_changes
    assert "+ column vip (boolean)" in changes.table_changes["customers"]
    assert "orders: kept soft_delete_column 'deleted'" in changes.kept
    # merging the result again changes nothing
    again = merge_connection(result.catalog, organization="acme", connection_id="app_db", tables=reflected)
    assert not again.changes.changed and again.catalog == result.catalog


def test_merge_keeps_an_admin_chosen_hop_name() -> None:
    reflected = {
        "customers": Table(columns={"id": Column(type="integer", primary_key=True, nullable=False)}),
        "orders": Table(
            columns={"id": Column(type="integer", primary_key=True), "customer_id": Column(type="integer")},
            foreign_keys=[ForeignKey(name="customer", column="customer_id", references_table="customers")],
        ),
    }
    current = Catalog(
        organization="acme",
        connections={
            "app_db": Connection(
                tables={
                    **reflected,
                    "orders": reflected["orders"].model_copy(
                        update={
                            "foreign_keys": [
                                ForeignKey(name="buyer", column="customer_id", references_table="customers")
                            ]
                        }
                    ),
                }
            )
        },
    )
    result = merge_connection(current, organization="acme", connection_id="app_db", tables=reflected)
    assert [fk.name for fk in result.catalog.connections["app_db"].tables["orders"].foreign_keys] == ["buyer"]
    assert not result.changes.changed


def test_merge_drops_a_soft_delete_column_that_is_gone() -> None:
    columns = {"id": Column(type="integer", primary_key=True)}
    current = Catalog(
        organization="acme",
        connections={
            "app_db": Connection(
                tables={
                    "t": Table(columns={**columns, "gone": Column(type="boolean")}, soft_delete_column="gone")
                }
            )
        },
    )
    result = merge_connection(
        current, organization="acme", connection_id="app_db", tables={"t": Table(columns=columns)}
    )
    assert result.catalog.connections["app_db"].tables["t"].soft_delete_column is None
    assert any("soft_delete_column 'gone' dropped" in line for line in result.changes.kept)
    assert "soft_delete_column: gone -> None" in result.changes.table_changes["t"]


def test_merge_creates_a_catalog() -> None:
    tables = {"t": Table(columns={"id": Column(type="integer", primary_key=True)})}
    result = merge_connection(None, organization="newco", connection_id="app_db", tables=tables)
    assert result.changes.created_catalog and result.changes.tables_added == ["t"]
    assert result.catalog.organization == "newco" and result.catalog.connections["app_db"].kind == "database"
    assert result.changes.summary_lines(tables) == ["+ table t (1 column)"]


def test_organizations_using() -> None:
    demo = _demo()
    assert organizations_using({"acme": demo, "other": Catalog(organization="other")}, "app_db") == ["acme"]
