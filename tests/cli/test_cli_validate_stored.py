"""`rule-compiler validate --stored`: every stored definition re-checked against today's validation.

Definitions are stored through the real `apply` (valid today); then some are made invalid the way a
definition stored before a check existed is: a row written around validation (the store's own
`apply`, as `register` calls it, with an edited source), or the real `apply` with one check switched
off. The command lists exactly those, with their JSON paths and reasons, exits 1, and changes
nothing. Runs on SQLite and on Postgres.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from rule_compiler.canonical import content_hash
from rule_compiler.cli import main
from rule_compiler.compiler import COMPILER_VERSION
from rule_compiler.store import DefinitionWrite, RuleStore
from tests.conftest import DEMO_CATALOG, ROOT

APPLIED = [
    ROOT / "include" / "templates",  # condition, notification and workflow templates
    ROOT / "include" / "rule-templates",  # a rule template
    ROOT / "include" / "rules-using-templates",  # three rules using them
    ROOT / "include" / "rules" / "flag-big-paid-orders.yaml",
    ROOT / "include" / "reports" / "weekly-sales.yaml",
]
CHECKED = 9
ADVICE = "Refused definitions keep running as they were compiled, under the run-time guards"


@pytest.fixture
def store_url(any_db_url: str) -> str:
    """A store holding acme's catalog and six definitions, all valid today."""
    assert main(["--store", any_db_url, "db", "upgrade"]) == 0
    assert main(["--store", any_db_url, "catalog", "apply", str(DEMO_CATALOG)]) == 0
    assert main(["--store", any_db_url, "apply", *map(str, APPLIED)]) == 0
    return any_db_url


def _run(capsys: pytest.CaptureFixture[str], url: str, *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["--store", url, "validate", "--stored", *extra])
    return code, capsys.readouterr().out


def _store_around_validation(url: str, kind: str, name: str, edit: dict[str, Any]) -> None:
    """Store a new version of a definition whose source has ``edit`` applied and whose spec is the
    current one, as a definition registered before today's checks would be; no validation runs."""
    store = RuleStore(url)
    try:
        stored = store.get(organization="acme", kind=kind, name=name)
        source = {**stored.source, **edit}
        store.apply(
            DefinitionWrite(
                organization="acme",
                kind=kind,
                name=name,
                dag_id=stored.dag_id,
                source=source,
                source_hash=content_hash(source),
                spec_json=stored.spec_json,
                spec_hash=stored.spec_hash,
                active=stored.active,
                actor="before-hardening",
                compiler_version=COMPILER_VERSION,
            )
        )
    finally:
        store.close()


def _snapshot(url: str) -> list[tuple[Any, ...]]:
    store = RuleStore(url)
    try:
        rows = store.list(include_deleted=True)
        state = [(r.organization, r.kind, r.name, r.current_version, r.spec_hash, r.active) for r in rows]
        return [
            *state,
            ("audit", len(store.audit_entries(limit=1000))),
            ("catalog", store.catalog_version("acme")),
        ]
    finally:
        store.close()


def test_every_stored_definition_valid_today_passes(
    capsys: pytest.CaptureFixture[str], store_url: str
) -> None:
    code, out = _run(capsys, store_url)
    assert code == 0, out
    assert out.strip() == f"{CHECKED} checked, 0 refused"


