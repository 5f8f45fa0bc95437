"""Author SQL cannot escape the catalog (issue 13): an allow-list of functions, constructs and casts,
checked when a report or data trigger is validated and again when it runs; and at run time a
read-only transaction with statement and lock timeouts on a connection that leaves nothing behind.

Every attack of the review is here, each refused by name, in both dialects where it applies; the
allow-list is checked against every function the real Postgres and SQLite have.
"""

from __future__ import annotations

import copy
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from rule_compiler.catalog import Catalog
from rule_compiler.errors import RuleValidationError
from rule_compiler.registration import compile_document
from rule_compiler.sql_allowlist import FUNCTION_GROUPS, documented_names
from rule_compiler.sql_check import (
    MAX_NESTING,
    MAX_SQL_LENGTH,
    ReadOnlyQuery,
    UnsafeQueryError,
    check_read_only,
)
from tests.conftest import DEMO_CATALOG, ROOT

DIALECTS = ["postgres", "sqlite"]
XML_DUMP = "SELECT table_to_xml('secrets', true, false, '') AS x FROM orders LIMIT 1"

#: (SQL, words the refusal must contain) — every one validated before the allow-list.
ATTACKS = [
    (XML_DUMP, "function table_to_xml() is not allowed"),
    ("SELECT schema_to_xml('public', true, false, '') FROM orders", "schema_to_xml()"),
    ("SELECT database_to_xml(true, false, '')", "database_to_xml()"),
    ("SELECT table_to_xml_and_xmlschema('secrets', true, false, '')", "table_to_xml_and_xmlschema()"),
    ("SELECT schema_to_xml_and_xmlschema('public', true, false, '')", "schema_to_xml_and_xmlschema()"),
    ("SELECT database_to_xml_and_xmlschema(true, false, '')", "database_to_xml_and_xmlschema()"),
    (
        "SELECT query_to_xml_and_xmlschema('select pg_sleep(30)', true, false, '') FROM orders",
        "query_to_xml_and_xmlschema()",
    ),
    ("SELECT query_to_xml('select * from secrets', true, false, '')", "query_to_xml()"),
    ("SELECT dblink_connect('c', 'dbname=app')", "dblink_connect()"),
    ("SELECT dblink_send_query('c', 'DELETE FROM orders')", "dblink_send_query()"),
    ("SELECT dblink_open('c', 'cur', 'SELECT * FROM secrets')", "dblink_open()"),
    (
        "SELECT pg_advisory_xact_lock_shared(hashtext('rule_engine_outbox')) FROM orders",
        "pg_advisory_xact_lock_shared()",
    ),
    ("SELECT pg_try_advisory_lock(42) FROM orders", "pg_try_advisory_lock()"),
    ("SELECT pg_advisory_lock(42)", "pg_advisory_lock()"),
    ("SELECT current_setting('data_directory')", "current_setting()"),
    ("SELECT * FROM pg_ls_waldir()", "pg_ls_waldir()"),
    ("SELECT pg_ls_waldir()", "pg_ls_waldir()"),
    ("SELECT set_config('statement_timeout', '0', false)", "set_config()"),
    ("SELECT pg_sleep(10)", "pg_sleep()"),
    ("SELECT count(*) FROM orders WHERE id = (SELECT pg_sleep(10))", "pg_sleep()"),
    ("SELECT 'secrets'::regclass", "cast to regclass"),
    ("SELECT regclass 'secrets'", "cast to regclass"),
    ("SELECT 'pg_sleep'::regproc", "cast to regproc"),
    ("SELECT CAST(1 AS oid)", "cast to oid"),
    ("SELECT '<a/>'::xml", "cast to xml"),
    ("SELECT relname FROM pg_class", "'pg_class'"),
    ("SELECT rolpassword FROM pg_authid", "system tables are not in the catalog"),
    ("SELECT * FROM pg_catalog.pg_class", "without a schema"),
    ("SELECT * FROM information_schema.tables", "without a schema"),
    ("SELECT pg_catalog.lower('x')", "qualified name"),
    ("SELECT * FROM generate_series(1, 1000000000) AS g", "generate_series()"),
    ("SELECT generate_series(1, 10)", "functions that return rows"),
    ("SELECT * FROM orders CROSS JOIN LATERAL generate_series(1, 10) AS g", "LATERAL"),
    ("SELECT * FROM unnest(ARRAY[1, 2]) AS u", "unnest()"),
    ("SELECT * FROM lower('x')", "in FROM"),
    ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r", "RECURSIVE"),
    ("SELECT count(*) FROM orders WHERE status ~ '(a+)+$'", "regular expressions"),
    ("SELECT count(*) FROM orders WHERE status SIMILAR TO '%x%'", "SIMILAR TO"),
    ("SELECT regexp_replace(status, 'a', 'b') FROM orders", "regexp_replace()"),
    ("SELECT repeat('x', 1000000000)", "repeat()"),
    ("SELECT format('%s', 1)", "format()"),
    ("SELECT lpad('x', 1000000000)", "at most 1,000"),
    ("SELECT rpad('x', :n)", "at most 1,000"),
    ("SELECT current_user", "current_user()"),
    ("SELECT current_role", "session current_role"),
    ("SELECT user", "session user"),
    ("SELECT version()", "version()"),
    ("SELECT current_database()", "current_database()"),
    ("SELECT nextval('orders_id_seq')", "nextval()"),
    ("SELECT txid_current()", "txid_current()"),
    ("SELECT lo_import('/etc/passwd')", "lo_import()"),
    ("SELECT pg_read_file('/etc/passwd')", "pg_read_file()"),
    ("SELECT $1", "$ parameter"),
    ("SELECT * FROM orders TABLESAMPLE SYSTEM (10)", "TABLESAMPLE"),
    ("SELECT * FROM orders FOR UPDATE", "locking"),
    ("SELECT * INTO copy FROM orders", "INTO"),
]

