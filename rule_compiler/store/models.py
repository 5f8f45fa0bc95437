"""What the rule store returns: small frozen dataclasses, no ORM objects and no pydantic."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

ApplyStatus = Literal["created", "updated", "unchanged"]
AuditAction = Literal["create", "update", "activate", "deactivate", "delete", "catalog"]
RunStatus = Literal["running", "no_match", "success", "failed", "partial"]
ApprovalStatus = Literal["waiting", "approved", "rejected", "timed_out", "cancelled"]
ApprovalVia = Literal["rest", "airflow", "timeout", "cancel"]
ActionStatus = Literal["success", "failed", "skipped", "running", "retrying"]


@dataclass(frozen=True, slots=True)
class DefinitionWrite:
    """One version of a definition to store: what every store write takes (spelled here only).

    Built from a compiled definition by :meth:`rule_compiler.registration.CompiledDefinition.write`.
    ``restored_from``: the version this one restores (recorded in the audit row), or None.
    ``expanded``: a definition written with ``use`` as its template expands it (what its listing
    fields, such as the trigger type, are read from), or None.
    """

    organization: str
    kind: str
    name: str
    dag_id: str
    source: dict[str, Any]
    source_hash: str
    spec_json: str
    spec_hash: str
    active: bool
    actor: str
    compiler_version: str
    restored_from: int | None = None
    expanded: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        """``rule acme/flag-big-orders``: the definition as messages name it."""
        return f"{self.kind} {self.organization}/{self.name}"


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """The outcome of :meth:`RuleStore.apply`: ``unchanged`` means nothing was written."""

    status: ApplyStatus
    version: int
    dag_id: str


@dataclass(frozen=True, slots=True)
class StoredDefinition:
    """One version of a definition (the current one unless asked otherwise) and its compiled spec."""

    organization: str
    kind: str
    name: str
    dag_id: str
    active: bool
    version: int
    current_version: int
    source: dict[str, Any]
    source_hash: str
    spec_json: str
    spec_hash: str
    compiler_version: str
    actor: str
    created_at: dt.datetime
    updated_at: dt.datetime
    #: The current version's trigger type, read from the expanded definition (None: the kind has none).
    trigger_type: str | None = None


@dataclass(frozen=True, slots=True)
class DefinitionSummary:
    """A definition in a listing, with the hashes of its current version."""

    organization: str
    kind: str
    name: str
    dag_id: str
    active: bool
    current_version: int
    source_hash: str
    spec_hash: str
    created_at: dt.datetime
    updated_at: dt.datetime
    deleted_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One stored version of a definition."""

    version: int
    source_hash: str
    spec_hash: str
    compiler_version: str
    actor: str
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class CatalogVersion:
    """One stored version of an organization's catalog (who stored it, when, its content hash)."""

    organization: str
    version: int
    catalog_hash: str
    actor: str
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class SpecRow:
    """A compiled spec the DAG loader renders: exactly what it needs, nothing more."""

    dag_id: str
    spec_json: str
    spec_hash: str
    active: bool
    #: the organization's own Airflow pool, once a platform admin provisioned it (else Airflow's default)
    pool: str | None = None


def pool_name(organization: str) -> str:
    """The Airflow pool an organization's tasks run in (``rule_compiler.store.org_limits``)."""
    return f"rule_engine__{organization}"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One row of the append-only audit log."""

    id: int
    organization: str
    actor: str
    action: AuditAction
    kind: str
    name: str
    version: int | None
    hash_before: str | None
    hash_after: str | None
    detail: dict[str, Any]
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class ActionResult:
    """The latest state of one action of a run."""

    action_id: str
    status: ActionStatus
    attempts: int
    output: Any
    error: str | None
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class RunLog:
    """One automation run: its trigger, the evaluation trace, and each action's result."""

    id: int
    organization: str
    rule_name: str
    dag_id: str
    run_id: str
    spec_hash: str
    trigger_type: str
    trigger_context: dict[str, Any]
    status: RunStatus
    matched_count: int
    trace: Any
    started_at: dt.datetime
    finished_at: dt.datetime | None
    actions: tuple[ActionResult, ...]
    cancelled_at: dt.datetime | None = None
    cancelled_by: str | None = None


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """What an approval node records when it starts to wait (``subject``/``body`` as rendered)."""

    organization: str
    workflow: str
    dag_id: str
    run_id: str
    node_id: str
    run_pk: int | None
    assignees: tuple[str, ...]
    subject: str
    body: str | None
    items: tuple[str, ...]
    item_count: int
    on_timeout: str
    deadline: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Approval:
    """One approval of a waiting workflow's run: what it asks whom, and how it was answered."""

    id: int
    organization: str
    workflow: str
    dag_id: str
    run_id: str
    node_id: str
    run_pk: int | None
    assignees: tuple[str, ...]
    subject: str
    body: str | None
    items: tuple[str, ...]
    item_count: int
    status: ApprovalStatus
    on_timeout: str
    deadline: dt.datetime | None
    answered_by: str | None
    answered_via: ApprovalVia | None
    comment: str | None
    created_at: dt.datetime
    answered_at: dt.datetime | None
