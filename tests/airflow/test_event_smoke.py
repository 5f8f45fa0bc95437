"""Event rules end to end: row changes on a real Postgres application database, a real scheduler and
triggerer (``airflow standalone``), the effects back in the application database.

Cost: a few minutes on this 2-core machine (standalone start, the trigger's start after the first
parse, then the runs of three rules; each task is a process of its own), so it is marked ``slow``.

Three event rules watch ``orders``, each with its own watch (ADR 0008): ``expedite-vip-payments``
(``include/rules``: updates that change ``status``), one that notes the total of a new order
(``created``), and one whose conditions never hold (``created`` and ``updated``). About 50 changes are
committed one by one once the outbox triggers run; the test waits (with deadlines) until the system is
quiet and checks the changed rows and their payload-derived values, the automation log, the ledger
(one entry per event and action), that every run was started only by events its rule listens to
(the runs' asset events, over REST), the never-matching rule's action task instances (``skipped``) and
its runs' notes (``no match: ...``, over REST), and each trigger's durable cursor. Timings are printed
(``-s`` shows them).
"""

from __future__ import annotations

import collections
import decimal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import sqlalchemy as sa
import yaml

from rule_compiler.events import install
from rule_compiler.events.outbox_rows import cursor_position
from rule_compiler.events.watch import Watch
from rule_compiler.runtime.record_effects import LEDGER_TABLE
from rule_compiler.store import RuleStore
from tests.airflow.conftest import DEMO_NOW, apply_rules
from tests.conftest import DEMO_CATALOG, ROOT
from tests.demo_db import demo_db_module
from tests.standalone import (
    Standalone,
    connection_env,
    dags_idle,
    dags_unpaused,
    outbox_trigger_listening,
    pages,
    query_rows,
    run_standalone,
)

pytestmark = [pytest.mark.slow, pytest.mark.airflow, pytest.mark.postgres]

EXPEDITE = ROOT / "include" / "rules" / "expedite-vip-payments.yaml"
NOTE_NEW = """\
kind: rule
name: note-new-orders
organization: acme
description: A new order of 100 or more gets a note with its total.
trigger: {type: event, connection: app_db, table: orders, events: [created]}
conditions:
  all:
    - {field: total, operator: gte, value: 100}
actions:
  - id: note_total
    type: update_record
    connection: app_db
    table: orders
    values:
      note: "new order worth {{ record.total }}"
"""
NEVER = """\
kind: rule
name: flag-negative-totals
organization: acme
description: Never matches in the demo data (totals are not negative).
trigger: {type: event, connection: app_db, table: orders, events: [created, updated]}
conditions:
  all:
    - {field: total, operator: lt, value: 0}
actions:
  - id: flag_negative
    type: update_record
    connection: app_db
    table: orders
    values:
      priority: negative
"""
MARK_BIG = """\
kind: workflow
name: mark-big-orders
organization: acme
description: A new order of 1,000 or more is marked big (its condition node splits the new orders).
nodes:
  - {id: start, type: trigger, trigger: {type: event, connection: app_db, table: orders, events: [created]}}
  - {id: is-big, type: condition, conditions: {all: [{field: total, operator: gte, value: 1000}]}}
  - {id: mark-big, type: action, action: {type: update_record, connection: app_db, table: orders,
                                          values: {priority: big}}}
connections:
  - {from: start, to: is-big}
  - {from: is-big, to: mark-big, when: "true"}
"""
RULES = {
    "expedite-vip-payments": "expedite",
    "note-new-orders": "note_total",
    "flag-negative-totals": "flag_negative",
}
#: The event workflow beside the rules: it shares note-new-orders' watch (and so its asset).
WORKFLOW = "mark-big-orders"
DAG_IDS = {name: f"rule__acme__{name}" for name in RULES} | {WORKFLOW: f"workflow__acme__{WORKFLOW}"}
#: Each rule's watch: its trigger, asset and durable cursor (ADR 0008).
WATCHES = {
    "expedite-vip-payments": Watch.of("app_db", "orders", ["updated"], ["status"]),
    "note-new-orders": Watch.of("app_db", "orders", ["created"]),
    "flag-negative-totals": Watch.of("app_db", "orders", ["created", "updated"]),
    WORKFLOW: Watch.of("app_db", "orders", ["created"]),
}
ADMIN = ("admin", "admin-password")
VIP_CUSTOMERS = (1, 2, 5)
EXTRA_VIP_PENDING = 6  # added before capture is installed, so 10 VIP orders can go pending -> paid
INSERTS = 25
DEADLINE = 900.0


