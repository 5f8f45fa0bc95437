"""``kind: rule``: a trigger, optional conditions and an ordered list of actions."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rule_compiler.definitions.action_types import Action
from rule_compiler.definitions.common import FailureAlerts, Slug, StrictModel, Title, is_none
from rule_compiler.definitions.conditions import ConditionNode
from rule_compiler.definitions.trigger_types import Trigger

SCHEMA_VERSION: Literal[1] = 1
MAX_ACTIONS = 50


class RuleDefinition(StrictModel):
    """A rule as its author wrote it, after structural validation."""

    schema_version: Literal[1] = SCHEMA_VERSION
    kind: Literal["rule"]
    name: Slug
    organization: Slug
    title: Title | None = Field(
        default=None, exclude_if=is_none, description="the DAG's name in the Airflow UI (default: the name)"
    )
    description: str = Field(default="", max_length=4_000)
    owner: str | None = Field(default=None, max_length=200)
    alerts: FailureAlerts | None = Field(
        default=None,
        exclude_if=is_none,
        description="failure-rate alerts to the owner (default: the deployment's)",
    )
    active: bool = True
    tags: list[Slug] = Field(default_factory=list, max_length=20)
    trigger: Trigger
    conditions: ConditionNode | None = None
    actions: list[Action] = Field(min_length=1, max_length=MAX_ACTIONS)
