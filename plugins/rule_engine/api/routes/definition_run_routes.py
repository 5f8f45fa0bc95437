"""``GET /{name}/next-runs``, ``POST /{name}/trigger`` and ``POST /{name}/runs/{run_id}/rerun|cancel``
of a kind whose runs start from a trigger (rules and workflows): one router per kind, built from the
same functions. Re-run and cancel are :mod:`rule_engine.run_operations`, which the CLI shares."""

# The route functions are made inside a function: their annotations must be real objects (no
# `from __future__ import annotations`), so that FastAPI can read them.
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Path, Query, Request, status
from sqlalchemy.exc import SQLAlchemyError

from rule_compiler.clock import utcnow
from rule_compiler.raw_sources import raw_trigger_type
from rule_engine import run_operations
from rule_engine.api import airflow_runs
from rule_engine.api import definition_ops as ops
from rule_engine.api.deps import Editor, StoreDep, Viewer
from rule_engine.api.routes.error_responses import airflow_unavailable, errors
from rule_engine.api.run_trigger import refuse_inactive, start_audited_run, started_fields, trigger_responses
from rule_engine.api.schemas import NextRuns
from rule_engine.api.schemas_approvals import RunCancelled
from rule_engine.api.schemas_ops import RunRerun, RunStarted, TriggerRequest


def definition_run_router(kind: str, prefix: str, slug: str) -> APIRouter:
    """The run routes of ``kind`` under ``prefix`` (``/rules``); ``slug`` names its operations
    (``trigger_rule``, ``next_rule_runs``)."""
    noun = kind.replace("_", " ")
    router = APIRouter(prefix=prefix, tags=[prefix.removeprefix("/")])
    Name = Annotated[str, Path(max_length=200, description=f"the {noun}'s name (a slug)")]

    def next_runs(
        name: Name,
        principal: Viewer,
        store: StoreDep,
        count: Annotated[int, Query(ge=1, le=ops.MAX_NEXT_RUNS)] = 5,
    ) -> NextRuns:
        stored = store.get(organization=principal.organization, kind=kind, name=name)
        source = ops.expanded_source(store, stored)  # a definition built from a template: expanded
        schedule = ops.schedule_of(source)
        if schedule is None:
            trigger = raw_trigger_type(source)
            raise HTTPException(
                status.HTTP_409_CONFLICT, f"{noun} '{name}' has a {trigger} trigger: it has no schedule"
            )
        cron, timezone = schedule
        runs = ops.next_runs(cron, timezone, count, utcnow())
        return NextRuns(name=name, cron=cron, timezone=timezone, runs=runs)

    def trigger(
        name: Name,
        principal: Editor,
        store: StoreDep,
        request: Request,
        body: Annotated[TriggerRequest | None, Body()] = None,
    ) -> RunStarted:
        stored = store.get(organization=principal.organization, kind=kind, name=name)
        refuse_inactive(stored, prefix)
        asked = body or TriggerRequest()
        conf = airflow_runs.run_conf(raw_trigger_type(ops.expanded_source(store, stored)), asked.payload)
        started = start_audited_run(
            store=store,
            principal=principal,
            request=request,
            stored=stored,
            conf=conf,
            note=asked.note,
            what=noun,
            audit_kind="run",
        )
        return RunStarted(rule=name, **started_fields(started, stored, conf, principal))

    RunId = Annotated[
        str, Path(min_length=1, max_length=250, description=f"an Airflow run id of this {noun}")
    ]

    def rerun(name: Name, run_id: RunId, principal: Editor, store: StoreDep) -> RunRerun:
        done = run_operations.rerun_failed(
            store,
            organization=principal.organization,
            kind=kind,
            name=name,
            run_id=run_id,
            actor=principal.username,
        )
        from airflow.utils.helpers import build_airflow_dagrun_url

        return RunRerun(
            dag_id=done.dag_id,
            run_id=run_id,
            failed=done.failed,
            cleared=done.cleared,
            url=build_airflow_dagrun_url(done.dag_id, run_id),
        )

    def cancel(name: Name, run_id: RunId, principal: Editor, store: StoreDep) -> RunCancelled:
        try:
            done = run_operations.cancel(
                store,
                organization=principal.organization,
                kind=kind,
                name=name,
                run_id=run_id,
                actor=principal.username,
            )
        except SQLAlchemyError:
            raise airflow_unavailable("Airflow's metadata database did not answer; try again later") from None
        if done.tasks_ended is None:
            raise airflow_unavailable(
                "the run is cancelled (nothing more is applied) but Airflow's metadata database did not "
                "answer; its tasks end when they next check"
            )
        return RunCancelled(run_id=run_id, cancelled=True, tasks_ended=done.tasks_ended)

    router.add_api_route(
        "/{name}/runs/{run_id}/rerun",
        rerun,
        methods=["POST"],
        name=f"rerun_{slug}_run",
        description="Run a finished run's failed actions again, in the same run: the items they had "
        "already acted on are skipped (same idempotency keys), the others acted on. Editors; audited. "
        "409 while the run is queued or running, for a cancelled run, or when nothing failed.",
        responses=errors(409),
    )
    router.add_api_route(
        "/{name}/runs/{run_id}/cancel",
        cancel,
        methods=["POST"],
        name=f"cancel_{slug}_run",
        description=f"End a queued, running or waiting run of the {noun}: marked cancelled in the "
        "automation log first (no action or node applies anything after it), then failed in Airflow "
        "(its running, deferred and waiting tasks end). Editors; audited. 409 once the run has ended.",
        responses=errors(409),
    )
    router.add_api_route(
        "/{name}/next-runs",
        next_runs,
        methods=["GET"],
        name=f"next_{slug}_runs",
        description=f"When a scheduled (or data) {noun} runs next, in its time zone.",
        responses=errors(409),
    )
    router.add_api_route(
        "/{name}/trigger",
        trigger,
        methods=["POST"],
        name=f"trigger_{slug}",
        status_code=status.HTTP_201_CREATED,
        description="Start a run now through Airflow; ``payload`` becomes the run's conf (audited).",
        responses=trigger_responses(noun),
    )
    return router
