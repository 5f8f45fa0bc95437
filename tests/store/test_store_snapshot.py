"""The loader's last-known-good snapshot: written on success, served when the store is down."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from rule_compiler.errors import StoreError
from rule_compiler.store import ApplyResult, RuleStore, SpecLoad, SpecRow, load_specs
from rule_compiler.store.snapshot import dag_entries_folder, read_snapshot, write_snapshot

ApplyRule = Callable[..., ApplyResult]
DOWN = "postgresql+psycopg2://postgres:pw@127.0.0.1:1/x"


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    return tmp_path / "state" / "specs-snapshot.json"


def _loaded(store: RuleStore, snapshot: Path, apply_rule: ApplyRule) -> list[SpecRow]:
    apply_rule(store, "alpha")
    apply_rule(store, "beta", active=False)
    result = load_specs(store, snapshot)
    assert result.source == "store" and result.error is None
    return result.specs


def test_full_load_writes_the_snapshot(store: RuleStore, snapshot: Path, apply_rule: ApplyRule) -> None:
    specs = _loaded(store, snapshot, apply_rule)
    assert [s.dag_id for s in specs] == ["acme__alpha", "acme__beta"]
    assert read_snapshot(snapshot) == specs
    # no temp file left behind; the per-DAG folder beside it
    assert sorted(p.name for p in snapshot.parent.iterdir()) == [snapshot.name, snapshot.name + ".d"]
    assert sorted(p.name for p in dag_entries_folder(snapshot).iterdir()) == [
        "acme__alpha.json",
        "acme__beta.json",
    ]


def test_unchanged_specs_do_not_rewrite_the_snapshot(
    sqlite_store: RuleStore, snapshot: Path, apply_rule: ApplyRule
) -> None:
    _loaded(sqlite_store, snapshot, apply_rule)
    os.utime(snapshot, ns=(1_000_000_000, 1_000_000_000))
    inode = snapshot.stat().st_ino
    load_specs(sqlite_store, snapshot)
    assert snapshot.stat().st_mtime_ns == 1_000_000_000
    assert snapshot.stat().st_ino == inode

    sqlite_store.set_active(organization="acme", kind="rule", name="beta", active=True, actor="ops")
    load_specs(sqlite_store, snapshot)
    assert snapshot.stat().st_mtime_ns != 1_000_000_000
    assert [s.active for s in read_snapshot(snapshot)] == [True, True]


def test_a_single_dag_load_does_not_touch_the_snapshot(
    sqlite_store: RuleStore, snapshot: Path, apply_rule: ApplyRule
) -> None:
    apply_rule(sqlite_store, "alpha")
    result = load_specs(sqlite_store, snapshot, dag_id="acme__alpha")
    assert (result.source, [s.dag_id for s in result.specs]) == ("store", ["acme__alpha"])
    assert not snapshot.exists()


def test_store_down_serves_the_snapshot(
    sqlite_store: RuleStore, snapshot: Path, apply_rule: ApplyRule
) -> None:
    specs = _loaded(sqlite_store, snapshot, apply_rule)
    down = RuleStore(DOWN)
    result = load_specs(down, snapshot)
    assert result.source == "snapshot"
    assert result.specs == specs
    assert result.error is not None and "cannot reach the rule store" in result.error
    assert "pw@" not in result.error

    one = load_specs(down, snapshot, dag_id="acme__beta")
    assert (one.source, one.specs) == ("dag-cache", [specs[1]])  # its own cache file
    assert load_specs(down, snapshot, dag_id="acme__gone").specs == []


def test_any_store_error_falls_back(snapshot: Path, apply_rule: ApplyRule, sqlite_store: RuleStore) -> None:
    _loaded(sqlite_store, snapshot, apply_rule)

    class Broken(RuleStore):
        def loadable_specs(self, dag_id: str | None = None) -> list[SpecRow]:
            raise StoreError("the rule store at sqlite:// has no schema")

    result = load_specs(Broken("sqlite://"), snapshot)
    assert (result.source, len(result.specs), result.error) == (
        "snapshot",
        2,
        "the rule store at sqlite:// has no schema",
    )


def test_store_down_without_snapshot_is_empty(snapshot: Path) -> None:
    result = load_specs(RuleStore(DOWN), snapshot)
    assert result == SpecLoad([], "empty", result.error)
    assert result.error is not None and "cannot reach the rule store" in result.error
    assert f"no snapshot at {snapshot}" in result.error


@pytest.mark.parametrize(
    ("corrupt", "reason"),
    [
        (lambda text: text[: len(text) // 2], "checksum"),
        (lambda text: "not json\n[]", "header is not JSON"),
        (lambda text: "", "no header line"),
        (lambda text: text.replace('"format":1', '"format":99'), "unknown snapshot format"),
        (lambda text: text.replace('"acme__alpha"', '"acme__evil"'), "checksum"),
    ],
    ids=["truncated", "garbage", "empty-file", "future-format", "edited"],
)
def test_corrupt_snapshot_is_empty_with_a_clear_error(
    sqlite_store: RuleStore,
    snapshot: Path,
    apply_rule: ApplyRule,
    corrupt: Callable[[str], str],
    reason: str,
) -> None:
    _loaded(sqlite_store, snapshot, apply_rule)
    snapshot.write_text(corrupt(snapshot.read_text()))
    result = load_specs(RuleStore(DOWN), snapshot)
    assert (result.source, result.specs) == ("empty", [])
    assert result.error is not None
    assert f"the snapshot {snapshot} is unusable" in result.error and reason in result.error

    load_specs(sqlite_store, snapshot)  # the next good load repairs it
    assert len(read_snapshot(snapshot)) == 2


def test_snapshot_rows_are_type_checked(snapshot: Path) -> None:
    write_snapshot(snapshot, [SpecRow("d", "{}", "h", True)])
    head, body = snapshot.read_text().split("\n", 1)
    bad_body = json.dumps([{"dag_id": "d", "spec_json": "{}", "spec_hash": "h", "active": "yes"}])
    header = json.loads(head)
    header["body_sha256"] = hashlib.sha256(bad_body.encode()).hexdigest()
    snapshot.write_text(json.dumps(header) + "\n" + bad_body)
    with pytest.raises(ValueError, match="no boolean 'active'"):
        read_snapshot(snapshot)
    assert body  # the original was well formed


def test_unwritable_snapshot_does_not_fail_the_load(
    sqlite_store: RuleStore, tmp_path: Path, apply_rule: ApplyRule
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    apply_rule(sqlite_store, "alpha")
    result = load_specs(sqlite_store, blocker / "snapshot.json")
    assert (result.source, len(result.specs)) == ("store", 1)


def test_a_named_dag_is_read_from_its_cache_file_without_the_store(
    sqlite_store: RuleStore, snapshot: Path, apply_rule: ApplyRule
) -> None:
    specs = _loaded(sqlite_store, snapshot, apply_rule)
    result = load_specs(RuleStore(DOWN), snapshot, dag_id="acme__beta")  # the store is not even reachable
    assert (result.source, result.specs, result.error) == ("dag-cache", [specs[1]], None)


def test_the_dag_cache_follows_edits_and_deletions_on_the_next_full_load(
    sqlite_store: RuleStore, snapshot: Path, apply_rule: ApplyRule
) -> None:
    _loaded(sqlite_store, snapshot, apply_rule)
    apply_rule(sqlite_store, "alpha", revision=2)
    sqlite_store.delete(organization="acme", kind="rule", name="beta", actor="ops")
    fresh = load_specs(sqlite_store, snapshot).specs
    assert [p.name for p in dag_entries_folder(snapshot).iterdir()] == ["acme__alpha.json"]
    assert load_specs(RuleStore(DOWN), snapshot, dag_id="acme__alpha").specs == fresh
    assert load_specs(sqlite_store, snapshot, dag_id="acme__beta").specs == []


def test_an_unreadable_dag_cache_file_falls_back_to_the_store(
    sqlite_store: RuleStore, snapshot: Path, apply_rule: ApplyRule
) -> None:
    specs = _loaded(sqlite_store, snapshot, apply_rule)
    (dag_entries_folder(snapshot) / "acme__alpha.json").write_text("{torn")
    result = load_specs(sqlite_store, snapshot, dag_id="acme__alpha")
    assert (result.source, result.specs) == ("store", [specs[0]])


def test_a_deleted_dag_cache_folder_is_rebuilt(
    sqlite_store: RuleStore, snapshot: Path, apply_rule: ApplyRule
) -> None:
    _loaded(sqlite_store, snapshot, apply_rule)
    for entry in dag_entries_folder(snapshot).iterdir():
        entry.unlink()
    dag_entries_folder(snapshot).rmdir()
    load_specs(sqlite_store, snapshot)
    assert len(list(dag_entries_folder(snapshot).iterdir())) == 2
