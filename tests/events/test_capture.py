"""Change capture on real databases: row triggers write the outbox in the changing transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from rule_compiler.events import CaptureError, install, read_events, status, uninstall
from rule_compiler.events.outbox_rows import (
    OUTBOX_TABLE,
    advance_cursor,
    cursor_position,
    ensure_outbox,
    purge_consumed,
)


@pytest.fixture
def engine(any_db_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(any_db_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT, total NUMERIC(12, 2), note TEXT)"
            )
        )
        conn.execute(sa.text("CREATE TABLE no_key (a INTEGER)"))
    yield engine
    engine.dispose()


def _run(engine: sa.Engine, *statements: str) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))


def _events(engine: sa.Engine, after_id: int = 0) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return [e.model_dump(exclude_none=True) for e in read_events(conn, after_id=after_id)]


def test_insert_update_delete_become_events_with_key_rows_and_changed_columns(engine: sa.Engine) -> None:
    assert install(engine, "orders").up_to_date
    _run(
        engine,
        "INSERT INTO orders (id, status, total) VALUES (1, 'new', 10)",
        "UPDATE orders SET status = 'paid' WHERE id = 1",
        "UPDATE orders SET status = 'paid' WHERE id = 1",  # changes nothing: no event
        "DELETE FROM orders WHERE id = 1",
    )
    events = _events(engine)
    assert [(e["operation"], e["key"]) for e in events] == [
        ("created", {"id": 1}),
        ("updated", {"id": 1}),
        ("deleted", {"id": 1}),
    ]
    created, updated, deleted = events
    assert created["new"] == {"id": 1, "status": "new", "total": 10, "note": None}
    assert "old" not in created and "changed_fields" not in created
    assert updated["old"]["status"] == "new" and updated["new"]["status"] == "paid"  # type: ignore[index]
    assert updated["changed_fields"] == ["status"]
    assert deleted["old"]["status"] == "paid" and "new" not in deleted  # type: ignore[index]
    assert all(e["table"] == "orders" and getattr(e["occurred_at"], "tzinfo", None) for e in events)
    ids = [int(str(e["id"])) for e in events]
    assert ids == sorted(ids)
    assert [e["operation"] for e in _events(engine, after_id=ids[0])] == ["updated", "deleted"]


def test_a_rolled_back_change_leaves_no_event(engine: sa.Engine) -> None:
    install(engine, "orders")
    with pytest.raises(RuntimeError), engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO orders (id, status) VALUES (2, 'new')"))
        raise RuntimeError("the application's transaction fails")
    assert _events(engine) == []


def test_install_is_idempotent_and_uninstall_stops_capture_but_keeps_events(engine: sa.Engine) -> None:
    install(engine, "orders")
    install(engine, "orders")
    _run(engine, "INSERT INTO orders (id, status) VALUES (3, 'new')")
    assert len(_events(engine)) == 1  # one set of triggers, not two
    assert [s.table for s in status(engine)] == ["orders"]
    assert uninstall(engine, "orders") is True
    assert uninstall(engine, "orders") is False
    _run(engine, "UPDATE orders SET status = 'paid' WHERE id = 3")
    assert len(_events(engine)) == 1
    assert status(engine) == [] and status(engine, ["orders"])[0].installed is False


def test_sqlite_triggers_report_new_columns_until_reinstalled(sqlite_url: str) -> None:
    engine = sa.create_engine(sqlite_url)
    _run(engine, "CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT)")
    install(engine, "orders")
    _run(engine, "ALTER TABLE orders ADD COLUMN priority TEXT")
    stale = status(engine, ["orders"])[0]
    assert stale.installed and stale.stale_columns == ["priority"] and not stale.up_to_date
    assert install(engine, "orders").up_to_date
    _run(engine, "INSERT INTO orders (id, status, priority) VALUES (1, 'new', 'high')")
    assert _events(engine)[0]["new"] == {"id": 1, "status": "new", "priority": "high"}
    engine.dispose()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("missing", "does not exist"),
        ("no_key", "no primary key"),
        ("orders; DROP TABLE orders", "not a plain table"),
        (OUTBOX_TABLE, "outbox itself"),
    ],
)
def test_bad_tables_are_refused_with_a_reason(engine: sa.Engine, table: str, message: str) -> None:
    with pytest.raises(CaptureError, match=message):
        install(engine, table)
    with engine.connect() as conn:
        assert sa.inspect(conn).has_table("orders")


@pytest.mark.postgres
def test_postgres_notifies_listeners_with_table_and_event_id(postgres_url: str) -> None:
    import psycopg

    engine = sa.create_engine(postgres_url)
    _run(engine, "CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT)")
    install(engine, "orders")
    dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("LISTEN rule_engine_outbox")
        _run(engine, "INSERT INTO orders VALUES (7, 'new')")
        notice = next(listener.notifies(timeout=10, stop_after=1))
    event_id = _events(engine)[0]["id"]
    assert notice.payload == f"orders:{event_id}"
    engine.dispose()


def test_cursor_moves_only_forward_per_consumer(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        ensure_outbox(conn)
        assert cursor_position(conn, "orders-watcher") == 0
        assert advance_cursor(conn, "orders-watcher", 5) == 5
        assert advance_cursor(conn, "orders-watcher", 3) == 5  # a late, stale ack never moves it back
        assert advance_cursor(conn, "other", 2) == 2
        assert cursor_position(conn, "orders-watcher") == 5


def test_purge_drops_only_old_events_every_consumer_has_passed(engine: sa.Engine) -> None:
    install(engine, "orders")
    _run(engine, *(f"INSERT INTO orders (id, status) VALUES ({n}, 'new')" for n in range(1, 5)))
    ids = [int(str(e["id"])) for e in _events(engine)]
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    with engine.begin() as conn:
        assert purge_consumed(conn, older_than=future, consumers=[]) == 0
        advance_cursor(conn, "a", ids[2])
        advance_cursor(conn, "b", ids[1])
        assert (
            purge_consumed(conn, older_than=dt.datetime(2000, 1, 1, tzinfo=dt.UTC), consumers=["a", "b"]) == 0
        )
        assert purge_consumed(conn, older_than=future, consumers=["a", "b"]) == 2  # b has read two
    assert [int(str(e["id"])) for e in _events(engine)] == ids[2:]
