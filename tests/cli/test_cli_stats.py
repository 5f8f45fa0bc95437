"""``rule-compiler stats``: the hand-computed log of tests/analytics_log.py as tables and as JSON, one
definition with its actions, ``stats rebuild``, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rule_compiler.cli import main
from rule_compiler.store import RuleStore
from tests.analytics_log import write_scenario

RANGE = ["--since", "2026-11-20T00:00:00+00:00", "--until", "2026-11-22T00:00:00+00:00"]


@pytest.fixture
def store_args(tmp_path: Path) -> list[str]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = RuleStore(url)
    store.upgrade()
    write_scenario(store)
    store.close()
    return ["--store", url]


def test_the_organization_as_tables(store_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*store_args, "stats", "--org", "acme", *RANGE]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "2026-11-20 00:00 to 2026-11-22 00:00 UTC, by day"
    header = lines[lines.index("organization acme") + 1].split()
    totals = lines[lines.index("organization acme") + 3].split()
    assert header[:5] == ["runs", "success", "failed", "partial", "no"]
    assert totals[:7] == ["5", "2", "1", "1", "1", "8/22", "6"] and totals[7] == "50.0%"
    by_definition = lines[lines.index("by definition") + 3 :][:2]
    assert [row.split()[:3] for row in by_definition] == [["rule", "r1", "4"], ["workflow", "w1", "1"]]
    assert "TimeoutError" in out and "r1.flag" in out


def test_one_definition_as_json(store_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main([*store_args, "stats", "--org", "acme", "rule", "r1", *RANGE, "--bucket", "hour", "--json"]) == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["summary"]["runs"] == 4 and data["summary"]["success_rate"] == 2 / 3
    assert [(s["step"], s["success"], s["failed"], s["attempts"]) for s in data["steps"]] == [
        ("flag", 2, 1, 5)
    ]
    assert [p["start"] for p in data["series"]] == [
        "2026-11-20T10:00:00+00:00",
        "2026-11-20T11:00:00+00:00",
        "2026-11-21T09:00:00+00:00",
    ]


def test_rebuild_recomputes_from_the_raw_log(
    store_args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*store_args, "stats", "--org", "acme", *RANGE, "--json"]) == 0
    before = json.loads(capsys.readouterr().out)
    assert main([*store_args, "stats", "rebuild"]) == 0
    assert "rollups of every day from 7 runs" in capsys.readouterr().out
    assert main([*store_args, "stats", "rebuild", "--since", "2026-11-21T05:00:00+00:00"]) == 0
    assert "rollups from 2026-11-21 (UTC) on from 1 runs" in capsys.readouterr().out
    assert main([*store_args, "stats", "--org", "acme", *RANGE, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"] == before["summary"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["stats"], "--org"),
        (["stats", "--org", "acme", "--since", "yesterday"], "duration back from now"),
        (["stats", "--org", "acme", "report", "r1"], "rule NAME, workflow NAME"),
        (["stats", "--org", "acme", "--since", "500d"], "400 days"),
    ],
)
def test_bad_arguments_say_what_to_give(
    store_args: list[str], argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*store_args, *argv]) != 0
    assert message in capsys.readouterr().err


def test_db_upgrade_across_the_rollups_fills_them_from_the_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlalchemy as sa
    from alembic import command

    from rule_compiler.store.migrate import alembic_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url=url), "0007")  # a store of the release before the rollups
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO automation_runs (organization, rule_name, dag_id, run_id, spec_hash, "
                "trigger_type, trigger_context_json, status, matched_count, started_at, finished_at) "
                "VALUES ('acme', 'r1', "
                "'rule__acme__r1', 'old', 'h', 'manual', '{}', 'success', 2, '2026-11-20 10:00:00', "
                "'2026-11-20 10:00:03')"
            )
        )
    engine.dispose()
    capsys.readouterr()
    assert main(["--store", url, "db", "upgrade"]) == 0
    assert "analytics rollups built from 1 runs" in capsys.readouterr().out
    assert main(["--store", url, "stats", "--org", "acme", *RANGE, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert (summary["runs"], summary["success"], summary["matched"]) == (1, 1, 2)
    assert main(["--store", url, "db", "upgrade"]) == 0  # at the head already: nothing to fill
    assert "rollups built" not in capsys.readouterr().out


def test_notification_deliveries_as_a_table(
    store_args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from rule_compiler.store import RuleStore as Store
    from rule_compiler.store import notifications as n
    from tests.analytics_log import at

    store = Store(store_args[1])
    delivery = n.NotificationDelivery(
        idempotency_key="a" * 64,
        organization="acme",
        rule_id="acme/r1",
        action_id="tell",
        occurrence_id="run",
        row_key=None,
        channel="email",
        recipient="ann",
    )
    assert n.start_delivery(store.engine, delivery, now=at(10)) == 1
    n.finish_delivery(store.engine, "a" * 64, status="sent", now=at(10, 1))
    store.close()
    capsys.readouterr()
    assert main([*store_args, "stats", "--org", "acme", "notifications", *RANGE]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines.index("notification deliveries of acme, by channel")
    assert lines[header + 1].split()[:4] == ["channel", "deliveries", "sent", "failed"]
    assert lines[header + 3].split()[:4] == ["email", "1", "1", "0"]
    assert main([*store_args, "stats", "--org", "acme", "notifications", *RANGE, "--json"]) == 0
    [email] = json.loads(capsys.readouterr().out)["channels"]
    assert (email["channel"], email["deliveries"], email["by_status"]) == ("email", 1, {"sent": 1})


def test_webhook_attempts_as_tables_and_json(
    store_args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from rule_compiler.store import RuleStore
    from tests.analytics_log import at
    from tests.store.test_store_webhook_analytics import attempt

    store = RuleStore(store_args[1])
    attempt(store, "k1", at(10), 0.1, "delivered")
    attempt(store, "k2", at(10, 300), 2, "retrying")
    attempt(store, "k2", at(10, 600), 0.5, "delivered")
    store.close()
    argv = [
        *store_args,
        "stats",
        "--org",
        "acme",
        "webhooks",
        "--since",
        "2026-11-20",
        "--until",
        "2026-11-22",
    ]
    capsys.readouterr()
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == "webhook attempts of acme"
    assert lines[3].split() == ["attempts", "delivered", "retried", "gave", "up", "ok", "%", "p50", "p95"]
    assert lines[5].split()[:5] == ["3", "2", "1", "0", "100.0%"]
    (row,) = [line for line in lines if line.startswith("push")]
    assert row.split()[:4] == ["push", "hook", "3", "2"]
    assert main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["summary"]["success_rate"] == 1.0
    assert data["actions"] == [{**data["actions"][0], "definition": "push", "action": "hook", "attempts": 3}]


def test_report_runs_as_tables_and_json(store_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from rule_compiler.store import RuleStore
    from tests.store.test_store_report_analytics import write_reports

    store = RuleStore(store_args[1])
    write_reports(store)
    store.close()
    argv = [
        *store_args,
        "stats",
        "--org",
        "acme",
        "reports",
        "--since",
        "2026-11-20",
        "--until",
        "2026-11-22",
    ]
    capsys.readouterr()
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == "report runs of acme"
    assert lines[5].split()[:4] == ["3", "1", "1", "0"]
    (sales,) = [line for line in lines if line.startswith("weekly-sales")]
    assert sales.split()[1:3] == ["2", "1"] and sales.split()[-3:] == ["3,000", "1", "1"]
    assert main([*argv[:-5], "reports", "stock", *argv[-4:], "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(r["report"], r["runs"], r["by_status"]) for r in data["reports"]] == [
        ("stock", 1, {"skipped-empty": 1})
    ]


def test_trigger_analytics_as_tables(store_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from rule_compiler.store import RuleStore
    from tests.store.test_store_trigger_analytics import _event_run

    store = RuleStore(store_args[1])
    _event_run(store, "ev-1", "r1", events=10, ignored=4, matched=3)
    store.close()
    argv = [
        *store_args,
        "stats",
        "--org",
        "acme",
        "triggers",
        "--since",
        "2026-11-20",
        "--until",
        "2026-11-22",
    ]
    capsys.readouterr()
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "event triggers of acme, by watched table" in out
    assert "consumer lag now: GET /automations/api/v1/health" in out
