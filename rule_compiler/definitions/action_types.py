"""Actions: the closed registry of what a rule may do. New kinds are added here, never named by path."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import Discriminator, Field, JsonValue, Tag

from rule_compiler.definitions.common import ActionId, Identifier, ReportArguments, Slug, StrictModel, tag_of
from rule_compiler.definitions.conditions import ConditionNode

#: The channels a notification goes out on (one table: the models, the store's check, the CLI).
NotificationChannel = Literal["email", "slack", "webhook", "in_app"]
NOTIFICATION_CHANNELS: tuple[str, ...] = get_args(NotificationChannel)

MAX_RETRIES = 10
MAX_TIMEOUT_SECONDS = 6 * 3_600
MAX_PAYLOAD_KEYS = 50


class ActionBase(StrictModel):
    """Fields every action has."""

    id: ActionId
    depends_on: list[ActionId] = Field(default_factory=list, max_length=50)
    retries: int = Field(default=2, ge=0, le=MAX_RETRIES)
    timeout: int = Field(default=300, ge=1, le=MAX_TIMEOUT_SECONDS, description="seconds")
    on_failure: Literal["fail", "continue"] = "fail"


class CreateRecord(ActionBase):
    """Insert a row (or upsert on ``upsert_on``) into a catalog-allowed table."""

    type: Literal["create_record"]
    connection: Identifier
    table: Identifier
    values: dict[str, JsonValue] = Field(min_length=1, max_length=200)
    upsert_on: list[Identifier] | None = Field(default=None, min_length=1)


class UpdateRecord(ActionBase):
    """Set ``values`` on the triggering row, or on the rows ``where`` selects."""

    type: Literal["update_record"]
    connection: Identifier
    table: Identifier
    values: dict[str, JsonValue] = Field(min_length=1, max_length=200)
    where: ConditionNode | None = None


class DeleteRecord(ActionBase):
    """Delete the triggering row (or the rows ``where`` selects); ``soft`` sets the catalog's flag column."""

    type: Literal["delete_record"]
    connection: Identifier
    table: Identifier
    where: ConditionNode | None = None
    soft: bool = False


class SendNotification(ActionBase):
    """Send a message on a channel: a stored ``template`` or an inline ``body`` (not both).

    With a template, the message is the template's text for ``channel`` (or its ``default``); an
    inline ``subject`` overrides the template's subject.
    """

    type: Literal["send_notification"]
    channel: NotificationChannel
    to: list[str] = Field(default_factory=list, max_length=100)
    connection: Identifier | None = None
    template: Slug | None = None
    subject: str | None = Field(default=None, max_length=1_000)
    body: str | None = Field(default=None, max_length=100_000)


class CallWebhook(ActionBase):
    """Call an HTTP endpoint: a connection (base URL and signing secret) plus a path, or a plain URL."""

    type: Literal["call_webhook"]
    connection: Identifier | None = None
    url: str | None = Field(default=None, max_length=2_048)
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    path: str | None = Field(default=None, max_length=2_048)
    headers: dict[str, str] = Field(default_factory=dict, max_length=50)
    body: JsonValue = None


class TriggerWorkflow(ActionBase):
    """Start a stored workflow of the organization (its trigger must be ``manual``) once per run or
    event, handing it the matched items' keys and ``payload`` (rendered in our sandbox)."""

    type: Literal["trigger_workflow"]
    workflow: Slug
    payload: dict[Identifier, JsonValue] = Field(default_factory=dict, max_length=MAX_PAYLOAD_KEYS)


class GenerateReport(ActionBase):
    """Run a stored report of the organization now, once per run or event, over the last complete
    interval of its own schedule; ``parameters`` override the report's declared parameters."""

    type: Literal["generate_report"]
    report: Slug
    parameters: ReportArguments = Field(default_factory=dict)


ACTION_TYPES: tuple[str, ...] = (
    "create_record", "update_record", "delete_record", "send_notification",
    "call_webhook", "trigger_workflow", "generate_report",
)  # fmt: skip


def _action_kind(value: Any) -> str | None:
    return tag_of(value, "type", "#")


Action = Annotated[
    (
        Annotated[CreateRecord, Tag("#create_record")]
        | Annotated[UpdateRecord, Tag("#update_record")]
        | Annotated[DeleteRecord, Tag("#delete_record")]
        | Annotated[SendNotification, Tag("#send_notification")]
        | Annotated[CallWebhook, Tag("#call_webhook")]
        | Annotated[TriggerWorkflow, Tag("#trigger_workflow")]
        | Annotated[GenerateReport, Tag("#generate_report")]
    ),
    Discriminator(_action_kind),
]
RecordAction = CreateRecord | UpdateRecord | DeleteRecord
