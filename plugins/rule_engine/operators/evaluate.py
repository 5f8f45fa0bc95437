"""The first task of every rule: evaluate the conditions and pass the matches' keys on.

Its log says why: one entry per row or event tested (by key), with the verdict of each condition
(``rule_compiler.runtime.verdicts``): the first ``LOGGED_ITEMS`` in full, the rest counted; row values
only when ``AUTOMATION_LOG_VALUES`` is true. The automation log keeps the traces with values, as before.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from airflow.sdk.exceptions import AirflowSkipException
from pydantic import TypeAdapter

from rule_compiler.canonical import canonical_json
from rule_compiler.conditions import NotTranslatableError, compile_condition
from rule_compiler.definitions import ConditionNode, EventTrigger
from rule_compiler.runtime.event_cursor import EventRange
from rule_compiler.runtime.idempotency import key_values, row_key
from rule_compiler.runtime.rows import iter_rows, matching_keys
from rule_compiler.runtime.run_events import MAX_TRACED_ROWS, evaluate_events, event_ids_of
from rule_compiler.runtime.verdicts import VerdictLog
from rule_compiler.settings import log_values, max_matches
from rule_compiler.store.runs import RunItem
from rule_engine.hooks.app_database import AppDatabaseHook
from rule_engine.operators.base import RuleTaskOperator, refuse_cancelled
from rule_engine.operators.item_runs import is_item_run, planned, start_item_runs

_CONDITION = TypeAdapter(ConditionNode)


class EvaluateConditionsOperator(RuleTaskOperator):
    """Select the rows the rule is about, test the conditions, record why, and pass on the matches."""

    ui_color = "#fff4d6"

    def execute(self, context: Any) -> dict[str, Any]:
        params = self.spec_params
        trigger = params["trigger"]
        run_id = str(context["run_id"])
        # an event rule's retry (or a cleared task) takes the events its first try recorded
        retried = int(getattr(context.get("ti"), "try_number", 1) or 1) > 1
        previous = (
            self.store.get_run(dag_id=self.dag_id, run_id=run_id)
            if trigger["type"] == "event" and retried
            else None
        )
        run_pk = self._open_run(context, trigger["type"])
        raw = params.get("conditions")
        source = params.get("row_source")
        node = _CONDITION.validate_python(raw) if raw is not None else None
        compiled = compile_condition(node, column_types=source["types"] if source else None)
        now = self.run_time(context)
        trace: dict[str, Any]
        taken: EventRange | None = None
        verdicts = VerdictLog(values=self._log_values())
        if trigger["type"] == "event" and source is not None:  # an event rule always has its table
            earlier = (previous.trace or {}).get("event_range") if previous is not None else None
            verdicts.unit = "events"
            events, trace, taken = self._evaluate_events(
                context, trigger, source, compiled, now, verdicts=verdicts, earlier=earlier
            )
            matched = [event["key"] for event in events]
        elif source is not None and (handed := _handed_keys(trigger, context)) is not None:
            events = []
            matched, trace = self._evaluate_handed(source, handed, compiled, now, verdicts)
        elif source is None:
            events = []
            matched = [None]
            trace = {
                "evaluated": 0,
                "matched": 1,
                "rows": [],
                "note": "no row source: runs once",
            }
        else:
            matched, trace = self._evaluate_rows(source, node, compiled, now, verdicts)
        split = self._split_items(context, run_id, events if trigger["type"] == "event" else matched)
        if split:
            matched, events = matched[:1], events[:1]
            trace["one_run_per_item"] = planned(self.dag_id, run_id, split)
        status = "running" if matched else "no_match"
        items = _run_items(context, source, events if trigger["type"] == "event" else None, matched)
        self.store.record_evaluation(
            run_pk, trace=trace, matched_count=len(matched), status=status, items=items
        )
        if taken is not None:  # recorded first: a retry of this task takes the same events
            taken.commit()
        if split:
            counts = start_item_runs(self.dag_id, run_id, split[1:])
            self.log.info("one run per item: this run keeps the first; item runs %s", counts)
        if source is not None:
            for entry in verdicts.lines(int(trace["evaluated"])):
                self.log.info("%s", entry)
        else:
            self.log.info("the rule has no row source: it runs its actions once")
        self.log.info("%d of %d %s matched", trace["matched"], trace["evaluated"], verdicts.unit)
        if not matched:
            raise AirflowSkipException("no rows matched the conditions; the actions are skipped")
        result: dict[str, Any] = {"run_pk": run_pk, "spec_hash": self.spec_hash, "matched_keys": matched}
        if trigger["type"] == "event":
            result["matched_events"] = events
        return result

    def _open_run(self, context: Any, trigger_type: str) -> int:
        """The run's automation-log entry (a retry finds it); a run cancelled before it started takes
        nothing."""
        run_pk = self.store.start_run(
            organization=self.rule_id.split("/")[0],
            rule_name=self.rule_id.split("/")[1],
            dag_id=self.dag_id,
            run_id=str(context["run_id"]),
            spec_hash=self.spec_hash,
            trigger_type=trigger_type,
            trigger_context=_trigger_context(context),
        )
        refuse_cancelled(self.store, run_pk)
        return run_pk

    def _split_items(self, context: Any, run_id: str, items: list[Any]) -> list[Any]:
        """The items to hand out one per run (this run keeps the first): those of a waiting workflow's
        run that its trigger started with more than one item; else none."""
        if not self.spec_params.get("per_item") or is_item_run(_conf(context)) or len(items) < 2:
            return []
        return list(items)

    def _log_values(self) -> bool:
        """``AUTOMATION_LOG_VALUES``; a value that is not a boolean hides values (and says so)."""
        try:
            return log_values()
        except ValueError as exc:
            self.log.warning("%s; row values stay out of this log", exc)
            return False

    def _evaluate_events(
        self,
        context: Any,
        trigger: Mapping[str, Any],
        source: Mapping[str, Any],
        compiled: Any,
        now: Any,
        *,
        verdicts: VerdictLog,
        earlier: list[int] | None,
    ) -> tuple[list[dict[str, Any]], dict[str, Any], EventRange | None]:
        """Each event the run takes: does the trigger take it, do the conditions hold; the matches'
        ids and row keys go on (never their rows).

        A run takes every event of the table after the rule's own cursor, not only the events of the
        asset events that started it: Airflow 3.3 may leave asset events that arrive while a run is
        active attached to no run (apache/airflow#56050), and the next run still finds them here. A
        run configured with ``event_ids`` re-processes exactly those (the cursor stays).
        """
        rule_trigger = EventTrigger.model_validate(trigger)
        engine = AppDatabaseHook(source["connection"]).engine
        conf_ids = event_ids_of([_conf(context)])
        taken: EventRange | None = None
        if conf_ids:
            ids = conf_ids
        else:
            taken = EventRange.take(
                engine, rule_trigger.table, self.dag_id, _event_payloads(context), earlier
            )
            ids = taken.ids
        matched, trace = evaluate_events(
            engine, ids, rule_trigger, source=source, compiled=compiled, now=now, verdicts=verdicts
        )
        if taken is not None:
            trace["event_range"] = [taken.after, taken.through]
        return matched, trace, taken

    def _evaluate_rows(
        self,
        source: Mapping[str, Any],
        node: ConditionNode | None,
        compiled: Any,
        now: Any,
        verdicts: VerdictLog,
    ) -> tuple[list[Any], dict[str, Any]]:
        """Matches selected in SQL; the first rows' traces from the Python evaluator (same meaning)."""
        pk = list(source["primary_key"])
        with AppDatabaseHook(source["connection"]).engine.connect() as conn:
            try:
                matched = matching_keys(conn, source, node, now=now, limit=max_matches())
            except NotTranslatableError:
                return self._evaluate_in_python(conn, source, compiled, now, verdicts)
            evaluated = conn.execute(
                sa.select(sa.func.count()).select_from(sa.table(source["table"]))
            ).scalar_one()
            traced = []
            for row in itertools.islice(iter_rows(conn, source), MAX_TRACED_ROWS):
                explained = compiled.explain(row, now=now)
                traced.append({"key": row_key(row, pk), **explained})
                _log_row(verdicts, row_key(row, pk), explained, compiled=compiled, row=row, now=now)
        for key in matched:
            verdicts.matched(canonical_json(key))
        return matched, {
            "evaluated": evaluated,
            "matched": len(matched),
            "rows": traced,
            "selected_in": "sql",
        }

    def _evaluate_handed(
        self,
        source: Mapping[str, Any],
        handed: list[Any],
        compiled: Any,
        now: Any,
        verdicts: VerdictLog,
    ) -> tuple[list[Any], dict[str, Any]]:
        """The rows a ``trigger_workflow`` handed over (their keys in the run's conf), those of them the
        target still holds, through the conditions; a key of no row is counted, not an error."""
        pk = list(source["primary_key"])
        matched: list[Any] = []
        traced: list[dict[str, Any]] = []
        with AppDatabaseHook(source["connection"]).engine.connect() as conn:
            rows = list(iter_rows(conn, source, handed[: max_matches()]))
        for row in rows:
            explained = compiled.explain(row, now=now)
            if len(traced) < MAX_TRACED_ROWS:
                traced.append({"key": row_key(row, pk), **explained})
                _log_row(verdicts, row_key(row, pk), explained, compiled=compiled, row=row, now=now)
            if explained["matched"]:
                matched.append(key_values(row, pk))
                verdicts.matched(canonical_json(matched[-1]))
        return matched, {
            "evaluated": len(rows),
            "matched": len(matched),
            "rows": traced,
            "handed_keys": len(handed),
            "selected_in": "handed keys",
        }

    def _evaluate_in_python(
        self,
        conn: sa.Connection,
        source: Mapping[str, Any],
        compiled: Any,
        now: Any,
        verdicts: VerdictLog,
    ) -> tuple[list[Any], dict[str, Any]]:
        """Every row through the Python evaluator (conditions SQL cannot express)."""
        pk = list(source["primary_key"])
        matched: list[Any] = []
        traced: list[dict[str, Any]] = []
        evaluated = 0
        cap = max_matches()
        for row in iter_rows(conn, source):
            evaluated += 1
            if len(traced) < MAX_TRACED_ROWS:
                explained = compiled.explain(row, now=now)
                ok = bool(explained["matched"])
                traced.append({"key": row_key(row, pk), **explained})
                _log_row(verdicts, row_key(row, pk), explained, compiled=compiled, row=row, now=now)
            else:
                ok = compiled.matches(row, now=now)
            if ok and len(matched) < cap:
                matched.append(key_values(row, pk))
                verdicts.matched(canonical_json(matched[-1]))
        return matched, {
            "evaluated": evaluated,
            "matched": len(matched),
            "rows": traced,
            "selected_in": "python",
        }


def _log_row(
    verdicts: VerdictLog, key: str, explained: Mapping[str, Any], *, compiled: Any, row: Any, now: Any
) -> None:
    """One row's verdicts for the task log (explained again without values unless they may show)."""
    if verdicts.full:
        return
    verdicts.add(f"row {key}", explained if verdicts.values else compiled.explain(row, now=now, values=False))


def _event_payloads(context: Mapping[str, Any]) -> list[Any]:
    """The payloads of the asset events that started the run."""
    payloads: list[Any] = []
    triggering = context.get("triggering_asset_events") or {}
    for asset_events in triggering.values():
        for asset_event in asset_events:
            payloads.append((asset_event.extra or {}).get("payload"))
    return payloads


def _handed_keys(trigger: Mapping[str, Any], context: Mapping[str, Any]) -> list[Any] | None:
    """The row keys a ``trigger_workflow`` handed a manual run, or a waiting workflow's run handed an
    item run (``conf["keys"]``: each a list of primary key values); None when the run was not started
    so (it then takes its target's rows)."""
    conf = _conf(context)
    keys = conf.get("keys") if trigger.get("type") == "manual" or is_item_run(conf) else None
    if not isinstance(keys, list):
        return None
    return [key for key in keys if isinstance(key, list) and key]


def _conf(context: Mapping[str, Any]) -> dict[str, Any]:
    return dict(getattr(context.get("dag_run"), "conf", None) or {})


def _trigger_context(context: Mapping[str, Any]) -> dict[str, Any]:
    dag_run = context.get("dag_run")
    return {
        "run_id": str(context.get("run_id")),
        "run_type": str(getattr(dag_run, "run_type", "")),
        "logical_date": str(context.get("logical_date")),
        "conf": dict(getattr(dag_run, "conf", None) or {}),
    }


def _run_items(
    context: Any, source: dict[str, Any] | None, events: list[dict[str, Any]] | None, matched: list[Any]
) -> list[RunItem]:
    """What the run matched, for the automation log's filters (ADR 0013): each event's table, key and
    actor; each row's table and key; the user who triggered the run (a manual trigger, a REST call) as
    the actor of rows that no event brought."""
    table = source["table"] if source is not None else None
    if events is not None:
        return [RunItem(table, event["key"], event.get("actor")) for event in events]
    user = getattr(context.get("dag_run"), "triggering_user_name", None)
    actor = str(user) if user else None
    if source is None:
        return [RunItem(None, None, actor)] if actor else []
    return [RunItem(table, key, actor) for key in matched]
