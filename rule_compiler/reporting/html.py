"""The html format: the report's template, or our default (``default_report.html``), rendered by the
bounded sandbox of :mod:`rule_compiler.templating` (autoescaped) over the run's context. An author's
template renders under :data:`~rule_compiler.template_limits.REPORT_LIMITS`; only our own default
template gets :data:`~rule_compiler.template_limits.DEFAULT_REPORT_LIMITS`, whose loop budget follows
the report's row caps."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import TemplateError

from rule_compiler.definitions.report import REPORT_TEMPLATE_VARIABLES
from rule_compiler.reporting.report_errors import ReportRenderError
from rule_compiler.templating import (
    DEFAULT_REPORT_LIMITS,
    REPORT_LIMITS,
    TemplateCheckError,
    TemplateLimitError,
    check_template,
    render,
)

#: An HTML report holds inline chart images and up to 200 rows per query.
MAX_HTML_CHARACTERS = REPORT_LIMITS.max_output
DEFAULT_TEMPLATE_FILE = Path(__file__).with_name("default_report.html")


@functools.cache
def default_template() -> str:
    return DEFAULT_TEMPLATE_FILE.read_text(encoding="utf-8")


def render_html(template: str | None, context: Mapping[str, Any]) -> str:
    """The HTML report; a template that fails to render is a ReportRenderError saying why."""
    text = default_template() if template is None else template
    limits = DEFAULT_REPORT_LIMITS if template is None else REPORT_LIMITS
    try:
        check_template(text, REPORT_TEMPLATE_VARIABLES, limits=limits)
        return render(text, context, html=True, limits=limits)
    except TemplateLimitError as exc:
        where = "the default report template" if template is None else "the report template"
        raise ReportRenderError(f"{where} stopped at a limit: {exc}") from None
    except TemplateCheckError as exc:
        raise ReportRenderError(f"the report template cannot be used: {exc}") from None
    except TemplateError as exc:
        where = "the default report template" if template is None else "the report template"
        raise ReportRenderError(f"{where} failed to render: {exc}") from None
