"""Alert mode's check on a query's first row (thresholds, equality), not_empty and changed; results
come from real queries on SQLite, as a run produces them."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from rule_compiler.reporting.alerts import alert_holds
from rule_compiler.reporting.queries import run_query_to_csv
from rule_compiler.reporting.report_errors import ReportAlertError
from rule_compiler.reporting.workdir import QueryResult


@pytest.fixture
def query(tmp_path: Path) -> Any:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE failures (day TEXT, failed INTEGER, rate REAL, region TEXT)"))
        conn.execute(
            sa.text(
                "INSERT INTO failures VALUES ('2026-11-16', 12, 0.25, 'emea'), ('2026-11-15', 3, 0.5, NULL)"
            )
        )
    counter = iter(range(1_000))

    def run(sql: str) -> QueryResult:
        path = tmp_path / f"q{next(counter)}.csv"
        return run_query_to_csv(engine, sql, {}, query_id="failures", row_limit=100, timeout=10, path=path)

    yield run
    engine.dispose()


FIRST = "SELECT failed, rate, region, day FROM failures ORDER BY day DESC"


@pytest.mark.parametrize(
    ("operator", "column", "value", "holds"),
    [
        ("gt", None, 10, True),
        ("gt", None, 12, False),
        ("gte", None, 12, True),
        ("lt", None, 12.5, True),
        ("lte", None, 11, False),
        ("gt", "rate", 0.2, True),
        ("lt", "rate", 0.25, False),
        ("equals", None, 12, True),
        ("equals", "rate", 0.25, True),
        ("equals", "region", "emea", True),
        ("equals", "region", "amer", False),
        ("not_equals", "region", "amer", True),
        ("not_equals", None, 12.0, False),
    ],
)
def test_comparisons_use_the_first_row(
    query: Any, operator: str, column: str | None, value: Any, holds: bool
) -> None:
    result = query(FIRST)
    check = {"query": "failures", "operator": operator, "column": column, "value": value}
    verdict, digest, reason = alert_holds(check, result, None)
    assert verdict is holds
    assert digest == hashlib.sha256(result.path.read_bytes()).hexdigest()
    assert reason.startswith(f"failures.{column or 'failed'} = ")


def test_no_row_or_null_never_holds(query: Any) -> None:
    empty = query("SELECT failed FROM failures WHERE failed > 100")
    holds, _, reason = alert_holds({"operator": "lt", "value": 1_000}, empty, None)
    assert (holds, reason) == (False, "query 'failures' returned no rows")
    null = query("SELECT region FROM failures ORDER BY day")
    holds, _, reason = alert_holds({"operator": "not_equals", "value": "x"}, null, None)
    assert (holds, reason) == (False, "failures.region is NULL")


def test_not_empty_holds_when_the_query_returned_a_row(query: Any) -> None:
    assert alert_holds({"operator": "not_empty"}, query(FIRST), None)[:1] == (True,)
    holds, _, reason = alert_holds({"operator": "not_empty"}, query(FIRST + " LIMIT 0"), None)
    assert (holds, reason) == (False, "query 'failures' returned no rows")


def test_changed_compares_the_result_with_the_previous_runs(query: Any) -> None:
    first, digest, reason = alert_holds({"operator": "changed"}, query(FIRST), None)
    assert first is True and "first run" in reason
    same, same_digest, _ = alert_holds({"operator": "changed"}, query(FIRST), digest)
    assert (same, same_digest) == (False, digest)
    other, other_digest, reason = alert_holds({"operator": "changed"}, query(FIRST + " LIMIT 1"), digest)
    assert other is True and other_digest != digest and "changed" in reason


def test_a_check_that_cannot_be_evaluated_says_why(query: Any) -> None:
    result = query(FIRST)
    with pytest.raises(ReportAlertError, match=r"gt compares numbers, but failures.region is 'emea'"):
        alert_holds({"operator": "gt", "column": "region", "value": 3}, result, None)
    with pytest.raises(
        ReportAlertError, match="checks column 'nope', but query 'failures' returned failed, rate"
    ):
        alert_holds({"operator": "equals", "column": "nope", "value": 3}, result, None)
