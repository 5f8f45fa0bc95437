"""The catalog's query role (issue 13): author SQL runs as a restricted Postgres role that may SELECT
only the catalog's tables. `rule-compiler catalog grants` prints the statements that make one; the
run-time check refuses a role that could do more than read; the catalog keeps it per connection.

The Postgres tests apply the printed statements in a fresh database and run report queries and data
trigger queries through the real runners. Roles are cluster-wide, so each test makes its own
(``rq_<random>``) and drops it afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from pydantic import ValidationError

from rule_compiler.catalog import Catalog, Connection, query_role_of
from rule_compiler.catalog_grants import GrantsError, grant_statements
from rule_compiler.catalog_reflect import merge_connection
from rule_compiler.cli import main
from rule_compiler.reporting.queries import ReportQueryRefusedError, run_query_to_csv
from rule_compiler.runtime.data_query import DataQueryError, run_query
from rule_compiler.store._json import content_hash
from tests.conftest import DEMO_CATALOG, PG_ADMIN_URL

COLUMNS = {"id": {"type": "integer", "primary_key": True}}


def _catalog(*tables: str, role: str | None = None) -> Catalog:
    connection: dict[str, Any] = {"tables": {t: {"columns": COLUMNS} for t in tables}}
    if role is not None:
        connection["query_role"] = role
    return Catalog.model_validate({"organization": "acme", "connections": {"app_db": connection}})


# --- the catalog -------------------------------------------------------------------------------


def test_only_a_database_connection_names_a_query_role() -> None:
    assert (
        _catalog("orders", role="automation_reader").connections["app_db"].query_role == "automation_reader"
    )
    with pytest.raises(ValidationError, match="only a database connection"):
        Connection.model_validate({"kind": "http", "query_role": "reader"})
    with pytest.raises(ValidationError):
        Connection.model_validate({"query_role": 'reader"; DROP ROLE postgres; --'})


def test_a_catalog_without_a_query_role_dumps_and_hashes_as_before() -> None:
    data = yaml.safe_load(DEMO_CATALOG.read_text())
    dumped = Catalog.model_validate(data).model_dump(mode="json")
    assert "query_role" not in dumped["connections"]["app_db"]
    assert content_hash(dumped) == content_hash(Catalog.model_validate(dumped).model_dump(mode="json"))


def test_query_role_of_reads_models_and_stored_dicts() -> None:
    catalog = _catalog("orders", role="reader")
    assert query_role_of(catalog, "app_db") == "reader"
    assert query_role_of(catalog.model_dump(mode="json"), "app_db") == "reader"
    assert query_role_of(catalog, "billing_db") is None
    assert query_role_of(None, "app_db") is None
    assert query_role_of(_catalog("orders").model_dump(mode="json"), "app_db") is None


def test_a_sync_keeps_the_query_role() -> None:
    current = _catalog("orders", role="reader")
    tables = _catalog("orders", "customers").connections["app_db"].tables
    merged = merge_connection(current, organization="acme", connection_id="app_db", tables=tables)
    assert merged.catalog.connections["app_db"].query_role == "reader"


# --- the statements ----------------------------------------------------------------------------


def test_the_grants_select_exactly_the_catalogs_tables() -> None:
    lines = grant_statements(_catalog("orders", "Customers"), "app_db", "automation_reader", grant_to="app")
    text = "\n".join(lines)
    assert 'CREATE ROLE "automation_reader" NOLOGIN;' in text
    assert 'REVOKE ALL ON ALL TABLES IN SCHEMA "public" FROM "automation_reader";' in text
    assert 'GRANT SELECT ON TABLE "public"."Customers", "public"."orders" TO "automation_reader";' in lines
    assert 'GRANT "automation_reader" TO "app";' in lines
    assert not [line for line in lines if line.startswith("GRANT") and ("INSERT" in line or "ALL" in line)]


@pytest.mark.parametrize(
    ("conn_id", "role", "words"),
    [
        ("billing_db", "reader", "no connection 'billing_db'"),
        ("app_db", 'reader"; DROP TABLE orders; --', "not a plain identifier"),
    ],
)
def test_grants_refuse_unknown_connections_and_odd_names(conn_id: str, role: str, words: str) -> None:
    with pytest.raises(GrantsError, match=words):
        grant_statements(_catalog("orders"), conn_id, role)


def test_the_cli_prints_the_grants_from_the_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "catalog", "grants", "--org", "acme", "--connection", "app_db", "--role", "automation_reader",
            "--catalog", str(DEMO_CATALOG),
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert 'GRANT SELECT ON TABLE "public"."customers", "public"."orders" TO "automation_reader";' in out
    assert main(["catalog", "grants", "--org", "acme", "--connection", "nope", "--role", "r",
                 "--catalog", str(DEMO_CATALOG)]) == 2  # fmt: skip


# --- Postgres: the role at run time ------------------------------------------------------------


@pytest.fixture
def app_pg(postgres_url: str) -> Iterator[sa.Engine]:
    """A fresh app database: orders and customers (catalogued), secrets (not)."""
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        for table in ("orders", "customers", "secrets"):
            conn.execute(sa.text(f"CREATE TABLE {table} (id integer PRIMARY KEY, note text)"))
            conn.execute(sa.text(f"INSERT INTO {table} VALUES (1, '{table} one'), (2, '{table} two')"))
    yield engine
    engine.dispose()


class Roles:
    """Unique role names for one test (``rq_<random>``), dropped with what they hold afterwards."""

    def __init__(self) -> None:
        self.made: list[str] = []

    def new(self) -> str:
        self.made.append(f"rq_{uuid.uuid4().hex[:10]}")
        return self.made[-1]


@pytest.fixture
def roles(app_pg: sa.Engine) -> Iterator[Roles]:
    made = Roles()
    yield made
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with app_pg.connect() as conn, admin.connect() as cluster:
        for role in reversed(made.made):
            if cluster.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first():
                conn.exec_driver_sql(f'DROP OWNED BY "{role}"')
                conn.commit()
                cluster.exec_driver_sql(f'DROP ROLE "{role}"')
    admin.dispose()


def _apply(engine: sa.Engine, lines: list[str]) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("\n".join(lines))


def _csv(engine: sa.Engine, sql: str, path: Path, role: str | None) -> Any:
    return run_query_to_csv(engine, sql, {}, query_id="q", row_limit=100, timeout=10, path=path, role=role)


@pytest.mark.postgres
def test_under_the_granted_role_catalogued_tables_read_and_others_do_not(
    app_pg: sa.Engine, roles: Roles, tmp_path: Path
) -> None:
    """The run-time check has no catalog: `SELECT ... FROM secrets` passes it. The role stops it."""
    role = roles.new()
    _apply(app_pg, grant_statements(_catalog("orders", "customers"), "app_db", role))

    read = _csv(
        app_pg,
        "SELECT o.note, c.note AS customer FROM orders o JOIN customers c USING (id)",
        tmp_path / "a.csv",
        role,
    )
    assert read.row_count == 2
    assert run_query(app_pg, "SELECT count(*) FROM orders", {}, role=role).rows == ((2,),)

    with pytest.raises(ReportQueryRefusedError, match="permission denied for table secrets"):
        _csv(app_pg, "SELECT note FROM secrets", tmp_path / "s.csv", role)
    assert not (tmp_path / "s.csv").exists()
    with pytest.raises(sa.exc.DBAPIError, match="permission denied for table secrets"):
        run_query(app_pg, "SELECT count(*) FROM secrets", {}, role=role)
    # without the role the connection's own user reads it: the role is what keeps it out
    assert run_query(app_pg, "SELECT count(*) FROM secrets", {}).rows == ((2,),)

    # the catalog drops customers; the same statements, run again, take the table away
    _apply(app_pg, grant_statements(_catalog("orders"), "app_db", role))
    with pytest.raises(sa.exc.DBAPIError, match="permission denied for table customers"):
        run_query(app_pg, "SELECT count(*) FROM customers", {}, role=role)
    assert run_query(app_pg, "SELECT count(*) FROM orders", {}, role=role).rows == ((2,),)


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("setup", "words"),
    [
        ("CREATE ROLE {r} SUPERUSER NOLOGIN", "it has SUPERUSER"),
        ("CREATE ROLE {r} BYPASSRLS NOLOGIN", "it has BYPASSRLS"),
        ("CREATE ROLE {r} CREATEROLE NOLOGIN", "it has CREATEROLE"),
        (
            "CREATE ROLE {r} NOLOGIN; GRANT SELECT, INSERT ON orders TO {r}",
            "may write to tables: public.orders",
        ),
        ("CREATE ROLE {r} NOLOGIN; GRANT UPDATE (note) ON customers TO {r}", "public.customers"),
        ("CREATE ROLE {r} NOLOGIN; GRANT TRUNCATE ON secrets TO {r}", "public.secrets"),
        ("CREATE ROLE {r} NOLOGIN; GRANT CREATE ON SCHEMA public TO {r}", "CREATE in schemas: public"),
        ("CREATE ROLE {r} NOLOGIN; GRANT pg_read_all_data TO {r}", "predefined roles: pg_read_all_data"),
        ("CREATE ROLE {r} NOLOGIN; GRANT pg_write_server_files TO {r}", "pg_write_server_files"),
        (
            "CREATE ROLE {w} NOLOGIN; GRANT DELETE ON orders TO {w}; "
            "CREATE ROLE {r} NOLOGIN; GRANT {w} TO {r}",
            "may write to tables: public.orders",  # held through membership
        ),
    ],
)
def test_a_role_that_may_do_more_than_read_is_refused(
    app_pg: sa.Engine, roles: Roles, tmp_path: Path, setup: str, words: str
) -> None:
    role, writer = roles.new(), roles.new()
    with app_pg.begin() as conn:
        conn.exec_driver_sql(setup.format(r=f'"{role}"', w=f'"{writer}"'))
    with pytest.raises(DataQueryError, match=f"query role '{role}' may do more than read.*{words}"):
        run_query(app_pg, "SELECT count(*) FROM orders", {}, role=role)
    with pytest.raises(ReportQueryRefusedError, match="may do more than read"):
        _csv(app_pg, "SELECT count(*) AS n FROM orders", tmp_path / "q.csv", role)


@pytest.mark.postgres
def test_a_missing_role_or_one_the_login_user_cannot_take_is_refused(
    app_pg: sa.Engine, roles: Roles, tmp_path: Path
) -> None:
    with pytest.raises(DataQueryError, match="does not exist"):
        run_query(app_pg, "SELECT count(*) FROM orders", {}, role=roles.new())
    reader, login = roles.new(), roles.new()
    _apply(app_pg, grant_statements(_catalog("orders"), "app_db", reader))
    with app_pg.begin() as conn:  # a login user that was not granted the reader role
        conn.exec_driver_sql(f'CREATE ROLE "{login}" LOGIN; GRANT SELECT ON orders TO "{login}"')
    as_login = sa.create_engine(app_pg.url.set(username=login))
    try:
        with pytest.raises(DataQueryError, match=f"cannot act as query role '{reader}'"):
            run_query(as_login, "SELECT count(*) FROM orders", {}, role=reader)
        _apply(app_pg, grant_statements(_catalog("orders"), "app_db", reader, grant_to=login))
        assert run_query(as_login, "SELECT count(*) FROM orders", {}, role=reader).rows == ((2,),)
    finally:
        as_login.dispose()
