"""``create_record``, ``update_record``, ``delete_record``: one task that loops over the matched rows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter

from rule_compiler.canonical import canonical_json
from rule_compiler.definitions import ConditionNode
from rule_compiler.errors import PermanentActionError
from rule_compiler.runtime.idempotency import idempotency_key
from rule_compiler.runtime.records import Effect, apply_effect, ensure_ledger
from rule_compiler.runtime.rows import matching_keys
from rule_compiler.templating import render_value
from rule_engine.hooks.records import RecordsHook
from rule_engine.operators.actions import ActionOperator

_CONDITION = TypeAdapter(ConditionNode)
#: How many rows one `where` may select in a run.
MAX_WHERE_ROWS = 10_000


class RecordActionOperator(ActionOperator):
    """Apply a record effect to each target row, exactly once per (rule, run, action, row)."""

    ui_color = "#e6f4ea"

    def run_action(self, context: Any, matched_keys: list[Any]) -> dict[str, Any]:
        params = self.spec_params
        plan = params["plan"]
        engine = RecordsHook(params["connection"]).engine
        ensure_ledger(engine)
        kind = self.action_kind
        targets = self._targets(engine, plan, matched_keys, context) if kind != "create_record" else []
        counts = {"applied": 0, "already_applied": 0, "missing_row": 0}
        problems: list[str] = []
        rows: list[Any] = targets if kind != "create_record" else (matched_keys or [None])
        records = self.rows_by_key(rows)
        for target in rows:
            key_text = canonical_json(target) if target is not None else None
            effect = Effect(
                idempotency_key=idempotency_key(
                    self.rule_id, self.occurrence_id(context), self.task_id, key_text
                ),
                rule_id=self.rule_id,
                action_id=self.task_id,
                occurrence_id=self.occurrence_id(context),
                row_key=key_text,
            )
            record = records.get(key_text or "", {})
            values = render_value(params.get("values", {}), self.template_context(context, record))
            try:
                outcome = apply_effect(
                    engine,
                    effect,
                    operation=self._operation(),
                    table_name=plan["table"],
                    primary_key=list(plan["primary_key"]),
                    key_values=target,
                    values=values,
                    soft_delete_column=params.get("soft_delete_column"),
                    upsert_on=params.get("upsert_on"),
                )
            except PermanentActionError as exc:
                problems.append(f"row {key_text}: {exc}")
                continue
            counts[outcome] += 1
            if outcome == "missing_row":
                problems.append(f"row {key_text} no longer exists in '{plan['table']}'")
        self.log.info("%s on %s: %s", kind, plan["table"], counts)
        if problems:
            raise PermanentActionError("; ".join(problems[:10]) + (" ..." if len(problems) > 10 else ""))
        return {"table": plan["table"], **counts}

    @property
    def action_kind(self) -> str:
        return str(self.spec_params["kind"])

    def _operation(self) -> Any:
        kind = self.action_kind
        if kind == "create_record":
            return "insert"
        if kind == "update_record":
            return "update"
        return "soft_delete" if self.spec_params.get("soft") else "delete"

    def _targets(self, engine: Any, plan: Mapping[str, Any], matched: list[Any], context: Any) -> list[Any]:
        where = self.spec_params.get("where")
        if where is None:
            if matched == [None]:
                raise PermanentActionError(f"{self.action_kind} has no row to act on and no `where`")
            return matched
        with engine.connect() as conn:  # `where` selects in SQL (never changed*: validation refuses it)
            return matching_keys(
                conn,
                plan,
                _CONDITION.validate_python(where),
                now=self.run_time(context),
                limit=MAX_WHERE_ROWS,
            )
