"""Retention purges (rule_compiler/store/purge.py) on SQLite and Postgres: what goes and what stays,
chunk sizes counted in statements, archives read back, a crashed purge resumed, audit rows purged only
through the purge and audited, and analytics that outlive the rows."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from rule_compiler.errors import ConfigurationError
from rule_compiler.retention_settings import RetentionSettings
from rule_compiler.store import RuleStore
from rule_compiler.store.archive import FolderSink, read_rows
from rule_compiler.store.audit import AuditQuery
from rule_compiler.store.maintenance_tables import retention_marks
from rule_compiler.store.models import AuditEntry
from rule_compiler.store.tables import (
    audit_log,
    automation_action_results,
    automation_runs,
    notification_deliveries,
    webhook_deliveries,
)
from tests.analytics_log import SPAN, at, write_scenario

NOW = dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC)
CUTOFF = NOW - dt.timedelta(days=90)
SETTINGS = RetentionSettings.from_env({})


def _settings(**values: str) -> RetentionSettings:
    return RetentionSettings.from_env({f"AUTOMATION_RETENTION_{k.upper()}": v for k, v in values.items()})


def _runs(store: RuleStore, *, old: int, new: int, old_running: int = 0) -> None:
    """``old`` finished runs before the 90-day cutoff (two action results each, alternately two
    organizations), ``new`` after it, ``old_running`` started before it and still running."""
    rows: list[dict[str, Any]] = []

    def add(count: int, start: dt.datetime, status: str, finished: bool) -> None:
        for i in range(count):
            started = start + dt.timedelta(seconds=i)
            rows.append(
                {
                    "id": len(rows) + 1,
                    "organization": "acme" if i % 2 == 0 else "globex",
                    "rule_name": "r1",
                    "dag_id": "rule__acme__r1",
                    "run_id": f"run-{len(rows)}",
                    "spec_hash": "h" * 64,
                    "trigger_type": "schedule",
                    "trigger_context_json": "{}",
                    "status": status,
                    "matched_count": 1,
                    "started_at": started,
                    "finished_at": started + dt.timedelta(seconds=5) if finished else None,
                }
            )

    add(old, CUTOFF - dt.timedelta(days=10), "success", True)
    add(old_running, CUTOFF - dt.timedelta(days=5), "running", False)
    add(new, CUTOFF + dt.timedelta(hours=1), "failed", True)
    results = [
        {
            "run_pk": row["id"],
            "action_id": action,
            "status": "success",
            "attempts": 1,
            "updated_at": row["started_at"],
        }
        for row in rows
        for action in ("flag", "notify")
    ]
    with store.engine.begin() as conn:
        conn.execute(automation_runs.insert(), rows)
        conn.execute(automation_action_results.insert(), results)


@pytest.fixture
def deletes(store: RuleStore) -> Iterator[list[str]]:
    """The DELETE statements the store runs, in order."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            seen.append(re.sub(r"\s+", " ", statement))

    sa.event.listen(store.engine, "before_cursor_execute", count)
    yield seen
    sa.event.remove(store.engine, "before_cursor_execute", count)


def _audit(store: RuleStore, kind: str | None = None) -> list[AuditEntry]:
    return store.audit_page(AuditQuery(organizations=["acme"], kind=kind), limit=100)[0]


def _ids(store: RuleStore) -> set[int]:
    with store.engine.connect() as conn:
        return set(conn.execute(sa.select(automation_runs.c.id)).scalars())


def test_a_purge_of_20000_rows_goes_in_chunks_and_touches_nothing_newer(
    store: RuleStore, deletes: list[str]
) -> None:
    _runs(store, old=15_000, new=5_000, old_running=3)
    kept = {pk for pk in _ids(store) if pk > 15_000}
    preview = store.retention_preview(SETTINGS, now=NOW, targets=["runs"])[0]
    assert (preview.rows, preview.children, preview.kept_unfinished) == (
        15_000,
        {"action_results": 30_000, "approvals": 0, "items": 0},
        3,
    )

    (result,) = store.purge_expired(SETTINGS, now=NOW, actor="tester", chunk=1000, targets=["runs"])

    assert (result.purged, result.chunks, result.archived) == (15_000, 15, 0)
    assert result.by_organization == {"acme": 7_500, "globex": 7_500}
    assert _ids(store) == kept  # the 5,000 newer runs and the 3 old running ones
    run_deletes = [s for s in deletes if s.startswith("DELETE FROM automation_runs ")]
    result_deletes = [s for s in deletes if s.startswith("DELETE FROM automation_action_results ")]
    assert len(run_deletes) == len(result_deletes) == 15  # one per chunk of 1,000 runs
    with store.engine.connect() as conn:
        assert conn.execute(
            sa.select(sa.func.count()).select_from(automation_action_results)
        ).scalar() == 2 * len(kept)
        mark = conn.execute(sa.select(retention_marks)).one()
    assert (mark.table_name, mark.cutoff, mark.purged, mark.finished_at) == ("runs", CUTOFF, 15_000, NOW)
    audited = _audit(store, "retention")
    assert [(e.action, e.name, e.detail["purged"]) for e in audited] == [("delete", "runs", 7_500)]
    # a second purge finds nothing
    assert store.purge_expired(SETTINGS, now=NOW, actor="tester", targets=["runs"])[0].purged == 0


