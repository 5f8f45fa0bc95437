"""The gate of a data rule: poll its read-only query until the check holds, else skip the run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowSkipException

from rule_compiler.runtime.data_query import check_result, result_summary, run_query
from rule_engine.hooks.app_database import AppDatabaseHook
from rule_engine.operators.base import RuleTaskOperator


class DataTriggerSensor(RuleTaskOperator, BaseSensorOperator):
    """Runs the rule's SQL in a read-only transaction every ``poke_interval`` seconds until
    ``check`` passes; after ``timeout`` seconds it gives up and the run is *skipped*, not failed
    (``soft_fail``), with a ``no_match`` entry in the automation log saying why.

    Our own sensor, not ``SqlSensor``: the SQL is the rule author's, so it never passes through
    Airflow's templater (``template_fields = ()``, whose context exposes ``conn`` and ``var``).

    ``mode="reschedule"``, not deferrable: between pokes the worker slot is free either way, and a
    deferrable sensor would need an async driver for every database a connection may name plus the
    read-only, statement-timeout and row-cap handling again in the triggerer's shared event loop,
    where one slow author query would hold up every other trigger. Each poke is one short query.
    """

    template_fields = ()
    ui_color = "#e6f1f2"

    def __init__(self, *, spec_params: Mapping[str, Any], spec_hash: str, **kwargs: Any) -> None:
        super().__init__(
            spec_params=spec_params,
            spec_hash=spec_hash,
            poke_interval=float(spec_params["poke_interval"]),
            timeout=float(spec_params["timeout"]),
            mode="reschedule",
            soft_fail=True,
            **kwargs,
        )

    def execute(self, context: Any) -> Any:
        try:
            return super().execute(context)
        except AirflowSkipException as exc:
            self._record_not_met(context, str(exc))
            raise

    def poke(self, context: Any) -> PokeReturnValue:
        check = self.spec_params["check"]
        connection = str(self.spec_params["connection"])
        engine = AppDatabaseHook(connection).engine
        result = run_query(
            engine,
            str(self.spec_params["sql"]),
            self._query_values(context),
            role=self.query_role(connection),
        )
        passed = check_result(check, result.rows)
        summary = result_summary(check, result)
        self.log.info("data check %s: %s", "passed" if passed else "not passed yet", summary)
        return PokeReturnValue(is_done=passed, xcom_value={**summary, "passed": True} if passed else None)

    def _query_values(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """The run's own times for ``:logical_date`` and the data interval (never the wall clock)."""
        moment = self.run_time(context)
        return {
            "logical_date": moment,
            "data_interval_start": context.get("data_interval_start") or moment,
            "data_interval_end": context.get("data_interval_end") or moment,
        }

    def _record_not_met(self, context: Mapping[str, Any], reason: str) -> None:
        """Log the run as ``no_match`` so ``record_outcome`` (which runs after skipped actions too)
        settles it as such instead of failing on a run nobody recorded."""
        organization, rule_name = self.rule_id.split("/", 1)
        check = self.spec_params["check"]
        dag_run = context.get("dag_run")
        run_pk = self.store.start_run(
            organization=organization,
            rule_name=rule_name,
            dag_id=self.dag_id,
            run_id=str(context["run_id"]),
            spec_hash=self.spec_hash,
            trigger_type="data",
            trigger_context={
                "run_id": str(context["run_id"]),
                "run_type": str(getattr(dag_run, "run_type", "")),
                "logical_date": str(context.get("logical_date")),
            },
        )
        wanted = check["operator"] + (f" {check['value']}" if "value" in check else "")
        trace = {
            "evaluated": 0,
            "matched": 0,
            "rows": [],
            "note": f"the data check ({wanted}) did not pass within {self.timeout:g} s: {reason}",
        }
        self.store.record_evaluation(run_pk, trace=trace, matched_count=0, status="no_match")
