"""The compiler: valid definitions in, deterministic ``DagSpec`` IR out."""

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
