"""What the definitions board (``GET /definitions``) shows of each rule, workflow and report.

The store gives every definition's current version (:func:`RuleStore.board_entries`); Airflow says
which DAGs it holds paused or serves as render-error placeholders; the search and the state filter run
over all of them, and only the page's definitions get their runs read (:func:`RuleStore.board_stats`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rule_compiler.raw_sources import raw_trigger
from rule_compiler.store.definition_board import BoardEntry, BoardStats
from rule_engine.api import airflow_runs
from rule_engine.api.definition_ops import etag_of, schedule_of
from rule_engine.api.schemas_board import DayPublic, DefinitionBoard, DefinitionCard, LastRunPublic, State

log = logging.getLogger(__name__)

STATES: tuple[State, ...] = ("active", "paused", "render_error")


@dataclass(frozen=True, slots=True)
class Listed:
    """A board entry with its state in Airflow."""

    entry: BoardEntry
    state: State
    render_error: str | None


def airflow_states(
    entries: Sequence[BoardEntry], render_errors_of: Callable[[Collection[str]], dict[str, str]]
) -> list[Listed]:
    """Each entry's state: a render-error placeholder in Airflow (``render_errors_of``: dag id → reason),
    paused (in the store or in Airflow), or active. Airflow's metadata DB not answering is logged and
    the store's flag shown."""
    dag_ids = [entry.dag_id for entry in entries]
    try:
        broken = render_errors_of(dag_ids)
        paused = airflow_runs.paused_among([entry.dag_id for entry in entries if entry.active])
    except Exception:
        log.warning("could not read DAG states from Airflow's metadata DB", exc_info=True)
        broken, paused = {}, set()
    listed = []
    for entry in entries:
        reason = broken.get(entry.dag_id)
        state: State = "render_error" if reason is not None else "paused"
        if reason is None and entry.active and entry.dag_id not in paused:
            state = "active"
        listed.append(Listed(entry, state, reason))
    return listed


def matches(entry: BoardEntry, search: str) -> bool:
    """Whether ``search`` (any case) is in the name, title, description or owner."""
    needle = search.casefold()
    source = entry.source
    texts = (entry.name, source.get("title"), source.get("description"), source.get("owner"))
    return any(isinstance(text, str) and needle in text.casefold() for text in texts)


def trigger_label(entry: BoardEntry) -> str:
    """The trigger in a few words: ``event: orders (insert, update)``, ``schedule: 0 8 * * 1 (UTC)``."""
    trigger = raw_trigger(entry.source) if entry.kind != "report" else None
    if trigger is not None and trigger.get("type") == "event":
        events = trigger.get("events")
        listed = ", ".join(str(e) for e in events) if isinstance(events, list) else ""
        return f"event: {trigger.get('table')}" + (f" ({listed})" if listed else "")
    schedule = schedule_of(entry.source)
    if schedule is not None:
        kind = "data check" if trigger is not None and trigger.get("type") == "data" else "schedule"
        return f"{kind}: {schedule[0]} ({schedule[1]})"
    if entry.trigger_type:
        return entry.trigger_type + ("" if trigger is not None else " (from its template)")
    return "manual" if entry.kind != "report" else "schedule"


def _rate(succeeded: int, failed: int) -> float | None:
    return succeeded / (succeeded + failed) if succeeded + failed else None


def card(listed: Listed, stats: BoardStats) -> DefinitionCard:
    """One definition as the board shows it."""
    entry, source = listed.entry, listed.entry.source
    owner = source.get("owner")
    last = stats.last_run
    return DefinitionCard(
        kind=entry.kind,
        name=entry.name,
        dag_id=entry.dag_id,
        title=str(source.get("title") or entry.name),
        description=str(source.get("description") or ""),
        owner=owner if isinstance(owner, str) and owner else None,
        state=listed.state,
        render_error=listed.render_error,
        active=entry.active,
        trigger_type=entry.trigger_type,
        trigger=trigger_label(entry),
        version=entry.version,
        etag=etag_of(entry.version, entry.active, entry.source_hash),
        updated_at=entry.updated_at,
        updated_by=entry.updated_by,
        last_run=None
        if last is None
        else LastRunPublic(
            run_id=last.run_id, status=last.status, started_at=last.started_at, finished_at=last.finished_at
        ),
        runs=sum(day.runs for day in stats.days),
        success_rate=_rate(sum(day.succeeded for day in stats.days), sum(day.failed for day in stats.days)),
        days=[
            DayPublic(
                day=day.day,
                runs=day.runs,
                succeeded=day.succeeded,
                failed=day.failed,
                success_rate=_rate(day.succeeded, day.failed),
            )
            for day in stats.days
        ],
    )


def board_page(
    listed: Sequence[Listed],
    stats_of: Any,
    *,
    state: State | None,
    limit: int,
    offset: int,
) -> DefinitionBoard:
    """The page of ``listed`` (already searched) in ``state``, with the counts per state;
    ``stats_of(keys)`` reads the runs of the page's definitions."""
    counts: Mapping[State, int] = Counter(item.state for item in listed)
    chosen = [item for item in listed if state is None or item.state == state]
    page = chosen[offset : offset + limit]
    stats: Mapping[tuple[str, str], BoardStats] = stats_of([(i.entry.kind, i.entry.name) for i in page])
    return DefinitionBoard(
        items=[card(item, stats.get((item.entry.kind, item.entry.name), BoardStats())) for item in page],
        limit=limit,
        offset=offset,
        has_more=offset + limit < len(chosen),
        total=len(chosen),
        states={name: counts.get(name, 0) for name in STATES},
    )
