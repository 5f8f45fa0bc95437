"""The closed registry: task kind → operator class. Kinds are never looked up by import path."""

from __future__ import annotations

from rule_engine.operators.actions import NotYetSupportedOperator
from rule_engine.operators.base import RuleTaskOperator
from rule_engine.operators.data_sensor import DataTriggerSensor
from rule_engine.operators.evaluate import EvaluateConditionsOperator
from rule_engine.operators.notify import NotificationOperator
from rule_engine.operators.outcome import RecordOutcomeOperator
from rule_engine.operators.records import RecordActionOperator
from rule_engine.operators.reports import (
    ReportDeliverOperator,
    ReportOutcomeOperator,
    ReportQueriesOperator,
    ReportRenderOperator,
)
from rule_engine.operators.webhooks import WebhookOperator

OPERATORS: dict[str, type[RuleTaskOperator]] = {
    "data_sensor": DataTriggerSensor,
    "evaluate_conditions": EvaluateConditionsOperator,
    "create_record": RecordActionOperator,
    "update_record": RecordActionOperator,
    "delete_record": RecordActionOperator,
    "send_notification": NotificationOperator,
    "call_webhook": WebhookOperator,
    "trigger_workflow": NotYetSupportedOperator,
    "generate_report": NotYetSupportedOperator,
    "record_outcome": RecordOutcomeOperator,
    "report_queries": ReportQueriesOperator,
    "report_render": ReportRenderOperator,
    "report_deliver": ReportDeliverOperator,
    "report_outcome": ReportOutcomeOperator,
}