#: Unreadable SQL: sqlglot raises TokenError, which used to escape as a 500.
UNREADABLE = ["SELECT 'abc", "SELECT 1 /* open", "SELECT $$abc", 'SELECT "abc', "SELECT $tag$ x $tog$"]

#: Queries over every documented group that must keep working, in both dialects where they exist.
ALLOWED = [
    "SELECT DATE(o.created_at) AS day, COUNT(*) AS orders, SUM(o.total) AS revenue FROM orders AS o "
    "WHERE o.created_at >= :data_interval_start AND o.created_at < :data_interval_end "
    "AND o.status <> 'cancelled' GROUP BY DATE(o.created_at) ORDER BY day",
    "SELECT count(DISTINCT c), sum(a), avg(a), min(a), max(a), string_agg(b, ','), array_agg(b), "
    "bool_and(f), bool_or(f), stddev(a), variance(a), var_pop(a), "
    "percentile_cont(0.5) WITHIN GROUP (ORDER BY a), percentile_disc(0.9) WITHIN GROUP (ORDER BY a), "
    "count(*) FILTER (WHERE a > 1), corr(a, c) FROM t",
    "SELECT json_agg(b), jsonb_agg(b), json_object_agg(a, b), every(f) FROM t",
    "SELECT row_number() OVER (PARTITION BY a ORDER BY b), rank() OVER w, dense_rank() OVER w, "
    "lag(a) OVER w, lead(a, 1, 0) OVER w, first_value(a) OVER w, last_value(a) OVER w, ntile(4) OVER w, "
    "sum(a) OVER (ORDER BY b ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) FROM t "
    "WINDOW w AS (ORDER BY a)",
    "SELECT abs(a), round(a, 2), ceil(a), floor(a), mod(a, 3), a % 3, power(a, 2), sqrt(a), "
    "greatest(a, b), least(a, b), trunc(a), sign(a), ln(a), log(a), exp(a), a / 2, -a FROM t",
    "SELECT lower(s), upper(s), length(s), substr(s, 1, 2), substring(s FROM 1 FOR 2), trim(s), "
    "ltrim(s), rtrim(s), replace(s, 'a', 'b'), concat(s, 'x'), concat_ws('-', s, s), left(s, 2), "
    "right(s, 2), position('a' IN s), split_part(s, ',', 1), lpad(s, 10, '0'), rpad(s, 3), "
    "initcap(s), s || 'x', strpos(s, 'x'), md5(s) FROM t",
    "SELECT date_trunc('day', x), date_part('year', x), extract(year FROM x), to_char(x, 'YYYY-MM'), "
    "age(x, y), make_date(2026, 1, 1), x + INTERVAL '1 day', :logical_date - INTERVAL '1 hour', "
    "now() - INTERVAL '1 hour', current_date, x AT TIME ZONE 'UTC', x::date, y::timestamptz FROM t",
    "SELECT coalesce(a, 0), nullif(s, ''), CASE WHEN a > 1 THEN 'big' ELSE 'small' END, "
    "CAST(a AS integer), a::numeric(10, 2), a::text, a IS DISTINCT FROM b FROM t",
    "SELECT j -> 'a', j ->> 'a', j #> '{a,b}', j #>> '{a}', json_extract_path_text(j, 'a'), "
    "jsonb_extract_path(j, 'a'), json_array_length(j), jsonb_array_length(j), j @> k, j ? 'a' FROM t",
    "SELECT a FROM t WHERE s LIKE 'x%' AND s ILIKE '%y' AND s NOT LIKE 'z' AND a IN (1, 2) "
    "AND a BETWEEN 1 AND 2 AND b IS NOT NULL AND EXISTS (SELECT 1 FROM u WHERE u.id = t.id)",
    "WITH recent AS (SELECT * FROM orders) SELECT count(*) FROM recent",
    "SELECT status FROM orders UNION SELECT tier FROM customers",
    "SELECT * FROM orders o, LATERAL (SELECT max(id) AS m FROM customers c WHERE c.id = o.customer_id) x",
    "SELECT DISTINCT ON (a) a FROM t ORDER BY a NULLS LAST OFFSET 5 FETCH FIRST 3 ROWS ONLY",
    "SELECT a FROM t GROUP BY GROUPING SETS ((a), (b)) HAVING count(*) > 1",
    "SELECT * FROM (VALUES (1, 2)) AS v(a, b)",
    "SELECT \"user\", E'\\n' AS nl, $$x$$ AS d FROM t",
]
SQLITE_ONLY = [
    "SELECT strftime('%Y-%m', created_at), julianday(a) - julianday(b), date(a, '+1 day'), datetime(a), "
    "ifnull(a, 0), iif(a > 1, 1, 2), instr(s, 'x'), total(a), group_concat(s, ','), "
    "json_extract(j, '$.x'), j ->> '$.y', max(a, b), typeof(a), json_valid(j) FROM t GROUP BY 1",
]


