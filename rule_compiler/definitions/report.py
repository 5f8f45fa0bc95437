"""``kind: report``: scheduled read-only queries rendered to files and charts, then delivered.

A report runs on its cron schedule over the data interval since the previous run (a weekly report
reads last week), renders each query's rows to the ``formats`` it names, draws its ``charts``, and
delivers the files to each destination. In alert mode it is sent only when its ``alert`` check holds,
and not again within the grace period.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, Discriminator, Field, Tag, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from rule_compiler.definitions.common import ActionId, Identifier, Slug, StrictModel, Title, is_none, tag_of
from rule_compiler.definitions.trigger_types import Cron, TimeZone

ReportFormat = Literal["csv", "xlsx", "html", "pdf"]
REPORT_FORMATS: tuple[str, ...] = get_args(ReportFormat)
ChartType = Literal["bar", "line", "pie", "table"]
ReportParameterType = Literal["string", "number", "integer", "boolean", "date"]
Scalar = str | int | float | bool
#: A file under ``include/sql/reports/`` (SQL) or ``include/templates/reports/`` (HTML): plain names
#: and folders, no ``..`` (each part starts with a letter, digit or underscore).
_FILE_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_-]*(/[A-Za-z0-9_][A-Za-z0-9_-]*)*\.(sql|html|j2)$"
RelativeFile = Annotated[str, Field(pattern=_FILE_PATTERN, max_length=200)]
DeliveryType = Literal["email", "slack", "webhook", "in_app", "storage"]
DELIVERY_TYPES: tuple[str, ...] = get_args(DeliveryType)
#: What a report's HTML template (and a delivery's subject and storage path) may read.
REPORT_TEMPLATE_VARIABLES = ("report", "run", "queries", "charts", "parameters", "files")
MAX_ROW_LIMIT = 5_000_000
#: How a chart fills its x axis: ``daily``, every day of the run's interval (0 where the query has no row).
ChartFill = Literal["daily"]
#: A figure of a query's rows for the report's cards: ``count`` (rows), or ``count``, ``sum``, ``avg``,
#: ``min`` or ``max`` of one column, such as ``sum(revenue)``.
SUMMARY_FUNCTIONS = ("count", "sum", "avg", "min", "max")
SUMMARY_PATTERN = r"^\s*(count|(count|sum|avg|min|max)\(\s*[A-Za-z_][A-Za-z0-9_]*\s*\))\s*$"
_SUMMARY_RE = re.compile(SUMMARY_PATTERN)
MAX_SUMMARY_FIGURES = 8


def _check_figure(value: str) -> str:
    if not _SUMMARY_RE.match(value):
        raise PydanticCustomError(
            "summary_figure",
            "'{value}' is not a figure: write count (the rows), or count(column), sum(column), "
            "avg(column), min(column) or max(column) of a column the query returns",
            {"value": value[:100]},
        )
    return "".join(value.split())


SummaryFigure = Annotated[
    str,
    AfterValidator(_check_figure),
    WithJsonSchema({"type": "string", "pattern": SUMMARY_PATTERN, "maxLength": 100}),
]


class ReportSchedule(StrictModel):
    """When the report runs: a cron in a time zone; each run covers the interval since the last."""

    cron: Cron
    timezone: TimeZone = "UTC"


class ReportParameter(StrictModel):
    """A typed value the queries bind as ``:name`` (the default unless a run overrides it)."""

    name: Identifier
    type: ReportParameterType
    default: Scalar | None = None
    description: str = Field(default="", max_length=1_000)


class ReportQuery(StrictModel):
    """One read-only query: inline ``sql`` or an ``sql_file`` under ``include/sql/reports/``."""

    id: ActionId
    connection: Identifier
    sql: str | None = Field(default=None, min_length=1, max_length=50_000)
    sql_file: RelativeFile | None = None
    row_limit: int = Field(default=100_000, ge=1, le=MAX_ROW_LIMIT)
    timeout: int = Field(default=60, ge=1, le=3_600, description="statement timeout, seconds")
    title: Title | None = Field(
        default=None,
        exclude_if=is_none,
        description="the heading of the query's table and figures (default: its id, which stays its "
        "file and sheet name)",
    )
    summary: dict[Identifier, SummaryFigure] | None = Field(
        default=None,
        exclude_if=is_none,
        min_length=1,
        max_length=MAX_SUMMARY_FIGURES,
        description="figures shown on the report's cards, by name, in this order: count, or "
        "count/sum/avg/min/max(column) of the query's rows, e.g. {orders: sum(orders)}",
    )

    @model_validator(mode="after")
    def _one_source(self) -> ReportQuery:
        if (self.sql is None) == (self.sql_file is None):
            raise ValueError("give exactly one of `sql` (inline) or `sql_file` (include/sql/reports/...)")
        return self


class ReportChart(StrictModel):
    """A chart drawn from one query's columns: ``x`` labels, ``y`` values (a table lists ``y``)."""

    id: ActionId
    query: ActionId
    type: ChartType
    x: Identifier | None = None
    y: list[Identifier] = Field(default_factory=list, max_length=8)
    title: str = Field(default="", max_length=200)
    fill: ChartFill | None = Field(
        default=None,
        exclude_if=is_none,
        description="daily: `x` holds dates, and every day of the run's interval (in the report's time "
        "zone) is drawn, 0 where the query has no row",
    )

    @model_validator(mode="after")
    def _axes(self) -> ReportChart:
        if self.type != "table" and (self.x is None or not self.y):
            raise ValueError(f"a {self.type} chart needs `x` (labels) and `y` (one or more value columns)")
        if self.type == "pie" and len(self.y) != 1:
            raise ValueError("a pie chart takes exactly one `y` column")
        if self.fill is not None and self.type not in ("bar", "line"):
            raise ValueError(f"`fill` draws missing days on a bar or line chart, not a {self.type} chart")
        return self


