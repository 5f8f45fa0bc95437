"""Property: for generated conditions and rows, SQL filtering selects exactly what Python ``matches``.

Runs on SQLite and, marked ``postgres``, on a fresh Postgres database.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ._sqlsupport import METADATA, load, make_engine, python_ids, sql_ids
from ._support import NOW, node

TEXT = st.text(alphabet="abAB -x'%_", max_size=5)
INTS = st.integers(-3, 3)
HALVES = st.integers(-6, 6).map(lambda x: x / 2)
MOMENTS = st.integers(-10 * 24 * 60, 24 * 60).map(lambda minutes: NOW + timedelta(minutes=minutes * 7))
DAYS = st.integers(-20, 3).map(lambda days: (NOW + timedelta(days=days)).date())
JSON_SCALARS = st.one_of(st.sampled_from([0, 1, 2, "a", "b", "1", True, False]), st.just(2.5))
DURATIONS = st.sampled_from(["30s", "90m", "12h", "1d", "3d", "2w"])
PATTERNS = st.sampled_from(["^a", "b$", "a.b", "[AB]+", "^$", "a|b", "(ab)+", "A-?b", "x'", "^[^a]*$"])


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _sorted_pair(values: Any) -> st.SearchStrategy[list[Any]]:
    return st.lists(values, min_size=2, max_size=2).map(sorted)


def _leaf(
    field: str, operators: list[str], value: st.SearchStrategy[Any]
) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda op, v: {"field": field, "operator": op, "value": v}, st.sampled_from(operators), value
    )


def _bare(field: str, operators: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.sampled_from(operators).map(lambda op: {"field": field, "operator": op})


NULL_OPS = ["is_null", "is_not_null"]
EMPTY_OPS = ["is_empty", "is_not_empty"]
COMPARE = ["equals", "not_equals", "gt", "gte", "lt", "lte"]


def _numeric_leaves(field: str, values: st.SearchStrategy[Any], ref: str | None) -> list[Any]:
    leaves = [
        _leaf(field, COMPARE, values),
        _leaf(field, ["between"], _sorted_pair(values)),
        _leaf(field, ["in", "not_in"], st.lists(values, min_size=1, max_size=3)),
        _bare(field, NULL_OPS),
    ]
    if ref is not None:
        leaves.append(_leaf(field, COMPARE, st.just({"field_ref": ref})))
    return leaves


LEAVES = st.one_of(
    # text
    _leaf(
        "s", ["equals", "not_equals", "contains", "not_contains", "icontains", "startswith", "endswith"], TEXT
    ),
    _leaf("s", ["in", "not_in", "contains_any", "contains_all"], st.lists(TEXT, min_size=1, max_size=3)),
    _leaf("s", ["matches"], PATTERNS),
    _leaf("s", ["equals", "not_equals"], st.just({"field_ref": "s2"})),
    _bare("s", NULL_OPS + EMPTY_OPS),
    # integer and numeric
    *_numeric_leaves("i", INTS, "i2"),
    *_numeric_leaves("n", HALVES, "i"),
    # boolean
    _leaf("b", ["equals", "not_equals"], st.booleans()),
    _bare("b", NULL_OPS),
    # timestamp
    _leaf("ts", COMPARE, MOMENTS.map(_iso)),
    _leaf("ts", ["between"], _sorted_pair(MOMENTS).map(lambda pair: [_iso(m) for m in pair])),
    _leaf("ts", ["older_than", "newer_than"], DURATIONS),
    _bare("ts", NULL_OPS),
    # date
    _leaf("d", COMPARE, DAYS.map(date.isoformat)),
    _leaf("d", ["in", "not_in"], st.lists(DAYS.map(date.isoformat), min_size=1, max_size=3)),
    _leaf("d", ["older_than", "newer_than"], DURATIONS),
    # json
    _leaf("j", ["contains", "not_contains"], JSON_SCALARS),
    _leaf("j", ["contains_any", "contains_all"], st.lists(JSON_SCALARS, min_size=1, max_size=3)),
    _bare("j", NULL_OPS + EMPTY_OPS),
)
CONDITIONS = st.recursive(
    LEAVES,
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=4).map(lambda items: {"all": items}),
        st.lists(children, min_size=1, max_size=4).map(lambda items: {"any": items}),
        children.map(lambda child: {"not": child}),
    ),
    max_leaves=8,
)
JSON_VALUES = st.one_of(
    st.none(),
    st.lists(JSON_SCALARS, max_size=3),
    st.sampled_from([{}, {"a": 1}, "", "a", 0]),
)
ROW = st.fixed_dictionaries(
    {},
    optional={
        "s": st.one_of(st.none(), TEXT),
        "s2": st.one_of(st.none(), TEXT),
        "i": st.one_of(st.none(), INTS),
        "i2": st.one_of(st.none(), INTS),
        "n": st.one_of(st.none(), HALVES.map(lambda x: Decimal(str(x)))),
        "b": st.one_of(st.none(), st.booleans()),
        "ts": st.one_of(st.none(), MOMENTS),
        "d": st.one_of(st.none(), DAYS),
        "j": JSON_VALUES,
    },
)
ROWS_ = st.lists(ROW, min_size=1, max_size=8)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('prop') / 'rows.db'}"
    else:
        url = request.getfixturevalue("postgres_databases").create()
    created = make_engine(url)
    METADATA.create_all(created)
    yield created
    created.dispose()


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(condition=CONDITIONS, rows=ROWS_)
def test_sql_filtering_equals_python_matching(
    engine: sa.Engine, condition: dict[str, Any], rows: list[dict[str, Any]]
) -> None:
    tree = node(condition)
    with engine.begin() as conn:
        records = load(conn, rows)
        assert sql_ids(conn, tree, NOW) == python_ids(tree, records, NOW), condition
