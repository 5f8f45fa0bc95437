"""Pushed events (``append_event``) on real SQLite and Postgres: one row per client id, the shape
trigger rows have, and the upgrade of an outbox created before client ids existed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from rule_compiler.definitions import Event
from rule_compiler.events import install, read_events
from rule_compiler.events.outbox_rows import (
    CLIENT_ID_INDEX,
    OUTBOX_TABLE,
    EventConflictError,
    append_event,
    ensure_outbox,
    event_key,
    get_event,
)

PAID = Event(
    table="orders",
    operation="updated",
    key={"id": 1},
    old={"id": 1, "status": "new", "total": 10},
    new={"id": 1, "status": "paid", "total": 10},
)


@pytest.fixture
def engine(any_db_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(any_db_url)
    yield engine
    engine.dispose()


def _append(engine: sa.Engine, event: Event, client_id: str) -> tuple[Event, bool]:
    with engine.begin() as conn:
        ensure_outbox(conn)
        return append_event(conn, event, client_id=client_id)


def test_an_event_is_stored_once_per_client_id_and_table(engine: sa.Engine) -> None:
    stored, created = _append(engine, PAID, "c-1")
    assert created and stored.id is not None
    assert stored.changed_fields == ["status"] and stored.occurred_at is not None
    again, created_again = _append(engine, PAID, "c-1")
    assert (again, created_again) == (stored, False)
    with pytest.raises(EventConflictError, match="'c-1' was already used"):
        _append(engine, PAID.model_copy(update={"operation": "deleted", "new": None}), "c-1")
    other_table, created_other = _append(engine, PAID.model_copy(update={"table": "customers"}), "c-1")
    assert created_other and other_table.id != stored.id
    with engine.connect() as conn:
        assert [e.id for e in read_events(conn, after_id=0)] == [stored.id, other_table.id]
        assert get_event(conn, int(str(stored.id))) == (stored, "c-1")
        assert get_event(conn, 10_000) is None


def test_pushed_and_captured_events_share_the_outbox(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT, total INTEGER)"))
    install(engine, "orders")  # the capture trigger writes rows without a client id
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO orders (id, status, total) VALUES (1, 'new', 10)"))
        conn.execute(sa.text("UPDATE orders SET status = 'paid' WHERE id = 1"))
    pushed, _ = _append(engine, PAID, "c-1")
    with engine.connect() as conn:
        _, captured_update, read_pushed = read_events(conn, after_id=0)
        assert get_event(conn, int(str(captured_update.id)))[1] is None  # type: ignore[index]
    assert read_pushed == pushed
    fields = ("table", "operation", "key", "old", "new", "changed_fields")
    assert {f: getattr(read_pushed, f) for f in fields} == {f: getattr(captured_update, f) for f in fields}


def test_ensure_outbox_upgrades_an_outbox_made_before_client_ids(engine: sa.Engine) -> None:
    old_shape = sa.Table(  # the outbox as the first release created it
        OUTBOX_TABLE,
        sa.MetaData(),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("table_name", sa.String(128), nullable=False),
        sa.Column("operation", sa.String(16), nullable=False),
        sa.Column("key_json", sa.JSON(), nullable=False),
        sa.Column("old_json", sa.JSON(), nullable=True),
        sa.Column("new_json", sa.JSON(), nullable=True),
        sa.Column("changed_json", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    with engine.begin() as conn:
        old_shape.create(conn)
        conn.execute(
            old_shape.insert().values(
                table_name="orders", operation="created", key_json={"id": 5}, created_at="2026-01-01"
            )
        )
    for _ in range(2):  # idempotent
        with engine.begin() as conn:
            ensure_outbox(conn)
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        assert "client_event_id" in {c["name"] for c in inspector.get_columns(OUTBOX_TABLE)}
        [index] = [i for i in inspector.get_indexes(OUTBOX_TABLE) if i["name"] == CLIENT_ID_INDEX]
        assert index["unique"] and index["column_names"] == ["table_name", "client_event_id"]
    stored, created = _append(engine, PAID, "c-1")
    assert created and int(str(stored.id)) > 1
    assert _append(engine, PAID, "c-1") == (stored, False)
    with engine.connect() as conn:
        assert [(e.key, e.operation) for e in read_events(conn, after_id=0)] == [
            ({"id": 5}, "created"),
            ({"id": 1}, "updated"),
        ]


def _wait_for_a_lock_wait(engine: sa.Engine) -> None:
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(300):
        with engine.connect() as probe:  # a new transaction each time: activity is snapshotted per one
            if probe.execute(query).scalar():
                return
        time.sleep(0.1)
    pytest.fail("the second push never waited for the first")


@pytest.mark.postgres
def test_a_concurrent_push_of_the_same_id_waits_and_answers_the_stored_event(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        ensure_outbox(conn)
    results: list[Any] = []
    with engine.connect() as first:
        first.begin()
        winner, _ = append_event(first, PAID, client_id="race")  # uncommitted: holds the unique key
        loser = threading.Thread(target=lambda: results.append(_append(engine, PAID, "race")))
        loser.start()
        _wait_for_a_lock_wait(engine)  # the second push blocks on the unique index ...
        assert loser.is_alive()
        first.commit()  # ... until the first commits; it then finds the stored event
    loser.join(timeout=30)
    assert results == [(winner, False)]
    engine.dispose()


@pytest.mark.parametrize(
    ("changes", "primary_key", "expected"),
    [
        ({"key": 1}, ["id"], {"id": 1}),
        ({"key": "A-7", "new": None, "old": None}, ["id"], {"id": "A-7"}),
        ({"key": None}, ["id"], {"id": 1}),
        ({"key": None, "new": None}, ["id"], {"id": 1}),  # from old
        ({"key": {"a": 1, "b": 2}, "new": None, "old": None}, ["a", "b"], {"a": 1, "b": 2}),
        ({"key": None, "new": {"a": 1, "b": 2, "x": 0}, "old": None}, ["b", "a"], {"b": 2, "a": 1}),
    ],
)
def test_event_key(changes: dict[str, Any], primary_key: list[str], expected: dict[str, Any]) -> None:
    assert event_key(PAID.model_copy(update=changes), primary_key) == expected


@pytest.mark.parametrize(
    ("changes", "primary_key", "message"),
    [
        ({"key": 7}, ["a", "b"], "one-column primary key"),
        ({"key": {"id": 1, "x": 2}}, ["id"], "must name the primary key"),
        ({"key": {"id": None}}, ["id"], "plain values"),
        ({"key": {"id": 2}}, ["id"], "does not match 'new'"),
        ({"key": None, "new": {"status": "x"}}, ["id"], "give 'key'"),
        ({"key": None}, [], "none in the catalog"),
    ],
)
def test_event_key_refuses(changes: dict[str, Any], primary_key: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        event_key(PAID.model_copy(update=changes), primary_key)
