"""Request and response models: separate Create / Update / Public shapes per resource.

Rule bodies are the definition format of ``docs/definitions.md``. They are checked by the same
validation as the CLI (so errors carry the same JSON paths); the models below document them in the
OpenAPI schema.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from rule_compiler.definitions import Event, RuleDefinition
from rule_compiler.definitions.common import Identifier, Slug
from rule_compiler.definitions.trigger_types import EventOperation, TriggerType

T = TypeVar("T")

MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50
TRIGGER_TYPES = TriggerType
RoleName = Literal["viewer", "editor", "admin"]


class OutModel(BaseModel):
    """The base of every answer model: unknown fields are refused (the OpenAPI schema is closed)."""

    model_config = ConfigDict(extra="forbid")


class IssueOut(OutModel):
    """One problem: where (a JSON path such as ``actions[1].values``), what, and a stable code."""

    path: str
    message: str
    code: str


class ErrorBody(OutModel):
    """Every error response: a sentence, and for invalid input every problem with its path."""

    detail: str
    errors: list[IssueOut] | None = None


class Page(OutModel, Generic[T]):
    """One page of a listing. ``total`` is given where counting is cheap (rules), not for logs."""

    items: list[T]
    limit: int
    offset: int
    has_more: bool
    total: int | None = None


# -- rules ------------------------------------------------------------------------------------------


class RuleCreate(RuleDefinition):
    """A rule definition. ``organization`` may be left out: it is always the caller's organization."""

    kind: Literal["rule"] = "rule"
    organization: Slug | None = None  # type: ignore[assignment]


class RuleUpdate(RuleCreate):
    """The whole new definition (PUT). ``name``, when given, must be the one in the path."""

    name: Slug | None = None  # type: ignore[assignment]


RULE_PATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A JSON merge patch (RFC 7396) of the rule definition: keys set to null are removed.",
    "additionalProperties": True,
}


class RuleSummary(OutModel):
    """A rule in a listing."""

    name: str
    organization: str
    dag_id: str
    active: bool
    trigger_type: str
    description: str
    version: int
    etag: str
    updated_at: dt.datetime


class RulePublic(RuleSummary):
    """A rule: its definition as stored, hashes and version."""

    definition: dict[str, Any] = Field(description="the definition as stored (docs/definitions.md)")
    source_hash: str
    spec_hash: str
    compiler_version: str
    updated_by: str
    created_at: dt.datetime


class RuleWritten(RulePublic):
    """A rule just created or changed, with the problems that did not stop it being stored."""

    warnings: list[IssueOut] = Field(
        default_factory=list,
        description="non-blocking problems, e.g. change capture not installed on an event rule's table",
    )


class ValidationResult(OutModel):
    """A dry run: whether the definition is valid, every problem, and what it would compile to."""

    valid: bool
    errors: list[IssueOut]
    warnings: list[IssueOut] = Field(
        default_factory=list, description="non-blocking problems (the rule would still be stored)"
    )
    dag_id: str | None = None
    spec_hash: str | None = None


class RuleSpecPublic(OutModel):
    """The compiled spec of a rule's current version."""

    name: str
    dag_id: str
    version: int
    spec_hash: str
    compiler_version: str
    spec: dict[str, Any]


class VersionPublic(OutModel):
    """One stored version."""

    version: int
    source_hash: str
    spec_hash: str
    compiler_version: str
    actor: str
    created_at: dt.datetime


class VersionDetail(VersionPublic):
    """One stored version with its definition as stored."""

    definition: dict[str, Any]


class Change(OutModel):
    """One difference between two versions, at a JSON path."""

    path: str
    op: Literal["added", "removed", "changed"]
    before: Any = None
    after: Any = None


class VersionDiff(OutModel):
    """What changed from version ``from_version`` to ``to_version``."""

    name: str
    from_version: int
    to_version: int
    changes: list[Change]


class RuleTestRequest(BaseModel):
    """An event to test a rule against; a schedule/manual rule with a target tests ``event.new`` as a row."""

    model_config = ConfigDict(extra="forbid")

    event: Event
    now: dt.datetime | None = Field(default=None, description="the time for older_than/newer_than")
    read_related: bool = Field(
        default=False,
        description="read foreign-key paths the event lacks from the database (the rule's connection)",
    )