@dataclass
class Scene:
    app: sa.Engine
    store: RuleStore
    standalone: Standalone
    timings: dict[str, float] = field(default_factory=dict)
    _last: float = field(default_factory=time.monotonic)

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.timings[name] = now - self._last
        self._last = now


@dataclass(frozen=True)
class Change:
    order_id: int
    event_id: int


def _commit(engine: sa.Engine, sql: str, **params: Any) -> Change:
    """One change in its own transaction; its order id and the outbox id its capture trigger wrote."""
    with engine.begin() as conn:
        order_id = conn.execute(sa.text(sql), params).scalar_one()
        event_id = conn.execute(
            sa.text("SELECT currval(pg_get_serial_sequence('rule_engine_outbox', 'id'))")
        ).scalar_one()
    return Change(int(order_id), int(event_id))


@pytest.fixture
def scene(tmp_path: Path, postgres_databases: Any, one_deployment: None) -> Iterator[Scene]:
    app = sa.create_engine(postgres_databases.create())
    demo_db_module().create_demo_db(app, DEMO_NOW)
    with app.begin() as conn:
        for i in range(EXTRA_VIP_PENDING):
            conn.execute(
                sa.text(
                    "INSERT INTO orders (customer_id, status, total, priority) "
                    "VALUES (:c, 'pending', :t, 'normal')"
                ),
                {"c": VIP_CUSTOMERS[i % len(VIP_CUSTOMERS)], "t": decimal.Decimal(f"{700 + i}.25")},
            )
    install(app, "orders")

    store = RuleStore(postgres_databases.create())
    store.upgrade()
    store.put_catalog(organization="acme", catalog=yaml.safe_load(DEMO_CATALOG.read_text()), actor="test")
    (tmp_path / "note-new-orders.yaml").write_text(NOTE_NEW)
    (tmp_path / "flag-negative-totals.yaml").write_text(NEVER)
    (tmp_path / f"{WORKFLOW}.yaml").write_text(MARK_BIG)
    dag_ids = apply_rules(
        store,
        EXPEDITE,
        tmp_path / "note-new-orders.yaml",
        tmp_path / "flag-negative-totals.yaml",
        tmp_path / f"{WORKFLOW}.yaml",
    )
    assert sorted(dag_ids) == sorted(DAG_IDS.values())

    env = {
        "AUTOMATION_STORE_URL": store.url,
        "AUTOMATION_SNAPSHOT_PATH": str(tmp_path / "snapshot.json"),
        "AIRFLOW_CONN_APP_DB": connection_env(app.url.render_as_string(hide_password=False)),
    }
    started = time.monotonic()
    try:
        with run_standalone(
            tmp_path / "airflow",
            metadata_url=postgres_databases.create(),
            users={ADMIN[0]: ("admin", ADMIN[1])},
            parallelism=4,
            env=env,
        ) as running:
            yield Scene(app, store, running, _last=started)
    finally:
        store.close()
        app.dispose()


# -- waiting -----------------------------------------------------------------------------------------


def _max_outbox_id(app: sa.Engine) -> int:
    return int(query_rows(app, "SELECT COALESCE(MAX(id), 0) AS m FROM rule_engine_outbox")[0]["m"])


def _cursors(app: sa.Engine) -> dict[str, int]:
    """Each rule's trigger's durable cursor."""
    with app.connect() as conn:
        return {name: cursor_position(conn, watch.consumer) for name, watch in WATCHES.items()}


def _quiet(scene: Scene, client: httpx.Client) -> bool:
    """Nothing in flight, checked in pipeline order (outbox -> asset event -> queued run -> run ->
    effect -> outbox): every event passed by every trigger, no queued asset event, no active run, no
    new event."""
    last = _max_outbox_id(scene.app)
    if set(_cursors(scene.app).values()) != {last} or not dags_idle(client, DAG_IDS.values()):
        return False
    if any(run.status == "running" for name in DAG_IDS for run in _logs(scene.store, name)):
        return False
    return _max_outbox_id(scene.app) == last


def _logs(store: RuleStore, name: str) -> list[Any]:
    return store.list_runs(organization="acme", rule_name=name, limit=10_000)


# -- the test ----------------------------------------------------------------------------------------


