"""The first task of every rule: evaluate the conditions and pass the matches' keys on."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from airflow.sdk.exceptions import AirflowSkipException
from pydantic import TypeAdapter

from rule_compiler.conditions import NotTranslatableError, compile_condition
from rule_compiler.definitions import ConditionNode
from rule_compiler.runtime.idempotency import key_values, row_key
from rule_compiler.runtime.rows import iter_rows, matching_keys
from rule_engine.hooks.records import RecordsHook
from rule_engine.operators.base import RuleTaskOperator

#: How many per-row traces the automation log keeps for one run (the counts are always complete).
MAX_TRACED_ROWS = 100
#: How many matched rows one run acts on; the rest wait for the next run.
MAX_MATCHES = 10_000
_CONDITION = TypeAdapter(ConditionNode)


class EvaluateConditionsOperator(RuleTaskOperator):
    """Select the rows the rule is about, test the conditions, record why, and pass on the matches."""

    ui_color = "#fff4d6"

    def execute(self, context: Any) -> dict[str, Any]:
        params = self.spec_params
        trigger = params["trigger"]
        run_pk = self.store.start_run(
            organization=self.rule_id.split("/")[0],
            rule_name=self.rule_id.split("/")[1],
            dag_id=self.dag_id,
            run_id=str(context["run_id"]),
            spec_hash=self.spec_hash,
            trigger_type=trigger["type"],
            trigger_context=_trigger_context(context),
        )
        raw = params.get("conditions")
        source = params.get("row_source")
        node = _CONDITION.validate_python(raw) if raw is not None else None
        compiled = compile_condition(node, column_types=source["types"] if source else None)
        now = self.run_time(context)
        if source is None:
            matched: list[Any] = [None]
            trace: dict[str, Any] = {
                "evaluated": 0,
                "matched": 1,
                "rows": [],
                "note": "no row source: runs once",
            }
        else:
            matched, trace = self._evaluate_rows(source, node, compiled, now)
        status = "running" if matched else "no_match"
        self.store.record_evaluation(run_pk, trace=trace, matched_count=len(matched), status=status)
        self.log.info("%d of %d rows matched", trace["matched"], trace["evaluated"])
        if not matched:
            raise AirflowSkipException("no rows matched the conditions; the actions are skipped")
        return {"run_pk": run_pk, "spec_hash": self.spec_hash, "matched_keys": matched}

    def _evaluate_rows(
        self, source: Mapping[str, Any], node: ConditionNode | None, compiled: Any, now: Any
    ) -> tuple[list[Any], dict[str, Any]]:
        """Matches selected in SQL; the first rows' traces from the Python evaluator (same meaning)."""
        pk = list(source["primary_key"])
        with RecordsHook(source["connection"]).engine.connect() as conn:
            try:
                matched = matching_keys(conn, source, node, now=now, limit=MAX_MATCHES)
            except NotTranslatableError:
                return self._evaluate_in_python(conn, source, compiled, now)
            evaluated = conn.execute(
                sa.select(sa.func.count()).select_from(sa.table(source["table"]))
            ).scalar_one()
            traced = [
                {"key": row_key(row, pk), **compiled.explain(row, now=now)}
                for row in itertools.islice(iter_rows(conn, source), MAX_TRACED_ROWS)
            ]
        return matched, {
            "evaluated": evaluated,
            "matched": len(matched),
            "rows": traced,
            "selected_in": "sql",
        }

    def _evaluate_in_python(
        self, conn: sa.Connection, source: Mapping[str, Any], compiled: Any, now: Any
    ) -> tuple[list[Any], dict[str, Any]]:
        """Every row through the Python evaluator (conditions SQL cannot express)."""
        pk = list(source["primary_key"])
        matched: list[Any] = []
        traced: list[dict[str, Any]] = []
        evaluated = 0
        for row in iter_rows(conn, source):
            evaluated += 1
            if len(traced) < MAX_TRACED_ROWS:
                explained = compiled.explain(row, now=now)
                ok = bool(explained["matched"])
                traced.append({"key": row_key(row, pk), **explained})
            else:
                ok = compiled.matches(row, now=now)
            if ok and len(matched) < MAX_MATCHES:
                matched.append(key_values(row, pk))
        return matched, {
            "evaluated": evaluated,
            "matched": len(matched),
            "rows": traced,
            "selected_in": "python",
        }


def _trigger_context(context: Mapping[str, Any]) -> dict[str, Any]:
    dag_run = context.get("dag_run")
    return {
        "run_id": str(context.get("run_id")),
        "run_type": str(getattr(dag_run, "run_type", "")),
        "logical_date": str(context.get("logical_date")),
        "conf": dict(getattr(dag_run, "conf", None) or {}),
    }
