"""The condition language at work: operators, validation, Python evaluation and SQL translation.

- :mod:`.operator_registry` — the registry of operators (column types, arity, event-only, test);
- :mod:`.validate` — :func:`validate_operand`, the per-condition operator/value checks;
- :mod:`.evaluator` — :func:`compile_condition` → :class:`CompiledCondition` (``matches``/``explain``),
  a tree of :mod:`.compiled_nodes` whose verdicts :mod:`.trace` explains;
- :mod:`.sql` — :func:`condition_to_sql`, the same semantics as a SQLAlchemy Core expression;
- :mod:`.durations`, :mod:`.regex`, :mod:`.values` — the building blocks they share.

Nothing here imports Airflow.
"""

from __future__ import annotations

from rule_compiler.conditions.durations import DurationError, parse_duration
from rule_compiler.conditions.evaluator import CompiledCondition, ConditionCompileError, compile_condition
from rule_compiler.conditions.operator_registry import OPERATORS, OperatorSpec, operators_for, register
from rule_compiler.conditions.regex import (
    MAX_PATTERN_LENGTH,
    MAX_SUBJECT_LENGTH,
    UnsafePatternError,
    check_pattern,
)
from rule_compiler.conditions.sql import NotTranslatableError, condition_to_sql, register_sqlite_functions
from rule_compiler.conditions.validate import validate_operand

__all__ = [
    "MAX_PATTERN_LENGTH",
    "MAX_SUBJECT_LENGTH",
    "OPERATORS",
    "CompiledCondition",
    "ConditionCompileError",
    "DurationError",
    "NotTranslatableError",
    "OperatorSpec",
    "UnsafePatternError",
    "check_pattern",
    "compile_condition",
    "condition_to_sql",
    "operators_for",
    "parse_duration",
    "register",
    "register_sqlite_functions",
    "validate_operand",
]
