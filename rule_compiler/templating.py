"""Author templates (``{{ record.total }}``), checked at registration and rendered in a sandbox.

Templates are rendered only here, by the bounded sandbox of :mod:`rule_compiler.template_sandbox`
(Jinja's ``ImmutableSandboxedEnvironment``, ``StrictUndefined``, no globals, allow-listed features,
filters, tests and methods) over a context we build (``record``, ``old``, ``changes``, ``rule``,
``run``) — never by Airflow's templater, whose context exposes ``var`` and ``conn``.

Every render runs under a :class:`RenderBudget` (limits in :mod:`rule_compiler.template_limits`):
operators, filters and method calls are checked before they make a value, loops are counted, and
output is counted while it streams, so a template stops with :class:`TemplateLimitError` (a
:class:`TemplateCheckError`) instead of exhausting the worker. :func:`render_with_stats` also
returns what the render used.
"""

from __future__ import annotations

import dataclasses
import functools
import types
from collections.abc import Mapping
from typing import Any

from jinja2 import Template, TemplateError, TemplateRuntimeError, TemplateSyntaxError, nodes

from rule_compiler.template_checks import check_features
from rule_compiler.template_limits import (
    DEFAULT_REPORT_LIMITS,
    REPORT_LIMITS,
    RULE_LIMITS,
    RenderBudget,
    RenderStats,
    TemplateCheckError,
    TemplateLimitError,
    TemplateLimits,
    active_budget,
)
from rule_compiler.template_sandbox import SandboxEnvironment

__all__ = [
    "DEFAULT_REPORT_LIMITS",
    "MAX_OUTPUT_LENGTH",
    "MAX_TEMPLATE_LENGTH",
    "REPORT_LIMITS",
    "RULE_LIMITS",
    "TEMPLATE_VARIABLES",
    "RenderBudget",
    "RenderStats",
    "TemplateCheckError",
    "TemplateLimitError",
    "TemplateLimits",
    "check_template",
    "is_template",
    "record_fields",
    "render",
    "render_value",
    "render_with_stats",
    "template_strings",
]

#: The names a template may start from.
TEMPLATE_VARIABLES = ("record", "old", "changes", "rule", "run", "event")
MAX_TEMPLATE_LENGTH = RULE_LIMITS.max_template_length
MAX_OUTPUT_LENGTH = RULE_LIMITS.max_output

_ENV = SandboxEnvironment(autoescape=False)
_HTML_ENV = SandboxEnvironment(autoescape=True)


def is_template(text: str) -> bool:
    """True when the text contains Jinja markup."""
    return "{{" in text or "{%" in text or "{#" in text


def _parse(text: str, limits: TemplateLimits) -> nodes.Template:
    if len(text) > limits.max_template_length:
        raise TemplateCheckError(f"template is longer than {limits.max_template_length} characters")
    try:
        return _ENV.parse(text)
    except TemplateSyntaxError as exc:
        raise TemplateCheckError(f"template syntax error on line {exc.lineno}: {exc.message}") from None
    except RecursionError:
        raise TemplateCheckError("template nests too deeply") from None
    except ValueError as exc:  # an integer literal of more than 4,300 digits
        raise TemplateCheckError(f"template cannot be read: {exc}") from None


def check_template(
    text: str, variables: tuple[str, ...] = TEMPLATE_VARIABLES, *, limits: TemplateLimits = RULE_LIMITS
) -> None:
    """Raise :class:`TemplateCheckError` unless ``text`` is a template we will render safely:
    known variables only, allow-listed features, filters, tests and methods only, and no literal
    that provably passes ``limits`` (:class:`TemplateLimitError`).

    ``variables``: the names the template may read (a rule's by default; a report has its own).
    """
    tree = _parse(text, limits)
    check_features(tree, limits, _ENV)
    assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    for name in tree.find_all(nodes.Name):
        if name.ctx == "load" and name.name not in variables and name.name not in assigned:
            raise TemplateCheckError(
                f"unknown template variable '{name.name}'; templates may use: {', '.join(variables)}"
                + (
                    " (Airflow's conn, var and macros are never available)"
                    if name.name in {"conn", "var"}
                    else ""
                )
            )


def _const_key(node: nodes.Getitem) -> Any:
    return node.arg.value if isinstance(node.arg, nodes.Const) else None


