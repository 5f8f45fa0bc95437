"""Record effects are exactly-once per idempotency key, on SQLite and on the real Postgres."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa

from rule_compiler.errors import PermanentActionError
from rule_compiler.runtime.idempotency import idempotency_key, row_key
from rule_compiler.runtime.record_effects import LEDGER_TABLE, Effect, apply_effect, ensure_ledger
from rule_compiler.runtime.rows import iter_rows


@pytest.fixture
def engine(any_db_url: str) -> Any:
    engine = sa.create_engine(any_db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE customers (id INTEGER PRIMARY KEY, tier TEXT)"))
        conn.execute(
            sa.text(
                "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES "
                "customers(id), total NUMERIC(12,2), priority TEXT, deleted BOOLEAN DEFAULT FALSE)"
            )
        )
        conn.execute(sa.text("INSERT INTO customers VALUES (1, 'vip'), (2, 'basic')"))
        conn.execute(
            sa.text(
                "INSERT INTO orders (id, customer_id, total, priority, deleted) VALUES "
                "(10, 1, 1500, 'low', FALSE), (11, 2, 20, 'low', FALSE), (12, NULL, 5, 'low', FALSE)"
            )
        )
    ensure_ledger(engine)
    yield engine
    engine.dispose()


def _effect(key_values: list[Any] | None, occurrence: str = "run-1", action: str = "flag") -> Effect:
    text = None if key_values is None else row_key({"id": key_values[0]}, ["id"])
    return Effect(idempotency_key("acme/r", occurrence, action, text), "acme/r", action, occurrence, text)


def _count(engine: sa.Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar_one())


def test_update_applies_once_per_key(engine: sa.Engine) -> None:
    args = {
        "operation": "update",
        "table_name": "orders",
        "primary_key": ["id"],
        "values": {"priority": "high"},
    }
    assert apply_effect(engine, _effect([10]), key_values=[10], **args) == "applied"
    assert apply_effect(engine, _effect([10]), key_values=[10], **args) == "already_applied"
    assert _count(engine, "SELECT count(*) FROM orders WHERE priority = 'high'") == 1
    assert _count(engine, f"SELECT count(*) FROM {LEDGER_TABLE}") == 1
    # another run is another occurrence: a new effect
    assert apply_effect(engine, _effect([10], occurrence="run-2"), key_values=[10], **args) == "applied"
    assert _count(engine, f"SELECT count(*) FROM {LEDGER_TABLE}") == 2


def test_concurrent_duplicates_apply_once(engine: sa.Engine) -> None:
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        outcomes.append(
            apply_effect(
                engine,
                _effect(None, action="create"),
                operation="insert",
                table_name="orders",
                primary_key=["id"],
                key_values=None,
                values={"id": 99, "total": "7.50", "priority": "new"},
            )
        )

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes).count("applied") == 1, outcomes
    assert _count(engine, "SELECT count(*) FROM orders WHERE id = 99") == 1


def test_missing_row_changes_nothing_and_keeps_no_ledger_row(engine: sa.Engine) -> None:
    outcome = apply_effect(
        engine,
        _effect([404]),
        operation="update",
        table_name="orders",
        primary_key=["id"],
        key_values=[404],
        values={"priority": "x"},
    )
    assert outcome == "missing_row"
    assert _count(engine, f"SELECT count(*) FROM {LEDGER_TABLE}") == 0


def test_values_are_cast_to_column_types_or_refused(engine: sa.Engine) -> None:
    apply_effect(
        engine,
        _effect([11]),
        operation="update",
        table_name="orders",
        primary_key=["id"],
        key_values=[11],
        values={"total": "42.50"},
    )
    with engine.connect() as conn:
        assert float(conn.execute(sa.text("SELECT total FROM orders WHERE id = 11")).scalar_one()) == 42.5
    with pytest.raises(PermanentActionError, match="cannot be stored in column 'total'"):
        apply_effect(
            engine,
            _effect([12]),
            operation="update",
            table_name="orders",
            primary_key=["id"],
            key_values=[12],
            values={"total": "lots"},
        )
    assert _count(engine, f"SELECT count(*) FROM {LEDGER_TABLE}") == 1


def test_hostile_values_are_bound_not_interpolated(engine: sa.Engine) -> None:
    value = "x'; DROP TABLE orders; --"
    apply_effect(
        engine,
        _effect([10]),
        operation="update",
        table_name="orders",
        primary_key=["id"],
        key_values=[10],
        values={"priority": value},
    )
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT priority FROM orders WHERE id = 10")).scalar_one() == value


def test_soft_and_hard_delete(engine: sa.Engine) -> None:
    apply_effect(
        engine,
        _effect([10], action="soft"),
        operation="soft_delete",
        table_name="orders",
        primary_key=["id"],
        key_values=[10],
        soft_delete_column="deleted",
    )
    apply_effect(
        engine,
        _effect([11], action="hard"),
        operation="delete",
        table_name="orders",
        primary_key=["id"],
        key_values=[11],
    )
    assert _count(engine, "SELECT count(*) FROM orders WHERE id = 10 AND deleted = TRUE") == 1
    assert _count(engine, "SELECT count(*) FROM orders WHERE id = 11") == 0


def test_rows_join_foreign_key_paths_and_keep_missing_related_rows_null(engine: sa.Engine) -> None:
    plan = {
        "table": "orders",
        "primary_key": ["id"],
        "columns": ["id", "total", "customer_id"],
        "paths": {
            "customer__tier": {
                "column": "tier",
                "joins": [
                    {"from_table": "orders", "fk_column": "customer_id", "table": "customers", "column": "id"}
                ],
            }
        },
    }
    with engine.connect() as conn:
        rows = list(iter_rows(conn, plan))
        only = list(iter_rows(conn, plan, [[11]]))
    assert [(r["id"], r["customer__tier"]) for r in rows] == [(10, "vip"), (11, "basic"), (12, None)]
    assert [r["id"] for r in only] == [11]


def test_matching_keys_select_in_sql_with_paths_and_the_null_rule(engine: sa.Engine) -> None:
    from datetime import UTC, datetime

    from pydantic import TypeAdapter

    from rule_compiler.definitions import ConditionNode
    from rule_compiler.runtime.rows import matching_keys

    plan = {
        "table": "orders", "primary_key": ["id"], "columns": ["id", "total", "customer_id"],
        "types": {"id": "integer", "total": "numeric", "customer_id": "integer", "customer__tier": "text"},
        "paths": {"customer__tier": {"column": "tier", "joins": [
            {"from_table": "orders", "fk_column": "customer_id", "table": "customers", "column": "id"}]}},
    }  # fmt: skip
    node = TypeAdapter(ConditionNode).validate_python
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with engine.connect() as conn:
        vip = matching_keys(
            conn,
            plan,
            node(
                {
                    "all": [
                        {"field": "customer__tier", "operator": "equals", "value": "vip"},
                        {"field": "total", "operator": "gt", "value": 10},
                    ]
                }
            ),
            now=now,
            limit=100,
        )
        # order 12 has no customer: the comparison is NULL → false, so `not` of it is true
        not_vip = matching_keys(
            conn,
            plan,
            node({"not": {"field": "customer__tier", "operator": "equals", "value": "vip"}}),
            now=now,
            limit=100,
        )
        capped = matching_keys(conn, plan, None, now=now, limit=2)
    assert vip == [[10]]
    assert not_vip == [[11], [12]]
    assert capped == [[10], [11]]


@pytest.fixture
def skus(engine: sa.Engine) -> sa.Engine:
    key = "SERIAL PRIMARY KEY" if engine.dialect.name == "postgresql" else "INTEGER PRIMARY KEY"
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE skus (id {key}, code TEXT NOT NULL UNIQUE, stock INTEGER)"))
        conn.execute(sa.text("INSERT INTO skus (code, stock) VALUES ('A-1', 5)"))
    return engine


def _upsert(engine: sa.Engine, occurrence: str, values: dict[str, Any], upsert_on: list[str]) -> str:
    return apply_effect(
        engine,
        _effect(None, occurrence=occurrence, action="restock"),
        operation="insert",
        table_name="skus",
        primary_key=["id"],
        key_values=None,
        values=values,
        upsert_on=upsert_on,
    )


def test_upsert_updates_the_row_holding_the_key_and_inserts_otherwise(skus: sa.Engine) -> None:
    assert _upsert(skus, "run-1", {"code": "A-1", "stock": "9"}, ["code"]) == "applied"
    assert _upsert(skus, "run-2", {"code": "B-2", "stock": 3}, ["code"]) == "applied"
    assert _upsert(skus, "run-2", {"code": "B-2", "stock": 4}, ["code"]) == "already_applied"
    with skus.connect() as conn:
        rows = conn.execute(sa.text("SELECT code, stock FROM skus ORDER BY code")).all()
    assert [tuple(r) for r in rows] == [("A-1", 9), ("B-2", 3)]
    assert _count(skus, f"SELECT count(*) FROM {LEDGER_TABLE}") == 2


def test_upsert_with_only_key_columns_leaves_the_existing_row(skus: sa.Engine) -> None:
    assert _upsert(skus, "run-1", {"code": "A-1"}, ["code"]) == "applied"
    assert _count(skus, "SELECT stock FROM skus WHERE code = 'A-1'") == 5
    assert _count(skus, "SELECT count(*) FROM skus") == 1


def test_upsert_on_a_column_without_a_unique_key_is_a_permanent_error(skus: sa.Engine) -> None:
    with pytest.raises(PermanentActionError, match="refused the change"):
        _upsert(skus, "run-1", {"code": "A-1", "stock": 1}, ["stock"])
    assert _count(skus, f"SELECT count(*) FROM {LEDGER_TABLE}") == 0  # nothing claimed


def test_a_held_row_lock_times_out_as_a_retryable_error_and_changes_nothing(engine: sa.Engine) -> None:
    from rule_compiler.errors import RetryableActionError
    from rule_compiler.runtime.record_effects import Timeouts

    blocker = engine.connect()
    transaction = blocker.begin()
    if engine.dialect.name == "sqlite":
        blocker.exec_driver_sql("UPDATE orders SET priority = 'mine' WHERE id = 10")  # the database's lock
    else:
        blocker.execute(sa.text("SELECT id FROM orders WHERE id = 10 FOR UPDATE"))
    try:
        with pytest.raises(RetryableActionError):
            apply_effect(
                engine,
                _effect([10]),
                operation="update",
                table_name="orders",
                primary_key=["id"],
                key_values=[10],
                values={"priority": "high"},
                timeouts=Timeouts(statement_ms=5_000, lock_ms=200),
            )
    finally:
        transaction.rollback()
        blocker.close()
    assert _count(engine, "SELECT count(*) FROM orders WHERE priority = 'high'") == 0
    assert _count(engine, f"SELECT count(*) FROM {LEDGER_TABLE}") == 0
    # once the lock is gone the retry applies it
    args = {
        "operation": "update",
        "table_name": "orders",
        "primary_key": ["id"],
        "values": {"priority": "high"},
    }
    assert apply_effect(engine, _effect([10]), key_values=[10], **args) == "applied"
