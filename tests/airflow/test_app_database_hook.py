"""The application-database seam (``rule_engine.hooks.app_database``): connection id → engine.

One engine per connection per process, whoever asks (operators through the hook, the trigger, the
REST view, the CLI); a connection changed in Airflow gets a new engine; a missing connection or one
that is no SQL database is an ``AppDatabaseError`` naming it; and the seam's lock is never held while
a query runs or while Airflow is asked for a connection. Connections come from ``AIRFLOW_CONN_*``
variables, as in a deployment.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from rule_engine.hooks import app_database
from rule_engine.hooks.app_database import AppDatabaseHook, engine_for

from rule_compiler.errors import AppDatabaseError, ConnectionNotFoundError, ConnectionUnusableError

#: Bounds every wait of these tests, so a seam that blocks fails the test instead of hanging it.
DEADLINE_SECONDS = 60


def _conn_id() -> str:
    """A connection id no other test uses (the engine cache is the process's)."""
    return f"seam_{uuid.uuid4().hex[:10]}"


def _sqlite_connection(conn_id: str, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "sqlite", "host": str(path)})
    )


def _postgres_connection(conn_id: str, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    parsed = sa.make_url(url)
    connection = {
        "conn_type": "postgres",
        "host": parsed.host,
        "port": parsed.port,
        "login": parsed.username,
        "schema": parsed.database,
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))


