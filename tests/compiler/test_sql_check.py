"""Author SQL is one read-only query, proved by parsing it (sqlglot), never by pattern matching."""

from __future__ import annotations

import pytest

from rule_compiler.sql_check import ReadOnlyQuery, UnsafeQueryError, check_read_only


@pytest.mark.parametrize(
    ("sql", "tables", "parameters"),
    [
        (
            "SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id "
            "WHERE o.created_at >= :data_interval_start",
            ("customers", "orders"),
            ("data_interval_start",),
        ),
        ("WITH recent AS (SELECT * FROM orders) SELECT count(*) FROM recent", ("orders",), ()),
        ("SELECT status FROM orders UNION SELECT tier FROM customers", ("customers", "orders"), ()),
        ("select 1", (), ()),
    ],
)
def test_read_only_queries_pass_with_their_tables(
    sql: str, tables: tuple[str, ...], parameters: tuple[str, ...]
) -> None:
    assert check_read_only(sql) == ReadOnlyQuery(tables=tables, parameters=parameters)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("DELETE FROM orders", "not DELETE"),
        ("UPDATE orders SET status = 'x'", "not UPDATE"),
        ("WITH gone AS (DELETE FROM orders RETURNING id) SELECT * FROM gone", "DELETE"),
        ("WITH n AS (INSERT INTO orders (id) VALUES (1) RETURNING id) SELECT * FROM n", "INSERT"),
        ("SELECT 1; DROP TABLE orders", "exactly one statement"),
        ("SELECT * INTO copy FROM orders", "INTO"),
        ("SELECT * FROM orders FOR UPDATE", "locking"),
        ("SELECT pg_sleep(10)", "pg_sleep"),
        ("SELECT set_config('statement_timeout', '0', false)", "set_config"),
        ("SELECT (SELECT nextval('orders_id_seq'))", "nextval"),
        ("SELECT pg_read_file('/etc/passwd')", "pg_read_file"),
        ("COPY orders TO '/tmp/out'", "not COPY"),
        ("CREATE TABLE t AS SELECT 1", "not CREATE"),
        ("SELECT * FROM public.orders", "schema"),
        ("SELECT * FROM orders WHERE id = ?", "named bind parameters"),
        ("SELEC * FROM", "does not parse"),
    ],
)
def test_anything_that_writes_or_escapes_is_refused(sql: str, message: str) -> None:
    with pytest.raises(UnsafeQueryError, match=message):
        check_read_only(sql)


def test_sqlite_dialect_refuses_its_own_side_doors() -> None:
    with pytest.raises(UnsafeQueryError, match="load_extension"):
        check_read_only("SELECT load_extension('/tmp/evil.so')", "sqlite")
    with pytest.raises(UnsafeQueryError):
        check_read_only("ATTACH DATABASE '/tmp/x.db' AS x", "sqlite")
