"""``POST /rule-templates/{name}/expand`` and ``POST /workflow-templates/{name}/expand``: a stored template's
body with parameters in, to start a new definition from (the designer's "Start from a template").

The expansion is the compiler's own (:func:`rule_compiler.validation.template_use.expand_use`, what a
definition with ``use``/``with`` goes through): parameters are checked at ``with`` / ``with.NAME`` (422),
the expanded size is bounded before expanding. Nothing is stored, and the body is not checked against
the catalog: a new definition built from it is validated like any other.
"""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path

from rule_compiler.kinds import KINDS, RULE, WORKFLOW
from rule_compiler.registration import context_from_store
from rule_compiler.validation.template_use import expand_use
from rule_engine.api.deps import StoreDep, Viewer
from rule_engine.api.resource_kinds import API_KIND_OF
from rule_engine.api.routes.error_responses import errors
from rule_engine.api.schemas_definition_templates import TemplateExpanded, TemplateExpandRequest

TemplateName = Annotated[str, Path(max_length=200, description="the template's name (a slug)")]
#: The document's own fields, which the expanded definition leaves to its author.
OWN = ("name", "organization", "schema_version")


def _expand_route(kind: str) -> Callable[..., TemplateExpanded]:
    template_kind = KINDS[kind].template
    assert template_kind is not None  # noqa: S101 - only kinds with a template row get the route

    def expand(
        name: TemplateName, body: TemplateExpandRequest, principal: Viewer, store: StoreDep
    ) -> TemplateExpanded:
        organization = principal.organization
        store.get(organization=organization, kind=template_kind, name=name)  # 404 when there is none
        document: dict[str, Any] = {
            "kind": kind,
            "name": "expanded",
            "organization": organization,
            "use": name,
            "with": body.with_,
        }
        context = context_from_store(store, organization, document)
        expansion = expand_use(document, template_kind, context.definition_templates.get(template_kind, {}))
        definition = {k: v for k, v in expansion.document.items() if k not in OWN}
        return TemplateExpanded(template=name, kind=kind, definition=definition)

    expand.__doc__ = (
        f"The {template_kind.replace('_', ' ')}'s body with the parameters in (`with`): the fields of a new "
        f"{kind} to start from. Nothing is stored."
    )
    return expand


router = APIRouter()
for _kind in (RULE, WORKFLOW):
    _path = API_KIND_OF[KINDS[_kind].template or ""].path
    router.add_api_route(
        f"{_path}/{{name}}/expand",
        _expand_route(_kind),
        methods=["POST"],
        tags=[_path.removeprefix("/")],
        operation_id=f"expand_{KINDS[_kind].template}",
        responses=errors(),
        response_model=TemplateExpanded,
    )
