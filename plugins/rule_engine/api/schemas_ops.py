"""Request and response models of the operations routes: trigger a run, the catalog, consumer lag."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rule_compiler.catalog import Catalog, ColumnType, ConnectionKind
from rule_compiler.definitions.common import Identifier, Slug
from rule_engine.api.schemas import Health, IssueOut, OutModel

MAX_TRIGGER_NOTE = 1_000
MAX_SYNC_TABLES = 500


# -- trigger ----------------------------------------------------------------------------------------


class TriggerRequest(BaseModel):
    """What to start the run with (every field optional)."""

    model_config = ConfigDict(extra="forbid")

    payload: dict[str, Any] | None = Field(
        default=None,
        description="the run's `conf` (size-capped). For an event rule it must be "
        '`{"event_ids": ["17", "18"]}`: the outbox events to (re)process',
    )
    note: str | None = Field(
        default=None, max_length=MAX_TRIGGER_NOTE, description="a note shown on the run in Airflow"
    )


class RunRerun(OutModel):
    """A finished run whose failed actions run again, in the same run (Airflow queued it again)."""

    dag_id: str
    run_id: str
    failed: list[str] = Field(description="the actions (or workflow nodes) whose results had failed")
    cleared: list[str] = Field(description="the tasks Airflow runs again: those and every task after them")
    url: str = Field(description="the run in the Airflow UI")


class RunStarted(OutModel):
    """The run Airflow queued."""

    rule: str
    version: int = Field(description="the rule version the run executes")
    dag_id: str
    run_id: str
    state: str
    logical_date: dt.datetime | None = Field(description="null: a manual run has no logical date")
    run_after: dt.datetime
    conf: dict[str, Any]
    triggered_by: str
    url: str = Field(description="the run in the Airflow UI")


# -- catalog ----------------------------------------------------------------------------------------


class CatalogPut(Catalog):
    """A whole catalog. ``organization`` may be left out: it is always the caller's organization."""

    organization: Slug | None = None  # type: ignore[assignment]


class AllowLists(OutModel):
    """What the organization's rules may reach besides tables."""

    connections: dict[ConnectionKind, list[str]] = Field(
        description="the Airflow connection ids the organization may use, by kind (its catalog's "
        "connections; adding one needs a platform administrator)"
    )
    webhook_hosts: list[str] = Field(
        description="hosts every organization's webhooks may call over http or at private "
        "addresses (AUTOMATION_WEBHOOK_ALLOW_HOSTS, set by the deployment; read-only here)"
    )


class CatalogPublic(OutModel):
    """The organization's current catalog version and its allow-lists."""

    organization: str
    version: int
    catalog_hash: str
    etag: str = Field(description="send it in If-Match to replace exactly this version")
    updated_by: str
    updated_at: dt.datetime
    catalog: Catalog
    allow_lists: AllowLists


class FieldPublic(OutModel):
    """A field a condition may name: a column, or a path through foreign keys (``customer__tier``)."""

    path: str
    type: ColumnType


class TableFields(OutModel):
    """A table of a database connection: whether actions may write it, its columns and field paths."""

    name: str
    writable: bool
    columns: list[FieldPublic] = Field(description="the table's own columns")
    fields: list[FieldPublic] = Field(
        description="its columns, then those reached through up to 2 foreign keys (at most 500)"
    )


class ConnectionNames(OutModel):
    """A connection of the catalog by kind; a database's tables."""

    name: str
    kind: ConnectionKind
    tables: list[TableFields] = Field(default_factory=list)


class CatalogNames(OutModel):
    """What the organization's definitions may name, for the editors' pickers (no allow-lists)."""

    organization: str
    version: int
    connections: list[ConnectionNames]


class RuleProblems(OutModel):
    """A stored rule that no longer validates against the catalog (its compiled DAG still runs)."""

    name: str
    dag_id: str
    active: bool
    errors: list[IssueOut]


class CatalogWritten(CatalogPublic):
    """The catalog after a write: whether it changed, and the rules it breaks."""

    changed: bool = Field(description="false: the same content was already current (nothing stored)")
    invalid_rules: list[RuleProblems] = Field(
        description="rules of the organization that fail validation against this catalog; they "
        "are not recompiled and keep running their stored spec until they are changed"
    )


class CatalogVersionPublic(OutModel):
    """One stored catalog version."""

    version: int
    catalog_hash: str
    actor: str
    created_at: dt.datetime


class CatalogSyncRequest(BaseModel):
    """Which database to reflect into the catalog."""

    model_config = ConfigDict(extra="forbid")

    connection: Identifier = Field(description="the Airflow connection id of the application database")
    tables: list[Identifier] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_SYNC_TABLES,
        description="tables to reflect (default: those the catalog lists for the connection, else all)",
    )
    dry_run: bool = Field(default=False, description="report what would change; store nothing")


class CatalogSyncResult(OutModel):
    """What a sync reflected and changed (the lines `rule-compiler catalog sync` prints)."""

    organization: str
    connection: str
    tables_reflected: list[str]
    created_catalog: bool
    added_connection: bool
    tables_added: list[str]
    tables_removed: list[str]
    table_changes: dict[str, list[str]] = Field(
        description="table -> changes such as `+ column shipped_at (timestamp)`"
    )
    changes: list[str] = Field(description="every change, one line each")
    notes: list[str] = Field(description="admin choices kept, and what reflection had to leave out")
    changed: bool
    stored: bool = Field(description="false for a dry run or when nothing changed")
    version: int | None = Field(description="the catalog version now current (null: none yet)")
    invalid_rules: list[RuleProblems]


# -- health -----------------------------------------------------------------------------------------

ConsumerStatus = Literal["ok", "behind", "stalled", "no_outbox", "unreachable"]


class ConsumerLag(OutModel):
    """How far the event trigger of one watch (a table, its operations and fields) is behind its outbox."""

    connection: str
    table: str
    consumer: str = Field(
        description="the durable cursor's name: `airflow:<table>`, or "
        "`airflow:<table>?events=...&fields=...` for a trigger of some operations or fields only"
    )
    rules: list[str] = Field(description="the active event rules this trigger starts (organization/name)")
    status: ConsumerStatus = Field(
        description="ok: nothing pending; behind: events pending; stalled: the oldest pending event "
        "waits longer than `stalled_after_seconds`; no_outbox: the database has no outbox yet "
        "(capture not installed, nothing pushed); unreachable: see `error`"
    )
    position: int | None = Field(default=None, description="the last outbox id the consumer handed on")
    newest_id: int | None = Field(default=None, description="the newest outbox id of the table")
    pending: int | None = Field(default=None, description="events of the table after the position")
    pending_capped: bool = Field(default=False, description="true: `pending` is a lower bound")
    oldest_pending_at: dt.datetime | None = None
    oldest_pending_age_seconds: float | None = None
    error: str | None = Field(default=None, description="the error class when unreachable")


class HealthReport(Health):
    """Health with the lag of every event consumer your active event rules depend on."""

    consumers: list[ConsumerLag] = Field(default_factory=list)
    stalled_after_seconds: float