def _in_sqlite(sql: str, postgres_only: tuple[str, ...]) -> bool:
    """Whether ``sql`` means the same in SQLite (no Postgres-only syntax or keywords in it)."""
    return not any(p in sql for p in postgres_only)


_PG_ATTACK_SYNTAX = ("::", "$1", "regclass '", "current_role", "user")  # plain column names in SQLite
_PG_READ_SYNTAX = ("::", "#>", "DISTINCT ON", "$$", "E'", " ? ", "json_agg", "AT TIME ZONE")


@pytest.mark.parametrize(
    ("sql", "words", "dialect"),
    [
        (sql, words, dialect)
        for sql, words in ATTACKS
        for dialect in DIALECTS
        if dialect != "sqlite" or _in_sqlite(sql, _PG_ATTACK_SYNTAX)
    ],
)
def test_every_attack_is_refused_by_name(sql: str, words: str, dialect: str) -> None:
    try:
        check_read_only(sql, dialect)
    except UnsafeQueryError as exc:
        refused = str(exc).lower()
        assert words.lower() in refused or (dialect == "sqlite" and "does not parse" in refused), refused
    else:
        pytest.fail(f"{sql!r} passed the check in {dialect}")


def test_a_refused_function_is_named_with_where_to_find_the_list() -> None:
    with pytest.raises(UnsafeQueryError) as caught:
        check_read_only(XML_DUMP)
    message = str(caught.value)
    assert message.startswith("function table_to_xml() is not allowed in author SQL; allowed: aggregates")
    assert "docs/security.md" in message


