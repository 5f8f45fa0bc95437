"""Request and response models of ``/reports``.

Bodies are the definition format of ``docs/definitions.md`` (``kind: report``), checked by the CLI's
validation (read-only SQL, columns the charts name, recipients); the models document them. Spec,
versions, diffs, next runs and validation answers share the rule models of :mod:`schemas`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rule_compiler.definitions.common import Slug
from rule_compiler.definitions.report import ReportDefinition, Scalar
from rule_engine.api.schemas import IssueOut, OutModel
from rule_engine.api.schemas_ops import MAX_TRIGGER_NOTE
from rule_engine.api.schemas_templates import patch_schema

REPORT_PATCH_SCHEMA = patch_schema("report")
#: The statuses of ``rule_compiler.store.tables.REPORT_RUN_STATUSES`` (a test checks they agree).
ReportRunStatus = Literal["running", "success", "partial", "skipped-empty", "not-triggered", "error"]


# -- request bodies ---------------------------------------------------------------------------------


class ReportCreate(ReportDefinition):
    """A report definition. ``organization`` may be left out: it is always the caller's."""

    kind: Literal["report"] = "report"
    organization: Slug | None = None  # type: ignore[assignment]


class ReportUpdate(ReportCreate):
    """The whole new definition (PUT). ``name``, when given, must be the one in the path."""

    name: Slug | None = None  # type: ignore[assignment]


class ReportTriggerRequest(BaseModel):
    """What to start a report run with (every field optional)."""

    model_config = ConfigDict(extra="forbid")

    payload: dict[str, Scalar | None] | None = Field(
        default=None,
        description='parameter overrides, the run\'s `conf` (`{"min_total": 500}`): each key a '
        "parameter the report declares, each value of its type; the others keep their defaults",
    )
    note: str | None = Field(
        default=None, max_length=MAX_TRIGGER_NOTE, description="a note shown on the run in Airflow"
    )


# -- responses --------------------------------------------------------------------------------------


class ReportSummary(OutModel):
    """A report in a listing."""

    name: str
    organization: str
    dag_id: str
    active: bool
    description: str
    cron: str
    timezone: str
    formats: list[str]
    version: int
    etag: str
    updated_at: dt.datetime


class ReportPublic(ReportSummary):
    """A report: its definition as stored, hashes and version."""

    definition: dict[str, Any] = Field(description="the definition as stored (docs/definitions.md)")
    source_hash: str
    spec_hash: str
    compiler_version: str
    updated_by: str
    created_at: dt.datetime


class ReportWritten(ReportPublic):
    """A report just created or changed, with the problems that did not stop it being stored."""

    warnings: list[IssueOut] = Field(default_factory=list)


class ReportRunStarted(OutModel):
    """The report run Airflow queued."""

    report: str
    version: int = Field(description="the report version the run executes")
    dag_id: str
    run_id: str
    state: str
    logical_date: dt.datetime | None = Field(description="null: a manual run has no logical date")
    run_after: dt.datetime
    conf: dict[str, Any] = Field(description="the parameter overrides the run binds")
    triggered_by: str
    url: str = Field(description="the run in the Airflow UI")


class QueryRows(OutModel):
    """What one query returned."""

    rows: int
    truncated: bool = Field(default=False, description="the query's row_limit cut it short")


class ReportFile(OutModel):
    """One rendered file."""

    file: str
    bytes: int
    seconds: float | None = None


class ReportDeliveryPublic(OutModel):
    """One delivery of the run's interval (deliveries belong to the interval, not to one run)."""

    index: int
    type: str
    target: str
    status: str
    attempts: int
    run_id: str = Field(description="the run that made the latest attempt")
    error: str | None = None
    detail: dict[str, Any] | None = None
    updated_at: dt.datetime
    sent_at: dt.datetime | None = None


class ReportRunPublic(OutModel):
    """One run of a report from the execution log: status, rows per query, files, deliveries."""

    id: int
    dag_id: str
    run_id: str
    spec_hash: str
    status: ReportRunStatus
    interval_start: dt.datetime
    interval_end: dt.datetime
    logical_date: dt.datetime | None
    parameters: dict[str, Any]
    queries: dict[str, QueryRows]
    files: dict[str, ReportFile] = Field(description="by format")
    steps: dict[str, Any] = Field(description="seconds per step (run_queries, render_<format>)")
    alert: dict[str, Any] | None = None
    error: str | None = None
    started_at: dt.datetime
    finished_at: dt.datetime | None
    deliveries: list[ReportDeliveryPublic]
