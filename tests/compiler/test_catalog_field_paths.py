"""``field_paths``: what the designer's pickers offer for a condition on a table; every path resolves."""

from __future__ import annotations

from rule_compiler.catalog import Connection, field_paths, resolve_field


def _connection() -> Connection:
    return Connection.model_validate(
        {
            "kind": "database",
            "tables": {
                "regions": {"columns": {"id": {"type": "integer"}, "name": {"type": "text"}}},
                "customers": {
                    "columns": {
                        "id": {"type": "integer"},
                        "tier": {"type": "text"},
                        "region_id": {"type": "integer"},
                    },
                    "foreign_keys": [
                        {"name": "region", "column": "region_id", "references_table": "regions"}
                    ],
                },
                "orders": {
                    "columns": {
                        "id": {"type": "integer"},
                        "total": {"type": "numeric"},
                        "parent_id": {"type": "integer"},
                        "customer_id": {"type": "integer"},
                    },
                    "foreign_keys": [
                        {"name": "customer", "column": "customer_id", "references_table": "customers"},
                        {"name": "parent", "column": "parent_id", "references_table": "orders"},  # a cycle
                    ],
                },
            },
        }
    )


def test_columns_first_then_paths_through_foreign_keys_breadth_first() -> None:
    paths = field_paths(_connection(), "orders")
    names = [path for path, _ in paths]
    assert names[:4] == ["id", "total", "parent_id", "customer_id"]
    assert ("customer__tier", "text") in paths and ("customer__region__name", "text") in paths
    assert "parent__parent__total" in names  # a self-reference is walked up to the hop limit, no further
    assert not any(name.count("__") > 2 for name in names)
    connection = _connection()
    for name, kind in paths:  # the compiler resolves every path offered, to a column of that type
        assert resolve_field(connection, "orders", name).column.type == kind


def test_the_hops_and_the_number_of_paths_are_bounded() -> None:
    assert [p for p, _ in field_paths(_connection(), "orders", max_hops=0)] == [
        "id",
        "total",
        "parent_id",
        "customer_id",
    ]
    assert len(field_paths(_connection(), "orders", limit=6)) == 6
    assert field_paths(_connection(), "no_such_table") == []
