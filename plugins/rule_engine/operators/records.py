"""``create_record``, ``update_record``, ``delete_record``: one task that loops over the matched rows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter

from rule_compiler.canonical import canonical_json
from rule_compiler.definitions import ConditionNode
from rule_compiler.errors import PermanentActionError
from rule_compiler.runtime.record_effects import Effect, apply_effect, ensure_ledger
from rule_compiler.runtime.rendering import render_for_action
from rule_compiler.runtime.rows import matching_keys
from rule_engine.hooks.app_database import AppDatabaseHook
from rule_engine.operators.actions import ActionOperator, Match

_CONDITION = TypeAdapter(ConditionNode)
#: How many rows one `where` may select in a run.
MAX_WHERE_ROWS = 10_000


class RecordActionOperator(ActionOperator):
    """Apply a record effect to each target row, exactly once per (rule, run, action, row)."""

    ui_color = "#e6f4ea"

    def run_action(self, context: Any, matches: list[Match]) -> dict[str, Any]:
        params = self.spec_params
        plan = params["plan"]
        engine = AppDatabaseHook(params["connection"]).engine
        ensure_ledger(engine)
        kind = self.action_kind
        counts = {"applied": 0, "already_applied": 0, "missing_row": 0}
        problems: list[str] = []
        where_targets = self._where_targets(engine, plan, context)
        done: set[str] = set()
        for match, (record, event) in zip(matches, self.rows_of(matches), strict=True):
            values = render_for_action(
                params.get("values", {}), self.template_context(context, record, event), "values"
            )
            targets: list[Any]
            if kind == "create_record":
                targets = [match.key]
            elif where_targets is not None:
                targets = where_targets
            elif match.key is None:
                raise PermanentActionError(f"{kind} has no row to act on and no `where`")
            else:
                targets = [match.key]
            for target in targets:
                key_text = canonical_json(target) if target is not None else None
                effect_key = match.effect_key(self.rule_id, self.task_id, key_text, kind=self.definition_kind)
                if effect_key in done:  # a `where` row already handled for this run
                    continue
                done.add(effect_key)
                effect = Effect(
                    idempotency_key=effect_key,
                    rule_id=self.rule_id,
                    action_id=self.task_id,
                    occurrence_id=match.occurrence,
                    row_key=key_text,
                )
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

    def _where_targets(self, engine: Any, plan: Mapping[str, Any], context: Any) -> list[Any] | None:
        """The rows a ``where`` selects (the same for every match), or None without one."""
        where = self.spec_params.get("where")
        if where is None or self.action_kind == "create_record":
            return None
        with engine.connect() as conn:  # `where` selects in SQL (never changed*: validation refuses it)
            return matching_keys(
                conn,
                plan,
                _CONDITION.validate_python(where),
                now=self.run_time(context),
                limit=MAX_WHERE_ROWS,
            )