@pytest.mark.parametrize(
    ("sql", "dialect"),
    [(sql, dialect) for sql in UNREADABLE for dialect in DIALECTS if dialect != "sqlite" or "$" not in sql],
)  # SQLite has no dollar quoting
def test_unterminated_quotes_comments_and_dollar_strings_are_an_unsafe_query_not_a_crash(
    sql: str, dialect: str
) -> None:
    with pytest.raises(UnsafeQueryError, match=r"is not closed|does not parse"):
        check_read_only(sql, dialect)


def test_nesting_and_length_are_bounded_before_the_parser_recurses() -> None:
    deep = "SELECT " + "(" * 5_000 + "1" + ")" * 5_000
    with pytest.raises(UnsafeQueryError, match=f"at most {MAX_NESTING}"):
        check_read_only(deep)
    with pytest.raises(UnsafeQueryError, match=r"nests too deeply|cannot be checked"):
        check_read_only("SELECT " + "NOT " * 10_000 + "true")  # no brackets: the parser's own limit
    with pytest.raises(UnsafeQueryError, match="brackets"):  # each ARRAY[ level doubles the parse time
        check_read_only("SELECT " + "ARRAY[" * 30 + "1" + "]" * 30)
    ok = "SELECT " + "(" * MAX_NESTING + "1" + ")" * MAX_NESTING
    assert check_read_only(ok) == ReadOnlyQuery((), ())
    with pytest.raises(UnsafeQueryError, match=f"at most {MAX_SQL_LENGTH:,}"):
        check_read_only("SELECT 1 " + " " * MAX_SQL_LENGTH)


def test_a_query_parses_the_same_from_a_deep_call_stack() -> None:
    """A worker's stack is deeper than the API's: what validates must also pass the run-time check."""
    sql = "SELECT " + "CASE WHEN (" * (MAX_NESTING // 2) + "true" + ") THEN 1 END" * (MAX_NESTING // 2)

    def deep(levels: int) -> ReadOnlyQuery:
        return deep(levels - 1) if levels else check_read_only(sql)

    assert deep(700) == ReadOnlyQuery((), ())


@pytest.mark.parametrize(
    ("sql", "dialect"),
    [
        (sql, dialect)
        for sql in ALLOWED
        for dialect in DIALECTS
        if dialect != "sqlite" or _in_sqlite(sql, _PG_READ_SYNTAX)
    ],
)
def test_reporting_sql_still_passes(sql: str, dialect: str) -> None:
    check_read_only(sql, dialect)


@pytest.mark.parametrize("dialect", ["sqlite", None])
@pytest.mark.parametrize("sql", SQLITE_ONLY)
def test_sqlite_date_and_json_functions_pass_in_both_parsers(sql: str, dialect: str | None) -> None:
    check_read_only(sql, dialect)  # None: validation, which parses as Postgres


def test_the_documented_groups_are_the_ones_in_the_message() -> None:
    assert list(FUNCTION_GROUPS) == [
        "aggregates",
        "window functions",
        "arithmetic",
        "text",
        "date and time",
        "conditional and conversion",
        "JSON",
    ]


#: Postgres and SQLite spellings of allowed operators and casts (``like(a, b)``, ``interval(x)``).
OPERATOR_SPELLINGS = frozenset({"like", "interval"})


def _passing(names: list[str], dialect: str) -> set[str]:
    passing = set()
    for name in names:
        for args in ("", "a", "a, b", "a, b, c"):
            try:
                check_read_only(f"SELECT {name}({args}) FROM t", dialect)
            except UnsafeQueryError:
                continue
            passing.add(name)
    return passing


@pytest.mark.postgres
def test_no_postgres_function_passes_unless_it_is_documented(postgres_url: str) -> None:
    """Every function name the server has (pg_proc, ~2,700), called with 0 to 3 arguments: those the
    check lets through are exactly documented ones, whatever class sqlglot parses them to."""
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        names = sorted(set(conn.execute(sa.text("SELECT proname FROM pg_proc")).scalars()))
    engine.dispose()
    assert len(names) > 2_000
    undocumented = _passing(names, "postgres") - documented_names() - OPERATOR_SPELLINGS
    assert undocumented == set()
    assert {"table_to_xml", "dblink_connect", "current_setting", "pg_ls_waldir"} & _passing(
        names, "postgres"
    ) == set()


def test_no_sqlite_function_passes_unless_it_is_documented() -> None:
    names = sorted(
        {row[0] for row in sqlite3.connect(":memory:").execute("SELECT name FROM pragma_function_list")}
    )
    assert "load_extension" in names or "printf" in names
    assert _passing(names, "sqlite") - documented_names() - OPERATOR_SPELLINGS == set()


# --- validation: the refusal carries the JSON path ----------------------------------------------


def _catalog() -> Catalog:
    return Catalog.model_validate(yaml.safe_load(DEMO_CATALOG.read_text()))


def _report_with(sql: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "include" / "reports" / "weekly-sales.yaml").read_text())
    data["queries"] = [{"id": "daily", "connection": "app_db", "sql": sql}, *data["queries"][1:]]
    data["charts"] = []
    data.pop("alert", None)
    return data


