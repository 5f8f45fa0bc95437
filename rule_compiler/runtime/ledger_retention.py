"""Ledger retention: which application databases hold a ledger, and purging its old rows.

The ``rule_engine_retention`` maintenance DAG deletes, in every application database a record action
of a stored rule or workflow writes to, the ledger rows applied before ``AUTOMATION_RETENTION_LEDGER``
(default ``30d``; :mod:`rule_compiler.retention_settings` makes sure that outlives any redelivery of
the event that caused them). Chunks of ``chunk`` rows, each its own transaction, oldest first.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from typing import Any

import sqlalchemy as sa

from rule_compiler.runtime.record_effects import LEDGER_TABLE, ledger
from rule_compiler.sql_dialects import table_exists

__all__ = ["RECORD_KINDS", "count_ledger", "ledger_connections", "purge_ledger"]

#: The task kinds that claim a ledger row in their connection's database.
RECORD_KINDS = frozenset({"create_record", "update_record", "delete_record"})
_INDEX = f"ix_{LEDGER_TABLE}_applied_at"


def ledger_connections(spec_jsons: Iterable[str]) -> set[str]:
    """The connection ids record actions of these compiled specs write to (unreadable specs skipped)."""
    found: set[str] = set()
    for text in spec_jsons:
        try:
            spec = json.loads(text)
        except ValueError:
            continue
        for node in _dicts(spec):
            params = node.get("params")
            if node.get("kind") in RECORD_KINDS and isinstance(params, dict):
                connection = params.get("connection")
                if isinstance(connection, str):
                    found.add(connection)
    return found


def _dicts(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _dicts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _dicts(item)


def purge_ledger(engine: sa.Engine, *, older_than: dt.datetime, chunk: int = 1000) -> int:
    """Delete the ledger rows applied before ``older_than``, ``chunk`` per transaction; the rows
    deleted (0 when the database has no ledger). Creates the ``applied_at`` index the chunks need."""
    with engine.connect() as conn:
        if not table_exists(conn, LEDGER_TABLE):
            return 0
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE INDEX IF NOT EXISTS {_INDEX} ON {LEDGER_TABLE} (applied_at)"))
    total = 0
    while True:
        oldest = (
            sa.select(ledger.c.idempotency_key)
            .where(ledger.c.applied_at < older_than)
            .order_by(ledger.c.applied_at)
            .limit(chunk)
        )
        with engine.begin() as conn:
            keys = list(conn.execute(oldest).scalars())
            if not keys:
                return total
            conn.execute(ledger.delete().where(ledger.c.idempotency_key.in_(keys)))
        total += len(keys)


def count_ledger(engine: sa.Engine, *, older_than: dt.datetime) -> int:
    """The ledger rows a purge at ``older_than`` would delete (0 when the database has no ledger)."""
    with engine.connect() as conn:
        if not table_exists(conn, LEDGER_TABLE):
            return 0
        query = sa.select(sa.func.count()).select_from(ledger).where(ledger.c.applied_at < older_than)
        return int(conn.execute(query).scalar_one())
