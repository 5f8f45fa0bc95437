"""The shared life of an action task: record attempts, classify errors, honour ``on_failure``."""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from rule_compiler.errors import PermanentActionError, RetryableActionError
from rule_compiler.runtime.idempotency import row_key
from rule_compiler.runtime.rows import iter_rows
from rule_engine.hooks.records import RecordsHook
from rule_engine.operators.base import RuleTaskOperator


class ActionOperator(RuleTaskOperator):
    """Runs :meth:`run_action` over the evaluate task's matches and writes the automation log.

    Permanent errors fail at once (no retry storm); others are retried by Airflow's retry policy.
    With ``on_failure: continue`` the last failed attempt is recorded and the task still succeeds,
    so later actions run.
    """

    def __init__(self, *, on_failure: str = "fail", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.on_failure = on_failure

    def run_action(self, context: Any, matched_keys: list[Any]) -> dict[str, Any]:
        raise NotImplementedError

    def execute(self, context: Any) -> dict[str, Any] | None:
        evaluation = self.evaluation(context)
        if evaluation is None:
            raise AirflowSkipException("the conditions did not pass anything on")
        run_pk = int(evaluation["run_pk"])
        self.pin_to_run_version(evaluation.get("spec_hash"))
        try:
            output = self.run_action(context, list(evaluation["matched_keys"]))
        except Exception as exc:
            permanent = isinstance(exc, PermanentActionError | AirflowFailException)
            last_try = permanent or context["ti"].try_number > self.retries
            error = f"{type(exc).__name__}: {exc}"
            self.store.record_action(
                run_pk, self.task_id, status="failed" if last_try else "retrying", error=error
            )
            if last_try and self.on_failure == "continue":
                self.log.warning(
                    "action failed, continuing as the rule says (on_failure: continue): %s", error
                )
                return {"status": "failed", "error": error}
            if permanent:
                raise AirflowFailException(error) from exc
            if isinstance(exc, RetryableActionError):
                raise
            raise
        self.store.record_action(run_pk, self.task_id, status="success", output=output)
        return output

    def rows_by_key(self, keys: list[Any]) -> dict[str, dict[str, Any]]:
        """The triggering rows by key text (``[42]``), read only when the action's templates need them."""
        source = self.spec_params.get("row_source")
        wanted = [k for k in keys if k is not None]
        if source is None or not wanted:
            return {}
        with RecordsHook(source["connection"]).engine.connect() as conn:
            return {row_key(row, source["primary_key"]): row for row in iter_rows(conn, source, wanted)}

    def template_context(self, context: Any, record: dict[str, Any] | None) -> dict[str, Any]:
        """What author templates may read: the row, the rule and the run (never Airflow's context)."""
        return {
            "record": record or {},
            "rule": {"id": self.rule_id},
            "run": {"id": self.occurrence_id(context)},
        }


class NotYetSupportedOperator(ActionOperator):
    """An action kind this release compiles but cannot run yet: fails clearly, once, and is logged."""

    ui_color = "#fce8e6"

    def run_action(self, context: Any, matched_keys: list[Any]) -> dict[str, Any]:
        raise PermanentActionError(
            f"action kind '{self.spec_params.get('kind')}' is not supported by this release yet"
        )
