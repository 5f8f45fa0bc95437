"""Readable at a glance in the Airflow UI (issue 14): through a real DagBag parse of the loader, a Berlin
rule, data rule and report have Berlin as their DAG time zone (what Airflow serializes), runs at 07:00
Berlin time, and the display names the compiler built; their ids are unchanged."""

from __future__ import annotations

from typing import Any

import pendulum
import pytest

from rule_compiler.store import RuleStore
from tests.airflow.conftest import apply_rules, dagbag
from tests.conftest import LOCAL_FIXTURES, ROOT

pytestmark = pytest.mark.airflow

BERLIN = "Europe/Berlin"
RULE = ROOT / "include" / "rules" / "escalate-vip-orders.yaml"
DATA_RULE = LOCAL_FIXTURES / "good" / "failed-payments-spike.yaml"
REPORT = ROOT / "include" / "reports" / "weekly-sales.yaml"
RULE_ID, DATA_ID, REPORT_ID = (
    "rule__acme__escalate-vip-orders",
    "rule__acme__failed-payments-spike",
    "report__acme__weekly-sales",
)


def _apply_berlin(store: RuleStore) -> None:
    """The escalation rule every Monday at 07:00 Berlin time, titled; the data rule daily at 07:00 in
    Berlin; the weekly report as it is (Mondays 07:00, Europe/Berlin)."""
    from rule_compiler.loading import read_definition_file

    rule_trigger = read_definition_file(RULE)["trigger"]
    data_trigger = read_definition_file(DATA_RULE)["trigger"]
    apply_rules(
        store,
        RULE,
        overrides={"title": "Escalate VIP orders", "trigger": {**rule_trigger, "cron": "0 7 * * 1"}},
    )
    apply_rules(
        store, DATA_RULE, overrides={"trigger": {**data_trigger, "schedule": "0 7 * * *", "timezone": BERLIN}}
    )
    apply_rules(store, REPORT)


def _serialized(dag: Any) -> tuple[dict[str, Any], Any]:
    """What the DAG processor stores for the DAG, and the DAG the scheduler reads back from it."""
    from airflow.serialization.serialized_objects import DagSerialization

    data = DagSerialization.to_dict(dag)
    return data["dag"], DagSerialization.from_dict(data)


def test_berlin_schedules_give_the_dag_a_berlin_time_zone_and_07_00_berlin_runs(store: RuleStore) -> None:
    _apply_berlin(store)
    bag = dagbag()
    assert bag.import_errors == {}
    for dag_id in (RULE_ID, DATA_ID, REPORT_ID):
        dag = bag.dags[dag_id]
        assert dag.timezone.name == BERLIN, dag_id  # was UTC: the start date's zone
        assert dag.start_date == pendulum.datetime(2024, 1, 1, tz=BERLIN)
        data, scheduled = _serialized(dag)
        assert data["timezone"] == BERLIN, dag_id
        assert scheduled.timezone.name == BERLIN
        # the next run the scheduler computes, in UTC, is 07:00 in Berlin
        following = scheduled.next_dagrun_info(last_automated_run_info=None)
        assert following is not None and following.run_after.utcoffset() == pendulum.duration(0)
        local = following.run_after.in_timezone(BERLIN)
        assert (local.hour, local.minute) == (7, 0), (dag_id, following.run_after)
        assert following.run_after.hour == (6 if local.utcoffset() == pendulum.duration(hours=1) else 5)

    # one known week each side of the clock change: 06:00 UTC in winter (CET), 05:00 UTC in summer (CEST)
    _, rule = _serialized(bag.dags[RULE_ID])
    _, report = _serialized(bag.dags[REPORT_ID])
    for earliest, expected in (
        (pendulum.datetime(2026, 11, 17), pendulum.datetime(2026, 11, 23, 6)),
        (pendulum.datetime(2026, 7, 7), pendulum.datetime(2026, 7, 13, 5)),
    ):
        [run] = rule.iter_dagrun_infos_between(earliest, earliest.add(days=7))
        assert run.run_after == expected
        [interval] = report.iter_dagrun_infos_between(earliest, earliest.add(days=7))
        assert interval.data_interval.start == expected  # the report's week starts Monday 07:00 Berlin
        assert interval.run_after == expected.add(weeks=1)


def test_dags_and_tasks_show_display_names_and_keep_their_ids(store: RuleStore) -> None:
    _apply_berlin(store)
    bag = dagbag()
    assert bag.import_errors == {}
    names = {
        dag_id: (
            bag.dags[dag_id].dag_display_name,
            {t.task_id: t.task_display_name for t in bag.dags[dag_id].tasks},
        )
        for dag_id in (RULE_ID, DATA_ID, REPORT_ID)
    }
    assert names[RULE_ID] == (
        "Escalate VIP orders",
        {
            "evaluate_conditions": "evaluate conditions",
            "escalate": "update_record: escalate",
            "annotate": "update_record: annotate",
            "record_outcome": "record outcome",
        },
    )
    assert names[DATA_ID] == (
        "failed-payments-spike (acme)",
        {
            "wait_for_data": "wait for data",
            "evaluate_conditions": "evaluate conditions",
            "page": "send_notification: page",
            "record_outcome": "record outcome",
        },
    )
    assert names[REPORT_ID] == (
        "weekly-sales (acme)",
        {
            "run_queries": "run queries",
            "render_csv": "render csv",
            "render_xlsx": "render xlsx",
            "render_html": "render html",
            "render_pdf": "render pdf",
            "deliver": "deliver",  # mapped: one instance per delivery, labelled by the map index template
            "record_report": "record report",
        },
    )
    rule = bag.dags[RULE_ID]
    assert (
        rule.description
        == "Every 15 minutes, escalate open orders (pending or payment failed) of VIP customers "
        "(a foreign-key path) above 500 to urgent; once paid, expedite-vip-payments makes them high."
    )
    assert rule.get_task("annotate").upstream_task_ids == {"escalate"}
    # what the DAG processor writes: the display names travel with the serialized DAG
    data, scheduled = _serialized(bag.dags[REPORT_ID])
    assert data["dag_display_name"] == "weekly-sales (acme)"
    assert scheduled.get_task("deliver").task_display_name == "deliver"
    assert scheduled.get_task("run_queries").task_display_name == "run queries"
