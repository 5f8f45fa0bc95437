"""The last task: settle the run's status in the automation log, and fail the run if it failed.

Its log ends with one line per action (status, attempts, items acted on / skipped / failed: see
``rule_compiler.runtime.verdicts.action_line``) and the run's status. When nothing matched it also
pushes the XCom ``run_note`` (``no match: 0 of 40 rows``), which the scheduler's listener
(``rule_engine.run_notes``) puts on the DAG run, so such a run stands out in the Airflow UI.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from rule_compiler.clock import utcnow
from rule_compiler.runtime.verdicts import action_line, no_match_note
from rule_compiler.store import RunLog
from rule_engine import metrics
from rule_engine.operators.base import RuleTaskOperator

#: The XCom key of a no-match run's note (read by ``rule_engine.run_notes``).
RUN_NOTE_KEY = "run_note"


class RecordOutcomeOperator(RuleTaskOperator):
    """Runs after every action (``all_done``): success, partial, no_match or failed."""

    ui_color = "#f1f3f4"

    def execute(self, context: Any) -> str:
        evaluation = self.evaluation(context)
        run = self.store.get_run(dag_id=self.dag_id, run_id=str(context["run_id"]))
        if run is None:
            raise AirflowFailException("the conditions task did not record this run; see its log")
        if evaluation is None:
            status = "no_match" if run.status == "no_match" else "failed"
            self.store.finish_run(run.id, status)
            self._emit(run, status)
            if status == "failed":
                self.log.info("outcome: failed (evaluating the conditions failed)")
                raise AirflowFailException(
                    "evaluating the conditions failed; see the evaluate_conditions log"
                )
            note = no_match_note(run.trace)
            self.log.info("outcome: no_match (%s); the actions did not run", note)
            context["ti"].xcom_push(key=RUN_NOTE_KEY, value=note)
            return status
        results = {result.action_id: result for result in run.actions}
        failed_hard: list[str] = []
        failed_soft: list[str] = []
        values = self._log_values()
        for action in self.spec_params["actions"]:
            result = results.get(action["id"])
            self.log.info(
                "%s", action_line(action["id"], result, on_failure=action["on_failure"], values=values)
            )
            if result is None and self.definition_kind != "rule":
                continue  # a workflow's node that no item reached was skipped: not a failure
            if result is None or result.status != "success":
                (failed_soft if action["on_failure"] == "continue" else failed_hard).append(action["id"])
        status = "failed" if failed_hard else "partial" if failed_soft else "success"
        self.store.finish_run(run.id, status)
        self._emit(run, status)
        self.log.info("outcome: %s (%d matched)", status, run.matched_count)
        if failed_hard:
            raise AirflowFailException(f"actions failed: {', '.join(failed_hard)}")
        return status

    def _emit(self, run: RunLog, status: str) -> None:
        """The run's metrics (rule_engine.metrics)."""
        trace = run.trace if isinstance(run.trace, dict) else {}
        evaluated = trace.get("evaluated")
        organization, name = self.rule_id.split("/", 1)
        metrics.run_finished(
            organization=organization,
            kind=self.definition_kind,
            name=name,
            outcome=status,
            duration_ms=(utcnow() - run.started_at).total_seconds() * 1000,
            evaluated=evaluated if isinstance(evaluated, int) else 0,
            matched=run.matched_count,
        )

    @staticmethod
    def _log_values() -> bool:
        from rule_compiler.settings import log_values

        try:
            return log_values()
        except ValueError:  # the evaluate task already warned
            return False
