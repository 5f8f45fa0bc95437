"""ADR 0008's watches: names, the filter (the same verdict as the run's own), a new watch's first
cursor, the filtering reader, the purge and which cursors it waits for."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
import yaml

from rule_compiler.catalog import Catalog
from rule_compiler.compiler import DagSpec
from rule_compiler.definitions import ConditionTemplateDefinition, Event, EventTrigger
from rule_compiler.events import install
from rule_compiler.events.outbox_rows import advance_cursor, cursor_position, outbox
from rule_compiler.events.reader import OutboxReader, consumer_name, rule_consumer_name
from rule_compiler.events.retention import purge_connection, watching_consumers
from rule_compiler.events.watch import OPERATIONS, Watch, start_cursor, watch_of_spec, watch_of_spec_json
from rule_compiler.loading import read_definition_file
from rule_compiler.registration import Compiled, compile_document
from rule_compiler.runtime.run_events import why_not_triggered
from rule_compiler.store.models import SpecRow
from tests.conftest import DEMO_CATALOG, ROOT

OLD = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
CUTOFF = dt.datetime.now(dt.UTC) - dt.timedelta(days=7)
STATUS = Watch.of("app_db", "orders", ["updated"], ["status"])
CREATED = Watch.of("app_db", "orders", ["created"])


@pytest.fixture
def engine(any_db_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(any_db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT, note TEXT)"))
        conn.execute(sa.text("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)"))
    install(engine, "orders")
    install(engine, "customers")
    yield engine
    engine.dispose()


def _write(engine: sa.Engine, *statements: str) -> list[int]:
    """Run the statements, one transaction each; the outbox ids they wrote, in order."""
    with engine.connect() as conn:
        before = int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(outbox.c.id), 0))).scalar_one())
    for statement in statements:
        with engine.begin() as conn:
            conn.execute(sa.text(statement))
    with engine.connect() as conn:
        return [
            int(i)
            for i in conn.execute(
                sa.select(outbox.c.id).where(outbox.c.id > before).order_by(outbox.c.id)
            ).scalars()
        ]


def test_names_the_plain_watch_as_before_and_a_narrower_one_by_its_filter() -> None:
    plain = Watch.of("app_db", "orders")
    assert plain.everything and plain == Watch.of("app_db", "orders", ["deleted", "created", "updated"])
    assert (plain.asset_name, plain.asset_uri, plain.watcher_name, plain.consumer) == (
        "rule_engine__app_db__orders",
        "rule-engine://app_db/orders",
        "outbox__app_db__orders",
        "airflow:orders",
    )
    assert plain.trigger_kwargs() == {"connection": "app_db", "table": "orders"}  # its trigger row is kept
    narrow = Watch.of("app_db", "orders", ["updated", "created"], ["status", "priority", "status"])
    assert narrow == Watch("app_db", "orders", ("created", "updated"), ("priority", "status"))
    assert narrow.consumer == "airflow:orders?events=created,updated&fields=priority,status"
    assert narrow.asset_name == "rule_engine__app_db__orders?events=created,updated&fields=priority,status"
    assert narrow.asset_uri == "rule-engine://app_db/orders?events=created%2Cupdated&fields=priority%2Cstatus"
    assert Watch.of("app_db", "orders", ["created"], ["status"]) == CREATED  # fields only filter updates
    wide = Watch.of("app_db", "orders", ["updated"], [f"column_{i:03d}" for i in range(60)])
    assert wide.consumer.startswith("airflow:orders?filter=") and len(wide.consumer) < 250
    assert wide != Watch.of("app_db", "orders", ["updated"], [f"column_{i:03d}" for i in range(59)])


def test_the_watch_takes_exactly_the_events_the_rules_own_trigger_check_takes() -> None:
    """The trigger (``Watch.takes`` on outbox rows) and the run (``why_not_triggered``) never disagree."""
    triggers = [
        EventTrigger(type="event", connection="app_db", table="orders", events=list(events), fields=fields)
        for events in itertools.chain.from_iterable(
            itertools.combinations(OPERATIONS, n) for n in range(1, 4)
        )
        for fields in (None, ["status"], ["status", "note"])
    ]
    changes = [None, [], ["status"], ["note"], ["priority"], ["note", "status"]]
    for trigger, operation, changed in itertools.product(triggers, OPERATIONS, changes):
        event = Event(table="orders", operation=operation, new={"id": 1}, changed_fields=changed)
        watch = Watch.of(trigger.connection, trigger.table, trigger.events, trigger.fields)
        assert watch.takes(operation, changed) is (why_not_triggered(trigger, event) is None), (
            trigger,
            operation,
            changed,
        )


def test_the_watch_of_a_compiled_rule_comes_from_its_evaluate_tasks_trigger() -> None:
    catalog = Catalog.model_validate(yaml.safe_load(DEMO_CATALOG.read_text()))
    compiled = compile_document(
        read_definition_file(ROOT / "include/rules/expedite-vip-payments.yaml"), catalog
    )
    assert isinstance(compiled, Compiled)
    spec: DagSpec = compiled.spec
    assert watch_of_spec(spec) == STATUS == watch_of_spec_json(spec.to_json())
    manual = compile_document(read_definition_file(ROOT / "include/rules/flag-big-paid-orders.yaml"), catalog)
    assert isinstance(manual, Compiled) and watch_of_spec(manual.spec) is None
    data = spec.to_data()  # a spec whose evaluate task names no trigger: every change (the old behaviour)
    next(t for t in data["tasks"] if t["kind"] == "evaluate_conditions")["params"].pop("trigger")
    assert watch_of_spec(data) == Watch.of("app_db", "orders")
    assert watch_of_spec_json("not json") is None


def test_the_watch_of_a_compiled_workflow_comes_from_its_trigger_node() -> None:
    """A workflow's DAG schedules on the watch of its trigger node's events, as a rule's does (ADR 0008):
    a new-orders workflow is not started by updates."""
    catalog = Catalog.model_validate(yaml.safe_load(DEMO_CATALOG.read_text()))
    data = read_definition_file(ROOT / "include/workflows/route-new-orders.yaml")
    templates = {
        "big-order": ConditionTemplateDefinition.model_validate(
            read_definition_file(ROOT / "include/templates/big-order.yaml")
        )
    }
    compiled = compile_document(data, catalog, templates=templates)
    assert isinstance(compiled, Compiled)
    assert watch_of_spec(compiled.spec) == Watch.of("app_db", "orders", ["created"])


def test_a_new_watch_starts_where_the_tables_delivery_stands(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        assert start_cursor(conn, CREATED) == 0  # no trigger has started: from the beginning
        advance_cursor(conn, consumer_name("orders"), 7)  # the plain watch's trigger (before the upgrade)
        advance_cursor(conn, STATUS.consumer, 5)
        advance_cursor(conn, rule_consumer_name("orders", "rule__acme__x"), 20)  # a rule's: not a trigger's
        advance_cursor(conn, consumer_name("order_items"), 30)  # another table's
    narrow = Watch.of("app_db", "orders", ["deleted"])
    with engine.begin() as conn:
        assert start_cursor(conn, narrow) == 7
    with engine.begin() as conn:
        advance_cursor(conn, consumer_name("orders"), 9)
        assert start_cursor(conn, narrow) == 7  # created once; a restart resumes from it
        assert start_cursor(conn, CREATED) == 0  # its cursor was created at 0 above and has not moved


def test_a_filtering_reader_hands_on_its_events_and_passes_the_others(engine: sa.Engine) -> None:
    ids = _write(
        engine,
        "INSERT INTO orders (id, status, note) VALUES (1, 'new', NULL)",
        "UPDATE orders SET note = 'a' WHERE id = 1",
        "INSERT INTO customers (id, name) VALUES (1, 'c')",
        "UPDATE orders SET status = 'paid' WHERE id = 1",
        "UPDATE orders SET note = 'b' WHERE id = 1",
    )
    reader = OutboxReader("orders", consumer=STATUS.consumer, batch_size=3, takes=STATUS.takes)
    refused_only = reader.next_batch(engine)  # ids 1-3: a create, a note change, a customer
    assert refused_only is not None and refused_only.event_ids == () and refused_only.through == ids[2]
    taken = reader.next_batch(engine)
    assert taken is not None and taken.event_ids == (ids[3],) and taken.through == ids[4]
    assert reader.next_batch(engine) is None
    plain = OutboxReader("customers", batch_size=3)  # no filter: a read of other tables' events only
    assert plain.next_batch(engine) is not None and plain.next_batch(engine) is None


def test_the_purge_waits_for_every_active_watch_of_the_table_not_for_stale_cursors(engine: sa.Engine) -> None:
    ids = _write(engine, *(f"INSERT INTO orders (id, status) VALUES ({i}, 'new')" for i in range(1, 7)))
    with engine.begin() as conn:
        old = OLD.isoformat(timespec="milliseconds") if conn.dialect.name == "sqlite" else OLD
        conn.execute(outbox.update().values(created_at=old))
        advance_cursor(conn, consumer_name("orders"), ids[0])  # the plain watch: no active rule has it now
        advance_cursor(conn, STATUS.consumer, ids[4])
        advance_cursor(conn, CREATED.consumer, ids[2])  # the slower active watch
    specs = [
        _spec_row("rule__acme__a", STATUS),
        _spec_row("rule__acme__b", CREATED),
        _spec_row("rule__acme__c", CREATED),
        _spec_row("rule__acme__off", Watch.of("app_db", "orders"), active=False),
    ]
    consumers = watching_consumers(specs)
    assert consumers == {"app_db": {"orders": sorted([CREATED.consumer, STATUS.consumer])}}
    result = purge_connection(engine, ["orders"], older_than=CUTOFF, consumers=consumers["app_db"])
    assert result.purged == {"orders": 3}  # up to the slower watch; the stale plain cursor holds nothing
    with engine.connect() as conn:
        assert [int(i) for i in conn.execute(sa.select(outbox.c.id).order_by(outbox.c.id)).scalars()] == ids[
            3:
        ]
        assert cursor_position(conn, consumer_name("orders")) == ids[0]


def _spec_row(dag_id: str, watch: Watch, *, active: bool = True) -> SpecRow:
    trigger: dict[str, object] = {
        "type": "event",
        "connection": watch.connection,
        "table": watch.table,
        "events": list(watch.events),
    }
    if watch.fields is not None:
        trigger["fields"] = list(watch.fields)
    spec = {
        "schedule": {"kind": "event", "connection": watch.connection, "table": watch.table},
        "tasks": [{"kind": "evaluate_conditions", "params": {"trigger": trigger}}],
    }
    return SpecRow(dag_id=dag_id, spec_json=json.dumps(spec), spec_hash="x", active=active)
