"""The last task: settle the run's status in the automation log, and fail the run if it failed."""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from rule_engine.operators.base import RuleTaskOperator


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
            if status == "failed":
                raise AirflowFailException(
                    "evaluating the conditions failed; see the evaluate_conditions log"
                )
            return status
        results = {result.action_id: result for result in run.actions}
        failed_hard: list[str] = []
        failed_soft: list[str] = []
        for action in self.spec_params["actions"]:
            result = results.get(action["id"])
            if result is None or result.status != "success":
                (failed_soft if action["on_failure"] == "continue" else failed_hard).append(action["id"])
        status = "failed" if failed_hard else "partial" if failed_soft else "success"
        self.store.finish_run(run.id, status)
        if failed_hard:
            raise AirflowFailException(f"actions failed: {', '.join(failed_hard)}")
        return status
