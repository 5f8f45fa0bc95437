"""The event trigger inside Airflow's own shared-stream manager (ack mode), on a real SQLite app DB.

The manager is the triggerer's (``airflow.triggers.shared_stream.SharedStreamManager``); what the
triggerer adds around it — persisting the asset event, then reporting it — is played by the test:
``confirm_persisted`` is called exactly where the triggerer calls it after the metadata DB write.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from airflow.triggers.shared_stream import SharedStreamManager
from rule_engine.triggers.outbox import OutboxEventTrigger

from rule_compiler.events import install
from rule_compiler.events.outbox_rows import cursor_position
from rule_compiler.events.reader import consumer_name


def _cursor(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return cursor_position(conn, consumer_name("orders"))


def _new_orders(engine: sa.Engine, *ids: int) -> None:
    with engine.begin() as conn:
        for row_id in ids:
            conn.execute(
                sa.text(
                    "INSERT INTO orders (id, customer_id, status, total, created_at, updated_at) "
                    "VALUES (:i, 1, 'pending', 10, '2026-01-01', '2026-01-01')"
                ),
                {"i": row_id},
            )


async def _next(stream: Any, timeout: float = 10.0) -> Any:
    return await asyncio.wait_for(stream.__anext__(), timeout)


async def _wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def test_the_cursor_moves_only_after_airflow_confirms_the_asset_event(app_db: sa.Engine) -> None:
    install(app_db, "orders")

    async def scenario() -> None:
        manager = SharedStreamManager(ack_timeout=30)
        trigger = OutboxEventTrigger(connection="app_db", table="orders", poll_interval=0.1)
        key = trigger.shared_stream_key()
        events = trigger.filter_shared_stream(manager.subscribe(trigger_id=1, trigger=trigger, key=key))
        _new_orders(app_db, 9001, 9002)
        first = await _next(events)
        assert first.payload["table"] == "orders" and len(first.payload["event_ids"]) == 2
        assert set(first.payload) == {"connection", "table", "event_ids", "first_id", "last_id"}
        seq = manager.bind_pending_event(trigger_id=1, key=key)
        assert seq is not None  # ack mode: the event waits for its persist confirmation
        _new_orders(app_db, 9003)
        second_task = asyncio.ensure_future(_next(events))  # moves past the first batch
        second = await second_task
        await asyncio.sleep(0.3)
        assert _cursor(app_db) == 0  # not persisted yet: a crash now would redeliver both batches
        manager.confirm_persisted([seq])
        await _wait_for(lambda: _cursor(app_db) == first.payload["last_id"])
        assert second.payload["first_id"] > first.payload["last_id"]
        await manager.unsubscribe(1, key)
        await manager.stop_all()

    asyncio.run(scenario())


def test_two_rules_on_one_table_share_one_poller(app_db: sa.Engine) -> None:
    """Identical watchers are one trigger row in Airflow; even different poll settings share a stream."""
    a = OutboxEventTrigger(connection="app_db", table="orders")
    b = OutboxEventTrigger(connection="app_db", table="orders", poll_interval=5)
    assert a.serialize() == OutboxEventTrigger(connection="app_db", table="orders").serialize()
    assert a.shared_stream_key() == b.shared_stream_key()
    assert (
        a.shared_stream_key()
        != OutboxEventTrigger(connection="app_db", table="customers").shared_stream_key()
    )


def test_an_unconfirmed_event_is_redelivered_after_a_restart(app_db: sa.Engine) -> None:
    install(app_db, "orders")

    async def first_life() -> list[str]:
        manager = SharedStreamManager(ack_timeout=30)
        trigger = OutboxEventTrigger(connection="app_db", table="orders", poll_interval=0.1)
        key = trigger.shared_stream_key()
        events = trigger.filter_shared_stream(manager.subscribe(trigger_id=1, trigger=trigger, key=key))
        _new_orders(app_db, 9101)
        event = await _next(events)
        manager.bind_pending_event(trigger_id=1, key=key)
        await manager.stop_all()  # the triggerer dies before Airflow stored the asset event
        return list(event.payload["event_ids"])

    async def second_life() -> list[str]:
        manager = SharedStreamManager(ack_timeout=30)
        trigger = OutboxEventTrigger(connection="app_db", table="orders", poll_interval=0.1)
        key = trigger.shared_stream_key()
        events = trigger.filter_shared_stream(manager.subscribe(trigger_id=2, trigger=trigger, key=key))
        event = await _next(events)
        await manager.stop_all()
        return list(event.payload["event_ids"])

    lost = asyncio.run(first_life())
    assert _cursor(app_db) == 0
    assert asyncio.run(second_life()) == lost


@pytest.mark.postgres
def test_postgres_listen_notify_wakes_the_trigger_before_its_poll_interval(
    pg_app_db: sa.Engine,
) -> None:
    install(pg_app_db, "orders")

    async def scenario() -> None:
        manager = SharedStreamManager(ack_timeout=30)
        # an hour between polls: an event that arrives at all was delivered by the NOTIFY wake-up
        trigger = OutboxEventTrigger(connection="app_db", table="orders", poll_interval=3600)
        key = trigger.shared_stream_key()
        events = trigger.filter_shared_stream(manager.subscribe(trigger_id=1, trigger=trigger, key=key))
        pending = asyncio.ensure_future(_next(events, timeout=60))
        await asyncio.sleep(1.0)  # the producer has read the empty outbox and waits on LISTEN
        await asyncio.to_thread(_new_orders, pg_app_db, 9201)
        event = await pending
        assert event.payload["table"] == "orders" and len(event.payload["event_ids"]) == 1
        await manager.stop_all()

    asyncio.run(scenario())
