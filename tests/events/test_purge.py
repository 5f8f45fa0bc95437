"""Outbox retention on real SQLite and Postgres: ``purge_table`` deletes only events that the table's
consumer passed and that are old; ``purge_connection`` keeps unwatched tables' events and counts them."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from rule_compiler.events import install
from rule_compiler.events.outbox_rows import OUTBOX_TABLE, advance_cursor, ensure_outbox, outbox, purge_table
from rule_compiler.events.reader import consumer_name
from rule_compiler.events.retention import (
    RETENTION_ENV,
    outbox_retention,
    purge_connection,
    watched_tables,
)
from rule_compiler.store.models import SpecRow

NOW = dt.datetime.now(dt.UTC)
OLD = NOW - dt.timedelta(days=10)
CUTOFF = NOW - dt.timedelta(days=7)


@pytest.fixture
def engine(any_db_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(any_db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT)"))
        conn.execute(sa.text("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)"))
    install(engine, "orders")
    install(engine, "customers")
    yield engine
    engine.dispose()


def _write(engine: sa.Engine, *statements: str) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))


def _age(engine: sa.Engine, ids: list[int], when: dt.datetime) -> None:
    """Backdate events (the triggers stamp them with now)."""
    with engine.begin() as conn:
        value: object = when
        if conn.dialect.name == "sqlite":
            value = when.astimezone(dt.UTC).isoformat(timespec="milliseconds")
        conn.execute(outbox.update().where(outbox.c.id.in_(ids)).values(created_at=value))


def _ids(engine: sa.Engine) -> dict[int, str]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(outbox.c.id, outbox.c.table_name).order_by(outbox.c.id)).all())


def _seed(engine: sa.Engine) -> dict[int, str]:
    """Orders 1-4 and customers 1-2, interleaved; every event but the last order's is old."""
    _write(
        engine,
        "INSERT INTO orders (id, status) VALUES (1, 'new')",
        "INSERT INTO customers (id, name) VALUES (1, 'Ada')",
        "UPDATE orders SET status = 'paid' WHERE id = 1",
        "INSERT INTO orders (id, status) VALUES (2, 'new')",
        "INSERT INTO customers (id, name) VALUES (2, 'Bo')",
        "INSERT INTO orders (id, status) VALUES (3, 'new')",
    )
    events = _ids(engine)
    _age(engine, list(events)[:-1], OLD)
    return events


def _purge(engine: sa.Engine, table: str = "orders") -> int:
    with engine.begin() as conn:
        return purge_table(conn, table=table, consumer=consumer_name(table), older_than=CUTOFF)


def test_only_passed_and_old_events_of_the_table_go(engine: sa.Engine) -> None:
    events = _seed(engine)
    orders = [i for i, t in events.items() if t == "orders"]
    assert len(orders) == 4
    assert _purge(engine) == 0  # cursor 0: nothing was handed on yet, nothing goes
    assert _ids(engine) == events

    passed = orders[2]  # the consumer handed on orders' first three events
    with engine.begin() as conn:
        advance_cursor(conn, consumer_name("orders"), passed)
    assert _purge(engine) == 3
    left = _ids(engine)
    assert [i for i, t in left.items() if t == "orders"] == [orders[3]]  # not passed yet
    assert [i for i, t in left.items() if t == "customers"] == [
        i for i, t in events.items() if t == "customers"
    ]  # another table's events below the cursor stay


def test_passed_but_recent_events_stay(engine: sa.Engine) -> None:
    events = _seed(engine)
    last = max(events)
    with engine.begin() as conn:
        advance_cursor(conn, consumer_name("orders"), last)
    _age(engine, [last], NOW - dt.timedelta(days=6, hours=23))  # inside the retention
    assert _purge(engine) == 3
    assert last in _ids(engine)
    assert _purge(engine) == 0  # again: nothing more


def test_purge_connection_purges_watched_tables_and_counts_the_others(engine: sa.Engine) -> None:
    events = _seed(engine)
    with engine.begin() as conn:
        advance_cursor(conn, consumer_name("orders"), max(events))
        advance_cursor(conn, consumer_name("customers"), max(events))  # a cursor left from an old rule
    result = purge_connection(engine, ["orders"], older_than=CUTOFF)
    assert result.purged == {"orders": 3}
    assert result.kept_unwatched == {"customers": 2}
    assert sorted(_ids(engine).values()) == ["customers", "customers", "orders"]


