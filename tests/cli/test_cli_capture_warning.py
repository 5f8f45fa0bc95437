"""The CLI and change capture in the catalog: `apply` and `validate` warn about an event rule on a table
without capture (and still store it); `events install/uninstall --connection` and `catalog sync` keep
the catalog's ``capture_installed`` flag current."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from rule_engine.console_script import add_airflow_commands

from rule_compiler.cli import main
from rule_compiler.store import RuleStore
from tests.conftest import DEMO_CATALOG

RULE = {
    "kind": "rule",
    "name": "watch-orders",
    "organization": "acme",
    "trigger": {"type": "event", "connection": "app_db", "table": "orders", "events": ["created"]},
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
WARNING = (
    "warning: trigger.table: change capture is not installed on app_db.orders, so this rule will never "
    "fire: run `rule-compiler events install --connection app_db --table orders`"
)


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    raw: dict[str, Any] = yaml.safe_load(DEMO_CATALOG.read_text())
    raw["connections"]["app_db"]["tables"]["orders"]["capture_installed"] = False
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(yaml.safe_dump(raw))
    assert main(["--store", url, "db", "upgrade"]) == 0
    assert main(["--store", url, "catalog", "apply", str(catalog)]) == 0
    return url


@pytest.fixture
def rule_file(tmp_path: Path) -> Path:
    path = tmp_path / "watch-orders.yaml"
    path.write_text(yaml.safe_dump(RULE))
    return path


@pytest.fixture
def app_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)"))
        conn.execute(
            sa.text(
                "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), "
                "status TEXT, total NUMERIC, priority TEXT)"
            )
        )
    engine.dispose()
    return url


def _capture(store_url: str, table: str = "orders") -> object:
    raw = RuleStore(store_url).get_catalog("acme")
    assert raw is not None
    return raw["connections"]["app_db"]["tables"][table].get("capture_installed")


def test_apply_warns_on_stderr_and_still_stores(
    store_url: str, rule_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["--store", store_url, "apply", str(rule_file)]) == 0
    out, err = capsys.readouterr()
    assert f"{WARNING} ({rule_file})" in err.splitlines()
    assert "created" in out and "rule__acme__watch-orders v1" in out
    stored = RuleStore(store_url).get(organization="acme", kind="rule", name="watch-orders")
    assert stored.version == 1 and stored.active

    assert main(["--store", store_url, "validate", "--format", "json", str(rule_file)]) == 0
    [report] = json.loads(capsys.readouterr().out)
    assert report["valid"] is True and report["errors"] == []
    assert [(w["path"], w["code"]) for w in report["warnings"]] == [
        ("trigger.table", "capture_not_installed")
    ]


def test_events_install_and_uninstall_record_capture_in_the_catalog(
    store_url: str, rule_file: Path, app_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def engine_for(conn_id: str) -> sa.Engine:
        assert conn_id == "app_db"
        return sa.create_engine(app_url)

    version = RuleStore(store_url).catalog_version("acme")
    capsys.readouterr()
    install = ["--store", store_url, "events", "install", "--connection", "app_db", "--table", "orders"]
    assert main(install, engine_for=engine_for) == 0
    out = capsys.readouterr().out
    assert f"catalog of acme: capture installed on orders (version {version + 1})" in out  # type: ignore[operator]
    assert _capture(store_url) is True
    assert _capture(store_url, "customers") is None  # other tables untouched

    assert main(["--store", store_url, "validate", str(rule_file)]) == 0
    assert "warning:" not in capsys.readouterr().err

    uninstall = [*install[:3], "uninstall", *install[4:]]
    assert main(uninstall, engine_for=engine_for) == 0
    assert "capture not installed on orders" in capsys.readouterr().out
    assert _capture(store_url) is False
    assert main(["--store", store_url, "validate", str(rule_file)]) == 0
    assert WARNING in capsys.readouterr().err

    # with --url the connection id is unknown: the catalog stays, and the output says what to do
    assert main(["--store", store_url, "events", "install", "--url", app_url, "--table", "orders"]) == 0
    assert "rule-compiler catalog sync --connection" in capsys.readouterr().out
    assert _capture(store_url) is False


def test_events_install_with_an_unreachable_store_still_installs(
    tmp_path: Path, app_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = f"sqlite:///{tmp_path / 'never-upgraded.db'}"
    argv = ["--store", store, "events", "install", "--connection", "app_db", "--table", "orders"]
    assert main(argv, engine_for=lambda _conn_id: sa.create_engine(app_url)) == 0
    out, err = capsys.readouterr()
    assert "capture installed on 'orders'" in out
    assert (
        "the catalog in the rule store was not updated" in err and "catalog sync --connection app_db" in err
    )


def test_catalog_sync_records_capture_state(
    store_url: str, app_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--store", store_url, "catalog", "sync", "--connection", "app_db", "--org", "acme"]
    sync = ["--tables", "orders", "customers"]

    def run() -> str:
        capsys.readouterr()
        code = main(
            [*argv, *sync], engine_for=lambda _: sa.create_engine(app_url), extensions=[add_airflow_commands]
        )
        assert code == 0
        return capsys.readouterr().out

    run()
    assert _capture(store_url) is False and _capture(store_url, "customers") is False
    from rule_compiler.events import install

    engine = sa.create_engine(app_url)
    install(engine, "orders")
    engine.dispose()
    out = run()
    assert "~ orders: change capture: not installed -> installed" in out
    assert _capture(store_url) is True and _capture(store_url, "customers") is False
