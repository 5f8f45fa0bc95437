"""Organization limits in the store: setting them (audited), the active-definitions quota in the
transaction that activates, and the pool the loader's specs carry once provisioned. SQLite and the
real Postgres."""

from __future__ import annotations

from pathlib import Path

import pytest

from rule_compiler.store import RuleStore
from rule_compiler.store.org_limits import ActiveDefinitionsQuotaError
from rule_compiler.store.snapshot import load_specs, read_dag_entry, read_snapshot
from rule_compiler.store.specs import loadable_specs_sqlite
from tests.store.conftest import ApplyRule

pytestmark = pytest.mark.postgres


def test_limits_are_set_field_by_field_audited_and_checked(store: RuleStore) -> None:
    assert store.organization_limits("acme").pool is None
    first = store.put_organization_limits(
        "acme", {"pool_slots": 4, "max_active_definitions": 10}, actor="root"
    )
    assert (first.pool, first.pool_slots, first.max_active_definitions) == ("rule_engine__acme", 4, 10)
    second = store.put_organization_limits(
        "acme", {"events_per_minute": 60, "max_active_definitions": None}, actor="ops"
    )
    assert (second.pool_slots, second.max_active_definitions, second.events_per_minute) == (4, None, 60)
    assert store.organization_limits("acme") == second
    assert [r.organization for r in store.all_organization_limits()] == ["acme"]
    [latest, earliest] = [e for e in store.audit_entries(organization="acme") if e.kind == "limits"][:2]
    assert latest.actor == "ops" and latest.detail["before"]["max_active_definitions"] == 10
    assert earliest.detail["after"]["pool_slots"] == 4
    for bad in (0, -1, True, 2.5):
        with pytest.raises(ValueError, match="at least 1"):
            store.put_organization_limits("acme", {"pool_slots": bad}, actor="root")  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="unknown limits"):
        store.put_organization_limits("acme", {"cpu": 1}, actor="root")


def test_the_active_quota_refuses_one_more_active_definition_only(
    store: RuleStore, apply_rule: ApplyRule
) -> None:
    store.put_organization_limits("acme", {"max_active_definitions": 2}, actor="root")
    apply_rule(store, "one")
    apply_rule(store, "two")
    apply_rule(store, "two", revision=2)  # an update of an active rule is not one more
    with pytest.raises(ActiveDefinitionsQuotaError) as refused:
        apply_rule(store, "three")
    [issue] = refused.value.issues
    assert issue.path == "active" and "2 active definitions" in issue.message
    assert "max_active_definitions" in issue.message
    apply_rule(store, "three", active=False)  # stored, not active: allowed
    with pytest.raises(ActiveDefinitionsQuotaError):
        store.set_active(organization="acme", kind="rule", name="three", active=True, actor="ed")
    store.set_active(organization="acme", kind="rule", name="one", active=False, actor="ed")
    store.set_active(organization="acme", kind="rule", name="three", active=True, actor="ed")
    apply_rule(store, "other-org", organization="globex")  # another organization: its own quota
    store.delete(organization="acme", kind="rule", name="two", actor="ed")
    apply_rule(store, "four")
    assert sorted(d.name for d in store.list(organization="acme") if d.active) == ["four", "three"]


def test_loaded_specs_name_the_pool_once_it_is_provisioned(
    store: RuleStore, apply_rule: ApplyRule, tmp_path: Path
) -> None:
    apply_rule(store, "one")
    apply_rule(store, "g", organization="globex")
    assert {s.dag_id: s.pool for s in store.loadable_specs()} == {"acme__one": None, "globex__g": None}
    store.put_organization_limits("acme", {"max_active_definitions": 5}, actor="root")
    assert {s.pool for s in store.loadable_specs()} == {None}  # a quota alone provisions no pool
    store.put_organization_limits("acme", {"pool_slots": 3}, actor="root")
    pools = {s.dag_id: s.pool for s in store.loadable_specs()}
    assert pools == {"acme__one": "rule_engine__acme", "globex__g": None}
    if store.url.startswith("sqlite"):
        fast = loadable_specs_sqlite(store.url.removeprefix("sqlite:///"), None)
        assert {s.dag_id: s.pool for s in fast} == pools
    snapshot = tmp_path / "snapshot.json"
    loaded = load_specs(store, snapshot)
    assert {s.dag_id: s.pool for s in loaded.specs} == pools
    assert {s.dag_id: s.pool for s in read_snapshot(snapshot)} == pools
    entry = read_dag_entry(snapshot, "acme__one")
    assert entry is not None and entry.pool == "rule_engine__acme"
