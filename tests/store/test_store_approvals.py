"""Approvals of waiting workflows and cancels of waiting runs, on SQLite and Postgres (migration 0007)."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest
import sqlalchemy as sa

from rule_compiler.store import ApprovalRequest, RuleStore

DAG = "workflow__acme__ask"
RUN = {
    "organization": "acme",
    "rule_name": "ask",
    "dag_id": DAG,
    "spec_hash": "a" * 64,
    "trigger_type": "manual",
    "trigger_context": {},
}


def _request(
    run_id: str, run_pk: int | None, *, organization: str = "acme", assignees: tuple[str, ...] = ("ann",)
) -> ApprovalRequest:
    return ApprovalRequest(
        organization=organization,
        workflow="ask",
        dag_id=DAG if organization == "acme" else f"workflow__{organization}__ask",
        run_id=run_id,
        node_id="confirm",
        run_pk=run_pk,
        assignees=assignees,
        subject=f"Confirm order 42 of 1500.25 ({run_id})?",
        body="Alice ordered for 1500.25.",
        items=("[42]",),
        item_count=1,
        on_timeout="rejected",
        deadline=dt.datetime(2026, 12, 5, tzinfo=dt.UTC),
    )


def test_an_approval_is_opened_once_and_settled_once(store: RuleStore) -> None:
    pk = store.start_run(**RUN, run_id="r1")
    opened = store.open_approval(_request("r1", pk))
    again = store.open_approval(_request("r1", pk))  # the node's retry
    assert again == opened and opened.status == "waiting" and opened.assignees == ("ann",)
    assert opened.items == ("[42]",) and opened.deadline == dt.datetime(2026, 12, 5, tzinfo=dt.UTC)

    assert store.settle_approval(opened.id, status="approved", answered_by="ann", via="rest", comment="ok")
    assert not store.settle_approval(
        opened.id, status="rejected", answered_by="bob", via="airflow", comment="no"
    )
    settled = store.get_approval(opened.id)
    assert settled is not None
    assert (settled.status, settled.answered_by, settled.answered_via, settled.comment) == (
        "approved",
        "ann",
        "rest",
        "ok",
    )
    assert settled.answered_at is not None
    assert store.open_approval(_request("r1", pk)).status == "approved"  # a late retry changes nothing
    assert store.find_approval(dag_id=DAG, run_id="r1", node_id="confirm") == settled


def test_the_inbox_lists_an_organizations_waiting_approvals_for_an_assignee(store: RuleStore) -> None:
    first = store.open_approval(_request("r1", store.start_run(**RUN, run_id="r1")))
    second = store.open_approval(
        _request("r2", store.start_run(**RUN, run_id="r2"), assignees=("ann", "bob"))
    )
    store.open_approval(_request("r3", None, assignees=("annie",)))  # a name that contains "ann"
    store.open_approval(_request("r1", None, organization="globex"))
    assert [a.id for a in store.list_approvals(organizations=["acme"], assignee="ann")] == [
        second.id,
        first.id,
    ]
    assert [a.id for a in store.list_approvals(organizations=["acme"], assignee="bob")] == [second.id]
    assert len(store.list_approvals(organizations=["acme"])) == 3
    assert len(store.list_approvals(organizations=["acme", "globex"], assignee="ann")) == 3
    store.settle_approval(first.id, status="timed_out", answered_by=None, via="timeout", comment=None)
    assert [a.id for a in store.list_approvals(organizations=["acme"], assignee="ann")] == [second.id]
    assert [a.id for a in store.list_approvals(organizations=["acme"], status="timed_out")] == [first.id]
    assert len(store.list_approvals(organizations=["acme"], status=None, limit=2, offset=1)) == 2
    with pytest.raises(ValueError, match="unknown approval status"):
        store.list_approvals(organizations=["acme"], status="maybe")


def test_a_cancel_ends_a_running_run_and_its_waiting_approvals(store: RuleStore) -> None:
    pk = store.start_run(**RUN, run_id="r1")
    approval = store.open_approval(_request("r1", pk))
    assert not store.run_cancelled(pk)
    assert store.cancel_run(dag_id=DAG, run_id="r1", actor="ed")
    assert not store.cancel_run(dag_id=DAG, run_id="r1", actor="ed")  # once
    assert store.run_cancelled(pk)
    log = store.get_run(dag_id=DAG, run_id="r1")
    assert log is not None and (log.status, log.cancelled_by) == ("failed", "ed") and log.cancelled_at
    cancelled = store.get_approval(approval.id)
    assert cancelled is not None and (cancelled.status, cancelled.answered_via) == ("cancelled", "cancel")
    store.finish_run(pk, "success")  # record_outcome, had it run after: the cancel stays
    log = store.get_run(dag_id=DAG, run_id="r1")
    assert log is not None and log.status == "failed" and log.cancelled_by == "ed"


def test_a_finished_or_unknown_run_cannot_be_cancelled(store: RuleStore) -> None:
    pk = store.start_run(**RUN, run_id="r1")
    store.finish_run(pk, "success")
    assert not store.cancel_run(dag_id=DAG, run_id="r1", actor="ed")
    assert not store.cancel_run(dag_id=DAG, run_id="nope", actor="ed")
    assert not store.run_cancelled(pk)


def test_settling_refuses_unknown_statuses_and_routes(store: RuleStore) -> None:
    approval = store.open_approval(_request("r1", None))
    with pytest.raises(ValueError, match="settles as"):
        store.settle_approval(approval.id, status="waiting", answered_by="ann", via="rest", comment=None)
    with pytest.raises(ValueError, match="unknown answer route"):
        store.settle_approval(approval.id, status="approved", answered_by="ann", via="email", comment=None)


def test_deleting_a_run_deletes_its_approvals(store: RuleStore) -> None:
    pk = store.start_run(**RUN, run_id="r1")
    approval = store.open_approval(_request("r1", pk))
    with store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM automation_runs WHERE id = :pk"), {"pk": pk})
    assert store.get_approval(approval.id) is None


def test_the_cancel_columns_survive_a_downgrade_to_0006_without_losing_action_results(
    sqlite_url: str,
) -> None:
    """SQLite drops the columns in place: a batch copy of automation_runs would cascade to its results."""
    store = RuleStore(sqlite_url)
    store.upgrade()
    pk = store.start_run(**RUN, run_id="r1")
    store.record_action(pk, "a", status="success", output={})
    from rule_compiler.store import migrate

    with store.engine.begin() as conn:
        migrate.downgrade(conn, "0006")
    with sqlite3.connect(sa.make_url(sqlite_url).database) as conn:
        assert conn.execute("SELECT count(*) FROM automation_action_results").fetchone() == (1,)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(automation_runs)")}
    assert "cancelled_at" not in columns
    store.close()