def record_fields(text: str) -> set[str]:
    """The fields a template reads from the triggering row: ``{{ record.customer__email }}`` →
    ``{"customer__email"}`` (``record['x']`` too). The text must already pass :func:`check_template`
    (a text nested too deeply to parse reads nothing here: the template check reports it)."""
    try:
        tree = _ENV.parse(text)
    except (RecursionError, ValueError):
        return set()
    found: set[str] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        target = getattr(node, "node", None)
        if isinstance(target, nodes.Name) and target.name in {"record", "old"}:
            attr = node.attr if isinstance(node, nodes.Getattr) else _const_key(node)  # type: ignore[arg-type]
            if isinstance(attr, str):
                found.add(attr)
    return found


@functools.lru_cache(maxsize=128)
def _compiled(text: str, html: bool, limits: TemplateLimits) -> Template:
    """The template checked (features and literals, as at registration: a definition stored before a
    check was added is refused here) and compiled, once per process."""
    env = _HTML_ENV if html else _ENV
    tree = _parse(text, limits)
    check_features(tree, limits, env)
    try:
        return env.from_string(tree)
    except TemplateError as exc:
        raise TemplateCheckError(f"template cannot be compiled: {exc}") from None
    except (RecursionError, SyntaxError):
        raise TemplateCheckError("template nests too deeply") from None


def render_with_stats(
    text: str,
    context: Mapping[str, Any],
    *,
    html: bool = False,
    limits: TemplateLimits = RULE_LIMITS,
    budget: RenderBudget | None = None,
) -> tuple[str, RenderStats]:
    """Render a checked template in the bounded sandbox; the output and what the render used.

    Raises :class:`TemplateLimitError` as soon as a limit would be passed (the output is counted
    while it is produced), :class:`TemplateCheckError` for a template the sandbox refuses, and
    Jinja's ``TemplateError`` for what fails while rendering: ``UndefinedError``, ``SecurityError``
    (a refused call), ``TemplateRuntimeError`` (any other error of the template: ``1 // 0``...).
    ``budget`` is shared when given (several strings of one value), else a fresh one of ``limits``.
    """
    if budget is None:
        budget = RenderBudget(limits)
    template = _compiled(text, html, budget.limits)
    parts: list[str] = []
    with active_budget(budget):
        stream = template.generate(**context)
        try:
            for chunk in stream:
                budget.output(len(chunk))
                parts.append(chunk)
        except (TemplateError, TemplateCheckError):
            raise
        except (ArithmeticError, LookupError, TypeError, ValueError, AttributeError, RecursionError) as exc:
            # the template fails the same way on every retry: 1 // 0, 'a' + 1, int('x', 99)...
            raise TemplateRuntimeError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            if isinstance(stream, types.GeneratorType):
                stream.close()
    return "".join(parts), budget.stats


def render(
    text: str,
    context: Mapping[str, Any],
    *,
    html: bool = False,
    max_output: int | None = None,
    limits: TemplateLimits = RULE_LIMITS,
) -> str:
    """Render a checked template in the sandbox (see :func:`render_with_stats`); the output stops at
    ``max_output`` characters (default: the limits' ``max_output``) while it is produced."""
    if max_output is not None and max_output != limits.max_output:
        limits = dataclasses.replace(limits, max_output=max_output)
    return render_with_stats(text, context, html=html, limits=limits)[0]


def render_value(
    value: Any,
    context: Mapping[str, Any],
    *,
    limits: TemplateLimits = RULE_LIMITS,
    budget: RenderBudget | None = None,
) -> Any:
    """Render every template string inside a JSON value (dicts and lists walked); others unchanged.
    All the strings share one budget: their output together stays within ``max_output``."""
    if budget is None:
        budget = RenderBudget(limits)
    if isinstance(value, str):
        return render_with_stats(value, context, budget=budget)[0] if is_template(value) else value
    if isinstance(value, list):
        return [render_value(item, context, budget=budget) for item in value]
    if isinstance(value, dict):
        return {key: render_value(item, context, budget=budget) for key, item in value.items()}
    return value


def template_strings(value: Any, path: str) -> list[tuple[str, str]]:
    """Every string inside a JSON value that contains template markup, with its JSON path."""
    if isinstance(value, str):
        return [(path, value)] if is_template(value) else []
    if isinstance(value, list):
        return [found for i, item in enumerate(value) for found in template_strings(item, f"{path}[{i}]")]
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in template_strings(item, f"{path}.{key}")]
    return []
