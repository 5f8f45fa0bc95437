"""A data trigger's query runs read-only (the database refuses writes), binds the run's times, and
its check compares the first column of the first row; on SQLite and on the real Postgres."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from rule_compiler.runtime import data_query
from rule_compiler.runtime.data_query import (
    DataQueryError,
    QueryResult,
    check_result,
    read_only_transaction,
    result_summary,
    run_query,
)
from rule_compiler.sql_check import ReadOnlyQuery

T0 = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
UPDATED_HOURS_AGO = [1, 2, 5, 30, 70]


@pytest.fixture
def engine(any_db_url: str) -> Any:
    engine = sa.create_engine(any_db_url)
    orders = sa.Table(
        "orders",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("status", sa.Text),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
    )
    orders.create(engine)
    with engine.begin() as conn:
        conn.execute(
            orders.insert(),
            [
                {
                    "id": i,
                    "status": "payment_failed" if i % 2 else "paid",
                    "updated_at": T0 - dt.timedelta(hours=h),
                }
                for i, h in enumerate(UPDATED_HOURS_AGO, start=1)
            ],
        )
    yield engine
    engine.dispose()


def _count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM orders")).scalar_one())


@pytest.mark.parametrize(
    ("operator", "value", "rows", "passes"),
    [
        ("gt", 10, [(11,)], True),
        ("gt", 10, [(10,)], False),
        ("gte", 10, [(10,)], True),
        ("gte", 10.5, [(10,)], False),
        ("lt", 1, [(0,)], True),
        ("lt", 1, [(1,)], False),
        ("lte", 0.1, [(Decimal("0.10"),)], True),
        ("lte", 0, [(Decimal("0.01"),)], False),
        ("equals", 3, [(Decimal("3.00"),)], True),
        ("equals", 0.1, [(Decimal("0.1"),)], True),
        ("equals", "open", [("open",)], True),
        ("equals", "open", [("Open",)], False),
        ("equals", True, [(1,)], True),
        ("equals", False, [(1,)], False),
        ("not_equals", 3, [(4,)], True),
        ("not_equals", 3, [(3.0,)], False),
        ("gt", 0, [], False),  # no row
        ("gt", 0, [(None,)], False),  # NULL
        ("not_equals", 3, [(None,)], False),  # NULL passes no check, not even not_equals
        ("equals", 1, [(1, "ignored"), (2, "ignored")], True),  # first column of the first row
        ("returns_rows", None, [("x",)], True),
        ("returns_rows", None, [], False),
    ],
)
def test_check_result(operator: str, value: Any, rows: list[tuple[Any, ...]], passes: bool) -> None:
    assert check_result({"operator": operator, "value": value}, rows) is passes


@pytest.mark.parametrize("scalar", ["12", dt.date(2026, 1, 1), True])
def test_ordering_a_non_number_is_a_clear_error(scalar: Any) -> None:
    with pytest.raises(DataQueryError, match=r"gt compares numbers, but the query's result is \w+"):
        check_result({"operator": "gt", "value": 10}, [(scalar,)])


def test_summary_keeps_numbers_and_counts_never_text() -> None:
    numeric = result_summary({"operator": "gt", "value": 1}, QueryResult(((Decimal("2.5"),),), False))
    assert numeric == {"operator": "gt", "rows": 1, "value": 2.5}
    text = result_summary({"operator": "equals", "value": "x"}, QueryResult((("alice@example.com",),), False))
    assert "value" not in text and text["rows"] == 1


def test_query_binds_the_runs_times(engine: sa.Engine) -> None:
    sql = (
        "SELECT count(*) FROM orders WHERE status = 'payment_failed' "
        "AND updated_at > :data_interval_start AND updated_at <= :data_interval_end"
    )
    for hours in (3, 48):
        start = T0 - dt.timedelta(hours=hours)
        expected = sum(1 for i, h in enumerate(UPDATED_HOURS_AGO, start=1) if i % 2 and h < hours)
        result = run_query(engine, sql, {"data_interval_start": start, "data_interval_end": T0})
        assert result.rows == ((expected,),)
    berlin = T0.astimezone(dt.timezone(dt.timedelta(hours=1)))  # same instant, other offset
    result = run_query(
        engine, "SELECT count(*) FROM orders WHERE updated_at < :logical_date", {"logical_date": berlin}
    )
    assert result.rows == ((len(UPDATED_HOURS_AGO),),)


def test_rows_are_capped(engine: sa.Engine) -> None:
    result = run_query(engine, "SELECT id FROM orders ORDER BY id", {}, max_rows=2)
    assert result == QueryResult(((1,), (2,)), truncated=True)
    assert run_query(engine, "SELECT id FROM orders WHERE id = 1", {}, max_rows=2).truncated is False


def test_a_write_inside_the_transaction_is_refused_by_the_database(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        with (
            pytest.raises(sa.exc.DBAPIError, match=r"read-only|readonly"),
            read_only_transaction(conn) as read_only,
        ):
            read_only.execute(sa.text("DELETE FROM orders"))
        assert _count(engine) == len(UPDATED_HOURS_AGO)
        with conn.begin():  # the same connection writes again afterwards (SQLite's query_only restored)
            conn.execute(sa.text("DELETE FROM orders WHERE id = 1"))
    assert _count(engine) == len(UPDATED_HOURS_AGO) - 1


def test_unsafe_sql_and_unknown_parameters_are_refused_before_running(engine: sa.Engine) -> None:
    with pytest.raises(DataQueryError, match="must only read"):
        run_query(engine, "WITH gone AS (DELETE FROM orders RETURNING id) SELECT count(*) FROM gone", {})
    with pytest.raises(DataQueryError, match=":since"):
        run_query(engine, "SELECT count(*) FROM orders WHERE updated_at > :since", {})
    assert _count(engine) == len(UPDATED_HOURS_AGO)


def _numbers(engine: sa.Engine, count: int = 1_000) -> None:
    """A ``numbers`` table of ``count`` rows (setup, not author SQL): a cross join of three is 10^9."""
    numbers = sa.Table("numbers", sa.MetaData(), sa.Column("n", sa.Integer, primary_key=True))
    numbers.create(engine)
    with engine.begin() as conn:
        conn.execute(numbers.insert(), [{"n": i} for i in range(count)])


def test_a_long_query_is_stopped_at_the_statement_timeout(engine: sa.Engine) -> None:
    _numbers(engine)
    endless = "SELECT count(*) FROM numbers a, numbers b, numbers c"  # allowed SQL, 10^9 rows
    with pytest.raises(DataQueryError, match=r"ran longer than 0\.2 s"):
        run_query(engine, endless, {}, timeout_seconds=0.2)


@pytest.mark.postgres
def test_postgres_refuses_a_function_that_writes(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user function is not on the allow-list; and were the check to miss one (a spec stored before
    it, a parser gap), the read-only transaction still stops its write."""
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE orders (id serial PRIMARY KEY)"))
        conn.execute(
            sa.text(
                "CREATE FUNCTION sneaky() RETURNS int LANGUAGE sql AS "
                "$$ INSERT INTO orders DEFAULT VALUES RETURNING id $$"
            )
        )
    with pytest.raises(DataQueryError, match=r"function sneaky\(\) is not allowed"):
        run_query(engine, "SELECT sneaky()", {})
    monkeypatch.setattr(data_query, "check_read_only", _no_check)
    with pytest.raises(sa.exc.DBAPIError, match="read-only transaction"):
        run_query(engine, "SELECT sneaky()", {})
    assert _count(engine) == 0
    engine.dispose()


def _no_check(sql: str, dialect: str | None = None) -> ReadOnlyQuery:
    """A check that misses everything: what the database's own defences must still stop."""
    return ReadOnlyQuery(tables=(), parameters=())
