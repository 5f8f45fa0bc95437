"""What the REST view writes into Airflow's metadata DB for waiting workflows (it runs in the api-server).

- :func:`answer_approval`: an approval's answer, written exactly as Airflow's own route
  (``PATCH …/hitlDetails``) writes it: the task instance locked first, then its HITL detail; a second
  answer refused; the task resumed at once when it waits (``handle_event_submit``). The caller has
  checked that the user is an assignee in the approval's organization (ADR 0011).
- :func:`run_state`: a DAG run's state, read before a cancel;
- :func:`fail_run`: a DAG run set to failed the way Airflow's ``PATCH …/dagRuns/{id}`` with
  ``state=failed`` does: running, deferred and waiting tasks fail, pending ones are skipped.
"""

from __future__ import annotations

from rule_compiler.errors import NotFoundError, RefusedError


def answer_approval(
    dag_id: str, run_id: str, task_id: str, *, username: str, option: str, comment: str
) -> None:
    """Answer the approval task ``task_id`` of run ``run_id`` as ``username`` with ``option``;
    RefusedError (409) when Airflow holds no open question for it (answered already, timed out)."""
    import sqlalchemy as sa
    from airflow._shared.timezones import timezone
    from airflow.models.hitl import HITLDetail, HITLUser
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.models.trigger import handle_event_submit
    from airflow.triggers.base import TriggerEvent
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    with create_session() as session:
        ti = session.scalar(
            sa.select(TI)
            .where(TI.dag_id == dag_id, TI.run_id == run_id, TI.task_id == task_id, TI.map_index == -1)
            .with_for_update(of=TI)
        )
        if ti is None:
            raise NotFoundError(f"Airflow has no task {task_id} in run {run_id} of {dag_id}")
        detail = session.scalar(
            sa.select(HITLDetail).where(HITLDetail.ti_id == ti.id).with_for_update(of=HITLDetail)
        )
        if detail is None:
            raise RefusedError(f"task {task_id} of run {run_id} has not asked yet")
        if detail.response_received:
            raise RefusedError("the approval was answered already (in Airflow, or by its timeout)")
        if option not in (detail.options or []):
            raise RefusedError(f"Airflow does not offer {option!r} for this approval")
        detail.responded_by = HITLUser(id=username, name=username)
        detail.responded_at = timezone.utcnow()
        detail.chosen_options = [option]
        detail.params_input = {"comment": comment}
        session.add(detail)
        if ti.state in (TaskInstanceState.AWAITING_INPUT, TaskInstanceState.DEFERRED):
            event = TriggerEvent(detail.as_resume_event_payload())  # type: ignore[no-untyped-call]
            handle_event_submit(event, task_instance=ti, session=session)


def run_state(dag_id: str, run_id: str) -> str | None:
    """The state of run ``run_id`` of ``dag_id`` in Airflow (``queued``, ``running``, ...); None: unknown."""
    import sqlalchemy as sa
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        state = session.scalar(
            sa.select(DagRun.state).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
        )
        return None if state is None else str(state)


def fail_run(dag_id: str, run_id: str) -> int:
    """Set run ``run_id`` of ``dag_id`` to failed as Airflow's own route does; how many tasks it ended
    (running, deferred or waiting for input). NotFoundError when Airflow has no such run."""
    import sqlalchemy as sa
    from airflow.api_fastapi.common.dagbag import get_dag_for_run
    from airflow.api_fastapi.core_api.datamodels.dag_run import DagRunMutableStates
    from airflow.api_fastapi.core_api.services.public.dag_run import patch_dag_run_state
    from airflow.models.dagbag import DBDagBag
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState

    active = (
        TaskInstanceState.RUNNING,
        TaskInstanceState.DEFERRED,
        TaskInstanceState.AWAITING_INPUT,
        TaskInstanceState.UP_FOR_RESCHEDULE,
    )
    with create_session() as session:
        dag_run = session.scalar(sa.select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        if dag_run is None:
            raise NotFoundError(f"Airflow has no run {run_id} of {dag_id}")
        if dag_run.state not in (DagRunState.RUNNING, DagRunState.QUEUED):
            return 0
        ended = session.scalar(
            sa.select(sa.func.count())
            .select_from(TI)
            .where(TI.dag_id == dag_id, TI.run_id == run_id, TI.state.in_(active))
        )
        dag = get_dag_for_run(DBDagBag(), dag_run, session=session)
        patch_dag_run_state(dag=dag, dag_run=dag_run, state=DagRunMutableStates.FAILED, session=session)
        return int(ended or 0)
