"""The errors of a report run; each message says what to change."""

from __future__ import annotations

from rule_compiler.errors import RuleEngineError


class ReportError(RuleEngineError):
    """A report could not run or render."""


class ReportParameterError(ReportError):
    """A parameter override is unknown or its value is not of the parameter's type."""


class ReportQueryError(ReportError):
    """A report query was refused, failed or ran past its timeout."""


class ReportRenderError(ReportError):
    """A format could not be rendered (a chart naming a column the query did not return, a bad template)."""


class ReportAlertError(ReportError):
    """The alert check cannot be evaluated on the query's result (e.g. a number compared with text)."""
