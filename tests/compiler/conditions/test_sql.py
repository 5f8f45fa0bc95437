"""condition_to_sql: every operator agrees with the Python evaluator, on SQLite and on Postgres."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from rule_compiler.conditions import ConditionCompileError, NotTranslatableError, condition_to_sql
from rule_compiler.conditions.sql import SQL_BUILDERS, column_type_of
from rule_compiler.conditions.sql_functions import register_sqlite_functions
from rule_compiler.definitions.conditions import OPERATOR_NAMES

from ._sqlsupport import METADATA, ROWS, load, make_engine, python_ids, resolve, sql_ids
from ._support import NOW, node


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[sa.Engine]:
    """One database per module and dialect, with the ``rows`` table."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sql') / 'rows.db'}"
    else:
        url = request.getfixturevalue("postgres_databases").create()
    created = make_engine(url)
    METADATA.create_all(created)
    yield created
    created.dispose()


ROW_DATA: list[dict[str, Any]] = [
    {
        "s": "Hello World",
        "i": 5,
        "n": Decimal("10.50"),
        "b": True,
        "ts": NOW - timedelta(days=4),
        "d": date(2024, 5, 1),
        "j": ["vip", 1, True],
        "s2": "Hello World",
        "i2": 7,
    },
    {
        "s": "",
        "i": 0,
        "n": Decimal(0),
        "b": False,
        "ts": NOW,
        "d": date(2024, 6, 1),
        "j": [],
        "s2": "x",
        "i2": 0,
    },
    {"s": "INV-123", "i": 10, "n": Decimal(1000), "j": {"a": 1}, "s2": "inv"},
    {
        "s": "straße ß",
        "i": -3,
        "n": Decimal("-0.5"),
        "b": False,
        "ts": NOW + timedelta(hours=1),
        "j": "",
        "i2": -3,
    },
    {"s": "a'; DROP TABLE rows; --", "j": [2.5, "1", False]},
    {},
    {"s": "z", "j": "a vip, 1"},
]

