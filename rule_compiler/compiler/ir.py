"""The intermediate representation: a ``DagSpec`` is everything the renderer needs, and nothing else.

It is plain, frozen, JSON-serializable data — ids, enums and typed parameters — produced by the
compiler from a valid definition and read back by the DAG loader. No Airflow types appear here.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from rule_compiler.canonical import canonical_json, content_hash

#: Bump when the IR's shape changes incompatibly; the loader refuses specs of other versions.
IR_VERSION: Literal[1] = 1

TaskKind = Literal[
    "data_sensor",
    "evaluate_conditions",
    "create_record",
    "update_record",
    "delete_record",
    "send_notification",
    "call_webhook",
    "trigger_workflow",
    "generate_report",
    "record_outcome",
    "report_queries",
    "report_render",
    "report_deliver",
    "report_outcome",
    "workflow_start",
    "workflow_condition",
    "workflow_join",
    "workflow_report",
    "workflow_delay",
    "workflow_approval",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScheduleSpec(_Frozen):
    """How runs start: a cron timetable, an asset (events), a gated cron (data), nothing (manual) or a
    cron whose runs each cover the interval since the previous one (reports)."""

    kind: Literal["cron", "event", "data", "manual", "interval"]
    cron: str | None = None
    timezone: str | None = None
    connection: str | None = None
    table: str | None = None


class TaskSpec(_Frozen):
    """One task: a closed-registry kind with its parameters, upstream task ids and retry policy.

    ``display_name`` is the task's label in the Airflow UI (``update_record: escalate``); the task id
    stays the stable key (none: the UI shows the id).
    """

    task_id: str
    display_name: str | None = None
    kind: TaskKind
    params: dict[str, JsonValue] = Field(default_factory=dict)
    upstream: tuple[str, ...] = ()
    retries: int = 0
    retry_delay_seconds: int = 30
    timeout_seconds: int = 300
    on_failure: Literal["fail", "continue"] = "fail"
    trigger_rule: Literal["all_success", "all_done", "none_failed_min_one_success"] = "all_success"


class DagSpec(_Frozen):
    """A compiled definition: one Airflow DAG.

    ``display_name`` is the DAG's name in the Airflow UI: the definition's ``title``, else
    ``name (organization)``; the ``dag_id`` stays the stable key (none: the UI shows the id).
    """

    ir_version: Literal[1] = IR_VERSION
    compiler_version: str
    dag_id: str
    rule_id: str
    organization: str
    kind: str
    name: str
    display_name: str | None = None
    description: str = ""
    owner: str | None = None
    active: bool = True
    tags: tuple[str, ...] = ()
    schedule: ScheduleSpec
    doc_md: str
    source_hash: str
    tasks: tuple[TaskSpec, ...]

    def to_json(self) -> str:
        """Canonical JSON: byte-identical for equal specs."""
        return canonical_json(self.to_data())

    def to_data(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @property
    def spec_hash(self) -> str:
        return content_hash(self.to_data())

    def task(self, task_id: str) -> TaskSpec:
        return next(t for t in self.tasks if t.task_id == task_id)
