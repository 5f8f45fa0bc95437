"""Response models of ``GET /definitions``: the definitions board of the Automations pages."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from rule_engine.api.schemas import OutModel

State = Literal["active", "paused", "render_error"]


class LastRunPublic(OutModel):
    """A definition's latest run, by when it started."""

    run_id: str
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime | None


class DayPublic(OutModel):
    """One UTC day of a definition's runs."""

    day: dt.date
    runs: int = Field(description="runs that finished that day (those that matched nothing included)")
    succeeded: int
    failed: int = Field(description="failed or partly failed runs (a report's `error` or `partial`)")
    success_rate: float | None = Field(description="succeeded / (succeeded + failed); null without either")


class DefinitionCard(OutModel):
    """A rule, workflow or report on the board: what it is, whether it runs, and how it has been running."""

    kind: Literal["rule", "workflow", "report"]
    name: str
    dag_id: str
    title: str = Field(description="the definition's title, or its name")
    description: str
    owner: str | None
    state: State = Field(
        description="render_error: Airflow serves a placeholder DAG (see render_error); paused: inactive in "
        "the store or paused in Airflow; else active"
    )
    render_error: str | None
    active: bool
    trigger_type: str | None
    trigger: str = Field(description="the trigger in a few words: `event: orders (insert, update)`, a cron")
    version: int
    etag: str = Field(description="send it as If-Match with a PATCH of `active` (activate, deactivate)")
    updated_at: dt.datetime
    updated_by: str
    last_run: LastRunPublic | None
    runs: int = Field(description="runs finished over `days`")
    success_rate: float | None = Field(description="over `days`: succeeded / (succeeded + failed)")
    days: list[DayPublic] = Field(description="one per UTC day, oldest first: the sparkline")


class DefinitionBoard(OutModel):
    """One page of the board, how many match in all, and how many of those matching the search are in
    each state (the state filter's counts)."""

    items: list[DefinitionCard]
    limit: int
    offset: int
    has_more: bool
    total: int
    states: dict[State, int]