class RuleTestResult(OutModel):
    """Whether the rule fires for the event and why: the condition trace."""

    rule: str
    triggered: bool
    matched: bool
    reason: str
    trace: dict[str, Any] | None
    event: dict[str, Any]
    record: dict[str, Any]
    notes: list[str]


class NextRuns(OutModel):
    """The next start times of a scheduled rule (its cron in its time zone)."""

    name: str
    cron: str
    timezone: str
    runs: list[dt.datetime]


# -- events -----------------------------------------------------------------------------------------

EventKey = dict[str, Any] | str | int | None


class EventCreate(BaseModel):
    """A change an application reports itself (for tables it cannot put capture triggers on)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(
        min_length=1,
        max_length=200,
        description="your id for this event: sending it again is answered with the stored event",
    )
    connection: Identifier = Field(description="the Airflow connection of the database it changed")
    table: Identifier
    operation: EventOperation
    key: EventKey = Field(
        default=None,
        description="the primary key: {column: value}, one value for a one-column key, or left out "
        "when `new` (or `old`) holds the key columns",
    )
    new: dict[str, Any] | None = Field(default=None, description="the row after (created, updated)")
    old: dict[str, Any] | None = Field(default=None, description="the row before (updated, deleted)")


class EventPublic(OutModel):
    """An event as stored in the connection's outbox."""

    id: str = Field(description="the outbox id (what asset events and `conf.event_ids` carry)")
    client_id: str | None = Field(description="the id it was pushed with (null: captured by a trigger)")
    connection: str
    table: str
    operation: EventOperation
    key: EventKey
    new: dict[str, Any] | None = None
    old: dict[str, Any] | None = None
    changed_fields: list[str] | None = None
    occurred_at: dt.datetime | None = None
    actor: str | None = Field(
        default=None,
        description="who made the change: the caller who pushed it, or the application's user a "
        "captured change's transaction named (`SET LOCAL automation.actor`; Postgres only)",
    )


# -- logs -------------------------------------------------------------------------------------------


class ActionResultPublic(OutModel):
    """One action of a run: its latest status, attempts, output and error."""

    action_id: str
    status: str
    attempts: int
    output: Any = None
    error: str | None = None
    updated_at: dt.datetime


class RunPublic(OutModel):
    """One automation run in a listing."""

    id: int
    rule_name: str
    dag_id: str
    run_id: str
    status: str
    trigger_type: str
    matched_count: int
    spec_hash: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    actions: list[ActionResultPublic]


class RunDetail(RunPublic):
    """One run with its trigger context and the condition trace ("why it matched")."""

    trigger_context: dict[str, Any]
    trace: Any = None


# -- memberships, me, health ------------------------------------------------------------------------


class MembershipPut(BaseModel):
    """The role to give (creates the membership when there is none)."""

    model_config = ConfigDict(extra="forbid")

    role: RoleName


class MembershipPublic(OutModel):
    """A user's role in an organization."""

    organization: str
    username: str
    role: RoleName
    created_at: dt.datetime
    updated_at: dt.datetime
    updated_by: str


class Me(OutModel):
    """Who the caller is here: their memberships, and whether they are a platform admin."""

    username: str
    platform_admin: bool
    memberships: list[MembershipPublic]


class StoreHealth(OutModel):
    """Whether the rule store answers and is migrated."""

    reachable: bool
    revision: str | None = None
    expected_revision: str
    error: str | None = None


class LoaderError(OutModel):
    """A stored spec that Airflow shows as a placeholder DAG, and why."""

    dag_id: str
    rule_name: str | None = None
    reason: str


class Health(OutModel):
    """``ok`` when the store is reachable and current and no rule of yours failed to render."""

    status: Literal["ok", "degraded"]
    store: StoreHealth
    loader_errors: list[LoaderError]
    loader_errors_checked: bool = Field(description="false when Airflow's metadata could not be read")
