"""The DAG loader under a real DagBag: every rule renders, bad specs are isolated, the snapshot serves."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from rule_compiler.store import RuleStore
from tests.airflow.conftest import apply_rules, dagbag
from tests.conftest import LOCAL_FIXTURES, ROOT

pytestmark = pytest.mark.airflow
EXAMPLES = ROOT / "include" / "rules"


def test_examples_render_with_no_import_errors(store: RuleStore) -> None:
    dag_ids = apply_rules(store, EXAMPLES)
    bag = dagbag()
    assert bag.import_errors == {}
    assert set(dag_ids) <= set(bag.dag_ids)
    dag = bag.dags["rule__acme__escalate-vip-orders"]
    assert set(dag.task_ids) == {"evaluate_conditions", "escalate", "annotate", "record_outcome"}
    assert dag.get_task("annotate").upstream_task_ids == {"escalate"}
    assert "org:acme" in dag.tags and dag.catchup is False
    spec_hash = store.get(organization="acme", kind="rule", name="escalate-vip-orders").spec_hash
    assert spec_hash in dag.doc_md
    assert dag.timetable.expression == "*/15 * * * *"
    assert str(dag.timetable.timezone) in {"Europe/Berlin", "Timezone('Europe/Berlin')"}
    assert type(bag.dags["rule__acme__flag-big-paid-orders"].timetable).__name__ == "NullTimetable"


def test_every_trigger_type_renders_a_real_dag_and_templates_render_none(store: RuleStore) -> None:
    apply_rules(store, LOCAL_FIXTURES / "good", EXAMPLES)
    bag = dagbag()
    assert bag.import_errors == {}
    assert not [d for d in bag.dag_ids if d.startswith("condition_template__")]  # stored, not DAGs
    assert "rule__acme__local-uses-templates" in bag.dag_ids
    assert "render-error" not in bag.dags["rule__acme__failed-payments-spike"].tags  # data
    assert "render-error" not in bag.dags["rule__acme__remind-stale-orders"].tags  # schedule
    assert "render-error" not in bag.dags["rule__acme__expedite-vip-payments"].tags  # event
    assert "render-error" not in bag.dags["rule__acme__archive-void-orders"].tags  # manual


def test_one_corrupt_spec_does_not_hide_the_others(store: RuleStore) -> None:
    apply_rules(store, EXAMPLES)
    with store.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE compiled_specs SET spec_json = '{not json' WHERE dag_id = :d"),
            {"d": "rule__acme__archive-void-orders"},
        )
    bag = dagbag()
    assert bag.import_errors == {}
    broken = bag.dags["rule__acme__archive-void-orders"]
    assert "render-error" in broken.tags and "could not be rendered" in broken.doc_md
    assert "render-error" not in bag.dags["rule__acme__flag-big-paid-orders"].tags
    assert len([d for d in bag.dag_ids if d.startswith("rule__")]) == 5


def test_store_down_serves_the_snapshot(
    store: RuleStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    dag_ids = apply_rules(store, EXAMPLES)
    assert set(dag_ids) <= set(dagbag().dag_ids)  # this parse writes the snapshot
    monkeypatch.setenv("AUTOMATION_STORE_URL", "postgresql+psycopg2://nobody@127.0.0.1:1/none")
    with caplog.at_level("ERROR"):
        bag = dagbag()
    assert bag.import_errors == {}
    assert set(dag_ids) <= set(bag.dag_ids)
    assert "last-known-good snapshot" in caplog.text


def test_parsing_context_builds_only_the_named_dag(store: RuleStore, monkeypatch: pytest.MonkeyPatch) -> None:
    apply_rules(store, EXAMPLES)
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "rule__acme__archive-void-orders")
    bag = dagbag()
    assert [d for d in bag.dag_ids if d.startswith("rule__")] == ["rule__acme__archive-void-orders"]


def test_inactive_rule_is_paused_on_creation(store: RuleStore) -> None:
    apply_rules(store, EXAMPLES / "flag-big-paid-orders.yaml", overrides={"active": False})
    assert dagbag().dags["rule__acme__flag-big-paid-orders"].is_paused_upon_creation is True
