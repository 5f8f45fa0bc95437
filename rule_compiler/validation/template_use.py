"""Rule and workflow templates: a ``use``/``with`` document expanded into the definition it stands for,
and the checks of a template itself.

:func:`expand_use` parses the document's own fields (:class:`TemplateUse`), finds the template, checks
the parameters with the condition templates' :func:`~rule_compiler.condition_templates.parameter_values`
(problems at ``use``, ``with`` or ``with.NAME``), bounds the expanded size before expanding, and gives
an :class:`Expansion`: the expanded document, checked like a hand-written one by the caller, and
:meth:`Expansion.relocate`, which moves a problem found inside the template's body to ``use``, naming
the body path (``use: in template 'notify-on-status', trigger.table: …``).

A ``{param: NAME}`` value is replaced as a whole by the parameter's value, in mappings and lists alike
(a list value inside a list is one item: never spliced).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from rule_compiler.canonical import MAX_SPEC_BYTES, canonical_json
from rule_compiler.condition_templates import is_param_ref, parameter_values, type_problem
from rule_compiler.definitions.definition_template import (
    NOT_IN_BODY,
    OWN_FIELDS,
    RuleTemplateDefinition,
    TemplateUse,
    WorkflowTemplateDefinition,
)
from rule_compiler.errors import Issue, RuleValidationError
from rule_compiler.validation.paths import DOCUMENT, join
from rule_compiler.validation.structural import issues_from_pydantic

#: At most this many bytes (canonical JSON) in a document once its template is expanded, counted before.
MAX_EXPANDED_BYTES = MAX_SPEC_BYTES
DefinitionTemplate = RuleTemplateDefinition | WorkflowTemplateDefinition
Templates = Mapping[str, DefinitionTemplate]

__all__ = ["MAX_EXPANDED_BYTES", "Expansion", "check_definition_template", "expand_use", "substitute"]


@dataclass(frozen=True)
class Expansion:
    """A document built from a template: ``document`` expanded, ``written`` as its author wrote it."""

    template: str
    document: dict[str, Any]
    written: dict[str, Any]

    def relocate(self, issues: list[Issue]) -> list[Issue]:
        """Problems inside the template's body moved to ``use``; those of the document's own fields stay."""
        out = []
        for issue in issues:
            head = issue.path.split(".", 1)[0].split("[", 1)[0]
            if issue.path == DOCUMENT or head in OWN_FIELDS:
                out.append(issue)
            else:
                message = f"in template '{self.template}', {issue.path}: {issue.message}"
                out.append(Issue("use", message, issue.code))
        return out


def expand_use(data: Mapping[str, Any], template_kind: str, templates: Templates) -> Expansion:
    """Expand a document with ``use``; RuleValidationError at ``use``/``with…`` when it cannot be."""
    allowed = {field.alias or name for name, field in TemplateUse.model_fields.items()}
    if extra := sorted(str(key) for key in data if key not in allowed):
        takes = ", ".join(sorted(allowed - {"schema_version", "kind"}))
        raise RuleValidationError([
            Issue(key, f"a {data.get('kind')} built from a template (`use`) takes only {takes}: put "
                  f"'{key}' in the template's body, or leave out `use`", "unknown_key")
            for key in extra
        ])  # fmt: skip
    try:
        use = TemplateUse.model_validate(data)
    except ValidationError as exc:
        raise RuleValidationError(issues_from_pydantic(exc, data)) from None
    noun = template_kind.replace("_", " ")
    template = templates.get(use.use)
    if template is None or template.kind != template_kind:
        known = ", ".join(sorted(n for n, t in templates.items() if t.kind == template_kind)) or "none"
        message = (
            f"unknown {noun} '{use.use}' (templates of this organization: {known}); "
            f"apply it first (kind: {template_kind})"
        )
        raise RuleValidationError([Issue("use", message, "unknown_template")])
    if template.organization != use.organization:
        message = (
            f"{noun} '{use.use}' belongs to organization '{template.organization}', not "
            f"'{use.organization}': use a template of your own organization"
        )
        raise RuleValidationError([Issue("use", message, "organization")])
    values, issues = parameter_values(template.name, template.parameters, use.with_, "with")
    if values is None:
        raise RuleValidationError(issues)
    size = _expanded_size(template.body, values)
    if size > MAX_EXPANDED_BYTES:
        message = (
            f"{noun} '{use.use}' expands to about {size:,} bytes with these parameters; at most "
            f"{MAX_EXPANDED_BYTES:,} are allowed: pass shorter values or use a smaller template"
        )
        raise RuleValidationError([Issue("use", message, "too_large")])
    written = use.model_dump(mode="json", by_alias=True)
    own = {k: v for k, v in written.items() if k in OWN_FIELDS}
    body = {k: v for k, v in template.body.items() if k not in NOT_IN_BODY}
    return Expansion(template.name, {**substitute(body, values), **own}, written)


def substitute(value: Any, values: Mapping[str, Any]) -> Any:
    """``value`` with every ``{param: NAME}`` replaced by ``values[NAME]`` (an undeclared one stays)."""
    if is_param_ref(value):
        return values.get(value["param"], value)
    if isinstance(value, dict):
        return {key: substitute(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, values) for item in value]
    return value


def _placeholders(value: Any, path: str) -> list[tuple[str, str]]:
    """(path, parameter name) of every ``{param: NAME}`` in ``value``."""
    if is_param_ref(value):
        return [(path, value["param"])]
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in _placeholders(item, join(path, key))]
    if isinstance(value, list):
        return [found for index, item in enumerate(value) for found in _placeholders(item, join(path, index))]
    return []


def _expanded_size(body: Mapping[str, Any], values: Mapping[str, Any]) -> int:
    """The canonical JSON size of ``body`` with ``values`` in, computed without expanding."""
    size = len(canonical_json(dict(body)).encode("utf-8"))
    sizes = {name: len(canonical_json(value).encode("utf-8")) for name, value in values.items()}
    return size + sum(sizes.get(name, 0) for _, name in _placeholders(dict(body), ""))


def check_definition_template(template: DefinitionTemplate, model: type[BaseModel]) -> list[Issue]:
    """Every problem of a rule or workflow template: the body's keys, its placeholders against the
    declared parameters, the defaults' types, and the body's structure as ``model`` parses it (where no
    placeholder without a default stands in: what a parameter decides is checked where it is used)."""
    issues = [
        Issue(join("body", key), f"a template's body may not hold `{key}`: it comes from the document using "
              "the template", "body")
        for key in NOT_IN_BODY if key in template.body
    ]  # fmt: skip
    found = _placeholders(dict(template.body), "body")
    declared = template.parameters
    for path, name in found:
        if name not in declared:
            known = ", ".join(declared) or "none"
            message = f"parameter '{name}' is not declared; add it under `parameters` (declared: {known})"
            issues.append(Issue(path, message, "unknown_parameter"))
    used = {name for _, name in found}
    for name, spec in declared.items():
        if name not in used:
            message = (
                f"parameter '{name}' is declared but never used in `body`; use it as "
                f"`{{param: {name}}}` or remove it"
            )
            issues.append(Issue(f"parameters.{name}", message, "unused_parameter"))
        if spec.default is not None and (problem := type_problem(spec.type, spec.default)):
            issues.append(Issue(f"parameters.{name}.default", f"the default {problem}", "parameter"))
    if issues:
        return issues
    return issues + _structure_issues(template, model, found)


def _structure_issues(
    template: DefinitionTemplate, model: type[BaseModel], found: list[tuple[str, str]]
) -> list[Issue]:
    defaults = {name: spec.default for name, spec in template.parameters.items() if spec.default is not None}
    open_paths = [path.removeprefix("body.") for path, name in found if name not in defaults]
    built = template.kind.removesuffix("_template")
    data = {**substitute(dict(template.body), defaults), "kind": built, "name": template.name,
            "organization": template.organization}  # fmt: skip
    try:
        model.model_validate(data)
    except ValidationError as exc:
        return [
            Issue(join("body", issue.path) if issue.path != DOCUMENT else "body", issue.message, issue.code)
            for issue in issues_from_pydantic(exc, data)
            if not any(_related(issue.path, path) for path in open_paths)
        ]
    return []


def _related(a: str, b: str) -> bool:
    """One path is the other, or inside it (``trigger`` and ``trigger.table``)."""
    if a == DOCUMENT:
        return True
    return a == b or b.startswith((f"{a}.", f"{a}[")) or a.startswith((f"{b}.", f"{b}["))
