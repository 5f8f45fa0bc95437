"""Operating a run of a rule or a workflow: what ``rule-compiler runs rerun|cancel`` and
``POST /{rules|workflows}/{name}/runs/{run_id}/rerun|cancel`` share.

- :func:`rerun_failed`: a finished run's failed actions (or nodes) run again in the same run, so with
  the same idempotency keys: what they had already applied is skipped (the ledgers hold its keys);
- :func:`cancel`: a queued, running or waiting run is marked cancelled in the automation log first (no
  action or waiting node applies anything after it), then failed in Airflow (its tasks end).

Both are audited with the actor. Errors: :class:`NotFoundError` (no such definition or run) and
:class:`RefusedError` (the run is in a state where it cannot be done), answered 404 and 409 over REST
and exit code 2 by the CLI. An error of Airflow's metadata database (``SQLAlchemyError``) is the
caller's to word.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from rule_compiler.errors import NotFoundError, RefusedError
from rule_compiler.raw_sources import raw_trigger_type
from rule_compiler.store import RuleStore, StoredDefinition
from rule_engine.api import airflow_approvals, airflow_reruns
from rule_engine.api.definition_ops import expanded_source

#: The kinds whose runs may be re-run or cancelled.
RUN_KINDS = ("rule", "workflow")


@dataclass(frozen=True)
class Rerun:
    """A re-run: the actions whose results had failed, and the tasks Airflow runs again."""

    dag_id: str
    run_id: str
    failed: list[str]
    cleared: list[str]


@dataclass(frozen=True)
class Cancelled:
    """A cancel: how many tasks Airflow ended; None when the run is cancelled in the automation log
    but Airflow's metadata database did not answer (its tasks end when they next check)."""

    dag_id: str
    run_id: str
    tasks_ended: int | None


def _definition(store: RuleStore, organization: str, kind: str, name: str) -> StoredDefinition:
    if kind not in RUN_KINDS:
        raise NotFoundError(f"a {kind} has no runs to operate (only {' and '.join(RUN_KINDS)}s)")
    return store.get(organization=organization, kind=kind, name=name)


def rerun_failed(
    store: RuleStore, *, organization: str, kind: str, name: str, run_id: str, actor: str
) -> Rerun:
    """Run the failed actions of run ``run_id`` again, and every task after them, in the same run."""
    stored = _definition(store, organization, kind, name)
    run = store.get_run(dag_id=stored.dag_id, run_id=run_id)
    if run is None:
        raise NotFoundError(f"{kind} '{name}' has no run {run_id} in its log")
    if run.cancelled_at is not None:
        raise RefusedError(f"run {run_id} was cancelled: it is not re-run")
    failed = sorted(a.action_id for a in run.actions if a.status == "failed")
    if not failed:
        raise RefusedError(f"run {run_id} has no failed action to run again")
    cleared = airflow_reruns.rerun_tasks(stored.dag_id, run_id, failed)
    store.record_audit(
        organization=organization,
        actor=actor,
        action="update",
        kind="run",
        name=name,
        version=None,
        detail={"dag_id": stored.dag_id, "run_id": run_id, "rerun": failed, "cleared": cleared},
    )
    return Rerun(stored.dag_id, run_id, failed, cleared)


def cancel(
    store: RuleStore, *, organization: str, kind: str, name: str, run_id: str, actor: str
) -> Cancelled:
    """Cancel run ``run_id`` while it is queued, running or waiting; RefusedError once it has ended
    (or was cancelled before)."""
    stored = _definition(store, organization, kind, name)
    state = airflow_approvals.run_state(stored.dag_id, run_id)
    if state is None:
        raise NotFoundError(f"Airflow has no run {run_id} of {kind} '{name}'")
    refused = RefusedError(
        f"run {run_id} of {kind} '{name}' is not queued, running or waiting (it is {state}, "
        "or was cancelled before)"
    )
    if state not in ("queued", "running"):
        raise refused
    # a run whose start task has not run has no automation-log entry yet: one is made, cancelled, so
    # its tasks never act
    store.start_run(
        organization=organization,
        rule_name=name,
        dag_id=stored.dag_id,
        run_id=run_id,
        spec_hash=stored.spec_hash,
        trigger_type=raw_trigger_type(expanded_source(store, stored)) or "manual",
        trigger_context={"run_id": run_id, "cancelled_before_it_started": state == "queued"},
    )
    if not store.cancel_run(dag_id=stored.dag_id, run_id=run_id, actor=actor):
        raise refused
    try:
        ended: int | None = airflow_approvals.fail_run(stored.dag_id, run_id)
    except SQLAlchemyError:
        ended = None
    store.record_audit(
        organization=organization,
        actor=actor,
        action="update",
        kind=f"{kind}_run",
        name=name,
        version=stored.version,
        detail={"run_id": run_id, "cancelled": True, "tasks_ended": ended},
    )
    return Cancelled(stored.dag_id, run_id, ended)
