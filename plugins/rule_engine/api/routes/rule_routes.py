"""``/rules`` routes of rules alone: test a rule against an event.

The rest of ``/rules`` is the one resource router (:mod:`rule_engine.api.resource_router`) every kind
shares (list, create, validate, get, replace, patch, delete, spec, versions, diff, restore) and the run
routes of kinds that run from a trigger (:mod:`.definition_run_routes`: next runs, trigger).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status

from rule_compiler import rule_tester
from rule_compiler.catalog import Catalog
from rule_compiler.clock import utcnow
from rule_compiler.kinds import RULE
from rule_compiler.registration import Compiled
from rule_compiler.store import RuleStore, StoredDefinition
from rule_engine.api import definition_ops as ops
from rule_engine.api.deps import StoreDep, Viewer
from rule_engine.api.routes.error_responses import errors
from rule_engine.api.schemas import RuleTestRequest, RuleTestResult
from rule_engine.hooks import app_database

router = APIRouter(prefix="/rules", tags=["rules"])
RuleName = Annotated[str, Path(max_length=200, description="the rule's name (a slug)")]


def _current(store: RuleStore, organization: str, name: str) -> StoredDefinition:
    return store.get(organization=organization, kind=RULE, name=name)


@router.post("/{name}/test", responses=errors())
def test_rule(name: RuleName, body: RuleTestRequest, principal: Viewer, store: StoreDep) -> RuleTestResult:
    """Evaluate the rule's conditions against an event (or a target row) and return the trace."""
    stored = _current(store, principal.organization, name)
    compiled = ops.compile_for(store, principal.organization, stored.source)
    assert isinstance(compiled, Compiled) and compiled.rule is not None  # noqa: S101 - a stored rule
    catalog = ops.catalog_of(store, principal.organization) or Catalog(organization=principal.organization)
    related = None
    if body.read_related:  # a connection Airflow cannot give: 503 (the AppDatabaseError handler)
        related = rule_tester.database_related(app_database.engine_for)
    try:
        result = rule_tester.test_rule(
            compiled.rule,
            body.event,
            catalog=catalog,
            related=related,
            now=body.now or utcnow(),
        )
    except rule_tester.RuleTestError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return RuleTestResult(**result.as_dict())
