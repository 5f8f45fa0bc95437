"""``rule-compiler events`` (capture install/uninstall/status) and ``next-runs``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from rule_compiler.cli import main
from rule_compiler.events.outbox_rows import OUTBOX_TABLE
from tests.conftest import DEMO_CATALOG, ROOT


@pytest.fixture
def app_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT)"))
    engine.dispose()
    return url


def test_install_status_uninstall(app_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["events", "status", "--url", app_url]) == 0
    assert "no table is captured" in capsys.readouterr().out
    assert main(["events", "install", "--url", app_url, "--table", "orders"]) == 0
    assert main(["events", "install", "--url", app_url, "--table", "orders"]) == 0  # harmless again
    assert "capture installed on 'orders'" in capsys.readouterr().out
    engine = sa.create_engine(app_url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO orders VALUES (1, 'new')"))
        conn.execute(sa.text("ALTER TABLE orders ADD COLUMN total NUMERIC"))
    with engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT count(*) FROM {OUTBOX_TABLE}")).scalar_one() == 1
    engine.dispose()
    assert main(["events", "status", "--url", app_url, "--json"]) == 0
    [state] = json.loads(capsys.readouterr().out)
    assert state == {"table": "orders", "installed": True, "stale_columns": ["total"], "up_to_date": False}
    assert main(["events", "uninstall", "--url", app_url, "--table", "orders"]) == 0
    assert "capture removed from 'orders'" in capsys.readouterr().out


def test_errors_exit_2_with_the_reason(app_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["events", "install", "--url", app_url, "--table", "missing"]) == 2
    assert "table 'missing' does not exist" in capsys.readouterr().err
    assert main(["events", "install", "--connection", "app_db", "--table", "orders"]) == 2
    assert "connections are Airflow's" in capsys.readouterr().err


def test_next_runs_of_a_rule_file_and_of_a_stored_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rule = ROOT / "include" / "rules" / "nudge-stale-pending.yaml"
    assert (
        main(["next-runs", str(rule), "--after", "2026-11-23T00:00:00+00:00", "--count", "3", "--json"]) == 0
    )
    shown = json.loads(capsys.readouterr().out)
    assert len(shown["runs"]) == 3 and shown["runs"] == sorted(shown["runs"])
    assert all(r > "2026-11-23" for r in shown["runs"])
    store = f"sqlite:///{tmp_path / 'store.db'}"
    assert main(["--store", store, "db", "upgrade"]) == 0
    assert main(["--store", store, "catalog", "apply", str(DEMO_CATALOG)]) == 0
    assert main(["--store", store, "apply", str(rule)]) == 0
    capsys.readouterr()
    assert main(["--store", store, "next-runs", "acme/nudge-stale-pending", "--count", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("acme/nudge-stale-pending: '") and out.count("UTC)") == 2


def test_next_runs_refuses_rules_without_a_schedule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event_rule = tmp_path / "on-demand.yaml"
    event_rule.write_text(
        "kind: rule\nname: on-demand\norganization: acme\ntrigger: {type: manual}\n"
        "actions: [{id: ping, type: call_webhook, connection: crm_api, path: /x}]\n"
    )
    assert main(["next-runs", str(event_rule)]) == 2
    assert "manual trigger, which has no schedule" in capsys.readouterr().err
    assert main(["next-runs", "nowhere.yaml"]) == 2
    assert main(["next-runs", str(event_rule), "--count", "0"]) == 2