def test_definitions_stored_before_a_check_are_listed_with_paths_and_reasons(
    capsys: pytest.CaptureFixture[str],
    store_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # 1. the store's row written around validation: a report whose storage path climbs out
    report = yaml.safe_load((ROOT / "include" / "reports" / "weekly-sales.yaml").read_text())
    deliver = [*report["deliver"][:1], {"type": "storage", "path": "../globex/{{ run.interval_end }}"}]
    _store_around_validation(store_url, "report", "weekly-sales", {"deliver": deliver})
    # 2. the real apply with one of today's checks switched off: a new report, an absolute path
    monkeypatch.setattr("rule_compiler.validation.report_checks.static_path_problem", lambda _path: None)
    later = {**report, "name": "monthly-sales", "deliver": [{"type": "storage", "path": "/etc/reports"}]}
    (tmp_path / "monthly.yaml").write_text(yaml.safe_dump(later))
    assert main(["--store", store_url, "apply", str(tmp_path / "monthly.yaml")]) == 0
    monkeypatch.undo()
    # 3. a rule whose condition names a column the catalog does not have
    conditions = {
        "all": [
            {"field": "status", "operator": "equals", "value": "paid"},
            {"field": "no_such_column", "operator": "gte", "value": 1},
        ]
    }
    _store_around_validation(store_url, "rule", "flag-big-paid-orders", {"conditions": conditions})
    before = _snapshot(store_url)

    code, out = _run(capsys, store_url)

    assert code == 1, out
    lines = out.splitlines()
    assert "✗ report acme/weekly-sales (v2, active): 1 problem" in lines
    assert "    deliver[1].path: the folder may not climb out of the location ('..')" in lines
    assert "✗ report acme/monthly-sales (v1, active): 1 problem" in lines
    assert (
        "    deliver[0].path: the folder is relative to the storage location: remove the leading '/' "
        "(no absolute paths)"
    ) in lines
    refused_rule = lines.index("✗ rule acme/flag-big-paid-orders (v2, active): 1 problem")
    assert lines[refused_rule + 1].startswith("    conditions.all[1].field: ")
    assert "no_such_column" in lines[refused_rule + 1]
    assert f"{CHECKED + 1} checked, 3 refused" in lines
    assert any(line.startswith(ADVICE) for line in lines)
    assert sum(line.startswith("✗ ") for line in lines) == 3  # the valid ones are not listed
    assert _snapshot(store_url) == before  # nothing modified

    code, out = _run(capsys, store_url, "--format", "json")
    assert code == 1
    report_json = json.loads(out)
    assert (report_json["checked"], report_json["refused"]) == (CHECKED + 1, 3)
    assert (report_json["catalogs_checked"], report_json["catalogs_refused"]) == (1, 0)
    refused = {(d["kind"], d["name"]): d for d in report_json["definitions"] if not d["valid"]}
    assert sorted(refused) == [
        ("report", "monthly-sales"),
        ("report", "weekly-sales"),
        ("rule", "flag-big-paid-orders"),
    ]
    weekly = refused[("report", "weekly-sales")]
    assert weekly["errors"] == [
        {
            "path": "deliver[1].path",
            "message": "the folder may not climb out of the location ('..')",
            "code": "invalid",
        }
    ]
    assert (weekly["organization"], weekly["version"], weekly["dag_id"], weekly["active"]) == (
        "acme",
        2,
        "report__acme__weekly-sales",
        True,
    )
    valid = [d for d in report_json["definitions"] if d["valid"]]
    assert {d["kind"] for d in valid} == {
        "condition_template",
        "notification_template",
        "rule",
        "rule_template",
        "workflow_template",
    }
    assert all(d["errors"] == [] for d in valid)
    assert _snapshot(store_url) == before


def test_a_refused_template_is_listed_and_so_is_each_rule_using_it(
    capsys: pytest.CaptureFixture[str], store_url: str
) -> None:
    _store_around_validation(store_url, "notification_template", "vip-order", {"default": {"subject": 5}})

    code, out = _run(capsys, store_url, "--format", "json")

    assert code == 1
    refused = {d["name"]: d["errors"] for d in json.loads(out)["definitions"] if not d["valid"]}
    assert sorted(refused) == ["tell-vip-account-managers", "vip-order"]
    assert [error["path"] for error in refused["vip-order"]] == ["default.body", "default.subject"]
    assert [(error["path"], error["code"]) for error in refused["tell-vip-account-managers"]] == [
        ("actions[0].template", "unknown_template"),
        ("(document)", "template_refused"),
    ]
    note = refused["tell-vip-account-managers"][1]["message"]
    assert note == (
        "uses the stored notification template 'vip-order', which is refused itself (listed too): "
        "fix and apply the template first"
    )


def test_a_catalog_refused_today_is_listed_and_its_definitions_cannot_be_checked(
    capsys: pytest.CaptureFixture[str], store_url: str
) -> None:
    catalog = {**yaml.safe_load(DEMO_CATALOG.read_text()), "frobnicate": True}
    store = RuleStore(store_url)
    try:
        store.put_catalog(organization="acme", catalog=catalog, actor="before-hardening")
    finally:
        store.close()

    code, out = _run(capsys, store_url)

    assert code == 1
    assert "✗ catalog of acme (v2): 1 problem" in out
    assert "    frobnicate: unknown key 'frobnicate' is not permitted here (check the spelling)" in out
    assert "(catalog): cannot be checked: the organization's stored catalog is refused" in out
    assert f"{CHECKED} checked, 5 refused; 1 of 1 catalogs refused" in out  # templates need no catalog


def test_org_limits_the_check_and_an_empty_store_is_fine(
    capsys: pytest.CaptureFixture[str], store_url: str, tmp_path: Path
) -> None:
    code, out = _run(capsys, store_url, "--org", "globex")
    assert (code, out.strip()) == (0, "no definitions stored")
    code, out = _run(capsys, store_url, "--org", "acme")
    assert (code, out.strip()) == (0, f"{CHECKED} checked, 0 refused")


@pytest.mark.parametrize(
    "argv",
    [
        ["validate"],
        ["validate", "--stored", str(ROOT / "include" / "rules")],
        ["validate", "--stored", "--catalog", str(DEMO_CATALOG)],
        ["validate", "--org", "acme", str(ROOT / "include" / "rules")],
    ],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("error: ")
