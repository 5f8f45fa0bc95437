"""The html format: the report's template, or our default (``default_report.html``), rendered by the
sandboxed Jinja of :mod:`rule_compiler.templating` (autoescaped) over the run's context."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import TemplateError

from rule_compiler.reports.errors import ReportRenderError
from rule_compiler.templating import TemplateCheckError, check_template, render
from rule_compiler.validation.reports import REPORT_TEMPLATE_VARIABLES

#: An HTML report holds inline chart images and up to 200 rows per query.
MAX_HTML_CHARACTERS = 20_000_000
DEFAULT_TEMPLATE_FILE = Path(__file__).with_name("default_report.html")


@functools.cache
def default_template() -> str:
    return DEFAULT_TEMPLATE_FILE.read_text(encoding="utf-8")


def render_html(template: str | None, context: Mapping[str, Any]) -> str:
    """The HTML report; a template that fails to render is a ReportRenderError saying why."""
    text = default_template() if template is None else template
    try:
        check_template(text, REPORT_TEMPLATE_VARIABLES)
        return render(text, context, html=True, max_output=MAX_HTML_CHARACTERS)
    except TemplateCheckError as exc:
        raise ReportRenderError(f"the report template cannot be used: {exc}") from None
    except TemplateError as exc:
        where = "the default report template" if template is None else "the report template"
        raise ReportRenderError(f"{where} failed to render: {exc}") from None
