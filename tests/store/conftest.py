"""Fixtures for the rule store tests: a migrated store on SQLite and on Postgres."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rule_compiler.canonical import canonical_json, content_hash
from rule_compiler.store import ApplyResult, DefinitionWrite, RuleStore


@pytest.fixture
def store(any_db_url: str) -> Iterator[RuleStore]:
    """A migrated, empty store; each test using it runs on SQLite and on Postgres."""
    rule_store = RuleStore(any_db_url)
    rule_store.upgrade()
    yield rule_store
    rule_store.close()


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[RuleStore]:
    """A migrated, empty store on SQLite only."""
    rule_store = RuleStore(sqlite_url)
    rule_store.upgrade()
    yield rule_store
    rule_store.close()


ApplyRule = Callable[..., ApplyResult]


def _apply_rule(
    store: RuleStore,
    name: str = "escalate-vip-orders",
    *,
    organization: str = "acme",
    revision: int = 1,
    active: bool = True,
    dag_id: str | None = None,
    actor: str = "alice",
) -> ApplyResult:
    """Apply a small rule whose content (and so both hashes) depends on ``revision``."""
    source: dict[str, Any] = {
        "kind": "rule",
        "name": name,
        "organization": organization,
        "revision": revision,
    }
    dag = dag_id or f"{organization}__{name}"
    spec = {"dag_id": dag, "tasks": ["evaluate", "act"], "revision": revision}
    return store.apply(
        DefinitionWrite(
            organization=organization,
            kind="rule",
            name=name,
            dag_id=dag,
            source=source,
            source_hash=content_hash(source),
            spec_json=canonical_json(spec),
            spec_hash=content_hash(spec),
            active=active,
            actor=actor,
            compiler_version="0.1.0",
        )
    )


@pytest.fixture
def apply_rule() -> ApplyRule:
    """``apply_rule(store, name, revision=1, ...)``: apply a small rule (see :func:`_apply_rule`)."""
    return _apply_rule
