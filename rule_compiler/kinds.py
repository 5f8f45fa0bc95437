"""The closed table of definition kinds: every kind declared once, looked up wherever a kind is handled.

A row says what a kind is: its pydantic model, its meaning checks, its lowering to a ``DagSpec`` (None:
no DAG, stored as its canonical JSON), which stored definitions it uses (templates, reports), which
fields its listings show, and whether it is checked against the catalog and has an active flag.
Validation (:mod:`rule_compiler.validation.document`), compilation and registration
(:mod:`rule_compiler.registration`), the dependents search (:mod:`rule_compiler.dependents`), the CLI's
batch commands and the REST view all read it; none of them tells kinds apart by ``isinstance``.

Adding a kind is one row here plus its model, checks and (when it has a DAG) lowering; see
``docs/architecture.md``, "Adding a kind".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rule_compiler.catalog import Catalog
from rule_compiler.compiler.ir import DagSpec
from rule_compiler.compiler.lower import compile_rule
from rule_compiler.compiler.report import compile_report
from rule_compiler.compiler.workflow import compile_workflow
from rule_compiler.condition_templates import raw_template_uses
from rule_compiler.definitions import (
    ConditionTemplateDefinition,
    NotificationTemplateDefinition,
    RuleDefinition,
)
from rule_compiler.definitions.definition_template import RuleTemplateDefinition, WorkflowTemplateDefinition
from rule_compiler.definitions.report import ReportDefinition
from rule_compiler.definitions.workflow import WorkflowDefinition
from rule_compiler.errors import Issue, RuleValidationError
from rule_compiler.notification_templates import raw_notification_uses
from rule_compiler.raw_sources import raw_trigger_type
from rule_compiler.validation.kind_checks import (
    CheckContext,
    Definition,
    Validated,
    check_condition_template_kind,
    check_notification_template_kind,
    check_report_kind,
    check_rule_kind,
    check_rule_template_kind,
    check_workflow_template_kind,
)
from rule_compiler.validation.partial import Parts
from rule_compiler.validation.starts import raw_actions, started_by
from rule_compiler.validation.workflow_checks import check_workflow_kind

RULE = "rule"
REPORT = "report"
CONDITION_TEMPLATE = "condition_template"
NOTIFICATION_TEMPLATE = "notification_template"
WORKFLOW = "workflow"
RULE_TEMPLATE = "rule_template"
WORKFLOW_TEMPLATE = "workflow_template"

#: A stored definition another one names: (kind, name).
Ref = tuple[str, str]
Check = Callable[[Any, CheckContext, Parts], tuple[list[Issue], Validated]]
Lower = Callable[[Validated, Catalog | None], DagSpec]


@dataclass(frozen=True)
class Kind:
    """One kind of definition.

    ``uses``: the stored definitions a raw document of this kind names (read before any parsing, so a
    document that does not parse still finds what it depends on); ``summary``: the kind's own listing
    fields, from the stored source; ``salvage``: when pydantic refuses some parts, the meaning checks
    still run on the parts that parse; ``catalog``: checked against the organization's catalog;
    ``activatable``: has an active flag (its DAG can be paused); templates are always active;
    ``uses_kinds``: the kinds ``uses`` may name (where a "used by" search looks); ``template``: the
    kind of template a document of this kind may be built from (``use: NAME``, ``with: {...}``: expanded
    before it is checked, :mod:`rule_compiler.validation.template_use`), or None.
    """

    name: str
    model: type[Definition]
    check: Check
    lower: Lower | None
    uses_kinds: tuple[str, ...]
    uses: Callable[[Mapping[str, Any]], set[Ref]]
    summary: Callable[[Mapping[str, Any]], dict[str, Any]]
    salvage: bool
    catalog: bool
    activatable: bool
    template: str | None = None

    @property
    def has_dag(self) -> bool:
        """Compiled to a ``DagSpec`` and loaded by the DAG loader."""
        return self.lower is not None

    @property
    def noun(self) -> str:
        """``condition template``: the kind as messages name it."""
        return self.name.replace("_", " ")


def _lower_rule(validated: Validated, catalog: Catalog | None) -> DagSpec:
    rule = validated.rule
    assert rule is not None  # noqa: S101 - set for every valid rule
    return compile_rule(
        rule,
        catalog or Catalog(organization=rule.organization),
        notification_refs=validated.notification_refs,
    )


def _lower_report(validated: Validated, catalog: Catalog | None) -> DagSpec:
    assert isinstance(validated.definition, ReportDefinition)  # noqa: S101 - the report row
    assert validated.report_sources is not None  # noqa: S101 - set for every valid report
    return compile_report(validated.definition, validated.report_sources)


def _lower_workflow(validated: Validated, catalog: Catalog | None) -> DagSpec:
    workflow = validated.workflow
    assert workflow is not None  # noqa: S101 - set for every valid workflow
    return compile_workflow(
        workflow,
        catalog or Catalog(organization=workflow.organization),
        notification_refs=validated.notification_refs,
    )


def _template_use(data: Mapping[str, Any], template_kind: str) -> set[Ref]:
    """The template a document built from one names in ``use``."""
    use = data.get("use")
    return {(template_kind, use)} if isinstance(use, str) else set()


def _rule_uses(data: Mapping[str, Any]) -> set[Ref]:
    refs = _template_use(data, RULE_TEMPLATE)
    refs |= {(CONDITION_TEMPLATE, name) for name in raw_template_uses(data)}
    refs |= {(NOTIFICATION_TEMPLATE, name) for name in raw_notification_uses(data)}
    return refs | started_uses(data)


def started_uses(data: Mapping[str, Any]) -> set[Ref]:
    """The stored definitions a raw rule's or workflow's actions start (``nodes[i].action`` in a
    workflow): ``(report, NAME)`` of each ``generate_report``, ``(workflow, NAME)`` of each
    ``trigger_workflow``."""
    return started_by(raw_actions(data))


def _body_of(data: Mapping[str, Any]) -> Mapping[str, Any]:
    body = data.get("body")
    return body if isinstance(body, dict) else {}


def _rule_template_uses(data: Mapping[str, Any]) -> set[Ref]:
    """What a rule template's body names, as a rule's would (its users use it through the template)."""
    return _rule_uses(_body_of(data))


def workflow_uses(data: Mapping[str, Any]) -> set[Ref]:
    """What a raw workflow names: its template (``use``), and per node the condition templates of its
    conditions and its action's ``where``, its action's notification template or report, its report."""
    refs = _template_use(data, WORKFLOW_TEMPLATE)
    nodes = data.get("nodes")
    for node in nodes if isinstance(nodes, list) else []:
        if not isinstance(node, dict):
            continue
        action = node.get("action")
        refs |= _rule_uses({"conditions": node.get("conditions"), "actions": [action] if action else []})
        if node.get("type") == "report" and isinstance(node.get("report"), str):
            refs.add((REPORT, node["report"]))
    return refs


def _workflow_template_uses(data: Mapping[str, Any]) -> set[Ref]:
    """What a workflow template's body names, as a workflow's would."""
    return workflow_uses(_body_of(data))


def _condition_template_uses(data: Mapping[str, Any]) -> set[Ref]:
    return {(CONDITION_TEMPLATE, name) for name in raw_template_uses(data)}


def _uses_nothing(data: Mapping[str, Any]) -> set[Ref]:
    return set()


def _rule_summary(source: Mapping[str, Any]) -> dict[str, Any]:
    """A rule's or a workflow's listing fields: its trigger type."""
    return {"trigger_type": raw_trigger_type(source)}


def _report_summary(source: Mapping[str, Any]) -> dict[str, Any]:
    schedule = source.get("schedule")
    schedule = schedule if isinstance(schedule, dict) else {}
    formats = source.get("formats")
    return {
        "cron": str(schedule.get("cron", "")),
        "timezone": str(schedule.get("timezone") or "UTC"),
        "formats": [str(f) for f in formats] if isinstance(formats, list) else [],
    }


def _template_summary(source: Mapping[str, Any]) -> dict[str, Any]:
    return {}


KINDS: Mapping[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(
            RULE,
            RuleDefinition,
            check_rule_kind,
            _lower_rule,
            (CONDITION_TEMPLATE, NOTIFICATION_TEMPLATE, REPORT, WORKFLOW, RULE_TEMPLATE),
            _rule_uses,
            _rule_summary,
            salvage=True,
            catalog=True,
            activatable=True,
            template=RULE_TEMPLATE,
        ),
        Kind(
            REPORT,
            ReportDefinition,
            check_report_kind,
            _lower_report,
            (),
            _uses_nothing,
            _report_summary,
            salvage=True,
            catalog=True,
            activatable=True,
        ),
        Kind(
            WORKFLOW,
            WorkflowDefinition,
            check_workflow_kind,
            _lower_workflow,
            (CONDITION_TEMPLATE, NOTIFICATION_TEMPLATE, REPORT, WORKFLOW, WORKFLOW_TEMPLATE),
            workflow_uses,
            _rule_summary,
            salvage=True,
            catalog=True,
            activatable=True,
            template=WORKFLOW_TEMPLATE,
        ),
        Kind(
            CONDITION_TEMPLATE,
            ConditionTemplateDefinition,
            check_condition_template_kind,
            None,
            (CONDITION_TEMPLATE,),
            _condition_template_uses,
            _template_summary,
            salvage=False,
            catalog=False,
            activatable=False,
        ),
        Kind(
            NOTIFICATION_TEMPLATE,
            NotificationTemplateDefinition,
            check_notification_template_kind,
            None,
            (),
            _uses_nothing,
            _template_summary,
            salvage=False,
            catalog=False,
            activatable=False,
        ),
        Kind(
            RULE_TEMPLATE,
            RuleTemplateDefinition,
            check_rule_template_kind,
            None,
            (CONDITION_TEMPLATE, NOTIFICATION_TEMPLATE, REPORT, WORKFLOW),
            _rule_template_uses,
            _template_summary,
            salvage=False,
            catalog=False,
            activatable=False,
        ),
        Kind(
            WORKFLOW_TEMPLATE,
            WorkflowTemplateDefinition,
            check_workflow_template_kind,
            None,
            (CONDITION_TEMPLATE, NOTIFICATION_TEMPLATE, REPORT, WORKFLOW),
            _workflow_template_uses,
            _template_summary,
            salvage=False,
            catalog=False,
            activatable=False,
        ),
    )
}
#: Kinds the format reserves; refused with a message saying this release does not support them yet.
PLANNED_KINDS: tuple[str, ...] = ()
#: The kinds in the order a batch is checked and applied: what is used before what uses it.
APPLY_ORDER = (
    CONDITION_TEMPLATE,
    NOTIFICATION_TEMPLATE,
    REPORT,
    RULE_TEMPLATE,
    WORKFLOW_TEMPLATE,
    WORKFLOW,
    RULE,
)


def users_of_kind(kind: str) -> tuple[str, ...]:
    """The kinds whose definitions may name a definition of ``kind``."""
    return tuple(name for name, row in KINDS.items() if kind in row.uses_kinds)


def kind_named(name: Any) -> Kind:
    """The row of ``name``; RuleValidationError at ``kind`` (unknown, planned or missing) otherwise."""
    if isinstance(name, str) and name in KINDS:
        return KINDS[name]
    raise RuleValidationError([Issue("kind", _kind_message(name), "kind")])


def apply_rank(kind: Any) -> int:
    """Where a document of ``kind`` goes in a batch (unknown kinds last: they are refused anyway)."""
    return APPLY_ORDER.index(kind) if kind in APPLY_ORDER else len(APPLY_ORDER)


def _kind_message(kind: Any) -> str:
    supported = ", ".join(KINDS)
    if kind in PLANNED_KINDS:
        return f"kind '{kind}' is not supported by this release yet; supported: {supported}"
    if kind is None:
        return f"'kind' is required; use one of: {supported}"
    return f"unknown kind '{kind}'; use one of: {supported}"
