"""`rule-compiler restore KIND ORG/NAME VERSION`: an old version made current again, as a new version,
validated as today, audited with ``restored_from``, and what uses it recompiled with it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rule_compiler.cli import main
from rule_compiler.store import RuleStore
from tests.conftest import DEMO_CATALOG, ROOT

RULE = ROOT / "include" / "rules" / "flag-big-paid-orders.yaml"


@pytest.fixture
def url(any_db_url: str) -> str:
    assert main(["--store", any_db_url, "db", "upgrade"]) == 0
    assert main(["--store", any_db_url, "catalog", "apply", str(DEMO_CATALOG)]) == 0
    return any_db_url


def _apply(url: str, path: Path) -> None:
    assert main(["--store", url, "apply", "--actor", "alice", str(path)]) == 0


def _changed(tmp_path: Path, source: Path, **changes: object) -> Path:
    data = yaml.safe_load(source.read_text())
    data.update(changes)
    target = tmp_path / source.name
    target.write_text(yaml.safe_dump(data))
    return target


def test_restore_stores_the_old_version_as_a_new_one(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _apply(url, RULE)
    _apply(url, _changed(tmp_path, RULE, description="changed"))
    capsys.readouterr()
    assert main(["--store", url, "restore", "rule", "acme/flag-big-paid-orders", "1", "--actor", "bob"]) == 0
    assert "version 1 is now version 3" in capsys.readouterr().out
    store = RuleStore(url)
    try:
        current = store.get(organization="acme", kind="rule", name="flag-big-paid-orders")
        first = store.get(organization="acme", kind="rule", name="flag-big-paid-orders", version=1)
        assert (current.version, current.source_hash, current.spec_hash) == (
            3,
            first.source_hash,
            first.spec_hash,
        )
        [entry, *_] = store.audit_entries(kind="rule", name="flag-big-paid-orders")
        assert (entry.actor, entry.version, entry.detail["restored_from"]) == ("bob", 3, 1)
    finally:
        store.close()
    assert main(["--store", url, "restore", "rule", "acme/flag-big-paid-orders", "3"]) == 0
    assert "nothing stored" in capsys.readouterr().out


def test_restore_refuses_a_version_invalid_today_and_unknown_ones(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _apply(url, RULE)
    _apply(url, _changed(tmp_path, RULE, description="changed"))
    catalog = yaml.safe_load(DEMO_CATALOG.read_text())
    del catalog["connections"]["app_db"]["tables"]["orders"]["columns"]["priority"]
    narrower = tmp_path / "catalog.yaml"
    narrower.write_text(yaml.safe_dump(catalog))
    assert main(["--store", url, "catalog", "apply", str(narrower)]) == 0
    capsys.readouterr()
    assert main(["--store", url, "restore", "rule", "acme/flag-big-paid-orders", "1"]) == 1
    out = capsys.readouterr().out
    assert "priority" in out and "nothing was stored" in out
    assert main(["--store", url, "restore", "rule", "acme/flag-big-paid-orders", "7"]) == 2
    assert "no version 7 of rule acme/flag-big-paid-orders" in capsys.readouterr().err
    assert main(["--store", url, "restore", "rule", "flag-big-paid-orders", "1"]) == 2
    store = RuleStore(url)
    try:
        assert store.get(organization="acme", kind="rule", name="flag-big-paid-orders").version == 2
    finally:
        store.close()


def test_restoring_a_template_recompiles_the_rules_using_it(
    url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _apply(url, ROOT / "include" / "templates")
    _apply(url, ROOT / "include" / "rule-templates")
    _apply(url, ROOT / "include" / "rules-using-templates")
    data = yaml.safe_load((ROOT / "include" / "templates" / "big-order.yaml").read_text())
    data["condition"]["all"][1]["operator"] = "gt"  # every rule using it compiles to another spec
    changed = tmp_path / "big-order.yaml"
    changed.write_text(yaml.safe_dump(data))
    _apply(url, changed)
    store = RuleStore(url)
    try:
        before = store.get(organization="acme", kind="rule", name="note-big-vip-orders")
        assert before.version == 2
        capsys.readouterr()
        assert main(["--store", url, "restore", "condition_template", "acme/big-order", "1"]) == 0
        out = capsys.readouterr().out
        assert "version 1 is now version 3" in out
        assert "recompiled rule__acme__note-big-vip-orders v3 (uses big-order)" in out
        after = store.get(organization="acme", kind="rule", name="note-big-vip-orders")
        first = store.get(organization="acme", kind="rule", name="note-big-vip-orders", version=1)
        assert (after.version, after.spec_hash) == (3, first.spec_hash)
    finally:
        store.close()
