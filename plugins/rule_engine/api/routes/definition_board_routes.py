"""``GET /definitions``: the definitions board — every rule, workflow and report of your organization
with its state, trigger, owner, last run and a daily success rate (the Automations pages' list)."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from rule_compiler.clock import utcnow
from rule_compiler.store.definition_board import MAX_BOARD_DAYS
from rule_engine.api.board import airflow_states, board_page, matches
from rule_engine.api.deps import StoreDep, Viewer
from rule_engine.api.routes.error_responses import errors
from rule_engine.api.schemas_board import DefinitionBoard, State

router = APIRouter(prefix="/definitions", tags=["definitions"])

#: The most definitions one page of the board holds.
MAX_BOARD_PAGE = 1_000


@router.get("", responses=errors(), name="list_definitions_board")
def definitions_board(
    *,
    principal: Viewer,
    store: StoreDep,
    request: Request,
    q: Annotated[
        str | None,
        Query(max_length=200, description="text in the name, title, description or owner (any case)"),
    ] = None,
    kind: Annotated[Literal["rule", "workflow", "report"] | None, Query(description="one kind only")] = None,
    state: Annotated[State | None, Query(description="one state only")] = None,
    owner: Annotated[str | None, Query(max_length=200, description="this owner only (exactly)")] = None,
    days: Annotated[int, Query(ge=1, le=MAX_BOARD_DAYS, description="the days the runs cover")] = 14,
    limit: Annotated[int, Query(ge=1, le=MAX_BOARD_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> DefinitionBoard:
    """Your organization's rules, workflows and reports by name: state (`active`, `paused`,
    `render_error` with Airflow's reason), trigger, owner, ETag, the last run, and the runs of the last
    `days` UTC days, one per day (the sparkline), with their success rate. `states` counts the
    definitions matching `q`, `kind` and `owner` in each state. Activate or deactivate one with
    `PATCH /{kind}s/{name}` `{"active": ...}` and the item's `etag` as If-Match."""
    organization = principal.organization
    entries = [
        entry
        for entry in store.board_entries(organization)
        if (kind is None or entry.kind == kind)
        and (not q or matches(entry, q))
        and (owner is None or entry.source.get("owner") == owner)
    ]
    stats_of = partial(store.board_stats, organization, days=days, now=utcnow())
    return board_page(
        airflow_states(entries, request.app.state.render_errors),
        stats_of,
        state=state,
        limit=limit,
        offset=offset,
    )