EXAMPLES: list[dict[str, Any]] = [
    {"field": "s", "operator": "equals", "value": "INV-123"},
    {"field": "s", "operator": "not_equals", "value": "x"},
    {"field": "s", "operator": "in", "value": ["", "INV-123", "zzz"]},
    {"field": "s", "operator": "not_in", "value": ["", "INV-123"]},
    {"field": "s", "operator": "contains", "value": "World"},
    {"field": "s", "operator": "contains", "value": "world"},
    {"field": "s", "operator": "contains", "value": "ß"},
    {"field": "s", "operator": "contains", "value": "%"},
    {"field": "s", "operator": "contains", "value": "'"},
    {"field": "s", "operator": "not_contains", "value": "o"},
    {"field": "s", "operator": "icontains", "value": "WORLD"},
    {"field": "s", "operator": "startswith", "value": "INV"},
    {"field": "s", "operator": "startswith", "value": "inv"},
    {"field": "s", "operator": "startswith", "value": ""},
    {"field": "s", "operator": "endswith", "value": "World"},
    {"field": "s", "operator": "endswith", "value": "Hello World!"},
    {"field": "s", "operator": "endswith", "value": ""},
    {"field": "s", "operator": "matches", "value": r"^INV-\d+$"},
    {"field": "s", "operator": "matches", "value": "o W|^$"},
    {"field": "s", "operator": "is_null"},
    {"field": "s", "operator": "is_not_null"},
    {"field": "s", "operator": "is_empty"},
    {"field": "s", "operator": "is_not_empty"},
    {"field": "s", "operator": "contains_any", "value": ["World", "123"]},
    {"field": "s", "operator": "contains_all", "value": ["Hello", "World"]},
    {"field": "s", "operator": "equals", "value": {"field_ref": "s2"}},
    {"field": "s", "operator": "not_equals", "value": {"field_ref": "s2"}},
    {"field": "i", "operator": "gt", "value": 0},
    {"field": "i", "operator": "gte", "value": 0},
    {"field": "i", "operator": "lt", "value": 5.5},
    {"field": "i", "operator": "lte", "value": 5},
    {"field": "i", "operator": "between", "value": [0, 5]},
    {"field": "i", "operator": "in", "value": [0, 10]},
    {"field": "i", "operator": "not_in", "value": [0, 10]},
    {"field": "i", "operator": "lt", "value": {"field_ref": "i2"}},
    {"field": "i", "operator": "gte", "value": {"field_ref": "i2"}},
    {"field": "n", "operator": "equals", "value": 10.5},
    {"field": "n", "operator": "gt", "value": -0.5},
    {"field": "n", "operator": "between", "value": [-0.5, 10.5]},
    {"field": "n", "operator": "in", "value": [0, 1000]},
    {"field": "b", "operator": "equals", "value": True},
    {"field": "b", "operator": "not_equals", "value": True},
    {"field": "b", "operator": "is_null"},
    {"field": "ts", "operator": "gt", "value": "2024-05-01T00:00:00Z"},
    {"field": "ts", "operator": "lte", "value": "2024-06-01T14:00:00+02:00"},
    {"field": "ts", "operator": "equals", "value": "2024-06-01T12:00:00Z"},
    {"field": "ts", "operator": "between", "value": ["2024-05-30", "2024-06-02"]},
    {"field": "ts", "operator": "older_than", "value": "3d"},
    {"field": "ts", "operator": "newer_than", "value": "1d"},
    {"field": "ts", "operator": "newer_than", "value": "30s"},
    {"field": "d", "operator": "equals", "value": "2024-05-01"},
    {"field": "d", "operator": "gt", "value": "2024-05-01"},
    {"field": "d", "operator": "lte", "value": "2024-06-01"},
    {"field": "d", "operator": "in", "value": ["2024-06-01", "2024-01-01"]},
    {"field": "d", "operator": "older_than", "value": "2w"},
    {"field": "d", "operator": "newer_than", "value": "1d"},
    {"field": "j", "operator": "is_null"},
    {"field": "j", "operator": "is_not_null"},
    {"field": "j", "operator": "is_empty"},
    {"field": "j", "operator": "is_not_empty"},
    {"field": "j", "operator": "contains", "value": "vip"},
    {"field": "j", "operator": "contains", "value": 1},
    {"field": "j", "operator": "contains", "value": "1"},
    {"field": "j", "operator": "contains", "value": True},
    {"field": "j", "operator": "contains", "value": False},
    {"field": "j", "operator": "contains", "value": 2.5},
    {"field": "j", "operator": "not_contains", "value": "vip"},
    {"field": "j", "operator": "contains_any", "value": ["x", 1]},
    {"field": "j", "operator": "contains_all", "value": ["vip", 1]},
    {"not": {"field": "b", "operator": "equals", "value": True}},
    {"not": {"field": "s", "operator": "matches", "value": "o"}},
    {"all": [{"field": "i", "operator": "gte", "value": 0}, {"not": {"field": "b", "operator": "is_null"}}]},
    {"any": [{"field": "s", "operator": "is_empty"}, {"field": "j", "operator": "contains", "value": 2.5}]},
]


def test_every_translatable_operator_has_an_example_and_a_builder() -> None:
    used: set[str] = set()

    def walk(data: dict[str, Any]) -> None:
        if "operator" in data:
            used.add(data["operator"])
        for key in ("all", "any"):
            for child in data.get(key, []):
                walk(child)
        if "not" in data:
            walk(data["not"])

    for example in EXAMPLES:
        walk(example)
    translatable = set(OPERATOR_NAMES) - {"changed", "changed_to", "changed_from"}
    assert used == translatable
    assert set(SQL_BUILDERS) == translatable


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: str(e)[:60])
def test_sql_agrees_with_python(engine: sa.Engine, example: dict[str, Any]) -> None:
    condition = node(example)
    with engine.begin() as conn:
        records = load(conn, ROW_DATA)
        expected = python_ids(condition, records, NOW)
        assert sql_ids(conn, condition, NOW) == expected


def test_examples_select_what_they_should(engine: sa.Engine) -> None:
    """A few absolute answers, so agreement is not agreement on a shared mistake."""
    with engine.begin() as conn:
        load(conn, ROW_DATA)
        assert sql_ids(conn, node({"field": "s", "operator": "contains", "value": "world"}), NOW) == []
        assert sql_ids(conn, node({"field": "s", "operator": "is_empty"}), NOW) == [2, 6]
        not_true = node({"not": {"field": "b", "operator": "equals", "value": True}})
        assert sql_ids(conn, not_true, NOW) == [2, 3, 4, 5, 6, 7]
        assert sql_ids(conn, node({"field": "j", "operator": "contains", "value": 1}), NOW) == [1]
        assert sql_ids(conn, node({"field": "j", "operator": "contains", "value": "vip"}), NOW) == [1, 7]
        assert sql_ids(conn, node({"field": "j", "operator": "not_contains", "value": "vip"}), NOW) == [
            2,
            3,
            4,
            5,
        ]
        assert sql_ids(conn, node({"field": "ts", "operator": "older_than", "value": "3d"}), NOW) == [1]
        assert sql_ids(conn, node({"field": "s", "operator": "matches", "value": "^INV"}), NOW) == [3]


