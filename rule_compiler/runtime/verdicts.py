"""What a run's task logs say: each item's condition verdicts, and each action's outcome, in text.

The evaluate task logs one entry per row or event it tested, keyed by the row's primary key (an
event also by its outbox id, operation and changed columns), with the verdict tree of
:func:`~rule_compiler.conditions.trace.format_trace`; the first :data:`LOGGED_ITEMS` in full, the
others counted, so a run over thousands of rows writes kilobytes, not megabytes. Row values appear
only when the deployment opts in (``AUTOMATION_LOG_VALUES``, :func:`~rule_compiler.settings.log_values`):
the trees are then built from ``explain(..., values=True)``; otherwise from ``values=False`` traces,
which hold verdicts, field names and the rule's own operands only.

The outcome task logs one line per action (:func:`action_line`) and, when nothing matched, the note
the run gets in Airflow (:func:`no_match_note`). Pure text: nothing here imports Airflow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rule_compiler.conditions.trace import format_trace

__all__ = [
    "LOGGED_ITEMS",
    "NO_MATCH_PREFIX",
    "VerdictLog",
    "action_line",
    "event_head",
    "no_match_note",
]

#: How many rows or events one task log shows with their verdict tree (the rest are counted).
LOGGED_ITEMS = 50
#: How many matched keys the summary lists.
LISTED_KEYS = 50
#: How every note the engine puts on a run that matched nothing starts (a person's note never does).
NO_MATCH_PREFIX = "no match: "

#: How the counts of each action kind's output read: acted on, skipped (done before, muted, nobody to
#: tell) or failed. Other numbers an output holds are shown as they are.
ACTED = ("applied", "delivered", "sent", "deferred", "digest")
SKIPPED = ("already_applied", "already_delivered", "already_sent", "muted", "no_recipient")
FAILED = ("failed", "missing_row", "retrying")


@dataclass
class VerdictLog:
    """The verdict entries of one evaluation (rows or events), capped at ``limit`` in full."""

    values: bool
    unit: str = "rows"
    limit: int = LOGGED_ITEMS
    entries: list[str] = field(default_factory=list)
    matched_keys: list[str] = field(default_factory=list)
    matched_count: int = 0

    @property
    def full(self) -> bool:
        """Whether further items are only counted."""
        return len(self.entries) >= self.limit

    def add(self, head: str, explained: Mapping[str, Any]) -> None:
        """One tested item: ``head`` names it (``row [42]``); ``explained`` is ``CompiledCondition.
        explain``'s result, built with ``values=self.values``."""
        matched = bool(explained["matched"])
        node = explained.get("node")
        verdict = "✓ matched" if matched else "✗ no match"
        if node is None:
            self.entries.append(f"{head}: {verdict} (the rule has no conditions)")
            return
        self.entries.append("\n".join([f"{head}: {verdict}", *format_trace(node, 1, values=self.values)]))

    def add_ignored(self, head: str, reason: str) -> None:
        """An event the rule's trigger does not take (``reason`` names operations and columns only)."""
        self.entries.append(f"{head}: - ignored: {reason}")

    def matched(self, key: str) -> None:
        """Count a match (its key is listed up to :data:`LISTED_KEYS`)."""
        self.matched_count += 1
        if len(self.matched_keys) < LISTED_KEYS:
            self.matched_keys.append(key)

    def lines(self, evaluated: int) -> list[str]:
        """The log entries, in order: a heading, one entry per item shown, what was left out, the
        matched keys."""
        hidden = "" if self.values else " (row values hidden; AUTOMATION_LOG_VALUES=true shows them)"
        out = [f"condition verdicts of {len(self.entries)} of {evaluated} {self.unit}{hidden}:"]
        out += self.entries
        left_out = evaluated - len(self.entries)
        if left_out > 0:
            out.append(f"... {left_out} more {self.unit} not shown (a task log shows the first {self.limit})")
        if self.matched_keys:
            more = self.matched_count - len(self.matched_keys)
            listed = ", ".join(self.matched_keys) + (f" and {more} more" if more > 0 else "")
            out.append(f"matched keys: {listed}")
        return out


def event_head(event_id: Any, operation: str, changed: Sequence[str] | None, key: str | None) -> str:
    """``event 17 updated (changed: note, status), row [42]``: no values, only names and keys."""
    head = f"event {event_id} {operation}"
    if operation == "updated":
        head += f" (changed: {', '.join(changed) if changed else 'unknown'})"
    return head + (f", row {key}" if key is not None else "")


def action_line(action_id: str, result: Any | None, *, on_failure: str, values: bool = False) -> str:
    """One action's outcome for the outcome task's log: status, items acted on / skipped / failed,
    attempts, and why it failed (the error's type; its message too when values may be logged, since
    a database error can quote a row's values). ``result`` is the automation log's
    :class:`~rule_compiler.store.models.ActionResult`, or None when the action never ran."""
    if result is None:
        return f"action {action_id}: not run (skipped, or an upstream action failed)"
    text = f"action {action_id}: {result.status}"
    if result.status == "failed" and on_failure == "continue":
        text += " (on_failure: continue)"
    attempts = int(result.attempts or 0)
    text += f", {attempts} attempt{'s' if attempts != 1 else ''}"
    output = result.output if isinstance(result.output, Mapping) else None
    counts = {k: int(v) for k, v in (output or {}).items() if isinstance(v, int) and not isinstance(v, bool)}
    if counts:
        acted = sum(counts.get(k, 0) for k in ACTED)
        skipped = sum(counts.get(k, 0) for k in SKIPPED)
        failed = sum(counts.get(k, 0) for k in FAILED)
        detail = ", ".join(f"{name} {count}" for name, count in counts.items())
        text += f"; acted on {acted}, skipped {skipped}, failed {failed} ({detail})"
    elif result.status == "success":
        text += "; no counts recorded"
    if result.error:
        error = str(result.error)
        kind = error.split(":", 1)[0]
        text += f"; error: {error.splitlines()[0][:300]}" if values else f"; error: {kind} (see its task log)"
    return text


def no_match_note(trace: Mapping[str, Any] | None) -> str:
    """The note of a run that matched nothing: ``no match: 0 of 40 rows``; for events also how many
    the trigger did not take; for a data check that never passed, that."""
    trace = trace or {}
    evaluated = int(trace.get("evaluated") or 0)
    if trace.get("selected_in") == "events":
        note = f"{NO_MATCH_PREFIX}0 of {evaluated} event{'s' if evaluated != 1 else ''}"
        ignored = int(trace.get("ignored") or 0)
        return note + (f" ({ignored} not for this rule)" if ignored else "")
    if evaluated == 0 and trace.get("note"):
        return f"{NO_MATCH_PREFIX}{trace['note']!s}"[:300]
    return f"{NO_MATCH_PREFIX}0 of {evaluated} row{'s' if evaluated != 1 else ''}"
