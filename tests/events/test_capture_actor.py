"""Who made a captured change (ADR 0013), on a real Postgres application database: the capture trigger
records the ``automation.actor`` setting of the changing transaction; SQLite records none; and an
outbox installed before actors existed keeps working, then gains them from ``events install``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from rule_compiler.events import install, read_events
from rule_compiler.events.capture import FUNCTION_NAME
from rule_compiler.events.outbox_rows import OUTBOX_TABLE

#: The trigger function as installed before ADR 0013: no actor column, no actor read.
_OLD_FUNCTION_BODY = f"""
CREATE OR REPLACE FUNCTION {FUNCTION_NAME}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_row jsonb := CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN to_jsonb(OLD) END;
    new_row jsonb := CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN to_jsonb(NEW) END;
BEGIN
    INSERT INTO {OUTBOX_TABLE} (table_name, operation, key_json, old_json, new_json, changed_json, created_at)
    VALUES (TG_TABLE_NAME,
            CASE TG_OP WHEN 'INSERT' THEN 'created' WHEN 'UPDATE' THEN 'updated' ELSE 'deleted' END,
            jsonb_build_object('id', COALESCE(new_row, old_row) -> 'id'), old_row, new_row, NULL, now());
    RETURN NULL;
END
$$
"""


def _with_orders(url: str) -> sa.Engine:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT)"))
    return engine


@pytest.fixture
def engine(any_db_url: str) -> Iterator[sa.Engine]:
    engine = _with_orders(any_db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[sa.Engine]:
    engine = _with_orders(postgres_url)
    yield engine
    engine.dispose()


def _actors(engine: sa.Engine) -> list[tuple[str, object]]:
    with engine.connect() as conn:
        return [(e.operation, e.actor) for e in read_events(conn, after_id=0)]


def test_the_changing_transactions_actor_is_recorded_on_postgres_only(engine: sa.Engine) -> None:
    install(engine, "orders")
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        if postgres:
            conn.execute(sa.text("SET LOCAL automation.actor = 'alice'"))
        conn.execute(sa.text("INSERT INTO orders (id, status) VALUES (1, 'new')"))
    with engine.begin() as conn:  # another transaction, no actor: SET LOCAL ended with the last one
        conn.execute(sa.text("UPDATE orders SET status = 'paid' WHERE id = 1"))
    with engine.begin() as conn:
        if postgres:
            conn.execute(sa.text("SELECT set_config('automation.actor', :who, true)"), {"who": "bob"})
        conn.execute(sa.text("DELETE FROM orders WHERE id = 1"))
    expected = [("created", "alice"), ("updated", None), ("deleted", "bob")]
    assert _actors(engine) == (expected if postgres else [(op, None) for op, _ in expected])


def test_an_outbox_from_before_actors_is_read_then_upgraded_by_install(pg_engine: sa.Engine) -> None:
    engine = pg_engine  # SQLite triggers never record an actor: only Postgres has something to upgrade
    install(engine, "orders")
    with engine.begin() as conn:  # as it was installed before ADR 0013
        conn.execute(sa.text(f"ALTER TABLE {OUTBOX_TABLE} DROP COLUMN actor"))
        conn.execute(sa.text(_OLD_FUNCTION_BODY))
    with engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL automation.actor = 'alice'"))
        conn.execute(sa.text("INSERT INTO orders (id, status) VALUES (1, 'new')"))
    assert _actors(engine) == [("created", None)]  # read without the column, nothing breaks

    assert install(engine, "orders").up_to_date  # the upgrade: the column, and the function replaced
    with engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL automation.actor = 'carol'"))
        conn.execute(sa.text("UPDATE orders SET status = 'paid' WHERE id = 1"))
    assert _actors(engine) == [("created", None), ("updated", "carol")]
    assert install(engine, "orders").up_to_date  # idempotent
