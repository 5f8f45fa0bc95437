"""Metrics reach a StatsD server: a real UDP listener on loopback receives the counters and timers of a
rule's ``dag.test()`` run, with their tags (InfluxDB line format), through Airflow's own stats API and
the ``statsd`` client.

``dag.test()`` runs tasks in this process, where no task runner starts, so the test initializes the
stats backend from the ``[metrics]`` settings exactly as Airflow's task runner does when a task starts
(``task_runner.main``: ``stats.initialize(factory=stats_utils.get_stats_factory(), ...)``), and resets
it afterwards. Every docs/operations.md metric row names a metric the code emits, and back.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from rule_compiler.store import RuleStore
from tests.airflow.conftest import apply_rules, dagbag
from tests.conftest import ROOT

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]
DAG_ID = "rule__acme__flag-big-paid-orders"


@pytest.fixture
def statsd_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    from airflow.sdk._shared.observability.metrics import stats as shared_stats
    from airflow.sdk.observability import stats
    from airflow.sdk.observability.metrics import stats_utils

    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(0.2)
    for key, value in {
        "STATSD_ON": "True",
        "STATSD_HOST": "127.0.0.1",
        "STATSD_PORT": str(server.getsockname()[1]),
        "STATSD_PREFIX": "airflow",
        "STATSD_INFLUXDB_ENABLED": "True",
    }.items():
        monkeypatch.setenv(f"AIRFLOW__METRICS__{key}", value)
    monkeypatch.setattr(shared_stats, "_backend", None)
    stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=False)
    try:
        yield server
    finally:
        from airflow.sdk._shared.observability.metrics.base_stats_logger import NoStatsLogger

        stats.initialize(factory=NoStatsLogger, export_legacy_names=False)
        monkeypatch.setattr(shared_stats, "_backend", None)
        server.close()


def _received(server: socket.socket) -> list[str]:
    lines: list[str] = []
    while True:
        try:
            packet = server.recv(65535)
        except TimeoutError:
            return lines
        lines += packet.decode().splitlines()


def _metric(lines: list[str], name: str) -> list[tuple[dict[str, str], str]]:
    """(tags, value|type) of each line of ``airflow.<name>``."""
    found = []
    for line in lines:
        head, _, value = line.partition(":")
        metric, *tags = head.split(",")
        if metric == f"airflow.{name}":
            found.append((dict(tag.split("=", 1) for tag in tags), value))
    return found


def test_a_run_sends_its_counters_and_timers_with_tags(
    store: RuleStore, app_db: sa.Engine, statsd_server: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply_rules(store, ROOT / "include" / "rules" / "flag-big-paid-orders.yaml")
    dag_run = dagbag().dags[DAG_ID].test()
    assert dag_run.state == "success"
    log = store.get_run(dag_id=DAG_ID, run_id=dag_run.run_id)
    assert log is not None
    lines = _received(statsd_server)

    [(tags, value)] = _metric(lines, "rule_engine.runs")
    assert tags == {"organization": "acme", "kind": "rule", "outcome": "success"} and value == "1|c"
    [(_, timing)] = _metric(lines, "rule_engine.run_duration")
    assert re.fullmatch(r"\d+(\.\d+)?\|ms", timing)
    [(_, evaluated)] = _metric(lines, "rule_engine.items_evaluated")
    [(_, matched)] = _metric(lines, "rule_engine.items_matched")
    assert (evaluated, matched) == (f"{log.trace['evaluated']}|c", f"{log.matched_count}|c")
    [(action_tags, action)] = _metric(lines, "rule_engine.actions")
    assert action_tags == {
        "organization": "acme",
        "kind": "rule",
        "action_type": "update_record",
        "outcome": "success",
    }
    assert action == "1|c" and _metric(lines, "rule_engine.action_duration")
    assert not any("definition=" in line for line in lines)  # opt-in only

    monkeypatch.setenv("AUTOMATION_METRICS_DEFINITION_TAGS", "true")
    dagbag().dags[DAG_ID].test()
    [(tags, _)] = _metric(_received(statsd_server), "rule_engine.runs")
    assert tags["definition"] == "flag-big-paid-orders"


def test_the_docs_list_every_metric() -> None:
    from rule_engine.metrics import METRICS

    documented = set(
        re.findall(r"^\| `airflow\.(rule_engine\.\w+)`", (ROOT / "docs" / "operations.md").read_text(), re.M)
    )
    assert documented == set(METRICS)
