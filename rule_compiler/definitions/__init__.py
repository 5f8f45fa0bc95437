"""Pydantic models of the v1 definition format (docs/definitions.md)."""

from rule_compiler.definitions.action_types import (
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
from rule_compiler.definitions.condition_template import (
    PARAMETER_TYPES,
    ConditionTemplateDefinition,
    ParameterSpec,
)
from rule_compiler.definitions.conditions import (
    OPERATOR_NAMES,
    AllGroup,
    AnyGroup,
    Condition,
    ConditionNode,
    FieldRef,
    NotGroup,
    ParamRef,
    UnexpandedTemplateError,
    UseTemplate,
)
from rule_compiler.definitions.event import Event
from rule_compiler.definitions.notification_template import (
    NotificationChannels,
    NotificationTemplateDefinition,
)
from rule_compiler.definitions.rule import SCHEMA_VERSION, RuleDefinition
from rule_compiler.definitions.trigger_types import (
    TRIGGER_TYPES,
    DataCheck,
    DataTrigger,
    EventTrigger,
    ManualTrigger,
    ScheduleTrigger,
    Target,
    Trigger,
)
from rule_compiler.definitions.workflow import NODE_TYPES, WorkflowDefinition, WorkflowNode

__all__ = [
    "ACTION_TYPES",
    "NODE_TYPES",
    "OPERATOR_NAMES",
    "PARAMETER_TYPES",
    "SCHEMA_VERSION",
    "TRIGGER_TYPES",
    "Action",
    "AllGroup",
    "AnyGroup",
    "CallWebhook",
    "Condition",
    "ConditionNode",
    "ConditionTemplateDefinition",
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
    "NotificationChannels",
    "NotificationTemplateDefinition",
    "ParamRef",
    "ParameterSpec",
    "RecordAction",
    "RuleDefinition",
    "ScheduleTrigger",
    "SendNotification",
    "Target",
    "Trigger",
    "TriggerWorkflow",
    "UnexpandedTemplateError",
    "UpdateRecord",
    "UseTemplate",
    "WorkflowDefinition",
    "WorkflowNode",
]
