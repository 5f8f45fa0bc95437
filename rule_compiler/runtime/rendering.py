"""Author templates rendered for an action: a template that cannot render is a permanent failure.

Rendering the same template over the same row fails the same way on every retry (an undefined
field, a refused call, a template limit such as ``max_output``), so the action fails at once with
:class:`~rule_compiler.errors.PermanentActionError` instead of being retried.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import TemplateError

from rule_compiler.errors import PermanentActionError
from rule_compiler.templating import TemplateCheckError, render_value

__all__ = ["render_for_action"]


def render_for_action(value: Any, context: Mapping[str, Any], what: str) -> Any:
    """:func:`~rule_compiler.templating.render_value` (one budget for the whole value), its
    failures as PermanentActionError naming ``what`` was rendered."""
    try:
        return render_value(value, context)
    except (TemplateError, TemplateCheckError) as exc:  # UndefinedError, SecurityError, a limit
        raise PermanentActionError(f"the {what} template could not be rendered: {exc}") from None
