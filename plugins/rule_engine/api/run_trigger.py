"""Start a rule's or a report's run now, for the REST view: refuse a DAG Airflow cannot run, audit
the trigger, start the run, and map what goes wrong to HTTP (409 with Retry-After, 503)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import HTTPException, Request, status
from sqlalchemy.exc import SQLAlchemyError

from rule_compiler.clock import utcnow
from rule_compiler.store import RuleStore, StoredDefinition
from rule_engine.api import airflow_runs
from rule_engine.api.deps import Principal
from rule_engine.api.routes.error_responses import errors

log = logging.getLogger("rule_engine.api")


def trigger_responses(noun: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of a ``POST …/{name}/trigger`` of ``noun`` (a rule, a report)."""
    return {
        **errors(409, 413),
        409: {
            **errors(409)[409],
            "description": f"The {noun} cannot run now: inactive, paused, or not (yet) loaded by Airflow "
            "(then with Retry-After)",
            "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
        },
    }


def started_fields(started: airflow_runs.StartedRun, stored: StoredDefinition, conf: dict[str, Any],
                   principal: Principal) -> dict[str, Any]:  # fmt: skip
    """The fields every "run started" answer has (besides the definition's name)."""
    return {
        "version": stored.version,
        "dag_id": started.dag_id,
        "run_id": started.run_id,
        "state": started.state,
        "logical_date": started.logical_date,
        "run_after": started.run_after,
        "conf": conf,
        "triggered_by": principal.username,
        "url": started.url,
    }


def refuse_inactive(stored: StoredDefinition, path: str) -> None:
    """409 when ``stored`` is inactive: a run starts only for an active definition."""
    if not stored.active:
        noun = stored.kind.replace("_", " ")
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"{noun} '{stored.name}' is inactive: activate it first (PATCH {path}/{stored.name} with "
            '{"active": true})',
        )


def start_audited_run(
    *,
    store: RuleStore,
    principal: Principal,
    request: Request,
    stored: StoredDefinition,
    conf: dict[str, Any],
    note: str | None,
    what: str,
    audit_kind: str,
) -> airflow_runs.StartedRun:
    """Start ``stored``'s DAG now with ``conf`` as the acting user; ``what`` names it in messages
    (``rule``, ``report``) and ``audit_kind`` is the audit row's kind."""
    now = utcnow()
    run_id = airflow_runs.new_run_id(now)
    try:
        reason = request.app.state.render_errors([stored.dag_id]).get(stored.dag_id)
        if reason is not None:
            raise airflow_runs.NotRunnableError(f"Airflow could not render {what} '{stored.name}': {reason}")
        airflow_runs.runnable_check(stored.name, stored.dag_id, stored.spec_hash)
        store.record_audit(
            organization=principal.organization,
            actor=principal.username,
            action="create",
            kind=audit_kind,
            name=stored.name,
            version=stored.version,
            detail={"dag_id": stored.dag_id, "run_id": run_id, "conf_keys": sorted(conf), **conf},
        )
        return airflow_runs.start_run(
            stored.dag_id, run_id=run_id, conf=conf, user=principal.username, note=note, now=now
        )
    except airflow_runs.NotRunnableError as exc:
        wait = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc), headers=wait) from None
    except SQLAlchemyError:
        log.warning("Airflow's metadata DB failed while triggering %s", stored.dag_id, exc_info=True)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "Airflow's metadata database did not answer; try again later",
            headers={"Retry-After": "5"},
        ) from None
