"""Author templates (``{{ record.total }}``), checked at registration and rendered in a sandbox.

Templates are rendered only here, by an ``ImmutableSandboxedEnvironment`` with ``StrictUndefined``
over a context we build (``record``, ``old``, ``changes``, ``rule``, ``run``) — never by Airflow's
templater, whose context exposes ``var`` and ``conn``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

#: The names a template may start from.
TEMPLATE_VARIABLES = ("record", "old", "changes", "rule", "run", "event")
MAX_TEMPLATE_LENGTH = 20_000
MAX_OUTPUT_LENGTH = 200_000


class TemplateCheckError(ValueError):
    """A template is not acceptable; the message says why (syntax, unknown variable, unsafe access)."""


class _Environment(ImmutableSandboxedEnvironment):
    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        return not attr.startswith("_") and super().is_safe_attribute(obj, attr, value)


_ENV = _Environment(undefined=StrictUndefined, autoescape=False)
_ENV.globals.clear()  # no range(), lipsum, dict(), cycler: only the context we pass
_HTML_ENV = _Environment(undefined=StrictUndefined, autoescape=True)
_HTML_ENV.globals.clear()


def is_template(text: str) -> bool:
    """True when the text contains Jinja markup."""
    return "{{" in text or "{%" in text or "{#" in text


def check_template(text: str, variables: tuple[str, ...] = TEMPLATE_VARIABLES) -> None:
    """Raise :class:`TemplateCheckError` unless ``text`` is a template we will render safely.

    ``variables``: the names the template may read (a rule's by default; a report has its own).
    """
    if len(text) > MAX_TEMPLATE_LENGTH:
        raise TemplateCheckError(f"template is longer than {MAX_TEMPLATE_LENGTH} characters")
    try:
        tree = _ENV.parse(text)
    except TemplateSyntaxError as exc:
        raise TemplateCheckError(f"template syntax error on line {exc.lineno}: {exc.message}") from None
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
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        attr = node.attr if isinstance(node, nodes.Getattr) else _const_key(node)  # type: ignore[arg-type]
        if isinstance(attr, str) and attr.startswith("_"):
            raise TemplateCheckError(
                f"unsafe attribute access '{attr}': names starting with '_' are not allowed"
            )
    for node in tree.find_all(nodes.Filter):
        if node.name == "attr":
            raise TemplateCheckError("unsafe filter 'attr' is not allowed")


def _const_key(node: nodes.Getitem) -> Any:
    return node.arg.value if isinstance(node.arg, nodes.Const) else None


def record_fields(text: str) -> set[str]:
    """The fields a template reads from the triggering row: ``{{ record.customer__email }}`` →
    ``{"customer__email"}`` (``record['x']`` too). The text must already pass :func:`check_template`."""
    tree = _ENV.parse(text)
    found: set[str] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        target = getattr(node, "node", None)
        if isinstance(target, nodes.Name) and target.name in {"record", "old"}:
            attr = node.attr if isinstance(node, nodes.Getattr) else _const_key(node)  # type: ignore[arg-type]
            if isinstance(attr, str):
                found.add(attr)
    return found


def render(
    text: str, context: Mapping[str, Any], *, html: bool = False, max_output: int = MAX_OUTPUT_LENGTH
) -> str:
    """Render a checked template in the sandbox; output is capped at ``max_output`` characters."""
    env = _HTML_ENV if html else _ENV
    output = env.from_string(text).render(**context)
    if len(output) > max_output:
        raise TemplateCheckError(f"rendered template is longer than {max_output} characters")
    return output


def render_value(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every template string inside a JSON value (dicts and lists walked); others unchanged."""
    if isinstance(value, str):
        return render(value, context) if is_template(value) else value
    if isinstance(value, list):
        return [render_value(item, context) for item in value]
    if isinstance(value, dict):
        return {key: render_value(item, context) for key, item in value.items()}
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
