"""The `rule-compiler` console script's Airflow side: connections resolved through Airflow.

`test-rule --connection app_db` reads related rows from the demo database behind AIRFLOW_CONN_APP_DB,
and `catalog sync` reflects it into the organization's catalog (a new version only when it changed).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from rule_engine.console_script import main

from rule_compiler.catalog import Catalog
from rule_compiler.store import RuleStore
from rule_compiler.store.tables import catalogs
from tests.conftest import ROOT

pytestmark = pytest.mark.airflow

RULE: dict[str, Any] = {
    "kind": "rule",
    "name": "vip-paid",
    "organization": "acme",
    "trigger": {"type": "event", "connection": "app_db", "table": "orders", "events": ["updated"]},
    "conditions": {
        "all": [
            {"field": "customer__tier", "operator": "equals", "value": "vip"},
            {"field": "status", "operator": "changed_to", "value": "paid"},
        ]
    },
    "actions": [
        {
            "id": "flag",
            "type": "update_record",
            "connection": "app_db",
            "table": "orders",
            "values": {"priority": "high"},
        }
    ],
}


def _event(customer_id: int | None) -> dict[str, Any]:
    row = {"id": 5, "customer_id": customer_id, "status": "pending", "total": 15200}
    return {"table": "orders", "operation": "updated", "old": row, "new": {**row, "status": "paid"}}


def _test_rule(tmp_path: Path, event: dict[str, Any], *extra: str) -> int:
    rule_path, event_path = tmp_path / "rule.yaml", tmp_path / "event.json"
    rule_path.write_text(yaml.safe_dump(RULE))
    event_path.write_text(json.dumps(event))
    return main(
        ["test-rule", str(rule_path), "--event", str(event_path), "--now", "2026-11-20T12:00:00Z", *extra]
    )


def _versions(store: RuleStore, organization: str = "acme") -> list[int]:
    with store.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(catalogs.c.version)
                .where(catalogs.c.organization == organization)
                .order_by("version")
            ).scalars()
        )


def test_test_rule_reads_related_rows_through_the_connection(
    app_db: sa.Engine, store: RuleStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # customer 2 (Contoso) is vip in the demo database; the event does not carry customer__tier
    assert _test_rule(tmp_path, _event(2), "--connection", "app_db") == 0
    out = capsys.readouterr().out
    assert "✓ customer__tier equals 'vip'  [seen: 'vip']" in out
    assert "customer__tier: read from the database: 'vip'" in out

    assert _test_rule(tmp_path, _event(4), "--connection", "app_db", "--format", "json") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["record"]["customer__tier"] == "standard" and report["matched"] is False

    assert _test_rule(tmp_path, _event(99), "--connection", "app_db") == 1
    assert "customer__tier: no customers row with id = 99; NULL" in capsys.readouterr().out

    assert _test_rule(tmp_path, _event(None), "--connection", "app_db") == 1
    assert "orders.customer_id is NULL, so there is no related customers row" in capsys.readouterr().out


def test_test_rule_with_an_unknown_connection_exits_2(
    app_db: sa.Engine, store: RuleStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _test_rule(tmp_path, _event(2), "--connection", "no_such_db") == 2
    assert "Airflow connection 'no_such_db' is not defined" in capsys.readouterr().err


def test_catalog_sync_reflects_keeps_admin_choices_and_is_idempotent(
    app_db: sa.Engine, store: RuleStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _versions(store) == [1]
    assert main(["catalog", "sync", "--connection", "app_db", "--org", "acme", "--actor", "ci"]) == 0
    out = capsys.readouterr().out
    assert "catalog of acme, connection app_db: 2 tables reflected (customers, orders)" in out
    assert "~ orders: column status: text -> text, not null" in out
    assert "note: orders: kept soft_delete_column 'deleted'" in out
    assert "catalog of acme: version 2" in out

    catalog = Catalog.model_validate(store.get_catalog("acme"))
    app = catalog.connections["app_db"]
    assert sorted(app.tables) == ["customers", "orders"] and app.kind == "database"
    orders = app.tables["orders"]
    assert orders.soft_delete_column == "deleted"
    assert [
        (fk.name, fk.column, fk.references_table, fk.references_column) for fk in orders.foreign_keys
    ] == [("customer", "customer_id", "customers", "id")]
    assert orders.columns["total"].type == "numeric" and orders.columns["created_at"].type == "timestamp"
    assert orders.columns["deleted"].type == "boolean" and orders.primary_key == ["id"]
    assert app.tables["customers"].columns["credit_limit"].type == "numeric"
    assert {"warehouse", "crm_api", "smtp_default", "slack_oncall"} <= set(catalog.connections)

    # the second sync finds nothing new: no new version (and --org is found from the catalogs)
    assert main(["catalog", "sync", "--connection", "app_db"]) == 0
    assert "unchanged: catalog of acme stays at version 2" in capsys.readouterr().out
    assert _versions(store) == [1, 2]


def test_catalog_sync_sees_schema_changes_and_dry_run_stores_nothing(
    app_db: sa.Engine, store: RuleStore, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["catalog", "sync", "--connection", "app_db", "--org", "acme"])
    with app_db.begin() as conn:
        conn.execute(sa.text("ALTER TABLE orders ADD COLUMN shipped_at TIMESTAMP"))
    capsys.readouterr()
    assert main(["catalog", "sync", "--connection", "app_db", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "~ orders: + column shipped_at (timestamp)" in out and "dry run: nothing stored" in out
    assert _versions(store) == [1, 2]
    assert main(["catalog", "sync", "--connection", "app_db", "--tables", "orders"]) == 0
    out = capsys.readouterr().out
    assert "- table customers" in out and "which is not synced" in out and "version 3" in out


def test_catalog_sync_errors_exit_2(
    app_db: sa.Engine, store: RuleStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["catalog", "sync", "--connection", "app_db", "--tables", "invoices"]) == 2
    assert "no table 'invoices'" in capsys.readouterr().err
    assert main(["catalog", "sync", "--connection", "no_such_db", "--org", "acme"]) == 2
    assert "is not defined" in capsys.readouterr().err
    # a new organization needs --org; with it, a first catalog is created
    store.engine.dispose()
    with store.engine.begin() as conn:
        conn.execute(catalogs.delete())
    assert main(["catalog", "sync", "--connection", "app_db"]) == 2
    assert "name the organization with --org" in capsys.readouterr().err
    assert main(["catalog", "sync", "--connection", "app_db", "--org", "newco"]) == 0
    assert "+ catalog of newco (new)" in capsys.readouterr().out
    assert _versions(store, "newco") == [1]


@pytest.mark.postgres
def test_catalog_sync_on_postgres(
    pg_app_db: sa.Engine, store: RuleStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["catalog", "sync", "--connection", "app_db", "--org", "acme"]) == 0
    app = Catalog.model_validate(store.get_catalog("acme")).connections["app_db"]
    assert [fk.name for fk in app.tables["orders"].foreign_keys] == ["customer"]
    assert app.tables["orders"].soft_delete_column == "deleted"
    assert app.tables["customers"].columns["created_at"].type == "timestamp"
    assert main(["catalog", "sync", "--connection", "app_db"]) == 0
    assert "unchanged" in capsys.readouterr().out


def test_pure_commands_do_not_import_airflow() -> None:
    script = (
        "import sys\n"
        "from rule_engine.console_script import main\n"
        f"code = main(['validate', '--catalog', {str(ROOT / 'include/catalog/acme.yaml')!r}, "
        f"{str(ROOT / 'include/rules')!r}])\n"
        "assert code == 0, code\n"
        "assert not any(m.split('.')[0] == 'airflow' for m in sys.modules), 'airflow imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "5 valid, 0 invalid" in result.stdout


def test_console_script_is_the_plugin_entry_point() -> None:
    from importlib.metadata import entry_points

    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts.get("rule-compiler") == "rule_engine.console_script:main"


def test_the_run_commands_offer_the_kinds_run_operations_accepts() -> None:
    from rule_engine import console_script, run_operations

    assert console_script.RUN_KINDS == run_operations.RUN_KINDS
