"""Report queries: values bound from the run and typed parameters, rows streamed to CSV through a
server-side cursor, the row cap, the read-only transaction and the timeout; SQLite and real Postgres."""

from __future__ import annotations

import csv
import datetime as dt
import json
import tracemalloc
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from rule_compiler.reporting import queries
from rule_compiler.reporting.queries import bind_values, coerce, run_query_to_csv
from rule_compiler.reporting.report_errors import ReportParameterError, ReportQueryError
from rule_compiler.sql_check import ReadOnlyQuery

T0 = dt.datetime(2026, 11, 16, 6, 0, tzinfo=dt.UTC)
ROWS = 25
SALES_SQL = (
    "SELECT id, region, amount, sold_at, paid, note FROM sales "
    "WHERE sold_at >= :data_interval_start AND sold_at < :data_interval_end ORDER BY id"
)


def _sale(i: int) -> dict[str, Any]:
    return {
        "id": i,
        "region": ("emea", "amer", "apac")[i % 3],
        "amount": Decimal(f"{i * 10}.{i % 100:02d}"),
        "sold_at": T0 - dt.timedelta(hours=i),
        "paid": i % 2 == 0,
        "note": None if i % 5 == 0 else f'note "{i}", with, commas\nand a newline',
        "day": (T0 - dt.timedelta(days=i)).date(),
    }


@pytest.fixture
def engine(any_db_url: str) -> Any:
    engine = sa.create_engine(any_db_url)
    sales = sa.Table(
        "sales",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("region", sa.Text),
        sa.Column("amount", sa.Numeric(12, 2)),
        sa.Column("sold_at", sa.DateTime(timezone=True)),
        sa.Column("paid", sa.Boolean),
        sa.Column("note", sa.Text),
        sa.Column("day", sa.Date),
    )
    sales.create(engine)
    with engine.begin() as conn:
        conn.execute(sales.insert(), [_sale(i) for i in range(1, ROWS + 1)])
    yield engine
    engine.dispose()


def _values(**extra: Any) -> dict[str, Any]:
    return (
        bind_values(
            [],
            {},
            interval_start=T0 - dt.timedelta(days=30),
            interval_end=T0 + dt.timedelta(days=1),
            logical_date=T0 - dt.timedelta(days=30),
        )
        | extra
    )


