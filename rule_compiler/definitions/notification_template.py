"""``kind: notification_template``: a message written once per channel, used by ``template: name``.

Each channel has the fields its messages have: ``email`` and ``in_app`` a ``subject`` and a ``body``,
``slack`` a ``text``, ``webhook`` a ``body`` and optionally a ``subject``. ``default`` (a ``subject``
and a ``body``) serves the channels that are not listed. Every text is a sandboxed Jinja template
(``{{ record.total }}``), checked when the template is registered.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from rule_compiler.definitions.action_types import NOTIFICATION_CHANNELS
from rule_compiler.definitions.common import Slug, StrictModel, Title, is_none

MAX_SUBJECT_LENGTH = 1_000
MAX_BODY_LENGTH = 100_000

Subject = Annotated[str, Field(min_length=1, max_length=MAX_SUBJECT_LENGTH)]
Body = Annotated[str, Field(min_length=1, max_length=MAX_BODY_LENGTH)]


class SubjectAndBody(StrictModel):
    """A message with a subject line (email, in-app, and ``default``)."""

    subject: Subject
    body: Body


class SlackContent(StrictModel):
    """A Slack message: its ``text`` only (Slack messages have no subject)."""

    text: Body


class WebhookContent(StrictModel):
    """A webhook notification's ``body`` and, when the receiver shows one, a ``subject``."""

    subject: Subject | None = None
    body: Body


class NotificationChannels(StrictModel):
    """The content for each channel the template supports (at least one)."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    email: SubjectAndBody | None = Field(default=None, description="an email: `subject` and `body`")
    slack: SlackContent | None = Field(default=None, description="a Slack message: `text`")
    webhook: WebhookContent | None = Field(default=None, description="`body` and an optional `subject`")
    in_app: SubjectAndBody | None = Field(default=None, description="an in-app message: `subject` and `body`")

    @model_validator(mode="after")
    def _at_least_one(self) -> NotificationChannels:
        if not self.listed():
            raise ValueError("list at least one channel: email, slack, webhook or in_app")
        return self

    def listed(self) -> list[str]:
        """The channels with content, in a fixed order."""
        return [name for name in NOTIFICATION_CHANNELS if getattr(self, name) is not None]


class NotificationTemplateDefinition(StrictModel):
    """A notification template as its author wrote it."""

    schema_version: Literal[1] = 1
    kind: Literal["notification_template"]
    name: Slug
    organization: Slug
    title: Title | None = Field(
        default=None, exclude_if=is_none, description="a human-readable name, stored with the template"
    )
    description: str = Field(default="", max_length=4_000)
    channels: NotificationChannels
    default: SubjectAndBody | None = Field(
        default=None, description="subject and body for channels that `channels` does not list"
    )
