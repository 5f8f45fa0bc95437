"""The loader runs an organization's tasks in its own Airflow pool once a platform admin provisioned
it (a real DagBag parse of dags/automation_dags.py), and in Airflow's default pool before."""

from __future__ import annotations

import pytest

from rule_compiler.store import RuleStore
from tests.airflow.conftest import ROOT, apply_rules, dagbag

pytestmark = pytest.mark.airflow


def test_tasks_move_into_the_organizations_pool_once_it_is_provisioned(store: RuleStore) -> None:
    [rule] = apply_rules(store, ROOT / "include" / "rules" / "flag-big-paid-orders.yaml")
    [report] = apply_rules(store, ROOT / "include" / "reports" / "weekly-sales.yaml")
    before = dagbag()
    assert {t.pool for d in (rule, report) for t in before.dags[d].tasks} == {"default_pool"}

    store.put_organization_limits("acme", {"pool_slots": 2}, actor="root")
    after = dagbag()
    assert not after.import_errors
    for dag_id in (rule, report):
        assert {t.pool for t in after.dags[dag_id].tasks} == {"rule_engine__acme"}, dag_id
