"""``rule-compiler retention``: the dry run as a table and as JSON, a purge with a local archive, the
ledger of the application database a stored record rule writes to, and settings that are refused."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from rule_compiler.cli import main
from rule_compiler.runtime.record_effects import ensure_ledger, ledger
from rule_compiler.store import RuleStore
from rule_compiler.store.archive import read_rows
from rule_compiler.store.tables import automation_runs
from tests.conftest import DEMO_CATALOG, ROOT

RULE = ROOT / "include" / "rules" / "flag-big-paid-orders.yaml"
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def store_args(tmp_path: Path) -> list[str]:
    """A store with runs finished 100, 95 and 10 days ago (acme), and the demo rule that writes to app_db."""
    store = ["--store", f"sqlite:///{tmp_path / 'store.db'}"]
    assert main([*store, "db", "upgrade"]) == 0
    assert main([*store, "catalog", "apply", "--actor", "carol", str(DEMO_CATALOG)]) == 0
    assert main([*store, "apply", "--actor", "alice", str(RULE)]) == 0
    rule_store = RuleStore(store[1])
    with rule_store.engine.begin() as conn:
        conn.execute(
            automation_runs.insert(),
            [
                {
                    "organization": "acme",
                    "rule_name": "flag-big-paid-orders",
                    "dag_id": "rule__acme__flag-big-paid-orders",
                    "run_id": f"run-{age}",
                    "spec_hash": "h" * 64,
                    "trigger_type": "manual",
                    "trigger_context_json": "{}",
                    "status": "success",
                    "matched_count": 1,
                    "started_at": NOW - dt.timedelta(days=age),
                    "finished_at": NOW - dt.timedelta(days=age),
                }
                for age in (100, 95, 10)
            ],
        )
    rule_store.close()
    return store


@pytest.fixture
def app_engine(tmp_path: Path) -> sa.Engine:
    """An application database whose ledger has rows applied 40 and 5 days ago."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    ensure_ledger(engine)
    with engine.begin() as conn:
        conn.execute(
            ledger.insert(),
            [
                {
                    "idempotency_key": f"k{age}",
                    "rule_id": "acme/flag-big-paid-orders",
                    "action_id": "flag",
                    "occurrence_id": "o",
                    "effect": "update",
                    "applied_at": NOW - dt.timedelta(days=age),
                }
                for age in (40, 5)
            ],
        )
    return engine


def _run_ids(store_args: list[str]) -> list[str]:
    with sa.create_engine(store_args[1]).connect() as conn:
        return sorted(conn.execute(sa.select(automation_runs.c.run_id)).scalars())


def test_a_dry_run_says_what_would_go_and_deletes_nothing(
    store_args: list[str], app_engine: sa.Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main([*store_args, "retention", "--dry-run"], engine_for=lambda _conn: app_engine) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("Dry run at ") and lines[0].endswith("nothing is deleted.")
    assert lines[1].split() == ["target", "cutoff", "would", "go", "with", "oldest", "kept", "unfinished"]
    rows = {line.split()[0]: line.split() for line in lines[3:] if line and not line.startswith("Kept")}
    assert rows["runs"][2] == "2" and rows["notifications"][2] == "0"
    assert [line.split()[3] for line in lines if line.startswith("ledger (app_db)")] == ["1"]
    assert lines[-1] == "Kept forever (retention 'never'): audit."
    assert _run_ids(store_args) == ["run-10", "run-100", "run-95"]

    assert main([*store_args, "retention", "--dry-run", "--json", "--target", "runs"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(t["target"], t["rows"], t["kept_unfinished"]) for t in report["targets"]] == [("runs", 2, 0)]
    assert report["ledger"] == {}  # no engine_for: the pure CLI cannot reach application databases


def test_a_purge_archives_to_a_folder_then_deletes(
    store_args: list[str], app_engine: sa.Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    archive = tmp_path / "archive"
    argv = [*store_args, "retention", "--archive-to", str(archive), "--chunk", "1", "--actor", "ops"]
    assert main(argv, engine_for=lambda _conn: app_engine) == 0
    out = capsys.readouterr().out
    assert "runs: 2 row(s) before " in out and "purged in 2 chunk(s), archived in 2 file(s)" in out
    assert "ledger (app_db): 1 row(s) purged" in out
    assert _run_ids(store_args) == ["run-10"]
    archived = sorted(row["run_id"] for f in archive.rglob("*.jsonl.gz") for row in read_rows(f.read_bytes()))
    assert archived == ["run-100", "run-95"]
    with app_engine.connect() as conn:
        assert list(conn.execute(sa.select(ledger.c.idempotency_key)).scalars()) == ["k5"]
    assert main([*store_args, "audit", "--kind", "retention", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)["items"]
    assert (entry["actor"], entry["action"], entry["name"], entry["detail"]["purged"]) == (
        "ops",
        "delete",
        "runs",
        2,
    )


def test_a_setting_that_would_act_twice_is_refused(
    store_args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AUTOMATION_RETENTION_WEBHOOKS", "10d")
    capsys.readouterr()
    assert main([*store_args, "retention", "--dry-run"]) == 2
    assert "AUTOMATION_RETENTION_WEBHOOKS (10d) must be longer than" in capsys.readouterr().err
    assert _run_ids(store_args) == ["run-10", "run-100", "run-95"]
