"""The outbox reader: batches after a durable cursor, never past an id that may still commit."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from rule_compiler.events import install
from rule_compiler.events.outbox_rows import cursor_position
from rule_compiler.events.reader import OutboxReader, consumer_name, events_by_ids


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


def _insert(engine: sa.Engine, table: str, *ids: int) -> None:
    with engine.begin() as conn:
        for row_id in ids:
            conn.execute(sa.text(f"INSERT INTO {table} (id, status) VALUES (:i, 'new')"), {"i": row_id})


def _insert_customers(engine: sa.Engine, *ids: int) -> None:
    with engine.begin() as conn:
        for row_id in ids:
            conn.execute(sa.text("INSERT INTO customers (id, name) VALUES (:i, 'c')"), {"i": row_id})


def _batch_once_no_transaction_can_fill_the_gap(reader: OutboxReader, engine: sa.Engine) -> Any:
    """The next batch, polled: the gap rule waits for the cluster-wide snapshot ``xmin``, which any
    other open transaction on the server (another test worker's) holds back for a moment."""
    deadline = time.monotonic() + 60
    while (batch := reader.next_batch(engine)) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    return batch


def _keys(engine: sa.Engine, ids: tuple[int, ...]) -> list[object]:
    with engine.connect() as conn:
        return [event.key for event in events_by_ids(conn, list(ids))]


def test_batches_hold_only_the_watched_tables_events_in_order(engine: sa.Engine) -> None:
    _insert(engine, "orders", 1, 2)
    _insert_customers(engine, 7)
    _insert(engine, "orders", 3)
    reader = OutboxReader("orders", batch_size=2)
    first = reader.next_batch(engine)
    assert first is not None and _keys(engine, first.event_ids) == [{"id": 1}, {"id": 2}]
    second = reader.next_batch(engine)  # the customer's event is read past, not handed on
    assert second is not None and _keys(engine, second.event_ids) == [{"id": 3}]
    assert second.through == second.event_ids[-1]
    assert reader.next_batch(engine) is None
    payload = second.payload("app_db")
    assert payload == {
        "connection": "app_db",
        "table": "orders",
        "event_ids": [str(second.event_ids[0])],
        "first_id": second.event_ids[0],
        "last_id": second.event_ids[0],
    }


def test_a_restart_resumes_from_the_durable_cursor_not_the_memory(engine: sa.Engine) -> None:
    _insert(engine, "orders", 1, 2, 3)
    reader = OutboxReader("orders", batch_size=2)
    first = reader.next_batch(engine)
    assert first is not None
    reader.commit(engine, first.through)
    unconfirmed = reader.next_batch(engine)  # read, never committed: a crash now loses nothing
    assert unconfirmed is not None
    restarted = OutboxReader("orders", batch_size=10)
    again = restarted.next_batch(engine)
    assert again is not None and again.event_ids == unconfirmed.event_ids
    with engine.connect() as conn:
        assert cursor_position(conn, consumer_name("orders")) == first.through


def test_the_cursor_never_moves_back(engine: sa.Engine) -> None:
    _insert(engine, "orders", 1, 2)
    reader = OutboxReader("orders")
    batch = reader.next_batch(engine)
    assert batch is not None
    assert reader.commit(engine, batch.through) == batch.through
    assert reader.commit(engine, 1) == batch.through


@pytest.mark.postgres
def test_postgres_an_uncommitted_lower_id_holds_the_batch_back_until_it_commits(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT)"))
    install(engine, "orders")
    slow = engine.connect()
    slow_tx = slow.begin()
    slow.execute(sa.text("INSERT INTO orders (id, status) VALUES (1, 'slow')"))  # takes outbox id 1
    _insert(engine, "orders", 2)  # outbox id 2, committed first
    reader = OutboxReader("orders")
    assert reader.next_batch(engine) is None  # id 1 may still commit: nothing past it
    assert reader.next_batch(engine) is None
    slow_tx.commit()
    slow.close()
    batch = reader.next_batch(engine)
    assert batch is not None and _keys(engine, batch.event_ids) == [{"id": 1}, {"id": 2}]
    engine.dispose()


@pytest.mark.postgres
def test_postgres_a_rolled_back_id_is_skipped_once_no_transaction_can_fill_it(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT)"))
    install(engine, "orders")
    doomed = engine.connect()
    doomed_tx = doomed.begin()
    doomed.execute(sa.text("INSERT INTO orders (id, status) VALUES (1, 'doomed')"))
    _insert(engine, "orders", 2)
    reader = OutboxReader("orders")
    assert reader.next_batch(engine) is None
    doomed_tx.rollback()
    doomed.close()
    batch = _batch_once_no_transaction_can_fill_the_gap(reader, engine)
    assert batch is not None and _keys(engine, batch.event_ids) == [{"id": 2}]
    engine.dispose()


def test_sqlite_ids_are_never_reused_after_a_purge(tmp_path: object) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path}/app.db")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT)"))
    install(engine, "orders")
    _insert(engine, "orders", 1)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM rule_engine_outbox"))
    _insert(engine, "orders", 2)
    with engine.connect() as conn:
        ids = [row[0] for row in conn.execute(sa.text("SELECT id FROM rule_engine_outbox"))]
    assert ids == [2]  # not 1 again: a cursor at 1 would have skipped it