def _read(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def _count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM sales")).scalar_one())


def test_rows_stream_to_csv_with_a_header_and_text_safe_values(
    engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queries, "FETCH_ROWS", 4)  # many round trips for 25 rows
    result = run_query_to_csv(
        engine, SALES_SQL, _values(), query_id="sales", row_limit=1_000, timeout=30, path=tmp_path / "s.csv"
    )
    header, *rows = _read(tmp_path / "s.csv")
    assert header == result.columns == ["id", "region", "amount", "sold_at", "paid", "note"]
    assert result.row_count == len(rows) == ROWS and not result.truncated
    for row, expected in zip(rows, (_sale(i) for i in range(1, ROWS + 1)), strict=True):
        assert int(row[0]) == expected["id"]
        assert row[1] == expected["region"]
        assert Decimal(row[2]) == expected["amount"]
        assert row[5] == (expected["note"] or "")
        if engine.dialect.name == "postgresql":  # typed columns: ISO date-times, true/false
            assert dt.datetime.fromisoformat(row[3]) == expected["sold_at"]
            assert row[4] == ("true" if expected["paid"] else "false")
    assert result.first_row is not None
    json.dumps(result.first_row)  # JSON-safe for the manifest and the alert check
    assert result.first_row[0] == 1 and Decimal(str(result.first_row[2])) == _sale(1)["amount"]
    assert result.column_types[:3] == ["integer", "string", "number"]
    if engine.dialect.name == "postgresql":
        assert result.column_types[3:5] == ["datetime", "boolean"]


#: row limit, rows per fetch, rows written, truncated
LIMIT_CASES = [(10, 4, 10, True), (8, 4, 8, True), (ROWS, 5, ROWS, False), (ROWS - 1, 5, ROWS - 1, True)]


@pytest.mark.parametrize("case", [*LIMIT_CASES, (1, 100, 1, True)])
def test_the_row_limit_cuts_the_result_and_says_so(
    engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: tuple[int, int, int, bool]
) -> None:
    limit, fetch, written, truncated = case
    monkeypatch.setattr(queries, "FETCH_ROWS", fetch)
    result = run_query_to_csv(
        engine, SALES_SQL, _values(), query_id="s", row_limit=limit, timeout=30, path=tmp_path / "s.csv"
    )
    rows = _read(tmp_path / "s.csv")[1:]
    assert (result.row_count, len(rows), result.truncated) == (written, written, truncated)
    assert [int(r[0]) for r in rows] == list(range(1, written + 1))


def test_an_empty_result_is_a_header_only_file(engine: sa.Engine, tmp_path: Path) -> None:
    values = _values(data_interval_end=T0 - dt.timedelta(days=300))
    result = run_query_to_csv(
        engine, SALES_SQL, values, query_id="s", row_limit=5, timeout=30, path=tmp_path / "e.csv"
    )
    assert _read(tmp_path / "e.csv") == [result.columns]
    assert (result.row_count, result.truncated, result.first_row) == (0, False, None)


def _numbers(engine: sa.Engine, count: int) -> None:
    """A ``numbers`` table of ``count`` rows, filled by setup SQL (author SQL may not generate rows)."""
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE numbers (n integer PRIMARY KEY)"))
        if engine.dialect.name == "postgresql":
            conn.execute(
                sa.text("INSERT INTO numbers SELECT g FROM generate_series(1, :c) AS g"), {"c": count}
            )
        else:
            conn.execute(
                sa.text(
                    "INSERT INTO numbers WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s "
                    "WHERE g < :c) SELECT g FROM s"
                ),
                {"c": count},
            )


@pytest.mark.postgres
def test_postgres_reads_through_a_server_side_cursor(postgres_url: str, tmp_path: Path) -> None:
    engine = sa.create_engine(postgres_url)
    _numbers(engine, 20_000)
    cursors: list[str | None] = []
    sa.event.listen(
        engine, "before_cursor_execute", lambda c, cursor, s, p, ctx, m: cursors.append(cursor.name)
    )
    result = run_query_to_csv(
        engine,
        "SELECT n, n * 2 AS twice FROM numbers ORDER BY n",
        {},
        query_id="g",
        row_limit=50_000,
        timeout=30,
        path=tmp_path / "g.csv",
    )
    assert result.row_count == 20_000 and _read(tmp_path / "g.csv")[-1] == ["20000", "40000"]
    assert any(name for name in cursors), "the query ran on a named (server-side) cursor"
    engine.dispose()


def test_rows_are_fetched_in_batches_not_all_at_once(
    any_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Peak memory while streaming 100,000 rows stays a small part of what holding them takes."""
    monkeypatch.setattr(queries, "FETCH_ROWS", 500)
    engine = sa.create_engine(any_db_url)
    _numbers(engine, 100_000)
    sql = "SELECT n, 'row number ' || n AS label FROM numbers"
    tracemalloc.start()
    try:
        with engine.connect() as conn:
            tracemalloc.reset_peak()
            held = conn.execute(sa.text(sql)).fetchall()
            holding = tracemalloc.get_traced_memory()[1]
            del held
        tracemalloc.reset_peak()
        result = run_query_to_csv(
            engine, sql, {}, query_id="big", row_limit=10**6, timeout=60, path=tmp_path / "b.csv"
        )
        streaming = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        engine.dispose()
    assert result.row_count == 100_000
    assert streaming < holding / 5, (streaming, holding)


def test_a_parameter_the_run_does_not_bind_is_refused(engine: sa.Engine, tmp_path: Path) -> None:
    sql = "SELECT id FROM sales WHERE region = :regoin"
    with pytest.raises(ReportQueryError, match="binds unknown parameters :regoin"):
        run_query_to_csv(
            engine, sql, _values(), query_id="u", row_limit=5, timeout=5, path=tmp_path / "u.csv"
        )


def test_writes_are_refused_before_they_run(engine: sa.Engine, tmp_path: Path) -> None:
    for sql in ("DELETE FROM sales", "SELECT 1; DELETE FROM sales", "SELECT * INTO copy FROM sales"):
        with pytest.raises(ReportQueryError, match="query 'w' was refused"):
            run_query_to_csv(engine, sql, {}, query_id="w", row_limit=10, timeout=5, path=tmp_path / "w.csv")
    assert _count(engine) == ROWS and not (tmp_path / "w.csv").exists()


@pytest.mark.postgres
def test_postgres_refuses_a_write_hidden_in_a_function(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user function is not on the allow-list; were the check to miss one, the read-only
    transaction still stops it."""
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE counter (n integer)"))
        conn.execute(sa.text("INSERT INTO counter VALUES (0)"))
        conn.execute(
            sa.text(
                "CREATE FUNCTION bump() RETURNS integer LANGUAGE sql AS "
                "'UPDATE counter SET n = n + 1 RETURNING n'"
            )
        )
    with pytest.raises(ReportQueryError, match=r"function bump\(\) is not allowed"):
        run_query_to_csv(
            engine, "SELECT bump() AS n", {}, query_id="b", row_limit=10, timeout=5, path=tmp_path / "b.csv"
        )
    monkeypatch.setattr(queries, "check_read_only", _no_check)
    with pytest.raises(ReportQueryError, match="read-only transaction"):
        run_query_to_csv(
            engine, "SELECT bump() AS n", {}, query_id="b", row_limit=10, timeout=5, path=tmp_path / "b.csv"
        )
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT n FROM counter")).scalar_one() == 0
    assert not (tmp_path / "b.csv").exists()
    engine.dispose()


def _no_check(sql: str, dialect: str | None = None) -> ReadOnlyQuery:
    """A check that misses everything: what the database's own defences must still stop."""
    return ReadOnlyQuery(tables=(), parameters=())


def test_a_query_past_its_timeout_is_stopped(any_db_url: str, tmp_path: Path) -> None:
    engine = sa.create_engine(any_db_url)
    _numbers(engine, 1_000)
    sql = "SELECT count(*) AS n FROM numbers a, numbers b, numbers c"  # allowed SQL, 10^9 rows
    with pytest.raises(ReportQueryError, match="ran longer than its timeout of 1 s"):
        run_query_to_csv(
            engine, sql, {}, query_id="slow", row_limit=10, timeout=1, path=tmp_path / "slow.csv"
        )
    assert not (tmp_path / "slow.csv").exists() and not (tmp_path / "slow.csv.partial").exists()
    with engine.connect() as conn:  # the connection is usable again
        assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    engine.dispose()


def test_typed_parameters_bind_on_the_database(engine: sa.Engine, tmp_path: Path) -> None:
    parameters = [
        {"name": "region", "type": "string", "default": "emea"},
        {"name": "min_amount", "type": "number", "default": 0},
        {"name": "paid", "type": "boolean", "default": True},
        {"name": "since", "type": "date", "default": None},
        {"name": "top", "type": "integer", "default": 3},
    ]
    values = bind_values(
        parameters,
        {"min_amount": "50.5", "since": "2026-10-30"},
        interval_start="2026-10-01T00:00:00Z",
        interval_end="2026-12-01T00:00:00+01:00",
        logical_date="2026-10-01T00:00:00",
    )
    sql = (
        "SELECT id FROM sales WHERE region = :region AND amount >= :min_amount AND paid = :paid "
        "AND day >= :since AND sold_at < :data_interval_end ORDER BY id LIMIT :top"
    )
    result = run_query_to_csv(
        engine, sql, values, query_id="p", row_limit=100, timeout=30, path=tmp_path / "p.csv"
    )
    expected = [
        s["id"]
        for s in map(_sale, range(1, ROWS + 1))
        if s["region"] == "emea"
        and s["amount"] >= Decimal("50.5")
        and s["paid"]
        and s["day"] >= dt.date(2026, 10, 30)
    ][:3]
    assert expected and [int(r[0]) for r in _read(tmp_path / "p.csv")[1:]] == expected
    assert result.row_count == len(expected)


def test_bind_values_gives_the_run_times_in_utc_and_the_parameters_typed() -> None:
    values = bind_values(
        [{"name": "n", "type": "integer", "default": 5}, {"name": "label", "type": "string"}],
        {"n": "7"},
        interval_start="2026-11-09T07:00:00+01:00",
        interval_end=dt.datetime(2026, 11, 16, 6, 0, tzinfo=dt.UTC),
        logical_date="2026-11-09T06:00:00",
    )
    assert values == {
        "data_interval_start": dt.datetime(2026, 11, 9, 6, 0, tzinfo=dt.UTC),
        "data_interval_end": dt.datetime(2026, 11, 16, 6, 0, tzinfo=dt.UTC),
        "logical_date": dt.datetime(2026, 11, 9, 6, 0, tzinfo=dt.UTC),
        "n": 7,
        "label": None,
    }
    assert all(
        v.utcoffset() == dt.timedelta(0) for k, v in values.items() if k.endswith(("start", "end", "date"))
    )


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        ("number", "100", 100),
        ("number", "1.5", 1.5),
        ("number", 2.0, 2.0),
        ("number", -3, -3),
        ("integer", "7", 7),
        ("integer", 8.0, 8),
        ("boolean", "yes", True),
        ("boolean", "False", False),
        ("boolean", True, True),
        ("date", "2026-11-20", dt.date(2026, 11, 20)),
        ("string", 5, "5"),
        ("string", "a b", "a b"),
    ],
)
def test_parameter_values_are_coerced_to_their_type(kind: str, raw: Any, expected: Any) -> None:
    value = coerce(kind, raw)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        ("number", "ten"),
        ("number", "nan"),
        ("number", True),
        ("integer", "7.5"),
        ("boolean", "maybe"),
        ("boolean", 1),
        ("date", "20/11/2026"),
        ("date", "2026-11-20T10:00"),
        ("string", ["a"]),
    ],
)
def test_a_value_not_of_the_parameter_type_is_refused(kind: str, raw: Any) -> None:
    with pytest.raises(ReportParameterError, match=f"parameter 'p': .* is not an? {kind}"):
        coerce(kind, raw, "p")


def test_overrides_must_name_a_parameter() -> None:
    times = {"interval_start": T0, "interval_end": T0, "logical_date": T0}
    declared = [{"name": "region", "type": "string", "default": "emea"}]
    with pytest.raises(ReportParameterError, match=r"no parameter 'regoin' \(its parameters: region\)"):
        bind_values(declared, {"regoin": "amer"}, **times)
    with pytest.raises(ReportParameterError, match="'data_interval_start' is set by the run itself"):
        bind_values(declared, {"data_interval_start": "2020-01-01"}, **times)