def test_an_archive_reads_back_as_exactly_the_rows_deleted(store: RuleStore, tmp_path: Path) -> None:
    _runs(store, old=250, new=10)
    with store.engine.connect() as conn:
        before = {
            row.id: row for row in conn.execute(sa.select(automation_runs).where(automation_runs.c.id <= 250))
        }
    (result,) = store.purge_expired(
        SETTINGS, now=NOW, actor="tester", sink=FolderSink(tmp_path), chunk=100, targets=["runs"]
    )
    files = sorted(tmp_path.rglob("*.jsonl.gz"))
    assert result.archived == 250 and len(result.files) == len(files) == 6  # 3 chunks x 2 organizations
    assert {f.relative_to(tmp_path).parts[:3] for f in files} == {
        ("acme", "archive", "runs"),
        ("globex", "archive", "runs"),
    }
    archived = [row for path in files for row in read_rows(path.read_bytes())]
    assert sorted(row["id"] for row in archived) == sorted(before)
    for row in archived:
        original = before[row["id"]]
        assert (
            row["organization"] == original.organization == Path(*_folder_of(tmp_path, files, row)).parts[0]
        )
        assert row["run_id"] == original.run_id
        assert dt.datetime.fromisoformat(row["started_at"]) == original.started_at
        assert [r["action_id"] for r in row["action_results"]] == ["flag", "notify"]
    assert _ids(store) == set(range(251, 261))


def _folder_of(root: Path, files: list[Path], row: dict[str, Any]) -> tuple[str, ...]:
    for path in files:
        if any(r["id"] == row["id"] for r in read_rows(path.read_bytes())):
            return path.relative_to(root).parts
    raise AssertionError(f"run {row['id']} is in no file")


class _CrashingSink(FolderSink):
    """Writes a file, then fails the transaction, as a worker killed between the archive and the delete."""

    def __init__(self, root: Path, crash_on: int) -> None:
        super().__init__(root)
        self.writes, self.crash_on = 0, crash_on

    def write(self, name: str, data: bytes) -> str:
        path = super().write(name, data)
        self.writes += 1
        if self.writes == self.crash_on:
            raise OSError("worker killed")
        return path


def test_a_crashed_purge_resumes_at_its_cutoff_and_archives_each_row_once(
    store: RuleStore, tmp_path: Path
) -> None:
    _runs(store, old=300, new=10)
    with pytest.raises(OSError, match="worker killed"):
        store.purge_expired(
            SETTINGS, now=NOW, actor="t", sink=_CrashingSink(tmp_path, 5), chunk=100, targets=["runs"]
        )
    assert len(_ids(store)) == 310 - 200  # two chunks went before the crash; the third rolled back
    with store.engine.connect() as conn:
        mark = conn.execute(sa.select(retention_marks)).one()
    assert (mark.cutoff, mark.purged, mark.finished_at) == (CUTOFF, 200, None)

    later = NOW + dt.timedelta(minutes=30)
    results = store.purge_expired(
        SETTINGS, now=later, actor="t", sink=FolderSink(tmp_path), chunk=100, targets=["runs"]
    )
    assert [(r.cutoff, r.purged) for r in results] == [(CUTOFF, 100), (later - dt.timedelta(days=90), 0)]
    archived = [row["id"] for path in tmp_path.rglob("*.jsonl.gz") for row in read_rows(path.read_bytes())]
    assert sorted(archived) == list(range(1, 301))  # the crashed chunk's file was written again, whole
    assert _ids(store) == set(range(301, 311))