def _rule_with(sql: str) -> dict[str, Any]:
    return {
        "kind": "rule",
        "name": "spike",
        "organization": "acme",
        "trigger": {
            "type": "data",
            "connection": "app_db",
            "sql": sql,
            "check": {"operator": "gt", "value": 0},
            "schedule": "*/15 * * * *",
        },
        "actions": [
            {"id": "note", "type": "send_notification", "channel": "in_app", "to": ["ops"], "body": "x"}
        ],
    }


def _issues(document: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(RuleValidationError) as caught:
        compile_document(copy.deepcopy(document), _catalog())
    return {issue.path: issue.message for issue in caught.value.issues}


@pytest.mark.parametrize(("sql", "words"), [(XML_DUMP, "table_to_xml()"), (UNREADABLE[0], "is not closed")])
def test_a_report_query_is_refused_at_its_path(sql: str, words: str) -> None:
    assert words in _issues(_report_with(sql))["queries[0].sql"]


@pytest.mark.parametrize(("sql", "words"), [(XML_DUMP, "table_to_xml()"), (UNREADABLE[2], "is not closed")])
def test_a_data_trigger_is_refused_at_its_path(sql: str, words: str) -> None:
    assert words in _issues(_rule_with(sql))["trigger.sql"]


def test_a_report_sql_file_is_bounded_and_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "sql" / "reports"
    folder.mkdir(parents=True)
    (folder / "dump.sql").write_text(XML_DUMP)
    (folder / "huge.sql").write_text("SELECT 1" + " " * MAX_SQL_LENGTH)
    monkeypatch.setenv("AUTOMATION_INCLUDE_DIR", str(tmp_path))
    for name, words in (("dump.sql", "table_to_xml()"), ("huge.sql", f"at most {MAX_SQL_LENGTH:,}")):
        data = _report_with("SELECT 1")
        data["queries"][0] = {"id": "daily", "connection": "app_db", "sql_file": name}
        assert words in _issues(data)["queries[0].sql_file"]


def test_the_example_definitions_still_validate() -> None:
    for path in [
        *sorted((ROOT / "include" / "reports").glob("*.yaml")),
        *sorted((ROOT / "include" / "rules").glob("*.yaml")),
    ]:
        compile_document(yaml.safe_load(path.read_text()), _catalog())
