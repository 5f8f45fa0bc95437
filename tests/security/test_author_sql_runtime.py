"""Author SQL at run time (issue 13): a spec stored before the allow-list is refused when it runs, the
query runs read-only with statement and lock timeouts, nothing it takes (advisory locks, settings)
outlives it on the connection, and it cannot stall the outbox. The checks themselves are in
tests/security/test_author_sql.py."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from rule_compiler.reporting import queries
from rule_compiler.reporting.queries import ReportQueryRefusedError, run_query_to_csv
from rule_compiler.reporting.report_errors import ReportQueryError
from rule_compiler.runtime import author_sql, data_query
from rule_compiler.runtime.data_query import DataQueryError, run_query
from rule_compiler.sql_check import (
    ReadOnlyQuery,
    check_read_only,
)
from tests.security.test_author_sql import ALLOWED, ATTACKS, XML_DUMP

# --- run time: the re-check, the read-only transaction, the session left behind ---------------


@pytest.fixture
def app_pg(postgres_url: str) -> Any:
    """A Postgres app database with orders (catalogued) and secrets (not)."""
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE orders (id integer PRIMARY KEY, status text)"))
        conn.execute(sa.text("INSERT INTO orders VALUES (1, 'paid'), (2, 'new')"))
        conn.execute(sa.text("CREATE TABLE secrets (token text)"))
        conn.execute(sa.text("INSERT INTO secrets VALUES ('s3cr3t-token')"))
    yield engine
    engine.dispose()


def _csv(engine: sa.Engine, sql: str, path: Path, **kwargs: Any) -> Any:
    return run_query_to_csv(engine, sql, {}, query_id="q", row_limit=100, timeout=5, path=path, **kwargs)


def _no_check(sql: str, dialect: str | None = None) -> ReadOnlyQuery:
    """A check that misses everything (a parser gap): what the run-time defences must still stop."""
    return ReadOnlyQuery(tables=(), parameters=())


@pytest.mark.postgres
@pytest.mark.parametrize(
    "sql",
    [
        XML_DUMP,
        "SELECT query_to_xml_and_xmlschema('select * from secrets', true, false, '') AS x FROM orders",
        "SELECT pg_advisory_xact_lock_shared(hashtext('rule_engine_outbox')) AS x FROM orders",
        "SELECT current_setting('data_directory') AS x",
    ],
)
def test_a_spec_stored_before_the_allow_list_is_refused_when_it_runs(
    app_pg: sa.Engine, tmp_path: Path, sql: str
) -> None:
    """Specs keep their SQL; both runners check it again, so an old spec cannot dump `secrets`."""
    with pytest.raises(
        ReportQueryRefusedError, match=r"query 'q' was refused: function \w+\(\) is not allowed"
    ):
        _csv(app_pg, sql, tmp_path / "q.csv")
    assert not (tmp_path / "q.csv").exists()
    with pytest.raises(DataQueryError, match=r"the data trigger's SQL was refused: function \w+\(\)"):
        run_query(app_pg, sql, {})


@pytest.mark.postgres
def test_author_sql_runs_read_only_with_statement_and_lock_timeouts(
    app_pg: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(data_query, "check_read_only", _no_check)
    settings = (
        "SELECT current_setting('transaction_read_only'), current_setting('statement_timeout'), "
        "current_setting('lock_timeout'), current_setting('idle_in_transaction_session_timeout')"
    )
    [row] = run_query(app_pg, settings, {}, timeout_seconds=20).rows
    assert row == ("on", "20s", f"{author_sql.LOCK_TIMEOUT_SECONDS}s", "1min")
    [short] = run_query(app_pg, settings, {}, timeout_seconds=2).rows
    assert short[1:3] == ("2s", "2s")  # the lock wait is never longer than the statement may take


@pytest.mark.postgres
@pytest.mark.parametrize("runner", ["report", "data"])
def test_a_session_lock_or_setting_taken_by_author_sql_does_not_survive_it(
    app_pg: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runner: str
) -> None:
    """Were the check to miss pg_advisory_lock (session-level: a rollback keeps it), the connection it
    ran on is cleaned and closed, not handed to the next user of the pool."""
    monkeypatch.setattr(data_query, "check_read_only", _no_check)
    monkeypatch.setattr(queries, "check_read_only", _no_check)
    sql = "SELECT pg_try_advisory_lock(4242) AS locked, set_config('work_mem', '77MB', false) AS w"
    if runner == "report":
        _csv(app_pg, sql, tmp_path / "q.csv")
        assert (tmp_path / "q.csv").read_text().splitlines()[1] == "true,77MB"
    else:
        assert run_query(app_pg, sql, {}).rows == ((True, "77MB"),)
    other = sa.create_engine(app_pg.url)
    try:
        with other.connect() as conn:
            assert conn.execute(sa.text("SELECT pg_try_advisory_lock(4242)")).scalar_one() is True
            conn.execute(sa.text("SELECT pg_advisory_unlock_all()"))
    finally:
        other.dispose()
    with app_pg.connect() as pooled:  # the engine's own pool hands out a fresh session
        assert pooled.execute(sa.text("SHOW work_mem")).scalar_one() != "77MB"


@pytest.mark.postgres
def test_a_query_waiting_on_a_lock_gives_up_and_is_retried(
    app_pg: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another session holds orders exclusively: the query stops at the lock timeout (retryable), it
    does not queue for its whole statement timeout."""
    monkeypatch.setattr(author_sql, "LOCK_TIMEOUT_SECONDS", 0.2)
    with app_pg.connect() as holder:
        holder.begin()
        holder.execute(sa.text("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE"))
        with pytest.raises(ReportQueryError, match=r"waited longer than .* for a lock") as caught:
            run_query_to_csv(
                app_pg,
                "SELECT count(*) AS n FROM orders",
                {},
                query_id="q",
                row_limit=1,
                timeout=60,
                path=tmp_path / "q.csv",
            )
        assert not isinstance(caught.value, ReportQueryRefusedError)
        with pytest.raises(DataQueryError, match="for a lock"):
            run_query(app_pg, "SELECT count(*) FROM orders", {}, timeout_seconds=60)
        holder.rollback()


@pytest.mark.postgres
def test_author_sql_cannot_stall_the_outbox_lock(app_pg: sa.Engine, tmp_path: Path) -> None:
    """The review's attack ran pg_advisory_xact_lock_shared on the outbox key for a query's whole
    timeout; refused now, and ensure_outbox would not wait for it past its own lock timeout."""
    from rule_compiler.events.outbox_rows import ENSURE_LOCK_TIMEOUT_SECONDS

    with pytest.raises(ReportQueryRefusedError, match="pg_advisory_xact_lock_shared"):
        _csv(app_pg, ATTACKS[11][0], tmp_path / "q.csv")
    assert ENSURE_LOCK_TIMEOUT_SECONDS <= 5


def test_sqlite_refuses_a_query_role() -> None:
    engine = sa.create_engine("sqlite://")
    with pytest.raises(DataQueryError, match="roles are a Postgres feature"):
        run_query(engine, "SELECT 1", {}, role="reader")
    engine.dispose()


def test_concurrent_checks_do_not_disturb_the_recursion_limit() -> None:
    import sys

    before = sys.getrecursionlimit()
    errors: list[BaseException] = []

    def check() -> None:
        try:
            for _ in range(20):
                check_read_only(ALLOWED[0])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=check) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and sys.getrecursionlimit() == before
