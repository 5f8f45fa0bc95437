"""Which report query failures are final: a query refused as it is (not read-only, an unknown bind
parameter, a write the database stops) raises ReportQueryRefusedError, which `run_queries` fails
without retries; a timeout stays a plain, retryable ReportQueryError. SQLite and real Postgres.
(The task side: tests/airflow/test_report_query_failures.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from rule_compiler.reporting import queries
from rule_compiler.reporting.queries import ReportQueryRefusedError, run_query_to_csv
from rule_compiler.reporting.report_errors import ReportQueryError
from rule_compiler.sql_check import ReadOnlyQuery


def _run(engine: sa.Engine, sql: str, path: Path, timeout: int = 5) -> None:
    run_query_to_csv(engine, sql, {}, query_id="q", row_limit=10, timeout=timeout, path=path / "q.csv")


@pytest.fixture
def engine(any_db_url: str) -> sa.Engine:
    engine = sa.create_engine(any_db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE counter (n integer)"))
        conn.execute(sa.text("INSERT INTO counter VALUES (0)"))
    return engine


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("DELETE FROM counter", "query 'q' was refused"),
        ("SELECT 1; DELETE FROM counter", "query 'q' was refused"),
        ("SELECT n FROM counter WHERE n > :since", "binds unknown parameters :since"),
    ],
)
def test_a_query_refused_before_it_runs_is_final(
    engine: sa.Engine, tmp_path: Path, sql: str, words: str
) -> None:
    with pytest.raises(ReportQueryRefusedError, match=words):
        _run(engine, sql, tmp_path)
    engine.dispose()


@pytest.mark.postgres
def test_a_write_the_database_stops_is_final(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A function outside the allow-list is refused before it runs; were the check to miss it (a
    parser gap), Postgres stops the write (SQLSTATE 25006), and that is final too."""
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE counter (n integer)"))
        conn.execute(
            sa.text(
                "CREATE FUNCTION bump() RETURNS integer LANGUAGE sql AS "
                "'INSERT INTO counter VALUES (1) RETURNING n'"
            )
        )
    with pytest.raises(ReportQueryRefusedError, match=r"function bump\(\) is not allowed"):
        _run(engine, "SELECT bump() AS n", tmp_path)
    monkeypatch.setattr(queries, "check_read_only", lambda sql, dialect=None: ReadOnlyQuery((), ()))
    with pytest.raises(ReportQueryRefusedError, match="cannot execute INSERT in a read-only transaction"):
        _run(engine, "SELECT bump() AS n", tmp_path)
    engine.dispose()


def test_a_timeout_and_a_missing_table_stay_retryable(any_db_url: str, tmp_path: Path) -> None:
    engine = sa.create_engine(any_db_url)
    numbers = sa.Table("numbers", sa.MetaData(), sa.Column("n", sa.Integer, primary_key=True))
    numbers.create(engine)
    with engine.begin() as conn:
        conn.execute(numbers.insert(), [{"n": i} for i in range(1_000)])
    slow = "SELECT count(*) AS n FROM numbers a, numbers b, numbers c"  # allowed SQL, 10^9 rows
    with pytest.raises(ReportQueryError, match="ran longer than its timeout of 1 s") as timed_out:
        _run(engine, slow, tmp_path, timeout=1)
    assert not isinstance(timed_out.value, ReportQueryRefusedError)
    # a table that is not there (yet): the database's answer may change, so it is retried
    with pytest.raises(ReportQueryError, match="failed") as failed:
        _run(engine, "SELECT n FROM not_there", tmp_path)
    assert not isinstance(failed.value, ReportQueryRefusedError)
    engine.dispose()
