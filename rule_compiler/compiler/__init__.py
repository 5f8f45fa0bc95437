"""The compiler: valid definitions in, deterministic ``DagSpec`` IR out."""

from typing import TYPE_CHECKING

from rule_compiler._lazy import lazy_exports

if TYPE_CHECKING:
    from rule_compiler.compiler.ir import IR_VERSION, DagSpec, ScheduleSpec, TaskSpec
    from rule_compiler.compiler.lower import (
        COMPILER_VERSION,
        DATA_SENSOR_TASK,
        EVALUATE_TASK,
        OUTCOME_TASK,
        compile_rule,
        dag_id_for,
        field_plan,
    )

__getattr__ = lazy_exports(
    __name__,
    {
        "IR_VERSION": "ir",
        "DagSpec": "ir",
        "ScheduleSpec": "ir",
        "TaskSpec": "ir",
        "COMPILER_VERSION": "lower",
        "DATA_SENSOR_TASK": "lower",
        "EVALUATE_TASK": "lower",
        "OUTCOME_TASK": "lower",
        "compile_rule": "lower",
        "dag_id_for": "lower",
        "field_plan": "lower",
    },
)

__all__ = [
    "COMPILER_VERSION",
    "DATA_SENSOR_TASK",
    "EVALUATE_TASK",
    "IR_VERSION",
    "OUTCOME_TASK",
    "DagSpec",
    "ScheduleSpec",
    "TaskSpec",
    "compile_rule",
    "dag_id_for",
    "field_plan",
]
