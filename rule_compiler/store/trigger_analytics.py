"""Trigger analytics: what the event rules of an organization were handed, per watched table and per
rule, read from the ``analytics_runs`` rollups (ADR 0012; ``ignored`` from migration 0014).

Per event rule: its runs, the events handed to it (each event once per rule that watches its table),
the ones its ``fields:`` or operations filter dropped, the ones that matched, and its runs per event.
Per table: the same summed over the rules that watch it. The consumer lag of each table's triggers is
the REST view's to add (it reads the application databases).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import sqlalchemy as sa

from rule_compiler.store.analytics import TimeRange, rows_covering
from rule_compiler.store.tables import analytics_runs

__all__ = ["EventRuleTotals", "TableTotals", "TriggerAnalytics", "trigger_analytics"]


@dataclass(frozen=True)
class EventRuleTotals:
    """One event rule (or workflow) over the range."""

    kind: str
    name: str
    connection: str
    table: str
    runs: int
    events: int  # handed to it: every event of its table after its cursor
    ignored: int  # dropped by its `fields:` or operations filter
    matched: int

    @property
    def runs_per_event(self) -> float | None:
        return self.runs / self.events if self.events else None


@dataclass(frozen=True)
class TableTotals:
    """A watched table: its rules' totals summed."""

    connection: str
    table: str
    rules: list[str]
    runs: int
    events: int
    ignored: int
    matched: int

    @property
    def runs_per_event(self) -> float | None:
        return self.runs / self.events if self.events else None


@dataclass(frozen=True)
class TriggerAnalytics:
    organization: str
    range: TimeRange
    tables: list[TableTotals]
    rules: list[EventRuleTotals]


def trigger_analytics(
    conn: sa.Connection,
    organization: str,
    span: TimeRange,
    watches: Mapping[tuple[str, str], tuple[str, str]] | Iterable[tuple[tuple[str, str], tuple[str, str]]],
) -> TriggerAnalytics:
    """``watches``: (kind, name) of each event rule → (connection, table) it watches (from its spec).
    One grouped read of the rollups (daily rows where whole days are covered)."""
    watched = dict(watches.items() if isinstance(watches, Mapping) else watches)
    t = analytics_runs
    sums = {
        (row.kind, row.name): row
        for row in conn.execute(
            sa.select(
                t.c.kind,
                t.c.name,
                sa.func.sum(t.c.runs).label("runs"),
                sa.func.sum(t.c.evaluated).label("events"),
                sa.func.sum(t.c.ignored).label("ignored"),
                sa.func.sum(t.c.matched).label("matched"),
            )
            .where(*rows_covering(t, organization, span, coarse=True))
            .group_by(t.c.kind, t.c.name)
        ).all()
    }
    rules = []
    for (kind, name), (connection, table) in sorted(watched.items()):
        row = sums.get((kind, name))
        values = [
            int(getattr(row, field) or 0) if row is not None else 0
            for field in ("runs", "events", "ignored", "matched")
        ]
        rules.append(EventRuleTotals(kind, name, connection, table, *values))
    by_table: dict[tuple[str, str], list[EventRuleTotals]] = {}
    for rule in rules:
        by_table.setdefault((rule.connection, rule.table), []).append(rule)
    tables = [
        TableTotals(
            connection=connection,
            table=table,
            rules=[f"{r.kind} {r.name}" for r in own],
            runs=sum(r.runs for r in own),
            events=sum(r.events for r in own),
            ignored=sum(r.ignored for r in own),
            matched=sum(r.matched for r in own),
        )
        for (connection, table), own in sorted(by_table.items())
    ]
    return TriggerAnalytics(organization, span, tables, rules)
