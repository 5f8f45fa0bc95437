"""ADR 0008: a change none of a rule's listed fields saw, or an operation it does not listen to, never
becomes an asset event of that rule, so it never starts one of its runs.

The rules are compiled and rendered for real (the loader's DAGs); their assets' watchers hold the
triggers, which run inside Airflow's own ``SharedStreamManager`` in ack mode against a real Postgres
application database with change capture installed. What the triggerer adds around the manager —
persisting each asset event, then confirming it — is played by :class:`Triggerer` exactly where the
triggerer does it. A trigger that refuses an event moves its cursor past it (so the purge and the
lag check are not held back); a trigger whose cursor has passed an event can never emit it, which is
what makes "no event for that rule" an observation, not a wait.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from rule_compiler.events import install
from rule_compiler.events.outbox_rows import cursor_position
from rule_compiler.store import RuleStore
from tests.airflow.conftest import apply_rules, dagbag
from tests.conftest import ROOT

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]

NOTE_RULE = """\
kind: rule
name: review-order-notes
organization: acme
description: When an order's note changes, raise its priority for a review.
trigger: {type: event, connection: app_db, table: orders, events: [updated], fields: [note]}
actions:
  - id: review
    type: update_record
    connection: app_db
    table: orders
    values: {priority: review}
"""
NEW_RULE = """\
kind: rule
name: welcome-new-orders
organization: acme
description: A new order gets a note.
trigger: {type: event, connection: app_db, table: orders, events: [created]}
actions:
  - id: welcome
    type: update_record
    connection: app_db
    table: orders
    values: {note: welcome}
