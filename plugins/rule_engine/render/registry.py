"""The closed registry: task kind → operator class. Kinds are never looked up by import path from a
spec: the table below is ours, and a class is imported only when a DAG uses its kind, so a task that
starts parses only what its DAG needs."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rule_engine.operators.base import RuleTaskOperator

#: kind → (module under ``rule_engine.operators``, class name)
OPERATOR_PATHS: dict[str, tuple[str, str]] = {
    "data_sensor": ("data_sensor", "DataTriggerSensor"),
    "evaluate_conditions": ("evaluate", "EvaluateConditionsOperator"),
    "create_record": ("records", "RecordActionOperator"),
    "update_record": ("records", "RecordActionOperator"),
    "delete_record": ("records", "RecordActionOperator"),
    "send_notification": ("notify", "NotificationOperator"),
    "call_webhook": ("webhooks", "WebhookOperator"),
    "trigger_workflow": ("trigger_workflow", "TriggerWorkflowOperator"),
    "generate_report": ("generate_report", "GenerateReportOperator"),
    "record_outcome": ("outcome", "RecordOutcomeOperator"),
    "report_queries": ("reports", "ReportQueriesOperator"),
    "report_render": ("reports", "ReportRenderOperator"),
    "report_deliver": ("reports", "ReportDeliverOperator"),
    "report_outcome": ("reports", "ReportOutcomeOperator"),
    "workflow_start": ("evaluate", "EvaluateConditionsOperator"),
    "workflow_condition": ("workflow_nodes", "WorkflowConditionOperator"),
    "workflow_join": ("workflow_nodes", "WorkflowJoinOperator"),
    "workflow_report": ("generate_report", "WorkflowReportOperator"),
    "workflow_delay": ("workflow_waits", "WorkflowDelayOperator"),
    "workflow_approval": ("workflow_waits", "WorkflowApprovalOperator"),
}


def operator_class(kind: str) -> type[RuleTaskOperator]:
    """The operator class of a task kind; ``KeyError`` for a kind the registry does not know."""
    module, name = OPERATOR_PATHS[kind]
    operator: type[RuleTaskOperator] = getattr(
        importlib.import_module(f"rule_engine.operators.{module}"), name
    )
    return operator


def operator_modules() -> list[str]:
    """Every operator module (what a scheduler preloads before it forks task processes)."""
    return sorted({f"rule_engine.operators.{module}" for module, _ in OPERATOR_PATHS.values()})
