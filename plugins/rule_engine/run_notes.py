"""A note on every rule or workflow run that matched nothing, so the run list shows it at a glance.

Such a run succeeds (its actions are skipped), and in Airflow 3.3 a task cannot set its own run's
note (the Execution API has no such call). So ``record_outcome`` pushes the note's text as the XCom
``run_note`` (``no match: 0 of 40 rows``), and this listener, which Airflow calls where the run's
state becomes success (the scheduler; the api-server when someone marks a run), copies it onto the
run in the same database session, before the scheduler commits the new state (a run object outside
any session, as ``dag.test()`` passes, is noted in a session of its own).

It never replaces a note a person wrote: only an empty note, or one it wrote itself (it starts with
``no match: ``), is set; a re-run that matched removes its own earlier note. It only touches the DAGs
whose runs end with ``record_outcome`` (``rule__*``, ``workflow__*``), and a failure is logged, never
raised: the scheduler goes on.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.listeners import hookimpl

log = logging.getLogger(__name__)

#: The dag_id prefixes of the kinds whose runs end with ``record_outcome`` (rules and workflows).
NOTED_DAG_PREFIXES = ("rule__", "workflow__")
OUTCOME_TASK_ID = "record_outcome"
# the values of rule_engine.operators.outcome.RUN_NOTE_KEY and rule_compiler.runtime.verdicts.
# NO_MATCH_PREFIX, not imported: what the scheduler imports for this listener stays small
RUN_NOTE_KEY = "run_note"
NO_MATCH_PREFIX = "no match: "
MAX_NOTE = 1000  # Airflow's dag_run_note.content


def note_of(dag_run: Any, session: Any) -> str | None:
    """The note ``record_outcome`` left for this run, or None."""
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    row = session.execute(
        select(XComModel.value).where(
            XComModel.dag_run_id == dag_run.id,
            XComModel.task_id == OUTCOME_TASK_ID,
            XComModel.map_index == -1,
            XComModel.key == RUN_NOTE_KEY,
        )
    ).first()
    if row is None:
        return None
    value = XComModel.deserialize_value(row)
    return str(value)[:MAX_NOTE] if value else None


def set_run_note(dag_run: Any, session: Any) -> str | None:
    """Put the run's no-match note on it (or take an outdated one of ours off); returns the note."""
    current = dag_run.note
    if current and not str(current).startswith(NO_MATCH_PREFIX):
        return None  # a person's note stays
    note = note_of(dag_run, session)
    if note:
        if note != current:
            dag_run.note = note
        return note
    if current:  # ours, from an earlier try of this run that matched nothing; this one matched
        dag_run.dag_run_note = None
    return None


def _set_in_own_session(dag_run: Any) -> str | None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        stored = session.get(DagRun, dag_run.id)
        return set_run_note(stored, session) if stored is not None else None


class RunNoteListener:
    """The listener the plugin registers."""

    @hookimpl
    def on_dag_run_success(self, dag_run: Any, msg: str) -> None:
        if not str(getattr(dag_run, "dag_id", "")).startswith(NOTED_DAG_PREFIXES):
            return
        try:
            from sqlalchemy.orm import object_session

            session = object_session(dag_run)
            # the scheduler's run: in the session that commits its state; a run object outside any
            # session (``dag.test()``): in a session of its own
            note = set_run_note(dag_run, session) if session is not None else _set_in_own_session(dag_run)
            if note:
                log.info("rule engine: run %s of %s noted: %s", dag_run.run_id, dag_run.dag_id, note)
        except Exception:  # a note is a convenience: never stop the scheduler for it
            log.warning("rule engine: could not set the note of run %s", dag_run.run_id, exc_info=True)


run_note_listener = RunNoteListener()