class EmailDelivery(StrictModel):
    """Mail with the files attached and the HTML report inline."""

    type: Literal["email"]
    to: list[str] = Field(min_length=1, max_length=50)
    subject: str | None = Field(default=None, max_length=1_000)
    attach: list[ReportFormat] | None = Field(default=None, description="default: every format")


class SlackDelivery(StrictModel):
    """A message with a summary and links, through an incoming-webhook connection."""

    type: Literal["slack"]
    connection: Identifier


class WebhookDelivery(StrictModel):
    """A signed JSON notice (Standard Webhooks) naming the files, through a webhook connection."""

    type: Literal["webhook"]
    connection: Identifier
    path: str = Field(default="/", max_length=500)


class InAppDelivery(StrictModel):
    """A notice in the in-app inbox of each user."""

    type: Literal["in_app"]
    to: list[str] = Field(min_length=1, max_length=200)


class StorageDelivery(StrictModel):
    """The files written under a folder of an object store (``ObjectStoragePath``): the admin's
    default folder (``AUTOMATION_REPORTS_STORAGE``), or ``location``, which must lie under one of the
    ``locations`` of the catalog's storage connection named in ``connection``."""

    type: Literal["storage"]
    location: str | None = Field(default=None, max_length=500, description="e.g. s3://bucket/reports")
    connection: Identifier | None = Field(
        default=None, description="a storage connection of the catalog (needed with a location)"
    )
    path: str = Field(
        default="{{ report.name }}/{{ run.interval_end }}",
        max_length=500,
        description="folder under the location (sandboxed template)",
    )


def _delivery_kind(value: object) -> str | None:
    return tag_of(value, "type", "#")


Delivery = Annotated[
    (
        Annotated[EmailDelivery, Tag("#email")]
        | Annotated[SlackDelivery, Tag("#slack")]
        | Annotated[WebhookDelivery, Tag("#webhook")]
        | Annotated[InAppDelivery, Tag("#in_app")]
        | Annotated[StorageDelivery, Tag("#storage")]
    ),
    Discriminator(_delivery_kind),
]


class AlertCheck(StrictModel):
    """What must hold for an alert report to be sent, on the first row of ``query``."""

    query: ActionId
    operator: Literal["gt", "gte", "lt", "lte", "equals", "not_equals", "not_empty", "changed"]
    column: Identifier | None = Field(default=None, description="default: the first column")
    value: Scalar | None = None


class ReportAlert(StrictModel):
    """Alert mode: deliver only when ``check`` holds; the same alert not again within ``grace_period``."""

    check: AlertCheck
    grace_period: str = Field(default="0m", max_length=20, description="a duration such as 1d or 6h")


class ReportDefinition(StrictModel):
    """A scheduled report as its author wrote it."""

    schema_version: Literal[1] = 1
    kind: Literal["report"]
    name: Slug
    organization: Slug
    title: Title | None = Field(
        default=None,
        exclude_if=is_none,
        description="the DAG's name in the Airflow UI and the heading of the files (default: the name)",
    )
    description: str = Field(default="", max_length=4_000)
    owner: str | None = Field(default=None, max_length=200)
    active: bool = True
    tags: list[Slug] = Field(default_factory=list, max_length=20)
    schedule: ReportSchedule
    parameters: list[ReportParameter] = Field(default_factory=list, max_length=20)
    queries: list[ReportQuery] = Field(min_length=1, max_length=10)
    formats: list[ReportFormat] = Field(min_length=1, max_length=4)
    charts: list[ReportChart] = Field(default_factory=list, max_length=10)
    template: RelativeFile | None = Field(
        default=None, description="an HTML template under include/templates/reports/ (default: ours)"
    )
    deliver: list[Delivery] = Field(min_length=1, max_length=20)
    skip_if_empty: bool = False
    alert: ReportAlert | None = None
