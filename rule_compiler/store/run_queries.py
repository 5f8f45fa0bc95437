"""The automation log as the REST view reads it: one organization's runs, filtered, sorted, paged.

Every query is scoped to an organization. Listings page with ``limit``/``offset`` and fetch one row
more than asked to tell whether another page exists (no ``COUNT(*)`` over a large log). The
(organization, started_at) and (organization, status, started_at) indexes of migration 0004 serve
the common filters; (organization, rule_name, started_at) serves the per-rule view.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from rule_compiler.store.models import RunLog
from rule_compiler.store.runs import _RUN_COLUMNS, _with_actions, key_text
from rule_compiler.store.tables import automation_run_items as i
from rule_compiler.store.tables import automation_runs as r

#: Sort keys a listing accepts; a leading ``-`` means descending.
RUN_SORT_KEYS = ("started_at", "finished_at", "status", "rule_name")


@dataclass(frozen=True, slots=True)
class RunQuery:
    """Filters of a run listing; ``None`` means "any"."""

    organization: str
    rule_name: str | None = None
    statuses: Sequence[str] | None = None
    started_after: dt.datetime | None = None
    started_before: dt.datetime | None = None
    run_id: str | None = None
    #: one DAG's runs (with ``run_id``: one run, read by the (dag_id, run_id) unique index)
    dag_id: str | None = None
    #: runs that matched this item: its table, and its key as the log shows it (``[42]``; ADR 0013)
    table: str | None = None
    key: str | None = None
    #: runs triggered by this user's change (a captured change, a pushed event, a manual trigger)
    actor: str | None = None


@dataclass(frozen=True, slots=True)
class RunPage:
    """One page of runs and whether more follow."""

    runs: list[RunLog]
    has_more: bool


def key_filter(text: str) -> str:
    """A key as a caller writes it (``42``, ``[42]``, ``["a", 1]``, ``{"id": 42}``) as the log stores it:
    the canonical JSON of the list of the key's values (one value alone is a list of one)."""
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    return key_text(value if isinstance(value, list | dict) else [value])


def _where(query: RunQuery) -> list[sa.ColumnElement[bool]]:
    clauses: list[sa.ColumnElement[bool]] = [r.c.organization == query.organization]
    if query.rule_name is not None:
        clauses.append(r.c.rule_name == query.rule_name)
    if query.statuses:
        clauses.append(r.c.status.in_(list(query.statuses)))
    if query.started_after is not None:
        clauses.append(r.c.started_at >= query.started_after)
    if query.started_before is not None:
        clauses.append(r.c.started_at < query.started_before)
    if query.run_id is not None:
        clauses.append(r.c.run_id == query.run_id)
    if query.dag_id is not None:
        clauses.append(r.c.dag_id == query.dag_id)
    item = [
        column == value
        for column, value in (
            (i.c.table_name, query.table),
            (i.c.key_text, query.key),
            (i.c.actor, query.actor),
        )
        if value is not None
    ]
    if item:  # one item must satisfy them all
        clauses.append(sa.exists().where(i.c.run_pk == r.c.id, *item))
    return clauses


def _order(sort: str) -> list[sa.UnaryExpression[object]]:
    key = sort.removeprefix("-")
    if key not in RUN_SORT_KEYS:
        keys = ", ".join(RUN_SORT_KEYS)
        raise ValueError(f"unknown sort key {sort!r}; use one of {keys} (- for descending)")
    column = r.c[key]
    descending = sort.startswith("-")
    primary = column.desc() if descending else column.asc()
    tie = r.c.id.desc() if descending else r.c.id.asc()
    return [primary, tie]


def query_runs(
    conn: sa.Connection, query: RunQuery, *, sort: str = "-started_at", limit: int = 50, offset: int = 0
) -> RunPage:
    """A page of runs matching ``query``, each with its action results."""
    if limit < 1 or offset < 0:
        raise ValueError(f"limit must be at least 1 and offset at least 0, not {limit} and {offset}")
    rows = conn.execute(
        sa.select(*_RUN_COLUMNS).where(*_where(query)).order_by(*_order(sort)).limit(limit + 1).offset(offset)
    ).all()
    return RunPage(_with_actions(conn, rows[:limit]), len(rows) > limit)


def get_run_in(conn: sa.Connection, organization: str, run_pk: int) -> RunLog | None:
    """One run of ``organization`` by its id, with its action results; None when it is not theirs."""
    rows = conn.execute(
        sa.select(*_RUN_COLUMNS).where(r.c.id == run_pk, r.c.organization == organization)
    ).all()
    runs = _with_actions(conn, rows)
    return runs[0] if runs else None