def test_row_changes_run_event_rules_under_a_real_scheduler_and_triggerer(scene: Scene) -> None:
    standalone, app = scene.standalone, scene.app
    standalone.wait_healthy(timeout=240)
    scene.lap("standalone healthy")
    client = standalone.client()
    client.headers["Authorization"] = f"Bearer {standalone.token(*ADMIN)}"

    standalone.wait_for(
        "the event rules' and the workflow's DAGs, unpaused",
        lambda: dags_unpaused(client, DAG_IDS.values()),
        240,
    )
    scene.lap("DAGs parsed, unpaused")
    standalone.wait_for(
        "the outbox trigger to run in the triggerer", lambda: outbox_trigger_listening(app), 240
    )
    scene.lap("outbox trigger running")

    vip_pending = query_rows(
        app,
        "SELECT o.id, o.priority, o.note, c.name FROM orders o JOIN customers c ON c.id = o.customer_id "
        "WHERE o.status = 'pending' AND c.tier = 'vip' ORDER BY o.id",
    )
    other_pending = query_rows(
        app,
        "SELECT o.id, o.priority, o.note FROM orders o JOIN customers c ON c.id = o.customer_id "
        "WHERE o.status = 'pending' AND c.tier <> 'vip' ORDER BY o.id LIMIT 5",
    )
    touched = {row["id"] for row in vip_pending + other_pending}
    note_only = [
        row["id"]
        for row in query_rows(app, "SELECT id FROM orders WHERE status <> 'pending' ORDER BY id")
        if row["id"] not in touched
    ][: 25 - len(vip_pending) - len(other_pending)]
    assert len(vip_pending) == 4 + EXTRA_VIP_PENDING and len(other_pending) == 5 and len(note_only) == 10

    sending = time.monotonic()
    # cents never end in 0, so a total reads the same from a Decimal and from its JSON float
    totals = [
        decimal.Decimal(f"{20 + i if i % 5 == 0 else 100 + 97 * i}.{(3 * i) % 10}{1 + i % 9}")
        for i in range(INSERTS)
    ]
    created = [
        _commit(
            app,
            "INSERT INTO orders (customer_id, status, total, priority) "
            "VALUES (:c, 'pending', :t, 'normal') RETURNING id",
            c=1 + i % 10,
            t=total,
        )
        for i, total in enumerate(totals)
    ]
    paid_vip = [
        _commit(app, "UPDATE orders SET status = 'paid' WHERE id = :i RETURNING id", i=row["id"])
        for row in vip_pending
    ]
    paid_other = [
        _commit(app, "UPDATE orders SET status = 'paid' WHERE id = :i RETURNING id", i=row["id"])
        for row in other_pending
    ]
    noted = [
        _commit(app, "UPDATE orders SET note = :n WHERE id = :i RETURNING id", i=i, n=f"checked {i}")
        for i in note_only
    ]
    sent = len(created) + len(paid_vip) + len(paid_other) + len(noted)
    scene.lap(f"{sent} changes committed")
    assert sent == 50

    big = {change.order_id: total for change, total in zip(created, totals, strict=True) if total >= 100}
    names = {row["id"]: row["name"] for row in vip_pending}
    expected_notes = {order_id: f"new order worth {total}" for order_id, total in big.items()}
    expected_notes |= {
        change.order_id: f"pending -> paid for {names[change.order_id]} (event {change.event_id})"
        for change in paid_vip
    }

    def effects_landed() -> bool:
        rows = query_rows(app, "SELECT id, note FROM orders WHERE id IN :ids", ids=tuple(expected_notes))
        landed = [row["id"] for row in rows if row["note"] == expected_notes[row["id"]]]
        return len(landed) == len(expected_notes)

    last_quiet_check = [0.0]

    def landed_or_quiet() -> str | None:
        """``landed``; or ``quiet`` when the system stopped without them (checked every 2 s)."""
        if effects_landed():
            return "landed"
        if time.monotonic() - last_quiet_check[0] >= 2:
            last_quiet_check[0] = time.monotonic()
            if _quiet(scene, client):
                return "quiet"
        return None

    outcome = standalone.wait_for("the effects in the application database", landed_or_quiet, DEADLINE, 0.5)
    first_effect_wait = time.monotonic() - sending
    scene.lap(f"effects {outcome}")
    standalone.wait_for("the system to be quiet", lambda: _quiet(scene, client), DEADLINE, interval=2)
    scene.lap("quiet (cursor at the end, no queued or active runs)")
    airflow_runs = {
        name: pages(client, f"/api/v2/dags/{dag_id}/dagRuns", "dag_runs") for name, dag_id in DAG_IDS.items()
    }
    outbox_rows = query_rows(
        app, "SELECT id, operation, changed_json FROM rule_engine_outbox WHERE table_name = 'orders'"
    )
    order_events = {str(row["id"]) for row in outbox_rows}
    taken_by = {
        name: {str(r["id"]) for r in outbox_rows if watch.takes(r["operation"], r["changed_json"])}
        for name, watch in WATCHES.items()
    }
    print(
        f"\nevent smoke: {sent} changes, {len(order_events)} outbox events, "
        f"runs per rule { {name: len(runs) for name, runs in airflow_runs.items()} }"
    )
    for step, seconds in scene.timings.items():
        print(f"  {step:<55} {seconds:7.1f} s")
    if outcome == "landed":
        print(f"  {'first commit -> every effect visible':<55} {first_effect_wait:7.1f} s")

    # Every event a rule listens to reached it: each lies in the range of events some run of the rule
    # took (a run takes every event after the rule's cursor, so none is stranded by
    # apache/airflow#56050).
    assert len(taken_by["expedite-vip-payments"]) == len(paid_vip) + len(paid_other)
    assert (
        len(taken_by["note-new-orders"]) == len(created) and taken_by["flag-negative-totals"] == order_events
    )
    for name in DAG_IDS:
        ranges = [log.trace["event_range"] for log in _logs(scene.store, name)]
        seen = {event_id for event_id in order_events if any(a < int(event_id) <= b for a, b in ranges)}
        stranded = sorted(taken_by[name] - seen, key=int)
        assert not stranded, (
            f"{name}: no run ever got outbox events {stranded} although the trigger handed them on "
            f"(cursors {_cursors(app)}) and nothing is queued or running"
        )

    _assert_runs_started_only_by_their_rules_events(client, airflow_runs, taken_by)

    # Rows: the right ones changed, with values from each event's own payload.
    orders = {row["id"]: row for row in query_rows(app, "SELECT * FROM orders")}
    for change, total in zip(created, totals, strict=True):
        row = orders[change.order_id]
        assert row["note"] == (f"new order worth {total}" if total >= 100 else None), row
        assert row["priority"] == ("big" if total >= 1000 else "normal"), row
    for change in paid_vip:
        row = orders[change.order_id]
        assert (row["status"], row["priority"]) == ("paid", "high")
        assert row["note"] == expected_notes[change.order_id]
    for change, before in zip(paid_other, other_pending, strict=True):
        row = orders[change.order_id]
        assert (row["status"], row["priority"], row["note"]) == ("paid", before["priority"], before["note"])
    assert [orders[i]["note"] for i in note_only] == [f"checked {i}" for i in note_only]
    assert not any(row["priority"] == "negative" for row in orders.values())

    # The ledger: exactly one entry per (event, action), for exactly the matching events.
    ledger = query_rows(app, f"SELECT rule_id, action_id, occurrence_id, row_key FROM {LEDGER_TABLE}")
    entries = collections.Counter(tuple(row.values()) for row in ledger)
    assert all(count == 1 for count in entries.values()), entries.most_common(3)
    assert set(entries) == {
        ("acme/expedite-vip-payments", "expedite", f"event:{c.event_id}", f"[{c.order_id}]") for c in paid_vip
    } | {
        ("acme/note-new-orders", "note_total", f"event:{c.event_id}", f"[{c.order_id}]")
        for c in created
        if c.order_id in big
    } | {
        (f"acme/{WORKFLOW}", "mark-big", f"event:{c.event_id}", f"[{c.order_id}]")
        for c in created
        if big.get(c.order_id, 0) >= 1000
    }

    # The automation log: one entry per Airflow run; matched counts add up to the effects.
    expected_matches = {
        "expedite-vip-payments": len(paid_vip),
        "note-new-orders": len(big),
        "flag-negative-totals": 0,
    }
    for name, action_id in RULES.items():
        logs = _logs(scene.store, name)
        assert {log.run_id for log in logs} == {run["dag_run_id"] for run in airflow_runs[name]}
        assert all(run["state"] == "success" for run in airflow_runs[name])
        assert all(run["run_type"] == "asset_triggered" for run in airflow_runs[name])
        assert {log.status for log in logs} <= {"success", "no_match"}, name
        outputs = [a.output or {} for log in logs for a in log.actions if a.action_id == action_id]
        applied = sum(int(o.get("applied", 0)) for o in outputs)
        again = sum(int(o.get("already_applied", 0)) for o in outputs)
        matched = sum(log.matched_count for log in logs)
        assert applied == expected_matches[name], name
        assert matched == applied + again, name  # a redelivered event matches again, applies nothing
    assert all(log.status == "no_match" for log in _logs(scene.store, "flag-negative-totals"))

    # The workflow: every new order reached its condition node; only the big ones its action node.
    huge = sum(1 for total in big.values() if total >= 1000)
    assert 0 < huge < len(created)
    logs = _logs(scene.store, WORKFLOW)
    assert {log.run_id for log in logs} == {run["dag_run_id"] for run in airflow_runs[WORKFLOW]}
    assert all(
        run["state"] == "success" and run["run_type"] == "asset_triggered" for run in airflow_runs[WORKFLOW]
    )
    assert "success" in {log.status for log in logs} <= {"success", "no_match"}  # no_match: taken earlier
    nodes = [a for log in logs for a in log.actions]
    split = [n.output for n in nodes if n.action_id == "is-big"]
    assert sum(o["true"]["count"] for o in split) - huge == sum(
        int(n.output.get("already_applied", 0)) for n in nodes if n.action_id == "mark-big"
    )
    assert sum(o["true"]["count"] + o["false"]["count"] for o in split) == sum(
        log.matched_count for log in logs
    )
    assert sum(int(n.output.get("applied", 0)) for n in nodes if n.action_id == "mark-big") == huge

    # The never-matching rule's action shows as skipped in Airflow, in every one of its runs.
    never = DAG_IDS["flag-negative-totals"]
    for run in airflow_runs["flag-negative-totals"]:
        instances = pages(
            client,
            f"/api/v2/dags/{never}/dagRuns/{quote(run['dag_run_id'], safe='')}/taskInstances",
            "task_instances",
        )
        states = {ti["task_id"]: ti["state"] for ti in instances}
        assert states["flag_negative"] == "skipped", states

    _assert_notes_of_runs_without_match(scene, client, airflow_runs)

    # Every trigger's durable cursor reached the last event, the ones it refused included.
    assert set(_cursors(app).values()) == {_max_outbox_id(app)}
    assert _max_outbox_id(app) >= max(c.event_id for c in noted)

    # The scheduler preloaded the task modules before it forked its workers (rule_engine/preload.py).
    assert "rule engine preload: task modules imported" in standalone.log.read_text(errors="replace")


