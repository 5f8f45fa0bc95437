"""Definition listings in SQL (migration 0005): the same pages as filtering the whole kind in Python,
on SQLite and Postgres, with names whose order depends on the collation; ``trigger_type`` follows
every write and is filled for definitions stored before the migration."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import sqlalchemy as sa

from rule_compiler.canonical import canonical_json, content_hash
from rule_compiler.store import DefinitionQuery, DefinitionWrite, RuleStore, StoredDefinition, migrate

# Code-point order differs from most locales' order for these (``_`` < ``a``-``z`` < ``é``; upper
# case first), and ``_`` and ``%`` are LIKE wildcards.
NAMES = ["ab", "a_c", "a-b", "a%z", "abc", "Zeta", "zeta", "é-rule", "b", "ba", "a"]
TRIGGERS = ["event", "schedule", "manual", "data"]


def _put(
    store: RuleStore,
    name: str,
    trigger: str,
    *,
    active: bool = True,
    organization: str = "acme",
    kind: str = "rule",
    revision: int = 1,
) -> None:
    source: dict[str, Any] = {"kind": kind, "name": name, "trigger": {"type": trigger}, "revision": revision}
    dag_id = f"{organization}__{kind}__{name}"
    spec = {"dag_id": dag_id, "revision": revision}
    store.apply(
        DefinitionWrite(
            organization=organization,
            kind=kind,
            name=name,
            dag_id=dag_id,
            source=source,
            source_hash=content_hash(source),
            spec_json=canonical_json(spec),
            spec_hash=content_hash(spec),
            active=active,
            actor="alice",
            compiler_version="0.1.0",
        )
    )


def _reference(
    rows: list[StoredDefinition], query: DefinitionQuery, sort: str, limit: int, offset: int
) -> tuple[list[str], int]:
    """What the REST view computed in Python before the listing moved into SQL."""
    kept = [
        r
        for r in rows
        if (query.active is None or r.active == query.active)
        and (query.trigger_type is None or r.source["trigger"]["type"] == query.trigger_type)
        and (query.name_prefix is None or r.name.startswith(query.name_prefix))
    ]
    field = sort.removeprefix("-")
    kept.sort(key=lambda r: (getattr(r, field), r.name), reverse=sort.startswith("-"))
    return [r.name for r in kept[offset : offset + limit]], len(kept)


def test_pages_match_the_python_listing_for_every_filter_and_sort(store: RuleStore) -> None:
    for i, name in enumerate(NAMES):
        _put(store, name, TRIGGERS[i % 4], active=i % 3 != 0)
    for i, name in enumerate(NAMES[::3]):  # later versions: updated_at order differs from created_at
        _put(store, name, TRIGGERS[(i + 1) % 4], active=True, revision=2)
    store.delete(organization="acme", kind="rule", name="ba", actor="alice")
    _put(store, "ab", "event", organization="globex")
    _put(store, "aa", "event", kind="workflow")
    rows = store.definitions_of_kind("acme", "rule")
    assert "ba" not in {r.name for r in rows}

    checked = 0
    for active, trigger, prefix in itertools.product(
        (None, True, False), (None, "event", "manual"), (None, "", "a", "a_", "a%", "Z", "é", "zz")
    ):
        query = DefinitionQuery("acme", "rule", active=active, trigger_type=trigger, name_prefix=prefix)
        for sort in ("name", "-name", "created_at", "-created_at", "updated_at", "-updated_at"):
            for limit, offset in ((50, 0), (2, 1), (3, 0), (1, 20)):
                page = store.query_definitions(query, sort=sort, limit=limit, offset=offset)
                expected = _reference(rows, query, sort, limit, offset)
                assert ([r.name for r in page.items], page.total) == expected, (query, sort, limit, offset)
                checked += bool(page.items)
    assert checked > 300  # a quarter of the combinations select something
    [first] = store.query_definitions(DefinitionQuery("acme", "rule"), limit=1).items
    assert first == store.get(organization="acme", kind="rule", name=first.name)


def test_trigger_type_follows_the_current_version(store: RuleStore) -> None:
    _put(store, "r", "event")
    by_trigger = DefinitionQuery("acme", "rule", trigger_type="schedule")
    assert store.query_definitions(by_trigger).total == 0
    _put(store, "r", "schedule", revision=2)
    assert [r.name for r in store.query_definitions(by_trigger).items] == ["r"]
    store.delete(organization="acme", kind="rule", name="r", actor="alice")
    assert store.query_definitions(by_trigger).total == 0


def test_unknown_sort_and_bad_pages_are_refused(store: RuleStore) -> None:
    query = DefinitionQuery("acme", "rule")
    with pytest.raises(ValueError, match="unknown sort key"):
        store.query_definitions(query, sort="dag_id")
    with pytest.raises(ValueError, match="limit must be at least 1"):
        store.query_definitions(query, limit=0)


def test_migration_0005_fills_trigger_type_of_stored_definitions(any_db_url: str) -> None:
    engine = sa.create_engine(any_db_url)
    with engine.begin() as conn:
        migrate.upgrade(conn, "0004")
        now = "2026-11-20 10:00:00"
        for pk, (name, source) in enumerate(
            [
                ("r1", {"trigger": {"type": "event"}}),
                ("r2", {"trigger": "not an object"}),
                ("t1", {"body": {}}),
            ],
            start=1,
        ):
            conn.execute(
                sa.text(
                    "INSERT INTO definitions (id, organization, kind, name, dag_id, active, current_version,"
                    " created_at, updated_at) VALUES (:pk, 'acme', 'rule', :name, :name, :t, 2, :now, :now)"
                ),
                {"pk": pk, "name": name, "now": now, "t": True},
            )
            for version, body in ((1, {"trigger": {"type": "manual"}}), (2, source)):
                conn.execute(
                    sa.text(
                        "INSERT INTO definition_versions (definition_id, version, source_json, source_hash,"
                        " actor, created_at) VALUES (:pk, :v, :src, 'h', 'alice', :now)"
                    ),
                    {"pk": pk, "v": version, "src": canonical_json(body), "now": now},
                )
        migrate.upgrade(conn, "head")
        filled: dict[str, str | None] = dict(
            conn.execute(sa.text("SELECT name, trigger_type FROM definitions")).all()
        )
        assert filled == {"r1": "event", "r2": None, "t1": None}  # the current version's, not version 1's
        migrate.downgrade(conn, "0004")
        assert "trigger_type" not in {c["name"] for c in sa.inspect(conn).get_columns("definitions")}
        assert "api_rate_limits" not in sa.inspect(conn).get_table_names()
    engine.dispose()
