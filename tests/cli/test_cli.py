"""The `rule-compiler` command as a user runs it: exit codes, messages, idempotent apply."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rule_compiler.cli import main
from rule_compiler.store import RuleStore
from tests.conftest import DEMO_CATALOG, LOCAL_FIXTURES, ROOT

RULES = ROOT / "include" / "rules"


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    assert main(["--store", url, "db", "upgrade"]) == 0
    assert main(["--store", url, "catalog", "apply", str(DEMO_CATALOG)]) == 0
    return url


def test_validate_good_files(capsys: pytest.CaptureFixture[str], store_url: str) -> None:
    assert main(["--store", store_url, "validate", str(RULES)]) == 0
    out = capsys.readouterr().out
    assert "5 valid, 0 invalid" in out


def test_validate_lists_every_problem_with_paths(capsys: pytest.CaptureFixture[str]) -> None:
    bad = LOCAL_FIXTURES / "bad"
    code = main(
        [
            "validate",
            "--catalog",
            str(DEMO_CATALOG),
            str(bad / "dependency-cycle.yaml"),
            str(bad / "bad-cron.yaml"),
            str(LOCAL_FIXTURES / "good" / "escalate-vip-orders.yaml"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "actions: dependency cycle" in out and "trigger.cron: '61 * * * *' is not a valid cron" in out
    assert "1 valid, 2 invalid" in out


def test_validate_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "validate",
            "--format",
            "json",
            "--catalog",
            str(DEMO_CATALOG),
            str(LOCAL_FIXTURES / "bad" / "python-tag.yaml"),
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert report[0]["valid"] is False
    assert report[0]["errors"][0]["path"] == "(document)" and "tag" in report[0]["errors"][0]["message"]


def test_validate_without_catalog_says_how_to_add_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    main(["--store", url, "db", "upgrade"])
    assert main(["--store", url, "validate", str(RULES / "flag-big-paid-orders.yaml")]) == 1
    assert "rule-compiler catalog apply" in capsys.readouterr().out


def test_apply_is_idempotent_and_versions_changes(
    capsys: pytest.CaptureFixture[str], store_url: str, tmp_path: Path
) -> None:
    assert main(["--store", store_url, "apply", str(RULES)]) == 0
    assert "5 created" in capsys.readouterr().out
    assert main(["--store", store_url, "apply", str(RULES)]) == 0
    assert "5 unchanged" in capsys.readouterr().out
    edited = tmp_path / "flag.yaml"
    shutil.copy(RULES / "flag-big-paid-orders.yaml", edited)
    edited.write_text(edited.read_text().replace("value: 1000", "value: 2000"))
    assert main(["--store", store_url, "apply", str(edited)]) == 0
    assert "updated   rule__acme__flag-big-paid-orders v2" in capsys.readouterr().out
    store = RuleStore(store_url)
    assert [
        v.version for v in store.versions(organization="acme", kind="rule", name="flag-big-paid-orders")
    ] == [1, 2]
    assert len(store.audit_entries(organization="acme", name="flag-big-paid-orders")) == 2


def test_apply_stores_nothing_when_any_file_is_invalid(
    capsys: pytest.CaptureFixture[str], store_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "rules"
    shutil.copytree(RULES, folder)
    shutil.copy(LOCAL_FIXTURES / "bad" / "unknown-action-type.yaml", folder)
    assert main(["--store", store_url, "apply", str(folder)]) == 1
    assert "nothing was stored" in capsys.readouterr().out
    assert RuleStore(store_url).list() == []


def test_compile_prints_the_spec(capsys: pytest.CaptureFixture[str], store_url: str) -> None:
    capsys.readouterr()
    assert main(["--store", store_url, "compile", str(RULES / "escalate-vip-orders.yaml")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["spec"]["dag_id"] == "rule__acme__escalate-vip-orders" and len(printed["spec_hash"]) == 64


def test_list_export_and_catalog_show(
    capsys: pytest.CaptureFixture[str], store_url: str, tmp_path: Path
) -> None:
    main(["--store", store_url, "apply", str(RULES)])
    capsys.readouterr()
    assert main(["--store", store_url, "list"]) == 0
    assert (
        "acme/escalate-vip-orders  rule  v1  active  rule__acme__escalate-vip-orders"
        in capsys.readouterr().out
    )
    assert main(["--store", store_url, "export", "--out", str(tmp_path / "out")]) == 0
    exported = tmp_path / "out" / "acme" / "escalate-vip-orders.yaml"
    assert main(["--store", store_url, "apply", "--dry-run", str(exported)]) == 0
    assert main(["--store", store_url, "catalog", "show", "--org", "acme"]) == 0
    assert "soft_delete_column: deleted" in capsys.readouterr().out


def test_unreachable_store_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--store", "postgresql+psycopg2://nobody@127.0.0.1:1/none", "list"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: rule store:") and "127.0.0.1:1" in err


def test_missing_path_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "no/such/file.yaml"]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_console_script_runs(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rule_compiler.cli", "validate", "--catalog", str(DEMO_CATALOG), str(RULES)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "5 valid" in result.stdout
