"""``trigger_workflow``: start a stored workflow once per run (or event), through the Task SDK.

One child run per action and occurrence (the run, or the event of an event rule), handed every
matched item's key in its conf. Its run id derives from the action's idempotency key
(``triggered__<32 hex>``, ADR 0010), so Airflow's unique run id is the ledger: a retry, a cleared
task or a second run of the same event asks for the same run id, Airflow answers that it exists, and
that counts as started. Tasks have no metadata-database access in Airflow 3: the run is asked for
from the supervisor with the SDK's ``TriggerDagRun`` message, as ``TriggerDagRunOperator`` does.
"""

from __future__ import annotations

from typing import Any

from rule_compiler.clock import utcnow
from rule_compiler.compiler import dag_id_for
from rule_compiler.errors import RetryableActionError
from rule_compiler.runtime.idempotency import triggered_run_id
from rule_compiler.runtime.rendering import render_for_action
from rule_engine.operators.actions import ActionOperator, Match


class TriggerWorkflowOperator(ActionOperator):
    """Start the target workflow once per occurrence; ``already_started`` when a retry finds the run."""

    ui_color = "#f3e8fd"

    def run_action(self, context: Any, matches: list[Match]) -> dict[str, Any]:
        params = self.spec_params
        organization = self.rule_id.split("/", 1)[0]
        dag_id = dag_id_for("workflow", organization, str(params["workflow"]))
        counts = {"started": 0, "already_started": 0}
        run_ids = []
        for occurrence, group in by_occurrence(matches).items():
            key = Match(None, occurrence).effect_key(self.rule_id, self.task_id, kind=self.definition_kind)
            run_id = triggered_run_id(key)
            conf = {
                "keys": [match.key for match in group if match.key is not None],
                "payload": self._payload(context, group),
                "triggered_by": {
                    "kind": self.definition_kind,
                    "id": self.rule_id,
                    "action_id": self.task_id,
                    "run_id": self.occurrence_id(context),
                    "occurrence": occurrence,
                },
            }
            outcome = start_run(dag_id, run_id, conf)
            self.log.info("workflow %s, run %s (%d keys): %s", dag_id, run_id, len(conf["keys"]), outcome)
            counts[outcome] += 1
            run_ids.append(run_id)
        return {"dag_id": dag_id, **counts, "run_ids": run_ids}

    def _payload(self, context: Any, group: list[Match]) -> Any:
        """The payload rendered for one child run; a run of one event reads that event's row."""
        payload = self.spec_params.get("payload") or {}
        record, event = None, None
        if len(group) == 1 and group[0].event_id is not None and "row_source" in self.spec_params:
            record, event = self.rows_of(group)[0]
        return render_for_action(payload, self.template_context(context, record, event), "payload")


def by_occurrence(matches: list[Match]) -> dict[str, list[Match]]:
    """The matches of each occurrence, in order: one effect per (action, occurrence)."""
    groups: dict[str, list[Match]] = {}
    for match in matches:
        groups.setdefault(match.occurrence, []).append(match)
    return groups


def start_run(dag_id: str, run_id: str, conf: dict[str, Any]) -> str:
    """Ask Airflow (through the task's supervisor) for run ``run_id`` of ``dag_id``: ``started``, or
    ``already_started`` when it exists. Anything else (the DAG is not parsed yet, the API server is
    down) is retryable."""
    from airflow.sdk.exceptions import AirflowRuntimeError, ErrorType
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.comms import ErrorResponse, TriggerDagRun

    message = TriggerDagRun(dag_id=dag_id, run_id=run_id, conf=conf, logical_date=None, run_after=utcnow())
    try:
        reply = task_runner.SUPERVISOR_COMMS.send(message)
    except AirflowRuntimeError as exc:
        reply = exc.error
    if isinstance(reply, ErrorResponse):
        if reply.error == ErrorType.DAGRUN_ALREADY_EXISTS:
            return "already_started"
        raise RetryableActionError(
            f"Airflow did not start workflow {dag_id}: {reply.error.value} {reply.detail}"
        )
    return "started"
