"""Request and response models of ``/workflows``.

Bodies are the workflow format of ``docs/definitions.md`` (``kind: workflow``); a workflow's answers
have a rule's fields (its trigger type is its trigger node's), so the models extend the rule models.
"""

from __future__ import annotations

from typing import Literal

from rule_compiler.definitions.common import Slug
from rule_compiler.definitions.workflow import WorkflowDefinition
from rule_engine.api.schemas import RulePublic, RuleSummary, RuleWritten


class WorkflowCreate(WorkflowDefinition):
    """A workflow definition. ``organization`` may be left out: it is always the caller's."""

    kind: Literal["workflow"] = "workflow"
    organization: Slug | None = None  # type: ignore[assignment]


class WorkflowUpdate(WorkflowCreate):
    """The whole new definition (PUT). ``name``, when given, must be the one in the path."""

    name: Slug | None = None  # type: ignore[assignment]


class WorkflowSummary(RuleSummary):
    """A workflow in a listing (``trigger_type``: its trigger node's)."""


class WorkflowPublic(RulePublic):
    """A workflow: its definition as stored, hashes and version."""


class WorkflowWritten(RuleWritten):
    """A workflow just created or changed, with the problems that did not stop it being stored."""