def _in_thread(work: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """``work()`` started in a daemon thread; ``outcome["result"]`` or ``outcome["error"]`` once done."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = work()
        except BaseException as exc:  # reported by the caller's assertions
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _finished(thread: threading.Thread, outcome: dict[str, Any]) -> Any:
    thread.join(timeout=DEADLINE_SECONDS)
    assert not thread.is_alive(), "the seam blocked"
    assert "error" not in outcome, outcome.get("error")
    return outcome["result"]


# -- one engine per connection per process ------------------------------------------------------------


def test_every_caller_of_a_connection_gets_the_same_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn_id, other = _conn_id(), _conn_id()
    _sqlite_connection(conn_id, tmp_path / "app.db", monkeypatch)
    _sqlite_connection(other, tmp_path / "app.db", monkeypatch)  # same database, another connection

    engine = engine_for(conn_id)
    assert engine_for(conn_id) is engine
    assert AppDatabaseHook(conn_id).engine is engine  # the operators' hook
    assert AppDatabaseHook(conn_id).engine is engine
    assert engine_for(other) is not engine  # the cache is per connection id
    assert engine.url.get_backend_name() == "sqlite" and engine.url.database == str(tmp_path / "app.db")
    assert engine.hide_parameters is True  # bound values never reach logs or error messages
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1


def test_concurrent_first_uses_of_a_connection_get_one_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn_id = _conn_id()
    _sqlite_connection(conn_id, tmp_path / "app.db", monkeypatch)
    callers = 8
    start = threading.Barrier(callers, timeout=DEADLINE_SECONDS)

    def first_use() -> sa.Engine:
        start.wait()  # all ask at once: the cache is empty for every one of them
        return engine_for(conn_id)

    started = [_in_thread(first_use) for _ in range(callers)]
    engines = [_finished(thread, outcome) for thread, outcome in started]
    assert len({id(engine) for engine in engines}) == 1
    assert engine_for(conn_id) is engines[0]


def test_a_changed_connection_gets_a_new_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conn_id = _conn_id()
    _sqlite_connection(conn_id, tmp_path / "before.db", monkeypatch)
    before = engine_for(conn_id)

    _sqlite_connection(conn_id, tmp_path / "after.db", monkeypatch)  # edited in Airflow
    after = engine_for(conn_id)
    assert after is not before
    assert after.url.database == str(tmp_path / "after.db")
    assert engine_for(conn_id) is after and AppDatabaseHook(conn_id).engine is after
    with after.begin() as conn:
        conn.execute(sa.text("CREATE TABLE written_after (id INTEGER)"))
    assert (tmp_path / "after.db").exists() and not (tmp_path / "before.db").exists()
    with before.connect() as conn:  # a caller still holding the old engine can finish its work
        assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1


# -- errors --------------------------------------------------------------------------------------------


def test_an_unknown_connection_is_a_connection_not_found_error_naming_it() -> None:
    conn_id = _conn_id()
    with pytest.raises(ConnectionNotFoundError) as raised:
        engine_for(conn_id)
    error = raised.value
    assert isinstance(error, AppDatabaseError) and error.conn_id == conn_id
    assert str(error) == (
        f"Airflow connection '{conn_id}' is not defined (set AIRFLOW_CONN_{conn_id.upper()} "
        "or add it with `airflow connections add`)"
    )
    assert error.reason == "is not defined in Airflow"
    with pytest.raises(ConnectionNotFoundError, match=conn_id):
        _ = AppDatabaseHook(conn_id).engine


def test_a_connection_that_is_no_sql_database_is_unusable(monkeypatch: pytest.MonkeyPatch) -> None:
    conn_id = _conn_id()
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "http", "host": "hooks.example.com"})
    )
    with pytest.raises(ConnectionUnusableError) as raised:
        engine_for(conn_id)
    assert raised.value.conn_id == conn_id
    assert (
        str(raised.value)
        == f"connection '{conn_id}' cannot be used: it is a 'http' connection, not a SQL database"
    )
    assert "hooks.example.com" not in str(raised.value)


# -- no lock of the seam around queries or connection look-ups -----------------------------------------


def _waiting_on_a_lock(engine: sa.Engine, application_name: str) -> bool:
    with engine.connect() as probe:
        query = sa.text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = :name AND wait_event_type = 'Lock'"
        )
        return bool(probe.execute(query, {"name": application_name}).scalar())


def _wait_until(predicate: Callable[[], bool], what: str) -> None:
    tick = threading.Event()
    for _ in range(DEADLINE_SECONDS * 20):
        if predicate():
            return
        tick.wait(0.05)
    pytest.fail(f"never happened: {what}")


@pytest.mark.postgres
def test_no_lock_is_held_while_a_query_runs_through_the_seam(
    postgres_databases: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thread 1's query is stuck inside the database (it waits on an advisory lock the test holds);
    meanwhile thread 2 gets the same connection's engine and a new connection's engine from the seam
    and runs queries on both: it finishes while thread 1 is still inside its query."""
    busy, other = _conn_id(), _conn_id()
    busy_url, other_url = postgres_databases.create(), postgres_databases.create()
    _postgres_connection(busy, busy_url, monkeypatch)
    _postgres_connection(other, other_url, monkeypatch)
    admin = sa.create_engine(busy_url)
    marker = f"seam-test-{uuid.uuid4().hex[:8]}"
    in_query = threading.Event()

    def slow_query() -> int:
        engine = engine_for(busy)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT set_config('application_name', :name, false)"), {"name": marker})
            in_query.set()
            waited = sa.text("SELECT 1 FROM (SELECT pg_advisory_lock(4242)) AS waited")
            return int(conn.execute(waited).scalar_one())

    def quick_queries() -> tuple[sa.Engine, sa.Engine]:
        same, new = engine_for(busy), engine_for(other)
        for engine in (same, new):
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
        return same, new

    holder = admin.connect()
    try:
        holder.execute(sa.text("SELECT pg_advisory_lock(4242)"))
        first, first_outcome = _in_thread(slow_query)
        assert in_query.wait(DEADLINE_SECONDS)
        _wait_until(lambda: _waiting_on_a_lock(admin, marker), "thread 1 waiting inside its query")

        same, new = _finished(*_in_thread(quick_queries))

        assert first.is_alive() and not first_outcome  # thread 1 is still inside its query
        assert _waiting_on_a_lock(admin, marker)
        assert same is engine_for(busy) and new is engine_for(other) and same is not new
    finally:
        holder.execute(sa.text("SELECT pg_advisory_unlock_all()"))
        holder.close()
    assert _finished(first, first_outcome) == 1
    assert engine_for(busy) is same
    admin.dispose()


def test_a_slow_connection_look_up_holds_up_no_other_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow is asked for connections outside the seam's lock: while one look-up hangs (a slow
    secrets backend), another connection's engine is made and used."""
    slow, quick = _conn_id(), _conn_id()
    _sqlite_connection(slow, tmp_path / "slow.db", monkeypatch)
    _sqlite_connection(quick, tmp_path / "quick.db", monkeypatch)
    looking_up, release = threading.Event(), threading.Event()
    get_connection = app_database.BaseHook.get_connection

    def hanging_look_up(cls: Any, conn_id: str) -> Any:
        if conn_id == slow:
            looking_up.set()
            assert release.wait(DEADLINE_SECONDS)
        return get_connection(conn_id)

    monkeypatch.setattr(app_database.BaseHook, "get_connection", classmethod(hanging_look_up))
    first, first_outcome = _in_thread(lambda: engine_for(slow))
    try:
        assert looking_up.wait(DEADLINE_SECONDS)

        engine = _finished(*_in_thread(lambda: engine_for(quick)))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
        assert first.is_alive() and not first_outcome  # still looking its connection up
    finally:
        release.set()
    assert _finished(first, first_outcome) is engine_for(slow)
