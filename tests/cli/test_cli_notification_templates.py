"""`rule-compiler` with notification templates: mixed folders, --templates, the store, recompiling
the rules that use a changed template (on SQLite and Postgres), and test-rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from rule_compiler.cli import main
from rule_compiler.compiler import DagSpec
from rule_compiler.store import RuleStore
from tests.conftest import DEMO_CATALOG, ROOT

TEMPLATES = ROOT / "include" / "templates"
TEMPLATED_RULES = ROOT / "include" / "rules-using-templates"
RULE_TEMPLATES = ROOT / "include" / "rule-templates"
RULES = ROOT / "include" / "rules"
RULE = TEMPLATED_RULES / "tell-vip-account-managers.yaml"
DAG_ID = "rule__acme__tell-vip-account-managers"


def _store(url: str) -> str:
    assert main(["--store", url, "db", "upgrade"]) == 0
    assert main(["--store", url, "catalog", "apply", str(DEMO_CATALOG)]) == 0
    return url


@pytest.fixture
def store_url(sqlite_url: str) -> str:
    return _store(sqlite_url)


def _changed_template(tmp_path: Path, change: Any) -> Path:
    """A folder holding vip-order.yaml after ``change(data)``."""
    data = yaml.safe_load((TEMPLATES / "vip-order.yaml").read_text())
    change(data)
    folder = tmp_path / "changed"
    folder.mkdir(exist_ok=True)
    (folder / "vip-order.yaml").write_text(yaml.safe_dump(data))
    return folder


def _params(store: RuleStore, dag_id: str = DAG_ID) -> dict[str, Any]:
    (row,) = store.loadable_specs(dag_id)
    return dict(DagSpec.model_validate_json(row.spec_json).task("tell-manager").params)


def test_demo_apply_stores_templates_first(capsys: pytest.CaptureFixture[str], store_url: str) -> None:
    """What scripts/setup-demo.sh runs: templates, rules and rules using templates in one apply."""
    capsys.readouterr()
    assert (
        main(
            [
                "--store",
                store_url,
                "apply",
                str(TEMPLATES),
                str(RULE_TEMPLATES),
                str(RULES),
                str(TEMPLATED_RULES),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.index("notification_template__acme__vip-order v1") < out.index(f"{DAG_ID} v1")
    assert "12 created" in out
    store = RuleStore(store_url)
    stored = store.get(organization="acme", kind="notification_template", name="vip-order")
    assert stored.dag_id == "notification_template__acme__vip-order"
    assert store.loadable_specs("notification_template__acme__vip-order") == []  # no DAG
    assert _params(store)["from_template"] == {"name": "vip-order", "hash": stored.spec_hash}
    assert main(["--store", store_url, "list"]) == 0
    assert "acme/vip-order  notification_template  v1  active" in capsys.readouterr().out


def test_rule_without_its_template_is_invalid(capsys: pytest.CaptureFixture[str], store_url: str) -> None:
    capsys.readouterr()
    assert main(["--store", store_url, "validate", "--format", "json", str(RULE)]) == 1
    (report,) = json.loads(capsys.readouterr().out)
    assert [e["path"] for e in report["errors"]] == ["actions[0].template"]
    assert "unknown notification template 'vip-order'" in report["errors"][0]["message"]
    assert "(notification templates of organization 'acme': none)" in report["errors"][0]["message"]


def test_templates_option_needs_no_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing_store = f"sqlite:///{tmp_path / 'never-created' / 'store.db'}"
    args = [
        "--store",
        missing_store,
        "validate",
        "--catalog",
        str(DEMO_CATALOG),
        "--templates",
        str(TEMPLATES),
    ]
    assert main([*args, str(RULE)]) == 0
    assert "1 valid, 0 invalid" in capsys.readouterr().out


def test_compile_reads_the_stored_template(capsys: pytest.CaptureFixture[str], store_url: str) -> None:
    assert main(["--store", store_url, "apply", str(TEMPLATES / "vip-order.yaml")]) == 0
    capsys.readouterr()
    assert main(["--store", store_url, "compile", str(RULE)]) == 0
    spec = json.loads(capsys.readouterr().out)["spec"]
    params = next(t["params"] for t in spec["tasks"] if t["task_id"] == "tell-manager")
    assert params["subject"].startswith("VIP order {{ record.id }}")
    assert main(["--store", store_url, "compile", str(TEMPLATES / "vip-order.yaml")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["kind"] == "notification_template"
    assert printed["template"]["channels"]["slack"]["text"].startswith(":star:")


def test_changed_template_recompiles_the_rules_that_use_it(
    capsys: pytest.CaptureFixture[str], any_db_url: str, tmp_path: Path
) -> None:
    url = _store(any_db_url)
    assert (
        main(["--store", url, "apply", str(TEMPLATES), str(RULE_TEMPLATES), str(RULES), str(TEMPLATED_RULES)])
        == 0
    )
    store = RuleStore(url)
    store.set_active(
        organization="acme", kind="rule", name="tell-vip-account-managers", active=False, actor="t"
    )
    before = store.get(organization="acme", kind="rule", name="tell-vip-account-managers")
    capsys.readouterr()

    def new_subject(data: dict[str, Any]) -> None:
        data["channels"]["email"]["subject"] = "Big VIP order {{ record.id }}"

    assert main(["--store", url, "apply", str(_changed_template(tmp_path, new_subject))]) == 0
    out = capsys.readouterr().out
    assert f"recompiled {DAG_ID} v2 (uses vip-order)" in out
    assert "note-big-vip-orders" not in out and "escalate-vip-orders" not in out  # they do not use it
    after = store.get(organization="acme", kind="rule", name="tell-vip-account-managers")
    assert after.source == before.source and after.spec_hash != before.spec_hash
    assert after.active is False  # a recompile keeps the stored state
    template = store.get(organization="acme", kind="notification_template", name="vip-order")
    assert template.version == 2
    params = _params(store)
    assert params["subject"] == "Big VIP order {{ record.id }}"
    assert params["from_template"] == {"name": "vip-order", "hash": template.spec_hash}
    # applying the same template again changes nothing
    assert main(["--store", url, "apply", str(tmp_path / "changed")]) == 0
    assert "1 unchanged" in capsys.readouterr().out
    store.close()


def test_template_change_that_breaks_a_stored_rule_stores_nothing(
    capsys: pytest.CaptureFixture[str], store_url: str, tmp_path: Path
) -> None:
    assert (
        main(["--store", store_url, "apply", str(TEMPLATES), str(RULE_TEMPLATES), str(TEMPLATED_RULES)]) == 0
    )
    capsys.readouterr()

    def slack_only(data: dict[str, Any]) -> None:
        del data["channels"]["email"]
        data["default"] = None

    assert main(["--store", store_url, "apply", str(_changed_template(tmp_path, slack_only))]) == 1
    out = capsys.readouterr().out
    assert "stored rule acme/tell-vip-account-managers (uses template 'vip-order')" in out
    assert "actions[0].template: notification template 'vip-order' has no content for channel 'email'" in out
    assert "nothing was stored" in out
    store = RuleStore(store_url)
    assert store.get(organization="acme", kind="notification_template", name="vip-order").version == 1


def test_bad_field_in_a_changed_template_is_reported_for_the_stored_rule(
    capsys: pytest.CaptureFixture[str], store_url: str, tmp_path: Path
) -> None:
    assert (
        main(["--store", store_url, "apply", str(TEMPLATES), str(RULE_TEMPLATES), str(TEMPLATED_RULES)]) == 0
    )
    capsys.readouterr()

    def typo(data: dict[str, Any]) -> None:
        data["channels"]["email"]["body"] = "{{ record.customer__nme }}"

    assert main(["--store", store_url, "apply", str(_changed_template(tmp_path, typo))]) == 1
    out = capsys.readouterr().out
    assert "in notification template 'vip-order': the template reads record.customer__nme" in out
    assert "(at channels.email.body)" in out


def test_invalid_template_in_a_batch_stores_nothing(
    capsys: pytest.CaptureFixture[str], store_url: str, tmp_path: Path
) -> None:
    def leak(data: dict[str, Any]) -> None:
        data["channels"]["slack"]["text"] = "{{ var.value.secret }}"

    folder = _changed_template(tmp_path, leak)
    (folder / "rule.yaml").write_text(RULE.read_text())
    capsys.readouterr()
    assert main(["--store", store_url, "apply", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "channels.slack.text: unknown template variable 'var'" in out
    assert "nothing was stored" in out
    assert RuleStore(store_url).list() == []


def test_test_rule_resolves_templates(
    capsys: pytest.CaptureFixture[str], store_url: str, tmp_path: Path
) -> None:
    event = tmp_path / "event.json"
    row = {"id": 5, "customer_id": 2, "status": "paid", "total": 1500, "customer__tier": "vip"}
    event.write_text(json.dumps({"table": "orders", "operation": "updated", "new": row}))
    args = ["--store", store_url, "test-rule", str(RULE), "--event", str(event)]
    capsys.readouterr()
    assert main([*args, "--templates", str(TEMPLATES)]) == 0
    assert "MATCHED" in capsys.readouterr().out
    assert main(args) == 2  # neither --templates nor the store has it
    assert "unknown notification template 'vip-order'" in capsys.readouterr().out
    assert main(["--store", store_url, "apply", str(TEMPLATES / "vip-order.yaml")]) == 0
    assert main(args) == 0  # read from the store
    capsys.readouterr()
    template = str(TEMPLATES / "vip-order.yaml")
    assert main(["--store", store_url, "test-rule", template, "--event", str(event)]) == 2
    assert "this is a notification template" in capsys.readouterr().out
