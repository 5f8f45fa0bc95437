"""``reflect_table``: the live columns and their types, on Postgres (cursor description) and SQLite."""

from __future__ import annotations

import datetime as dt
import decimal

import pytest
import sqlalchemy as sa

from rule_compiler.runtime.record_effects import LEDGER_TABLE, ensure_ledger
from rule_compiler.runtime.rows import reflect_table

DDL = (
    'CREATE TABLE "Orders" (id INTEGER PRIMARY KEY, name TEXT NOT NULL, total NUMERIC(10, 2), '
    "paid BOOLEAN, placed_at TIMESTAMP, due DATE{extra})"
)


@pytest.mark.postgres
def test_postgres_columns_and_types_come_from_the_live_table(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text(DDL.format(extra=", placed_tz TIMESTAMPTZ, doc JSONB, ref UUID, tags TEXT[]")))
    with engine.begin() as conn:
        table = reflect_table(conn, "Orders")
        types = {column.name: type(column.type).__name__ for column in table.c}
        assert types == {
            "id": "Integer",
            "name": "Text",
            "total": "Numeric",
            "paid": "Boolean",
            "placed_at": "DateTime",
            "due": "Date",
            "placed_tz": "DateTime",
            "doc": "JSONB",
            "ref": "Uuid",
            "tags": "NullType",  # not mapped: binds and reads as the driver does
        }
        assert table.c.placed_tz.type.timezone is True  # type: ignore[attr-defined]
        conn.execute(
            table.insert().values(id=1, name="a", total="12.50", paid=True, doc={"k": [1]}, tags=["x"])
        )
        row = conn.execute(sa.select(table).where(table.c.id == 1)).one()
        assert row.total == decimal.Decimal("12.50") and row.doc == {"k": [1]} and row.tags == ["x"]
        with pytest.raises(sa.exc.NoSuchTableError):
            reflect_table(conn, "no_such_table")
        assert conn.execute(sa.text("SELECT 1")).scalar() == 1  # the transaction is still usable
    engine.dispose()


def test_sqlite_columns_and_types_come_from_the_inspector(tmp_path: object) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path}/app.db")
    with engine.begin() as conn:
        conn.execute(sa.text(DDL.format(extra="")))
        table = reflect_table(conn, "Orders")
        assert [column.name for column in table.c] == ["id", "name", "total", "paid", "placed_at", "due"]
        conn.execute(table.insert().values(id=1, name="a", placed_at=dt.datetime(2026, 1, 2, 3, 4)))
        assert conn.execute(sa.select(table.c.placed_at)).scalar() == dt.datetime(2026, 1, 2, 3, 4)
        with pytest.raises(sa.exc.NoSuchTableError):
            reflect_table(conn, "no_such_table")


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_ledger_is_created_once_and_again_is_harmless(
    backend: str, tmp_path: object, request: pytest.FixtureRequest
) -> None:
    url = f"sqlite:///{tmp_path}/app.db" if backend == "sqlite" else request.getfixturevalue("postgres_url")
    engine = sa.create_engine(url)
    ensure_ledger(engine)
    ensure_ledger(engine)
    assert sa.inspect(engine).has_table(LEDGER_TABLE)
    engine.dispose()
