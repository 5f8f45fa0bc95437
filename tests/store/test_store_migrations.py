"""Migrations: idempotent upgrade, full downgrade, the model matches the DDL, append-only audit log."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from rule_compiler.store import VERSION_TABLE, ApplyResult, RuleStore
from rule_compiler.store.migrate import alembic_config, head_revision
from rule_compiler.store.schema import metadata  # every table of the store

STORE_TABLES = {
    "notification_deliveries",
    "notification_inbox",
    "notification_preferences",
    "definitions",
    "definition_versions",
    "compiled_specs",
    "audit_log",
    "catalogs",
    "automation_runs",
    "automation_action_results",
    "automation_run_items",
    "rule_engine_webhook_deliveries",
    "memberships",
    "api_rate_limits",
    "organization_limits",
    "report_runs",
    "report_deliveries",
    "report_alerts",
    "workflow_approvals",
    "retention_marks",
    "audit_purge_permits",
    "failure_rate_alerts",
    "analytics_runs",
    "analytics_steps",
    "analytics_durations",
    "analytics_errors",
    "analytics_notifications",
    "analytics_webhooks",
    "analytics_reports",
    "analytics_report_deliveries",
}

ApplyRule = Callable[..., ApplyResult]


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_upgrade_creates_the_tables_and_is_idempotent(any_db_url: str) -> None:
    store = RuleStore(any_db_url)
    assert store.schema_revision() is None
    store.upgrade()
    store.upgrade()
    assert store.schema_revision() == head_revision() == "0016"
    tables = _tables(store.engine)
    assert tables == STORE_TABLES | {VERSION_TABLE}
    assert "alembic_version" not in tables  # Airflow's version table stays Airflow's
    store.close()


def test_store_shares_a_database_with_another_alembic_project(any_db_url: str) -> None:
    engine = sa.create_engine(any_db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        conn.execute(sa.text("INSERT INTO alembic_version VALUES ('airflow_head')"))
    store = RuleStore(engine=engine)
    store.upgrade()
    assert store.schema_revision() == "0016"
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == "airflow_head"
    engine.dispose()


def test_downgrade_all_drops_everything_and_upgrade_restores(any_db_url: str, apply_rule: ApplyRule) -> None:
    store = RuleStore(any_db_url)
    store.upgrade()
    apply_rule(store)
    store.downgrade_all()
    assert _tables(store.engine) & STORE_TABLES == set()
    assert store.schema_revision() is None
    store.upgrade()
    assert store.list() == []
    apply_rule(store)  # the audit triggers came back with the tables and do not block inserts
    assert len(store.audit_entries()) == 1
    store.close()


def test_schema_module_matches_the_migrated_database(any_db_url: str) -> None:
    store = RuleStore(any_db_url)
    store.upgrade()
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = [
            d
            for d in compare_metadata(context, metadata)
            if d[0] != "remove_table" or d[1].name != VERSION_TABLE
        ]
    assert diff == []
    store.close()


@pytest.mark.parametrize("statement", ["UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"])
def test_audit_log_is_append_only_in_the_database(
    store: RuleStore, apply_rule: ApplyRule, statement: str
) -> None:
    apply_rule(store)
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.engine.begin() as conn:
        conn.execute(sa.text(statement))
    entries = store.audit_entries()
    assert [(e.action, e.actor) for e in entries] == [("create", "alice")]


def test_audit_log_refuses_truncate_on_postgres(postgres_url: str, apply_rule: ApplyRule) -> None:
    store = RuleStore(postgres_url)
    store.upgrade()
    apply_rule(store)
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE audit_log"))
    assert len(store.audit_entries()) == 1
    store.close()


def test_timestamps_come_back_timezone_aware_utc(store: RuleStore, apply_rule: ApplyRule) -> None:
    apply_rule(store)
    stored = store.get(organization="acme", kind="rule", name="escalate-vip-orders")
    for value in (stored.created_at, stored.updated_at, store.audit_entries()[0].created_at):
        assert value.utcoffset() is not None
        assert value.utcoffset().total_seconds() == 0


def test_alembic_can_run_from_a_url_without_a_connection(sqlite_url: str) -> None:
    command.upgrade(alembic_config(url=sqlite_url), "head")
    store = RuleStore(sqlite_url)
    assert store.schema_revision() == "0016"
    assert store.list() == []
    store.close()


def test_offline_sql_builds_a_working_postgres_store(
    postgres_url: str, apply_rule: ApplyRule, capsys: pytest.CaptureFixture[str]
) -> None:
    command.upgrade(alembic_config(url=postgres_url), "head", sql=True)
    script = capsys.readouterr().out
    assert "CREATE TRIGGER audit_log_append_only" in script
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(script)
    store = RuleStore(engine=engine)
    assert store.schema_revision() == "0016"
    apply_rule(store)
    with pytest.raises(sa.exc.DBAPIError, match="append-only: DELETE is not allowed"), engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_log"))
    engine.dispose()


def test_concurrent_upgrades_in_one_process_take_turns(any_db_url: str) -> None:
    stores = [RuleStore(any_db_url) for _ in range(3)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(RuleStore.upgrade, stores))
    assert {s.schema_revision() for s in stores} == {"0016"}
    for s in stores:
        s.close()


def test_concurrent_upgrades_in_separate_processes_take_turns(any_db_url: str) -> None:
    code = "import sys; from rule_compiler.store import RuleStore; RuleStore(sys.argv[1]).upgrade()"
    processes = [
        subprocess.Popen([sys.executable, "-c", code, any_db_url], stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    errors = [p.communicate(timeout=120)[1] for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], errors
    store = RuleStore(any_db_url)
    assert store.schema_revision() == "0016"
    store.close()
