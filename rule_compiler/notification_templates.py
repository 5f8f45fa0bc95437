"""Notification templates: check a ``kind: notification_template`` and resolve ``template: name``.

``expand_notifications(rule, templates)`` replaces each ``send_notification`` that names a template
with the template's text for the action's channel (``channels.<channel>``, else ``default``): the
expanded action has ``subject`` (the action's own ``subject`` when it gives one, else the template's,
``""`` when neither has one) and ``body`` (Slack's ``text``), and no ``template``. The rule is then
checked like one written inline; :func:`relocate` moves problems found in a resolved text to
``actions[i].template``, naming the template and the path inside it. Problems with the reference
itself (an unknown template, no content for the channel) are reported at ``actions[i].template``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rule_compiler.canonical import content_hash
from rule_compiler.definitions import NotificationTemplateDefinition, RuleDefinition, SendNotification
from rule_compiler.errors import Issue
from rule_compiler.templating import TemplateCheckError, check_template

NOTIFICATION_TEMPLATE_KIND = "notification_template"

NotificationTemplates = Mapping[str, NotificationTemplateDefinition]
#: Paths of resolved texts in the expanded rule (``actions[0].body``) → (template, path in it).
Origins = dict[str, tuple[str, str]]

__all__ = [
    "NOTIFICATION_TEMPLATE_KIND",
    "Content",
    "Expansion",
    "NotificationTemplates",
    "TemplateRef",
    "channel_content",
    "check_notification_template",
    "expand_notifications",
    "raw_notification_uses",
    "relocate",
    "template_hash",
    "used_notification_templates",
]


@dataclass(frozen=True)
class TemplateRef:
    """Which template (and which version of it, by content hash) an action's text came from."""

    name: str
    hash: str

    def as_params(self) -> dict[str, str]:
        return {"name": self.name, "hash": self.hash}


@dataclass(frozen=True)
class Content:
    """A template's text for one channel, with the paths of its parts inside the template."""

    subject: str | None
    body: str
    subject_path: str | None
    body_path: str


@dataclass(frozen=True)
class Expansion:
    """:func:`expand_notifications`' result: the expanded rule, the problems, and where texts came from."""

    rule: RuleDefinition
    issues: list[Issue] = field(default_factory=list)
    origins: Origins = field(default_factory=dict)
    refs: dict[str, TemplateRef] = field(default_factory=dict)


def template_hash(template: NotificationTemplateDefinition) -> str:
    """The template's content hash: the spec hash it is stored with, and its version in compiled specs."""
    return content_hash(template.model_dump(mode="json", by_alias=True))


def _texts(template: NotificationTemplateDefinition) -> list[tuple[str, str]]:
    """Every text of a template with its JSON path, in document order."""
    data = template.model_dump(mode="json", include={"channels", "default"}, exclude_none=True)
    found: list[tuple[str, str]] = []
    for channel, content in data.get("channels", {}).items():
        found += [(f"channels.{channel}.{key}", text) for key, text in content.items()]
    found += [(f"default.{key}", text) for key, text in data.get("default", {}).items()]
    return found


def check_notification_template(template: NotificationTemplateDefinition) -> list[Issue]:
    """Every text must be a template our sandbox renders safely (record fields are checked where used)."""
    issues = []
    for path, text in _texts(template):
        try:
            check_template(text)
        except TemplateCheckError as exc:
            issues.append(Issue(path, str(exc), "template"))
    return issues


def channel_content(template: NotificationTemplateDefinition, channel: str) -> Content | None:
    """The template's text for ``channel``: its own entry, else ``default``, else None."""
    own = getattr(template.channels, channel)
    if own is not None:
        prefix = f"channels.{channel}"
        if channel == "slack":
            return Content(None, own.text, None, f"{prefix}.text")
        subject_path = f"{prefix}.subject" if own.subject is not None else None
        return Content(own.subject, own.body, subject_path, f"{prefix}.body")
    default = template.default
    if default is None:
        return None
    if channel == "slack":  # Slack messages have no subject
        return Content(None, default.body, None, "default.body")
    return Content(default.subject, default.body, "default.subject", "default.body")


def expand_notifications(rule: RuleDefinition, templates: NotificationTemplates) -> Expansion:
    """The rule with every ``template:`` of its notifications resolved, the problems, origins and refs."""
    issues: list[Issue] = []
    origins: Origins = {}
    refs: dict[str, TemplateRef] = {}
    actions = list(rule.actions)
    for index, action in enumerate(rule.actions):
        if not isinstance(action, SendNotification) or action.template is None or action.body is not None:
            continue  # `template` with an inline `body` is reported by the notification check
        path = f"actions[{index}]"
        template = templates.get(action.template)
        if template is None:
            known = ", ".join(sorted(templates)) or "none"
            issues.append(
                Issue(
                    f"{path}.template",
                    f"unknown notification template '{action.template}' (notification templates of "
                    f"organization '{rule.organization}': {known}); apply it first "
                    "(kind: notification_template) or pass --templates DIR",
                    "unknown_template",
                )
            )
            continue
        if template.organization != rule.organization:
            issues.append(
                Issue(
                    f"{path}.template",
                    f"notification template '{template.name}' belongs to organization "
                    f"'{template.organization}'; a rule of '{rule.organization}' may use only its own",
                    "unknown_template",
                )
            )
            continue
        content = channel_content(template, action.channel)
        if content is None:
            listed = ", ".join(template.channels.listed())
            issues.append(
                Issue(
                    f"{path}.template",
                    f"notification template '{template.name}' has no content for channel "
                    f"'{action.channel}' (it has: {listed}; no `default`); add `channels.{action.channel}` "
                    "or `default` to the template, or use one of its channels",
                    "template_channel",
                )
            )
            continue
        subject = action.subject
        if subject is None:
            subject = content.subject or ""
            if content.subject_path is not None:
                origins[f"{path}.subject"] = (template.name, content.subject_path)
        origins[f"{path}.body"] = (template.name, content.body_path)
        refs[action.id] = TemplateRef(template.name, template_hash(template))
        actions[index] = action.model_copy(
            update={"template": None, "subject": subject, "body": content.body}
        )
    expanded = rule.model_copy(update={"actions": actions}) if refs else rule
    return Expansion(expanded, issues, origins, refs)


def relocate(issues: list[Issue], origins: Origins) -> list[Issue]:
    """Problems inside a resolved text, moved to the action's ``template`` with the path in the template."""
    out = []
    for issue in issues:
        origin = next(
            (p for p in origins if issue.path == p or issue.path.startswith((f"{p}.", f"{p}["))), None
        )
        if origin is None:
            out.append(issue)
            continue
        name, inner = origins[origin]
        action_path = origin.rsplit(".", 1)[0]
        message = f"in notification template '{name}': {issue.message} (at {inner})"
        out.append(Issue(f"{action_path}.template", message, issue.code))
    return out


def used_notification_templates(rule: RuleDefinition) -> set[str]:
    """Names of the notification templates a rule's actions name."""
    return {a.template for a in rule.actions if isinstance(a, SendNotification) and a.template is not None}


def raw_notification_uses(data: Mapping[str, Any]) -> set[str]:
    """Template names a raw rule document's notifications name (before any parsing)."""
    actions = data.get("actions")
    if not isinstance(actions, list):
        return set()
    return {
        a["template"]
        for a in actions
        if isinstance(a, dict) and a.get("type") == "send_notification" and isinstance(a.get("template"), str)
    }