def _assert_runs_started_only_by_their_rules_events(
    client: httpx.Client, airflow_runs: dict[str, list[dict[str, Any]]], taken_by: dict[str, set[str]]
) -> None:
    """No run was started by a change its rule does not listen to (ADR 0008): the asset events of
    every run (what started it, as Airflow recorded it) name only events of the rule's watch."""
    for name, dag_id in DAG_IDS.items():
        every: set[str] = set()
        for run in airflow_runs[name]:
            path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run['dag_run_id'], safe='')}/upstreamAssetEvents"
            started_by = {
                str(event_id)
                for asset_event in pages(client, path, "asset_events")
                for event_id in ((asset_event.get("extra") or {}).get("payload") or {}).get("event_ids", [])
            }
            assert started_by <= taken_by[name], (name, run["dag_run_id"], started_by - taken_by[name])
            every |= started_by
        assert every, f"{name}: no run named the events that started it"


def _assert_notes_of_runs_without_match(
    scene: Scene, client: httpx.Client, airflow_runs: dict[str, list[dict[str, Any]]]
) -> None:
    """A run that matched nothing carries a note saying so (set by the scheduler's listener,
    ``rule_engine.run_notes``); the others carry none."""
    for name, dag_id in DAG_IDS.items():
        statuses = {log.run_id: log.status for log in _logs(scene.store, name)}
        for run in airflow_runs[name]:
            detail = client.get(f"/api/v2/dags/{dag_id}/dagRuns/{quote(run['dag_run_id'], safe='')}")
            detail.raise_for_status()
            note = detail.json()["note"]
            if statuses[run["dag_run_id"]] == "no_match":
                assert note is not None and note.startswith("no match: 0 of "), (name, note)
            else:
                assert note is None, (name, note)