def test_unfinished_deliveries_are_kept_whatever_their_age(store: RuleStore) -> None:
    old = CUTOFF - dt.timedelta(days=1)
    with store.engine.begin() as conn:
        conn.execute(
            notification_deliveries.insert(),
            [
                {
                    "idempotency_key": f"n{i}",
                    "organization": "acme",
                    "rule_id": "acme/r1",
                    "action_id": "tell",
                    "occurrence_id": "o",
                    "channel": "email",
                    "recipient": "a@example.com",
                    "status": status,
                    "attempts": 1,
                    "created_at": old,
                    "updated_at": old,
                }
                for i, status in enumerate(
                    ["sent", "failed", "muted", "digested", "deferred", "retrying", "digest", "sending"]
                )
            ],
        )
        conn.execute(
            webhook_deliveries.insert(),
            [
                {
                    "idempotency_key": f"w{i}",
                    "rule_id": "acme/r1",
                    "action_id": "hook",
                    "occurrence_id": "o",
                    "status": status,
                    "attempts": 1,
                    "updated_at": old,
                }
                for i, status in enumerate(["delivered", "failed", "retrying", "sending"])
            ],
        )
    settings = _settings(notifications="60d", webhooks="60d")
    previews = {
        p.target: p for p in store.retention_preview(settings, now=NOW, targets=["notifications", "webhooks"])
    }
    assert (previews["notifications"].rows, previews["notifications"].kept_unfinished) == (4, 4)
    assert (previews["webhooks"].rows, previews["webhooks"].kept_unfinished) == (2, 2)
    store.purge_expired(
        settings, now=NOW - dt.timedelta(days=30), actor="t", targets=["notifications", "webhooks"]
    )
    with store.engine.connect() as conn:
        assert sorted(conn.execute(sa.select(notification_deliveries.c.status)).scalars()) == [
            "deferred", "digest", "retrying", "sending"
        ]  # fmt: skip
        assert sorted(conn.execute(sa.select(webhook_deliveries.c.status)).scalars()) == [
            "retrying",
            "sending",
        ]
    # the webhook rows had no organization: the audit names their rule's
    assert [e.detail["purged"] for e in _audit(store, "retention")] == [
        2,
        4,
    ]


def test_audit_rows_go_only_through_a_purge_that_a_setting_asks_for_and_that_is_audited(
    store: RuleStore,
) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            audit_log.insert(),
            [
                {
                    "organization": "acme",
                    "actor": "a",
                    "action": "create",
                    "kind": "rule",
                    "name": f"r{i}",
                    "detail_json": "{}",
                    "created_at": NOW - dt.timedelta(days=400 - i),
                }
                for i in range(10)
            ],
        )
    assert "audit" not in {p.target for p in store.retention_preview(SETTINGS, now=NOW)}  # default: never
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.engine.begin() as conn:
        conn.execute(audit_log.delete())
    (result,) = store.purge_expired(
        _settings(audit="395d"), now=NOW, actor="platform-admin", targets=["audit"]
    )
    assert result.purged == 5
    entries = _audit(store)
    assert sorted(e.name for e in entries) == ["audit", "r5", "r6", "r7", "r8", "r9"]
    (purge_entry,) = [e for e in entries if e.kind == "retention"]
    assert (purge_entry.actor, purge_entry.action, purge_entry.detail["purged"]) == (
        "platform-admin",
        "delete",
        5,
    )
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.engine.begin() as conn:
        conn.execute(audit_log.delete())  # the permit went with the purge's transaction


def test_the_analytics_outlive_a_purge_and_a_rebuild_keeps_the_purged_days(store: RuleStore) -> None:
    write_scenario(store)
    overview = store.organization_analytics("acme", SPAN)
    detail = store.definition_analytics("acme", "rule", "r1", SPAN)
    purge_now = at(33) + dt.timedelta(days=90)  # cutoff at(33): D, which finished later, stays
    (result,) = store.purge_expired(SETTINGS, now=purge_now, actor="t", targets=["runs"])
    assert result.purged == 5  # A, B (no match), C, E and F; G still runs
    assert store.organization_analytics("acme", SPAN) == overview
    store.rebuild_rollups()  # everything: yet the days up to the purge's cutoff are kept
    assert store.organization_analytics("acme", SPAN) == overview
    assert store.definition_analytics("acme", "rule", "r1", SPAN) == detail


def test_the_settings_have_defaults_and_refuse_what_would_act_twice() -> None:
    days = {name: None if kept is None else kept.days for name, kept in SETTINGS.retention.items()}
    expected = {"runs": 90, "notifications": 30, "inbox": 180, "webhooks": 30, "reports": 90, "ledger": 30}
    assert days == {**expected, "audit": None}
    assert SETTINGS.archive is False
    assert _settings(runs="never").retention["runs"] is None
    with pytest.raises(ConfigurationError, match=r"AUTOMATION_RETENTION_WEBHOOKS: 'soon' is not"):
        _settings(webhooks="soon")
    with pytest.raises(ConfigurationError) as refused:
        RetentionSettings.from_env(
            {"AUTOMATION_RETENTION_LEDGER": "10d", "AUTOMATION_OUTBOX_RETENTION": "7d"}
        )
    assert "AUTOMATION_RETENTION_LEDGER (10d) must be longer than AUTOMATION_OUTBOX_RETENTION + " in str(
        refused.value
    )
    assert "AUTOMATION_LONGEST_RUN (7d + 7d)" in str(refused.value)
    RetentionSettings.from_env({"AUTOMATION_RETENTION_LEDGER": "15d"})  # longer than 14 days: fine
    with pytest.raises(ConfigurationError, match="AUTOMATION_RETENTION_ARCHIVE must be true or false"):
        RetentionSettings.from_env({"AUTOMATION_RETENTION_ARCHIVE": "maybe"})