def test_naive_now_means_utc(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        load(conn, ROW_DATA)
        condition = node({"field": "ts", "operator": "newer_than", "value": "1d"})
        assert sql_ids(conn, condition, NOW.replace(tzinfo=None)) == sql_ids(conn, condition, NOW) == [2, 4]


@pytest.mark.parametrize("operator", ["changed", "changed_to", "changed_from"])
def test_event_operators_are_not_translatable(operator: str) -> None:
    data: dict[str, Any] = {"field": "s", "operator": operator}
    if operator != "changed":
        data["value"] = "x"
    with pytest.raises(NotTranslatableError, match="needs an event") as caught:
        condition_to_sql(
            node({"all": [{"field": "i", "operator": "gt", "value": 1}, data]}), resolve, now=NOW
        )
    assert "all[1]" in str(caught.value)
    assert isinstance(caught.value, ConditionCompileError)


def test_no_conditions_is_true() -> None:
    assert (
        str(condition_to_sql(None, resolve, now=NOW).compile(compile_kwargs={"literal_binds": True}))
        == "true"
    )


def test_values_and_now_are_bound_parameters_never_sql_text() -> None:
    hostile = "x'; DROP TABLE rows; --"
    condition = node(
        {
            "all": [
                {"field": "s", "operator": "equals", "value": hostile},
                {"field": "s", "operator": "matches", "value": "^a'"},
                {"field": "ts", "operator": "older_than", "value": "3d"},
            ]
        }
    )
    compiled = sa.select(ROWS.c.id).where(condition_to_sql(condition, resolve, now=NOW)).compile()
    text = str(compiled)
    assert "DROP" not in text and "^a'" not in text and "2024" not in text
    assert hostile in compiled.params.values()
    assert NOW - timedelta(days=3) in compiled.params.values()
    assert text.count("coalesce") == 3


def test_statement_shape_is_stable_across_runs() -> None:
    condition = node({"field": "ts", "operator": "older_than", "value": "3d"})
    first = str(condition_to_sql(condition, resolve, now=NOW).compile())
    later = str(condition_to_sql(condition, resolve, now=NOW + timedelta(days=9)).compile())
    assert first == later


def test_column_types_come_from_the_columns_or_the_caller() -> None:
    assert [column_type_of(column) for column in ROWS.c] == [
        "integer", "text", "integer", "numeric", "boolean", "timestamp", "date", "json", "text", "integer",
    ]  # fmt: skip
    assert column_type_of(sa.column("x", sa.LargeBinary())) == "other"
    # A text column declared as a timestamp by the caller: the operand is bound as a date-time.
    expression = condition_to_sql(
        node({"field": "s", "operator": "gt", "value": "2024-05-01"}),
        resolve,
        now=NOW,
        column_types={"s": "timestamp"},
    )
    assert datetime(2024, 5, 1, tzinfo=UTC) in expression.compile().params.values()


def test_operands_that_do_not_fit_are_compile_errors() -> None:
    with pytest.raises(ConditionCompileError, match="does not fit"):
        condition_to_sql(node({"field": "i", "operator": "gt", "value": "abc"}), resolve, now=NOW)
    with pytest.raises(ConditionCompileError, match="two values"):
        condition_to_sql(node({"field": "i", "operator": "between", "value": [1]}), resolve, now=NOW)
    with pytest.raises(ConditionCompileError, match="a list"):
        condition_to_sql(node({"field": "i", "operator": "in", "value": []}), resolve, now=NOW)


def test_sqlite_regexp_function(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'r.db'}")
    sa.event.listen(engine, "connect", lambda conn, _record: register_sqlite_functions(conn))
    with engine.connect() as conn:
        query = (
            "SELECT 'INV-12' REGEXP '^INV-\\d+$', 'x' REGEXP 'y', NULL REGEXP 'x', 12 REGEXP '^1', "
            "'a' REGEXP '(a)\\1'"
        )
        assert conn.execute(sa.text(query)).one() == (1, 0, None, 1, 0)
    engine.dispose()
