"""The two processes of a chaos test: a run that gets SIGKILLed mid-action, then Airflow's retry.

    python -m tests.airflow.chaos_run first DAG_ID LOGICAL_DATE   # dag.test(); dies at the fault point
    python -m tests.airflow.chaos_run retry DAG_ID RUN_ID         # the retry of the killed task

``first`` prints the run id before it starts (it cannot after: it is killed). ``retry`` does what
Airflow does after a worker vanished, with the same code Airflow uses: the scheduler's
``TaskInstance.handle_failure`` on the task instance left ``running`` (history recorded, state
``up_for_retry``), then — without waiting out the retry delay — the next try (``try_number`` + 1)
through ``dag.test``'s own in-process runner (``_run_task`` → ``run_task_in_process`` → the
Execution API), and the rest of the run the way ``dag.test`` schedules it. Its last line is
``CHAOS_RESULT {json}``: the killed task ids, each task's state and try number, the run's state.
Environment (Airflow home, connections, rule store, fault point) comes from the calling test.
:func:`resume` runs a re-run's cleared tasks to the end the same way, in the calling process.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from typing import Any

from tests.conftest import ROOT

RESULT_PREFIX = "CHAOS_RESULT "
CONF_ENV = "CHAOS_RUN_CONF"
#: Scheduling rounds at most while resuming a run (a rule DAG has a handful of tasks).
MAX_ROUNDS = 20


def _dag(dag_id: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    if dag_id not in bag.dags:
        raise SystemExit(f"no DAG {dag_id}: {bag.import_errors}")
    return bag.dags[dag_id]


def first(dag_id: str, logical_date: str) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.types import DagRunType

    when = dt.datetime.fromisoformat(logical_date)
    run_id = DagRun.generate_run_id(run_type=DagRunType.MANUAL, logical_date=when, run_after=when)
    print(f"RUN_ID {run_id}", flush=True)
    conf = json.loads(os.environ.get(CONF_ENV) or "null")  # an event rule's run: {"event_ids": [...]}
    dag_run = _dag(dag_id).test(logical_date=when, run_after=when, run_conf=conf)
    print(RESULT_PREFIX + json.dumps({"state": str(dag_run.state), "killed": []}), flush=True)


def retry(dag_id: str, run_id: str) -> dict[str, Any]:
    """Retry the task instances of ``run_id`` that a killed process left running; finish the run."""
    import sqlalchemy as sa
    from airflow.models.dagbag import DBDagBag
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    dag = _dag(dag_id)  # what a worker parses
    with create_session() as session:
        dag_run = session.scalar(sa.select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        if dag_run is None:
            raise SystemExit(f"no run {run_id} of {dag_id}")
        scheduler_dag = DBDagBag().get_dag_for_run(dag_run=dag_run, session=session)
        if scheduler_dag is None:
            raise SystemExit(f"no serialized DAG for {dag_id}")
        dag_run.dag = scheduler_dag  # the scheduler's view: the DAG version the run is pinned to
        killed = [
            ti for ti in dag_run.get_task_instances(session=session) if ti.state == TaskInstanceState.RUNNING
        ]
        for ti in killed:  # as the scheduler does when the executor reports a task it lost
            ti.task = scheduler_dag.get_task(ti.task_id)
            ti.handle_failure(error="the worker running this task was killed (SIGKILL)", session=session)
        session.commit()

        schedule_to_the_end(dag, dag_run, session)
        session.expire_all()
        result = {
            "killed": sorted(ti.task_id for ti in killed),
            "state": str(dag_run.state),
            "tasks": {
                ti.task_id: {"state": str(ti.state), "try_number": ti.try_number}
                for ti in dag_run.get_task_instances(session=session)
            },
        }
    return result


def schedule_to_the_end(dag: Any, dag_run: Any, session: Any) -> None:
    """Run what is schedulable, round after round, the way ``dag.test`` does, until the run ends (a
    queued run is started first, as the scheduler starts it)."""
    from airflow.sdk.definitions.dag import _run_task
    from airflow.utils.state import DagRunState, TaskInstanceState

    if dag_run.state == DagRunState.QUEUED:
        dag_run.state = DagRunState.RUNNING
        session.commit()
    for _ in range(MAX_ROUNDS):
        if dag_run.state != DagRunState.RUNNING:
            break
        session.expire_all()
        schedulable, _callback = dag_run.update_state(session=session)
        retrying = [
            ti
            for ti in dag_run.get_task_instances(session=session)
            if ti.state == TaskInstanceState.UP_FOR_RETRY
        ]
        ready = {ti.task_id: ti for ti in [*schedulable, *retrying]}
        for ti in ready.values():  # dag.test's own step from "schedulable" to "scheduled"
            if ti.state != TaskInstanceState.UP_FOR_RESCHEDULE:
                ti.try_number += 1
            ti.state = TaskInstanceState.SCHEDULED
        session.commit()
        for ti in ready.values():
            _run_task(ti=ti, task=dag.get_task(ti.task_id), run_triggerer=True)


def resume(dag_id: str, run_id: str) -> str:
    """Run a queued run's cleared tasks (a re-run) to its end, in this process; the run's state."""
    import sqlalchemy as sa
    from airflow.models.dagbag import DBDagBag
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    dag = _dag(dag_id)
    with create_session() as session:
        dag_run = session.scalar(sa.select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        assert dag_run is not None, f"no run {run_id} of {dag_id}"
        dag_run.dag = DBDagBag().get_dag_for_run(dag_run=dag_run, session=session)
        schedule_to_the_end(dag, dag_run, session)
        session.expire_all()
        return str(dag_run.state)


def main(argv: list[str]) -> None:
    mode, dag_id, value = argv
    if mode == "first":
        first(dag_id, value)
    else:
        print(RESULT_PREFIX + json.dumps(retry(dag_id, value)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
