"""Run a finished run's failed actions again, in the same run: Airflow's clear of their task instances
and of everything after them (the outcome task included), with the run queued again.

The run keeps its run id, so each action's idempotency keys are the ones its first attempt used: the
items it had already acted on are skipped (the ledgers hold their keys), only the others are acted on.
"""

from __future__ import annotations

from collections.abc import Sequence

from rule_compiler.errors import NotFoundError, RefusedError


def rerun_tasks(dag_id: str, run_id: str, task_ids: Sequence[str]) -> list[str]:
    """Clear ``task_ids`` of run ``run_id`` and every task after them; the run is queued again. The
    task ids cleared, sorted. NotFoundError without such a run; RefusedError while it is queued or
    running (it cannot be re-run before it ends)."""
    import sqlalchemy as sa
    from airflow.api_fastapi.common.dagbag import get_dag_for_run
    from airflow.models.dagbag import DBDagBag
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import clear_task_instances
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState

    with create_session() as session:
        dag_run = session.scalar(sa.select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        if dag_run is None:
            raise NotFoundError(f"Airflow has no run {run_id} of {dag_id}")
        if dag_run.state in (DagRunState.RUNNING, DagRunState.QUEUED):
            raise RefusedError(f"run {run_id} is still {dag_run.state}: re-run it once it has ended")
        dag = get_dag_for_run(DBDagBag(), dag_run, session=session)
        known = [task_id for task_id in task_ids if task_id in dag.task_dict]
        subset = dag.partial_subset(task_ids=known, include_downstream=True, include_upstream=False)
        instances = dag.clear(dry_run=True, task_ids=list(subset.task_dict), run_id=run_id, session=session)
        clear_task_instances(instances, session, DagRunState.QUEUED)
        return sorted({ti.task_id for ti in instances})
