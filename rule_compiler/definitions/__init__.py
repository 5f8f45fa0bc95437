"""Pydantic models of the v1 definition format (DESIGN §4)."""

from rule_compiler.definitions.actions import (
    ACTION_TYPES,
    Action,
    CallWebhook,
    CreateRecord,
    DeleteRecord,
    GenerateReport,
    RecordAction,
    SendNotification,
    TriggerWorkflow,
    UpdateRecord,
)
from rule_compiler.definitions.conditions import (
    OPERATOR_NAMES,
    AllGroup,
    AnyGroup,
    Condition,
    ConditionNode,
    FieldRef,
    NotGroup,
)
from rule_compiler.definitions.event import Event
from rule_compiler.definitions.rule import SCHEMA_VERSION, RuleDefinition
from rule_compiler.definitions.triggers import (
    TRIGGER_TYPES,
    DataCheck,
    DataTrigger,
    EventTrigger,
    ManualTrigger,
    ScheduleTrigger,
    Target,
    Trigger,
)

__all__ = [
    "ACTION_TYPES",
    "OPERATOR_NAMES",
    "SCHEMA_VERSION",
    "TRIGGER_TYPES",
    "Action",
    "AllGroup",
    "AnyGroup",
    "CallWebhook",
    "Condition",
    "ConditionNode",
    "CreateRecord",
    "DataCheck",
    "DataTrigger",
    "DeleteRecord",
    "Event",
    "EventTrigger",
    "FieldRef",
    "GenerateReport",
    "ManualTrigger",
    "NotGroup",
    "RecordAction",
    "RuleDefinition",
    "ScheduleTrigger",
    "SendNotification",
    "Target",
    "Trigger",
    "TriggerWorkflow",
    "UpdateRecord",
]
