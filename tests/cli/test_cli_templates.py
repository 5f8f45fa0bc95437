"""`rule-compiler` with condition templates: mixed folders, --templates, recompiling dependents."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from rule_compiler.cli import main
from rule_compiler.store import RuleStore
from tests.conftest import DEMO_CATALOG, ROOT

TEMPLATES = ROOT / "include" / "templates"
RULE_TEMPLATES = ROOT / "include" / "rule-templates"
TEMPLATED_RULES = ROOT / "include" / "rules-using-templates"
RULES = ROOT / "include" / "rules"


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    assert main(["--store", url, "db", "upgrade"]) == 0
    assert main(["--store", url, "catalog", "apply", str(DEMO_CATALOG)]) == 0
    return url


def _template(tmp_path: Path, **changes: object) -> Path:
    folder = tmp_path / "templates"
    folder.mkdir(exist_ok=True)
    data = yaml.safe_load((TEMPLATES / "big-order.yaml").read_text())
    data.update(changes)
    path = folder / "big-order.yaml"
    path.write_text(yaml.safe_dump(data))
    return folder


def test_validate_mixed_folder(capsys: pytest.CaptureFixture[str], store_url: str) -> None:
    assert (
        main(["--store", store_url, "validate", str(TEMPLATED_RULES), str(TEMPLATES), str(RULE_TEMPLATES)])
        == 0
    )
    out = capsys.readouterr().out
    assert out.index("big-order.yaml") < out.index("note-big-vip-orders.yaml")  # templates first
    assert "7 valid, 0 invalid" in out  # every template kind and the three rules using them


def test_validate_with_templates_option_needs_no_store(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["validate", "--catalog", str(DEMO_CATALOG), "--templates", str(TEMPLATES), str(RULE_TEMPLATES)]
    assert main([*args, str(TEMPLATED_RULES), str(RULES)]) == 0
    assert "9 valid, 0 invalid" in capsys.readouterr().out


def test_rule_without_its_template_is_invalid(capsys: pytest.CaptureFixture[str], store_url: str) -> None:
    capsys.readouterr()
    assert main(["--store", store_url, "validate", "--format", "json", str(TEMPLATED_RULES)]) == 1
    report = {Path(entry["file"]).stem: entry for entry in json.loads(capsys.readouterr().out)}
    assert report["note-big-vip-orders"]["errors"][0]["path"] == "conditions.all[0].use"
    assert "unknown condition template 'big-order'" in report["note-big-vip-orders"]["errors"][0]["message"]
    assert [e["path"] for e in report["deprioritise-shipped-orders"]["errors"]] == ["use"]


def test_apply_stores_templates_first_and_compile_reads_them(
    capsys: pytest.CaptureFixture[str], store_url: str
) -> None:
    assert (
        main(["--store", store_url, "apply", str(TEMPLATED_RULES), str(TEMPLATES), str(RULE_TEMPLATES)]) == 0
    )
    out = capsys.readouterr().out
    assert out.index("condition_template__acme__big-order v1") < out.index(
        "rule__acme__note-big-vip-orders v1"
    )
    store = RuleStore(store_url)
    assert [r.dag_id for r in store.loadable_specs()] == [
        "rule__acme__deprioritise-shipped-orders",
        "rule__acme__note-big-vip-orders",
        "rule__acme__tell-vip-account-managers",
    ]
    assert main(["--store", store_url, "compile", str(TEMPLATED_RULES / "note-big-vip-orders.yaml")]) == 0
    spec = json.loads(capsys.readouterr().out)["spec"]
    assert spec["tasks"][0]["params"]["conditions"]["all"][0]["all"][1]["value"] == 500
    assert main(["--store", store_url, "compile", str(TEMPLATES / "big-order.yaml")]) == 0
    assert json.loads(capsys.readouterr().out)["kind"] == "condition_template"
    assert (
        main(["--store", store_url, "apply", str(TEMPLATED_RULES), str(TEMPLATES), str(RULE_TEMPLATES)]) == 0
    )
    assert "7 unchanged" in capsys.readouterr().out


def test_changed_template_recompiles_stored_rules_that_use_it(
    capsys: pytest.CaptureFixture[str], store_url: str, tmp_path: Path
) -> None:
    assert (
        main(
            [
                "--store",
                store_url,
                "apply",
                str(TEMPLATES),
                str(RULE_TEMPLATES),
                str(TEMPLATED_RULES),
                str(RULES),
            ]
        )
        == 0
    )
    store = RuleStore(store_url)
    store.set_active(organization="acme", kind="rule", name="note-big-vip-orders", active=False, actor="t")
    before = store.get(organization="acme", kind="rule", name="note-big-vip-orders")
    capsys.readouterr()
    data = yaml.safe_load((TEMPLATES / "big-order.yaml").read_text())
    data["condition"]["all"].append({"field": "priority", "operator": "is_null"})
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "big-order.yaml").write_text(yaml.safe_dump(data))
    assert main(["--store", store_url, "apply", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "recompiled rule__acme__note-big-vip-orders v2 (uses big-order)" in out
    assert "flag-big-paid-orders" not in out  # does not use the template
    after = store.get(organization="acme", kind="rule", name="note-big-vip-orders")
    assert after.version == 2 and after.source == before.source and after.spec_hash != before.spec_hash
    assert after.active is False  # a recompile keeps the stored state
    assert "priority" in after.spec_json


def test_template_change_that_breaks_a_stored_rule_stores_nothing(
    capsys: pytest.CaptureFixture[str], store_url: str, tmp_path: Path
) -> None:
    assert (
        main(["--store", store_url, "apply", str(TEMPLATES), str(RULE_TEMPLATES), str(TEMPLATED_RULES)]) == 0
    )
    capsys.readouterr()
    data = yaml.safe_load((TEMPLATES / "big-order.yaml").read_text())
    data["parameters"]["currency"] = {"type": "string"}  # new required parameter: the rule lacks it
    data["condition"]["all"].append({"field": "note", "operator": "equals", "value": {"param": "currency"}})
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "big-order.yaml").write_text(yaml.safe_dump(data))
    assert main(["--store", store_url, "apply", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "stored rule acme/note-big-vip-orders (uses template 'big-order')" in out
    assert "conditions.all[0].with: missing parameter 'currency'" in out
    assert "nothing was stored" in out
    store = RuleStore(store_url)
    assert store.get(organization="acme", kind="condition_template", name="big-order").version == 1
    # the same change with the fixed rule in the batch goes through (the batch's rule wins)
    rule = yaml.safe_load((TEMPLATED_RULES / "note-big-vip-orders.yaml").read_text())
    rule["conditions"]["all"][0]["with"]["currency"] = "EUR"
    (folder / "rule.yaml").write_text(yaml.safe_dump(rule))
    assert main(["--store", store_url, "apply", str(folder)]) == 0
    assert store.get(organization="acme", kind="rule", name="note-big-vip-orders").version == 2


def test_invalid_template_in_batch(
    capsys: pytest.CaptureFixture[str], store_url: str, tmp_path: Path
) -> None:
    folder = _template(
        tmp_path,
        parameters={"min_total": {"type": "number"}, "statuses": {"type": "list"}, "x": {"type": "string"}},
    )
    shutil.copy(TEMPLATED_RULES / "note-big-vip-orders.yaml", folder / "rule.yaml")
    assert main(["--store", store_url, "apply", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "parameters.x: parameter 'x' is declared but never used" in out
    assert "nothing was stored" in out
