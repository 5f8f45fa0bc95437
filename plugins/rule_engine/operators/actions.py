"""The shared life of an action task: record attempts, classify errors, honour ``on_failure``; and
the reading of its items' rows for templates (:class:`ItemReader`, which waiting nodes share)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from rule_compiler.canonical import canonical_json
from rule_compiler.clock import utcnow
from rule_compiler.definitions import Event
from rule_compiler.errors import PermanentActionError, RetryableActionError
from rule_compiler.events.reader import events_by_ids
from rule_compiler.runtime.idempotency import idempotency_key, row_key
from rule_compiler.runtime.rows import iter_rows
from rule_compiler.runtime.run_events import event_occurrence, event_record
from rule_engine.hooks.app_database import AppDatabaseHook
from rule_engine.operators.base import RuleTaskOperator


@dataclass(frozen=True)
class Match:
    """One thing an action acts on: a row key (None: the run itself) and what its effects are keyed by
    — the run for scheduled and manual rules, the event for event rules (so a redelivered event, in
    another run, has no second effect)."""

    key: Any
    occurrence: str
    event_id: str | None = None

    @property
    def key_text(self) -> str | None:
        return canonical_json(self.key) if self.key is not None else None

    def effect_key(
        self, rule_id: str, action_id: str, key_text: str | None = None, *, kind: str = "rule"
    ) -> str:
        """The idempotency key of this match's effect on the row ``key_text`` (default: its own);
        ``kind``: the definition's kind (ADR 0010: named in every key but a rule's)."""
        return idempotency_key(rule_id, self.occurrence, action_id, key_text or self.key_text, kind=kind)


def acted_on(evaluation: Mapping[str, Any]) -> dict[str, Any]:
    """How many items a workflow's node received and the first ``LOGGED_KEYS`` of them (``event:17``,
    ``[42]``), for its automation-log entry."""
    from rule_engine.operators.workflow_items import LOGGED_KEYS, item_identity, items_of

    items = items_of(evaluation)
    return {"items": len(items), "keys": [item_identity(item) for item in items[:LOGGED_KEYS]]}


class ItemReader(RuleTaskOperator):
    """A task that reads its items' rows for author templates: the actions, a workflow's waiting nodes."""

    def matches(self, context: Any, evaluation: Mapping[str, Any]) -> list[Match]:
        """What the evaluate task matched: events (event rules) or row keys, each with its occurrence."""
        if "matched_events" in evaluation:
            return [
                Match(item["key"], event_occurrence(str(item["event_id"])), str(item["event_id"]))
                for item in evaluation["matched_events"]
            ]
        run = self.occurrence_id(context)
        return [Match(key, run) for key in evaluation["matched_keys"]] or [Match(None, run)]

    def rows_of(self, matches: list[Match]) -> list[tuple[dict[str, Any], Event | None]]:
        """Each match's row for templates (and its event, for event rules), aligned with ``matches``.

        Event rules read the events back from the outbox (the run carries ids only); other rules
        read the current rows, only when the action's templates need them.
        """
        source = self.spec_params.get("row_source")
        if not any(match.event_id is not None for match in matches):
            rows = self.rows_by_key([match.key for match in matches])
            return [(rows.get(match.key_text or "", {}), None) for match in matches]
        if source is None:
            raise PermanentActionError("an event rule's action has no row source; recompile the rule")
        ids = [int(match.event_id) for match in matches if match.event_id is not None]
        with AppDatabaseHook(source["connection"]).engine.connect() as conn:
            events = {str(event.id): event for event in events_by_ids(conn, ids)}
            records = {event_id: event_record(conn, source, event) for event_id, event in events.items()}
        return [(records.get(str(match.event_id), {}), events.get(str(match.event_id))) for match in matches]

    def rows_by_key(self, keys: list[Any]) -> dict[str, dict[str, Any]]:
        """The triggering rows by key text (``[42]``), read only when the action's templates need them."""
        source = self.spec_params.get("row_source")
        wanted = [k for k in keys if k is not None]
        if source is None or not wanted:
            return {}
        with AppDatabaseHook(source["connection"]).engine.connect() as conn:
            return {row_key(row, source["primary_key"]): row for row in iter_rows(conn, source, wanted)}

    def template_context(
        self, context: Any, record: dict[str, Any] | None, event: Event | None = None
    ) -> dict[str, Any]:
        """What author templates may read: the row, the rule, the run and, for an event rule, the
        event's ``old`` row and ``changes`` (never Airflow's context)."""
        values: dict[str, Any] = {
            "record": record or {},
            "rule": {"id": self.rule_id},
            "run": {"id": self.occurrence_id(context)},
        }
        if event is not None:
            old, new = event.old or {}, event.new or {}
            values["old"] = old
            values["changes"] = {
                name: {"old": old.get(name), "new": new.get(name)} for name in event.changed()
            }
            values["event"] = {"id": event.id, "operation": event.operation, "table": event.table}
        return values


class ActionOperator(ItemReader):
    """Runs :meth:`run_action` over the evaluate task's matches and writes the automation log.

    Permanent errors fail at once (no retry storm); others are retried by Airflow's retry policy.
    With ``on_failure: continue`` the last failed attempt is recorded and the task still succeeds,
    so later actions run.
    """

    takes_on_failure = True

    def __init__(self, *, on_failure: str = "fail", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.on_failure = on_failure

    def run_action(self, context: Any, matches: list[Match]) -> dict[str, Any]:
        raise NotImplementedError

    def execute(self, context: Any) -> dict[str, Any] | None:
        evaluation = self.received(context, "no items reached this action: nothing to act on")
        run_pk = int(evaluation["run_pk"])
        try:
            output = self.run_action(context, self.matches(context, evaluation))
        except Exception as exc:
            permanent = isinstance(exc, PermanentActionError | AirflowFailException)
            last_try = permanent or context["ti"].try_number > self.retries
            error = f"{type(exc).__name__}: {exc}"
            outcome = "failed" if last_try else "retrying"
            self.store.record_action(
                run_pk, self.task_id, status=outcome, error=error, started_at=self.attempt_started
            )
            self._emit(outcome)
            if last_try and self.on_failure == "continue":
                self.log.warning(
                    "action failed, continuing as the rule says (on_failure: continue): %s", error
                )
                return self._passed_on(evaluation, {"status": "failed", "error": error})
            if permanent:
                raise AirflowFailException(error) from exc
            if isinstance(exc, RetryableActionError):
                raise
            raise
        if self.in_workflow:  # the automation log's trace of the path: which items this node acted on
            output = {**output, **acted_on(evaluation)}
        self.store.record_action(
            run_pk, self.task_id, status="success", output=output, started_at=self.attempt_started
        )
        self._emit("success")
        return self._passed_on(evaluation, output)

    def _emit(self, outcome: str) -> None:
        """The attempt's metrics (rule_engine.metrics)."""
        from rule_engine import metrics

        organization, name = self.rule_id.split("/", 1)
        started = self.attempt_started
        metrics.action_recorded(
            organization=organization,
            kind=self.definition_kind,
            name=name,
            action_type=str(self.spec_params.get("kind", "action")),
            outcome=outcome,
            duration_ms=None if started is None else (utcnow() - started).total_seconds() * 1000,
        )

    def _passed_on(self, evaluation: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
        """A rule's action returns its result; a workflow's action node passes every item it received on
        (it acted on each, or failed with ``on_failure: continue``), with its result beside them."""
        return {**evaluation, "result": result} if self.in_workflow else result