"""
NAMES = {
    "status": "rule__acme__expedite-vip-payments",  # updated, fields [status]
    "note": "rule__acme__review-order-notes",  # updated, fields [note]
    "created": "rule__acme__welcome-new-orders",  # created
}


def _rules(store: RuleStore, tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "review-order-notes.yaml").write_text(NOTE_RULE)
    (tmp_path / "welcome-new-orders.yaml").write_text(NEW_RULE)
    apply_rules(
        store,
        ROOT / "include" / "rules" / "expedite-vip-payments.yaml",
        tmp_path / "review-order-notes.yaml",
        tmp_path / "welcome-new-orders.yaml",
    )
    dags = dagbag().dags
    return {name: dags[dag_id] for name, dag_id in NAMES.items()}


def _asset(dag: Any) -> Any:
    (asset,) = dag.timetable.asset_condition.objects
    return asset


@dataclass
class Subscription:
    """One trigger subscribed to the manager, its asset events (persisted at once), and its cursor."""

    trigger: Any
    trigger_id: int
    events: list[list[int]] = field(default_factory=list)


class Triggerer:
    """The triggerer's part around ``SharedStreamManager``: run each trigger's filter, persist and
    confirm every asset event it yields (``bind_pending_event`` then ``confirm_persisted``)."""

    def __init__(self) -> None:
        from airflow.triggers.shared_stream import SharedStreamManager

        self.manager = SharedStreamManager(ack_timeout=30)
        self.tasks: list[asyncio.Task[None]] = []

    def run(self, subscription: Subscription) -> None:
        key = subscription.trigger.shared_stream_key()
        stream = self.manager.subscribe(
            trigger_id=subscription.trigger_id, trigger=subscription.trigger, key=key
        )

        async def consume() -> None:
            async for event in subscription.trigger.filter_shared_stream(stream):
                seq = self.manager.bind_pending_event(trigger_id=subscription.trigger_id, key=key)
                subscription.events.append([int(i) for i in event.payload["event_ids"]])
                if seq is not None:
                    self.manager.confirm_persisted([seq])

        self.tasks.append(asyncio.ensure_future(consume()))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await self.manager.stop_all()


def _change(engine: sa.Engine, sql: str) -> int:
    """One committed change of orders; the outbox id its capture trigger wrote."""
    with engine.begin() as conn:
        conn.execute(sa.text(sql))
        return int(
            conn.execute(
                sa.text("SELECT currval(pg_get_serial_sequence('rule_engine_outbox', 'id'))")
            ).scalar_one()
        )


def _cursor(engine: sa.Engine, consumer: str) -> int:
    with engine.connect() as conn:
        return cursor_position(conn, consumer)


async def _until(predicate: Any, what: str, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not reached in {timeout:.0f} s: {what}")
        await asyncio.sleep(0.05)


def test_rules_get_their_own_asset_and_watcher_and_equal_watches_share_them(
    store: RuleStore, app_db: sa.Engine, tmp_path: Path
) -> None:
    dags = _rules(store, tmp_path)
    assets = {name: _asset(dag) for name, dag in dags.items()}
    assert {name: asset.uri for name, asset in assets.items()} == {
        "status": "rule-engine://app_db/orders?events=updated&fields=status",
        "note": "rule-engine://app_db/orders?events=updated&fields=note",
        "created": "rule-engine://app_db/orders?events=created",
    }
    triggers = {name: asset.watchers[0].trigger for name, asset in assets.items()}
    assert len({t.shared_stream_key() for t in triggers.values()}) == 3  # one reader and cursor each
    assert triggers["status"].serialize()[1] | {"poll_interval": 0} == {
        "connection": "app_db",
        "table": "orders",
        "events": ["updated"],
        "fields": ["status"],
        "poll_interval": 0,
        "batch_size": 500,
    }
    # another rule with the same trigger schedules on the same asset and watcher: one trigger row in
    # Airflow, one poller, one cursor
    twin = tmp_path / "twin.yaml"
    twin.write_text(NOTE_RULE.replace("review-order-notes", "twin-of-expedite").replace("[note]", "[status]"))
    apply_rules(store, twin)
    same = _asset(dagbag().dags["rule__acme__twin-of-expedite"])
    assert (same.name, same.uri, same.watchers[0].name) == (
        assets["status"].name,
        assets["status"].uri,
        assets["status"].watchers[0].name,
    )
    assert same.watchers[0].trigger.serialize() == triggers["status"].serialize()


@pytest.mark.postgres
def test_a_change_of_an_unlisted_field_or_operation_gives_that_rule_no_asset_event(
    store: RuleStore, pg_app_db: sa.Engine, tmp_path: Path
) -> None:
    install(pg_app_db, "orders")
    dags = _rules(store, tmp_path)
    watched = {name: _asset(dag).watchers[0].trigger for name, dag in dags.items()}
    for trigger in watched.values():
        trigger.poll_interval = 0.2
    subscriptions = {
        name: Subscription(trigger, number) for number, (name, trigger) in enumerate(watched.items(), 1)
    }
    consumers = {name: trigger.watch.consumer for name, trigger in watched.items()}

    async def scenario() -> None:
        triggerer = Triggerer()
        for subscription in subscriptions.values():
            triggerer.run(subscription)
        await _until(
            lambda: all(_has_cursor(pg_app_db, c) for c in consumers.values()), "every trigger started"
        )

        async def change(sql: str, takers: set[str]) -> int:
            """Commit one change; wait until the takers got it and every other trigger passed it."""
            event_id = await asyncio.to_thread(_change, pg_app_db, sql)
            for name in takers:
                await _until(
                    lambda n=name: any(event_id in ids for ids in subscriptions[n].events), f"{name} got it"
                )
            for name in set(subscriptions) - takers:
                await _until(lambda n=name: _cursor(pg_app_db, consumers[n]) >= event_id, f"{name} passed it")
            return event_id

        noted = await change("UPDATE orders SET note = 'filter-test' WHERE id = 1", {"note"})
        paid = await change("UPDATE orders SET status = 'filter-test' WHERE id = 2", {"status"})
        both = await change(
            "UPDATE orders SET status = 'filter-test', note = 'filter-test' WHERE id = 3", {"status", "note"}
        )
        created = await change(
            "INSERT INTO orders (customer_id, status, total, priority) VALUES (1, 'pending', 10, 'normal')",
            {"created"},
        )
        await triggerer.stop()
        received = {name: sorted(i for ids in s.events for i in ids) for name, s in subscriptions.items()}
        assert received == {"status": [paid, both], "note": [noted, both], "created": [created]}

    asyncio.run(scenario())
    # each trigger's cursor passed every event, taken or refused: nothing is held back
    assert {name: _cursor(pg_app_db, c) for name, c in consumers.items()} == dict.fromkeys(
        consumers, _newest(pg_app_db)
    )


def _has_cursor(engine: sa.Engine, consumer: str) -> bool:
    from rule_compiler.events.reader import has_cursor

    with engine.connect() as conn:
        return has_cursor(conn, consumer)


def _newest(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT MAX(id) FROM rule_engine_outbox")).scalar_one())
