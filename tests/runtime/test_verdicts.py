"""The text of a run's task logs: verdict entries (bounded), action outcome lines, the no-match note."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rule_compiler.conditions import compile_condition
from rule_compiler.runtime.verdicts import (
    LISTED_KEYS,
    LOGGED_ITEMS,
    VerdictLog,
    action_line,
    event_head,
    no_match_note,
)
from rule_compiler.store.models import ActionResult
from tests.compiler.conditions._support import NOW, node

BIG = compile_condition(node({"field": "total", "operator": "gte", "value": 1000}))


def _result(status: str, output: Any = None, *, attempts: int = 1, error: str | None = None) -> ActionResult:
    return ActionResult(
        action_id="a",
        status=status,
        attempts=attempts,
        output=output,
        error=error,
        updated_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )


def test_a_thousand_rows_log_fifty_entries_and_a_count() -> None:
    log = VerdictLog(values=False)
    for key in range(1, 1001):
        row = {"total": key * 10}
        if not log.full:
            log.add(f"row [{key}]", BIG.explain(row, now=NOW, values=False))
        if BIG.matches(row, now=NOW):
            log.matched(f"[{key}]")
    lines = log.lines(1000)
    assert len(lines) == 1 + LOGGED_ITEMS + 2
    assert lines[0] == (
        f"condition verdicts of {LOGGED_ITEMS} of 1000 rows (row values hidden; AUTOMATION_LOG_VALUES=true "
        "shows them):"
    )
    assert lines[1] == "row [1]: ✗ no match\n  ✗ total gte 1000"
    assert lines[LOGGED_ITEMS] == f"row [{LOGGED_ITEMS}]: ✗ no match\n  ✗ total gte 1000"
    assert (
        lines[-2]
        == f"... {1000 - LOGGED_ITEMS} more rows not shown (a task log shows the first {LOGGED_ITEMS})"
    )
    listed = ", ".join(f"[{key}]" for key in range(100, 100 + LISTED_KEYS))
    assert lines[-1] == f"matched keys: {listed} and {901 - LISTED_KEYS} more"
    assert sum(len(line) for line in lines) < 20_000  # kilobytes, not megabytes


def test_entries_with_values_and_without_conditions_and_ignored_events() -> None:
    log = VerdictLog(values=True, unit="events")
    log.add(event_head(17, "updated", ["status"], "[42]"), BIG.explain({"total": 1500}, now=NOW))
    log.add(event_head(18, "created", None, "[43]"), compile_condition(None).explain({}, now=NOW))
    log.add_ignored(event_head(19, "updated", [], None), "the rule fires only when one of status changed")
    assert log.lines(3) == [
        "condition verdicts of 3 of 3 events:",
        "event 17 updated (changed: status), row [42]: ✓ matched\n"
        "  ✓ total gte 1000  [seen: 1500]  'total' is 1500: gte 1000 is true",
        "event 18 created, row [43]: ✓ matched (the rule has no conditions)",
        "event 19 updated (changed: unknown): - ignored: the rule fires only when one of status changed",
    ]


def test_action_lines_count_what_was_acted_on_skipped_and_failed() -> None:
    records = _result("success", {"table": "orders", "applied": 3, "already_applied": 2, "missing_row": 0})
    assert action_line("escalate", records, on_failure="fail") == (
        "action escalate: success, 1 attempt; acted on 3, skipped 2, failed 0 "
        "(applied 3, already_applied 2, missing_row 0)"
    )
    notices = _result("success", {"channel": "email", "sent": 4, "muted": 1, "deferred": 1, "failed": 0})
    assert action_line("tell", notices, on_failure="fail").endswith(
        "acted on 5, skipped 1, failed 0 (sent 4, muted 1, deferred 1, failed 0)"
    )
    error = "PermanentActionError: row [7]: duplicate key (email)=(ada@example.org)"
    failed = _result("failed", None, attempts=3, error=error)
    assert action_line("hook", failed, on_failure="continue") == (
        "action hook: failed (on_failure: continue), 3 attempts; "
        "error: PermanentActionError (see its task log)"
    )
    assert "ada@example.org" in action_line("hook", failed, on_failure="continue", values=True)
    assert action_line("later", None, on_failure="fail") == (
        "action later: not run (skipped, or an upstream action failed)"
    )


def test_the_note_of_a_run_without_match() -> None:
    assert no_match_note({"evaluated": 40, "matched": 0, "selected_in": "sql"}) == "no match: 0 of 40 rows"
    assert no_match_note({"evaluated": 1, "matched": 0, "selected_in": "python"}) == "no match: 0 of 1 row"
    events = {"evaluated": 3, "matched": 0, "ignored": 2, "selected_in": "events"}
    assert no_match_note(events) == "no match: 0 of 3 events (2 not for this rule)"
    data = {
        "evaluated": 0,
        "matched": 0,
        "note": "the data check (gt 5) did not pass within 3600 s: timed out",
    }
    assert no_match_note(data) == "no match: the data check (gt 5) did not pass within 3600 s: timed out"