def test_purge_connection_without_outbox_or_cursors(any_db_url: str) -> None:
    engine = sa.create_engine(any_db_url)
    try:
        result = purge_connection(engine, ["orders"], older_than=CUTOFF)
        assert not result.has_outbox and result.purged == {}
        with engine.begin() as conn:
            ensure_outbox(conn)
            conn.execute(
                outbox.insert().values(
                    table_name="orders", operation="created", key_json={"id": 1}, created_at=_stamp(conn, OLD)
                )
            )
            conn.execute(sa.text("DROP TABLE rule_engine_outbox_cursors"))
        result = purge_connection(engine, ["orders"], older_than=CUTOFF)
        assert result.has_outbox and result.purged == {"orders": 0}
    finally:
        engine.dispose()


def _stamp(conn: sa.Connection, when: dt.datetime) -> object:
    return (
        when.astimezone(dt.UTC).isoformat(timespec="milliseconds") if conn.dialect.name == "sqlite" else when
    )


def test_sqlite_outbox_without_autoincrement_keeps_its_newest_event(tmp_path: object) -> None:
    """An outbox created before AUTOINCREMENT would reuse a purged top id below the cursor."""
    engine = sa.create_engine(f"sqlite:///{tmp_path}/legacy.db")
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    f"CREATE TABLE {OUTBOX_TABLE} (id INTEGER PRIMARY KEY, table_name VARCHAR(128) NOT NULL, "
                    "operation VARCHAR(16) NOT NULL, key_json JSON NOT NULL, old_json JSON, new_json JSON, "
                    "changed_json JSON, created_at VARCHAR(32) NOT NULL)"
                )
            )
            ensure_outbox(conn)
            for key in (1, 2, 3):
                conn.execute(
                    outbox.insert().values(
                        table_name="orders",
                        operation="created",
                        key_json={"id": key},
                        created_at=_stamp(conn, OLD),
                    )
                )
            advance_cursor(conn, consumer_name("orders"), 3)
        assert _purge(engine) == 2
        assert list(_ids(engine)) == [3]
    finally:
        engine.dispose()


def test_watched_tables_are_those_of_active_event_rules() -> None:
    def spec(dag_id: str, schedule: dict[str, object], active: bool = True) -> SpecRow:
        return SpecRow(dag_id, json.dumps({"schedule": schedule}), "h", active)

    rows = [
        spec("a", {"kind": "event", "connection": "app_db", "table": "orders"}),
        spec("b", {"kind": "event", "connection": "app_db", "table": "orders"}),
        spec("c", {"kind": "event", "connection": "app_db", "table": "customers"}, active=False),
        spec("d", {"kind": "event", "connection": "other_db", "table": "invoices"}),
        spec("e", {"kind": "cron", "cron": "0 * * * *"}),
        spec("f", {"kind": "data", "connection": "app_db"}),
        SpecRow("g", "not json", "h", True),
    ]
    assert watched_tables(rows) == {"app_db": {"orders"}, "other_db": {"invoices"}}


def test_retention_setting() -> None:
    assert outbox_retention({}) == dt.timedelta(days=7)
    assert outbox_retention({RETENTION_ENV: "36h"}) == dt.timedelta(hours=36)
    with pytest.raises(ValueError, match=RETENTION_ENV):
        outbox_retention({RETENTION_ENV: "a week"})


def test_an_event_stays_until_every_active_rule_on_its_table_has_taken_it(engine: sa.Engine) -> None:
    from rule_compiler.events.reader import rule_consumer_name

    _write(engine, *(f"INSERT INTO orders (id, status) VALUES ({i}, 'new')" for i in range(1, 5)))
    ids = sorted(_ids(engine))
    _age(engine, ids, OLD)
    with engine.begin() as conn:
        advance_cursor(conn, consumer_name("orders"), ids[-1])  # the trigger handed all on
        advance_cursor(conn, rule_consumer_name("orders", "rule__acme__slow"), ids[1])  # a rule took two
    result = purge_connection(engine, ["orders"], older_than=CUTOFF, rules={"orders": ["rule__acme__slow"]})
    assert result.purged == {"orders": 2}
    assert sorted(_ids(engine)) == ids[2:]
