"""Definitions: apply (created/updated/unchanged), versions, one transaction, soft delete, loading."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from rule_compiler.canonical import canonical_json, content_hash
from rule_compiler.errors import ConflictError, NotFoundError
from rule_compiler.store import ApplyResult, DefinitionWrite, RuleStore, SpecRow
from rule_compiler.store import audit as audit_module

ApplyRule = Callable[..., ApplyResult]
KEY = {"organization": "acme", "kind": "rule", "name": "escalate-vip-orders"}


def test_apply_creates_then_updates_and_keeps_every_version(store: RuleStore, apply_rule: ApplyRule) -> None:
    assert apply_rule(store, revision=1) == ApplyResult("created", 1, "acme__escalate-vip-orders")
    assert apply_rule(store, revision=2, actor="bob") == ApplyResult(
        "updated", 2, "acme__escalate-vip-orders"
    )

    current = store.get(**KEY)
    assert (current.version, current.current_version, current.actor) == (2, 2, "bob")
    assert current.source["revision"] == 2
    assert current.spec_hash == content_hash(
        {"dag_id": current.dag_id, "tasks": ["evaluate", "act"], "revision": 2}
    )
    assert current.created_at <= current.updated_at

    first = store.get(**KEY, version=1)
    assert (first.version, first.current_version, first.source["revision"], first.actor) == (1, 2, 1, "alice")

    history = store.versions(**KEY)
    assert [(v.version, v.actor, v.compiler_version) for v in history] == [
        (1, "alice", "0.1.0"),
        (2, "bob", "0.1.0"),
    ]
    assert history[1].source_hash == current.source_hash
    assert history[0].spec_hash == first.spec_hash != current.spec_hash


def test_reapplying_the_same_content_writes_nothing(store: RuleStore, apply_rule: ApplyRule) -> None:
    apply_rule(store, revision=1)
    assert apply_rule(store, revision=1, actor="bob") == ApplyResult(
        "unchanged", 1, "acme__escalate-vip-orders"
    )
    assert [v.version for v in store.versions(**KEY)] == [1]
    assert [e.action for e in store.audit_entries()] == ["create"]
    assert store.get(**KEY).actor == "alice"


def test_a_new_spec_hash_alone_is_a_new_version(store: RuleStore, apply_rule: ApplyRule) -> None:
    apply_rule(store)
    stored = store.get(**KEY)
    result = store.apply(
        DefinitionWrite(
            **KEY,
            dag_id=stored.dag_id,
            source=stored.source,
            source_hash=stored.source_hash,
            spec_json='{"recompiled":true}',
            spec_hash="new-spec-hash",
            active=True,
            actor="compiler-upgrade",
            compiler_version="0.2.0",
        )
    )
    assert result.status == "updated"
    assert store.get(**KEY).compiler_version == "0.2.0"


def test_apply_is_one_transaction(
    store: RuleStore, apply_rule: ApplyRule, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply_rule(store, revision=1)

    def broken_audit(*args: object, **kwargs: object) -> None:
        raise RuntimeError("audit insert failed")

    monkeypatch.setattr(audit_module, "insert_audit", broken_audit)
    with pytest.raises(RuntimeError, match="audit insert failed"):
        apply_rule(store, revision=2)
    with pytest.raises(RuntimeError, match="audit insert failed"):
        apply_rule(store, "brand-new-rule")
    monkeypatch.undo()

    assert [v.version for v in store.versions(**KEY)] == [1]
    assert store.get(**KEY).source["revision"] == 1
    assert [s.dag_id for s in store.loadable_specs()] == ["acme__escalate-vip-orders"]
    assert [e.version for e in store.audit_entries()] == [1]
    with pytest.raises(NotFoundError):
        store.get(organization="acme", kind="rule", name="brand-new-rule")
    assert apply_rule(store, revision=2).version == 2  # nothing half-written blocks the next apply


def test_dag_id_taken_by_another_definition_is_a_conflict(store: RuleStore, apply_rule: ApplyRule) -> None:
    apply_rule(store, "first", dag_id="shared")
    with pytest.raises(ConflictError, match=r"dag_id 'shared' is already used by rule acme/first"):
        apply_rule(store, "second", dag_id="shared")
    apply_rule(store, "second", dag_id="second")
    with pytest.raises(ConflictError, match="already used by rule acme/first"):
        apply_rule(store, "second", revision=2, dag_id="shared")
    assert [(s.name, s.dag_id, s.current_version) for s in store.list()] == [
        ("first", "shared", 1),
        ("second", "second", 1),
    ]
    assert len(store.audit_entries()) == 2


def test_same_name_in_another_organization_or_kind_is_another_definition(
    store: RuleStore, apply_rule: ApplyRule
) -> None:
    apply_rule(store, "nightly", organization="acme")
    apply_rule(store, "nightly", organization="globex")
    assert [s.organization for s in store.list()] == ["acme", "globex"]
    assert [s.organization for s in store.list(organization="globex")] == ["globex"]
    assert store.list(kind="report") == []


def test_set_active_is_audited_and_reported_on_the_loader_rows(
    store: RuleStore, apply_rule: ApplyRule
) -> None:
    apply_rule(store)
    assert store.set_active(**KEY, active=False, actor="ops") is True
    assert store.set_active(**KEY, active=False, actor="ops") is False  # already inactive: no audit row
    assert store.loadable_specs()[0].active is False
    assert store.get(**KEY).active is False
    assert store.set_active(**KEY, active=True, actor="ops") is True
    assert [(e.action, e.actor) for e in store.audit_entries()] == [
        ("activate", "ops"),
        ("deactivate", "ops"),
        ("create", "alice"),
    ]
    deactivate = store.audit_entries()[1]
    assert deactivate.detail == {
        "dag_id": "acme__escalate-vip-orders",
        "active_before": True,
        "active_after": False,
    }
    assert deactivate.hash_before == deactivate.hash_after == store.get(**KEY).source_hash
    with pytest.raises(NotFoundError, match="no rule acme/missing"):
        store.set_active(organization="acme", kind="rule", name="missing", active=True, actor="ops")


def test_delete_is_soft_keeps_history_and_hides_from_the_loader(
    store: RuleStore, apply_rule: ApplyRule
) -> None:
    apply_rule(store, revision=1)
    apply_rule(store, revision=2)
    apply_rule(store, "other")
    store.delete(**KEY, actor="bob")

    assert [s.dag_id for s in store.loadable_specs()] == ["acme__other"]
    assert store.loadable_specs("acme__escalate-vip-orders") == []
    assert [s.name for s in store.list()] == ["other"]
    deleted = next(s for s in store.list(include_deleted=True) if s.name == KEY["name"])
    assert deleted.deleted_at is not None and deleted.active is False
    assert [v.version for v in store.versions(**KEY)] == [1, 2]
    with pytest.raises(NotFoundError):
        store.get(**KEY)
    with pytest.raises(NotFoundError):
        store.delete(**KEY, actor="bob")
    with pytest.raises(NotFoundError):
        store.set_active(**KEY, active=True, actor="bob")
    entry = store.audit_entries(name=KEY["name"])[0]
    assert (entry.action, entry.actor, entry.version, entry.hash_after) == ("delete", "bob", 2, None)

    revived = apply_rule(store, revision=2)
    assert revived == ApplyResult("created", 3, "acme__escalate-vip-orders")
    assert store.get(**KEY).active is True
    assert [v.version for v in store.versions(**KEY)] == [1, 2, 3]
    assert store.audit_entries(name=KEY["name"])[0].detail["revived"] is True


def test_loadable_specs_is_ordered_and_filters_by_dag_id(store: RuleStore, apply_rule: ApplyRule) -> None:
    for name in ("zulu", "alpha", "mike"):
        apply_rule(store, name, active=name != "mike")
    apply_rule(store, "alpha", revision=2)
    rows = store.loadable_specs()
    assert [r.dag_id for r in rows] == ["acme__alpha", "acme__mike", "acme__zulu"]
    assert [r.active for r in rows] == [True, False, True]
    alpha = rows[0]
    spec = {"dag_id": "acme__alpha", "tasks": ["evaluate", "act"], "revision": 2}
    assert alpha == SpecRow("acme__alpha", canonical_json(spec), content_hash(spec), True)
    assert store.loadable_specs("acme__mike") == [rows[1]]
    assert store.loadable_specs("acme__nope") == []


def test_spec_by_hash_finds_old_versions(store: RuleStore, apply_rule: ApplyRule) -> None:
    apply_rule(store, revision=1)
    old = store.get(**KEY)
    apply_rule(store, revision=2)
    assert store.spec_by_hash(old.spec_hash) == old.spec_json
    assert store.spec_by_hash("no-such-hash") is None


def test_missing_definitions_raise_not_found(store: RuleStore, apply_rule: ApplyRule) -> None:
    with pytest.raises(NotFoundError, match="no rule acme/escalate-vip-orders"):
        store.get(**KEY)
    with pytest.raises(NotFoundError):
        store.versions(**KEY)
    apply_rule(store)
    with pytest.raises(NotFoundError, match="no version 7 of rule acme/escalate-vip-orders"):
        store.get(**KEY, version=7)


def test_audit_entries_filter_and_limit(store: RuleStore, apply_rule: ApplyRule) -> None:
    apply_rule(store, "one", organization="acme")
    apply_rule(store, "two", organization="globex")
    apply_rule(store, "one", organization="acme", revision=2)
    assert [(e.organization, e.name, e.action) for e in store.audit_entries()] == [
        ("acme", "one", "update"),
        ("globex", "two", "create"),
        ("acme", "one", "create"),
    ]
    assert [e.name for e in store.audit_entries(organization="globex")] == ["two"]
    assert len(store.audit_entries(limit=1)) == 1
    update = store.audit_entries(limit=1)[0]
    assert update.hash_before != update.hash_after
    assert update.detail["spec_hash_before"] != update.detail["spec_hash_after"]
    with pytest.raises(ValueError, match="limit"):
        store.audit_entries(limit=0)


def test_concurrent_applies_never_duplicate_a_version(store: RuleStore, apply_rule: ApplyRule) -> None:
    def attempt(revision: int) -> str:
        try:
            return apply_rule(store, revision=revision).status
        except ConflictError:
            return "conflict"  # lost a race on a unique key: safe to retry

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(attempt, [1, 1, 2, 2, 3, 3]))
    versions = [v.version for v in store.versions(**KEY)]
    assert versions == list(range(1, len(versions) + 1))
    assert outcomes.count("created") == 1
    assert outcomes.count("created") + outcomes.count("updated") == len(versions)
    assert len(store.audit_entries()) == len(versions)
