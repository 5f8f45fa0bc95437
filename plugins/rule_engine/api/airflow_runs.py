"""What the REST view reads from and starts in Airflow's metadata DB (it runs inside the api-server).

- :func:`run_conf`, :func:`runnable_check`, :func:`start_run`: a rule's run, started the way
  Airflow's own trigger endpoint does (``airflow.api.common.trigger_dag``), refused while Airflow
  does not hold the rule's current version (not parsed yet, an import error, paused);
- :func:`paused_among` / :func:`with_airflow_pause`: a rule whose DAG is paused in the Airflow UI
  reads as inactive (one query for a whole page).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

from rule_compiler.errors import RefusedError
from rule_engine.api.schemas import RuleSummary

log = logging.getLogger("rule_engine.api")

#: Seconds after which a DAG the DAG processor has not parsed yet is worth asking for again.
PARSE_RETRY_AFTER = 30
#: The largest run ``conf`` a trigger may pass (it is stored in Airflow's metadata DB).
MAX_PAYLOAD_BYTES = 64 * 1024
#: The most outbox events one manual run of an event rule may re-process.
MAX_EVENT_IDS = 1_000
MAX_OUTBOX_ID = 2**63 - 1

S = TypeVar("S", bound=RuleSummary)


class NotRunnableError(RefusedError):
    """Airflow cannot start the rule's run now; ``retry_after`` when waiting helps."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class StartedRun:
    """A run Airflow queued."""

    dag_id: str
    run_id: str
    state: str
    logical_date: dt.datetime | None
    run_after: dt.datetime
    url: str


def run_conf(trigger_type: str, payload: dict[str, Any] | None) -> dict[str, Any]:
    """The run's ``conf`` from a trigger payload; 422 issues at ``payload...`` paths when it is wrong.

    An event rule's run needs ``{"event_ids": [...]}`` (outbox ids, as strings or integers) and
    nothing else; any other rule takes any JSON object. Either is capped at ``MAX_PAYLOAD_BYTES``.
    """
    payload = payload or {}
    size = len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_PAYLOAD_BYTES:
        _invalid(("payload",), f"the payload is {size} bytes; at most {MAX_PAYLOAD_BYTES}", "too_large")
    if trigger_type != "event":
        return dict(payload)
    for key in payload:
        if key != "event_ids":
            _invalid(("payload", key), "an event rule's run takes only `event_ids`", "extra_forbidden")
    ids = payload.get("event_ids")
    if not isinstance(ids, list) or not ids:
        _invalid(
            ("payload", "event_ids"),
            'an event rule\'s run needs the outbox ids to process: {"payload": {"event_ids": ["17", "18"]}}',
            "missing" if ids is None else "list_type",
        )
    if len(ids) > MAX_EVENT_IDS:
        _invalid(("payload", "event_ids"), f"at most {MAX_EVENT_IDS} event ids per run", "too_long")
    for index, value in enumerate(ids):
        if _outbox_id(value) is None:
            _invalid(("payload", "event_ids", index), "an outbox id: a positive integer", "event_id")
    return {"event_ids": list(dict.fromkeys(str(_outbox_id(value)) for value in ids))}


def _outbox_id(value: Any) -> int | None:
    """The outbox id ``value`` names (an integer or a string of digits), or None."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_OUTBOX_ID:
        return value
    return None


def _invalid(loc: tuple[str | int, ...], message: str, kind: str) -> NoReturn:
    from fastapi.exceptions import RequestValidationError

    raise RequestValidationError([{"loc": ("body", *loc), "msg": message, "type": kind}])


def runnable_check(rule: str, dag_id: str, spec_hash: str) -> None:
    """Raise :class:`NotRunnableError` unless Airflow holds ``spec_hash`` of the DAG, unpaused."""
    import sqlalchemy as sa
    from airflow.models.dag import DagModel
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session

    not_parsed = (
        f"Airflow has not loaded the DAG of rule '{rule}' ({dag_id}) yet: the DAG processor "
        f"parses new and changed rules within about {PARSE_RETRY_AFTER} s; try again then"
    )
    with create_session() as session:
        model = session.scalar(sa.select(DagModel).where(DagModel.dag_id == dag_id))
        if model is None or model.is_stale:
            raise NotRunnableError(not_parsed, PARSE_RETRY_AFTER)
        if model.has_import_errors:
            raise NotRunnableError(
                f"the DAG file of rule '{rule}' has import errors in Airflow (see its DAG import errors)"
            )
        if model.is_paused:
            raise NotRunnableError(
                f"rule '{rule}' is paused in Airflow (its DAG {dag_id} was paused in the UI): activate "
                f'it with PATCH /rules/{rule} {{"active": true}} or unpause the DAG'
            )
        serialized = SerializedDagModel.get(dag_id, session=session)
        data = serialized.data if serialized is not None else None
        if not isinstance(data, dict):
            raise NotRunnableError(not_parsed, PARSE_RETRY_AFTER)
        if spec_hash not in str(data.get("dag", {}).get("doc_md") or ""):
            raise NotRunnableError(
                f"Airflow still holds an older version of rule '{rule}'; the DAG processor loads the "
                f"current one within about {PARSE_RETRY_AFTER} s: try again then",
                PARSE_RETRY_AFTER,
            )


def new_run_id(now: dt.datetime) -> str:
    """A manual run id as Airflow makes them, with a random suffix so two triggers never collide."""
    from airflow.utils.types import DagRunType

    return DagRunType.MANUAL.generate_run_id(suffix=f"{now.isoformat()}_{secrets.token_urlsafe(6)}")


def start_run(
    dag_id: str, *, run_id: str, conf: dict[str, Any], user: str, note: str | None, now: dt.datetime
) -> StartedRun:
    """Queue a manual run through ``trigger_dag`` (REST_API, ``user`` as the triggering user)."""
    from airflow.api.common.trigger_dag import trigger_dag
    from airflow.exceptions import DagNotFound, DagRunAlreadyExists
    from airflow.utils.helpers import build_airflow_dagrun_url
    from airflow.utils.types import DagRunTriggeredByType

    try:
        run = trigger_dag(
            dag_id,
            triggered_by=DagRunTriggeredByType.REST_API,
            triggering_user_name=user,
            run_id=run_id,
            run_after=now,
            conf=conf,
            note=note,
        )
    except DagNotFound:
        raise NotRunnableError(f"Airflow does not know DAG {dag_id} yet", PARSE_RETRY_AFTER) from None
    except DagRunAlreadyExists:
        raise NotRunnableError(f"run {run_id} of {dag_id} exists already; trigger again") from None
    except ValueError as exc:  # e.g. the DAG does not allow manual runs
        raise NotRunnableError(str(exc)) from None
    if run is None:  # pragma: no cover - trigger_dag returns None only for a missing DAG, raised above
        raise NotRunnableError(f"Airflow did not start a run of {dag_id}", PARSE_RETRY_AFTER)
    return StartedRun(
        dag_id=dag_id,
        run_id=run.run_id,
        state=str(run.state),
        logical_date=run.logical_date,
        run_after=run.run_after,
        url=build_airflow_dagrun_url(dag_id, run.run_id),
    )


def paused_among(dag_ids: Collection[str]) -> set[str]:
    """Those of ``dag_ids`` that Airflow holds paused (one query)."""
    if not dag_ids:
        return set()
    import sqlalchemy as sa
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.scalars(
            sa.select(DagModel.dag_id).where(DagModel.dag_id.in_(list(dag_ids)), DagModel.is_paused.is_(True))
        )
        return set(rows)


def paused_in_airflow(dag_id: str) -> bool:
    """Whether Airflow holds the DAG paused (False when its metadata DB does not answer)."""
    try:
        return dag_id in paused_among([dag_id])
    except Exception:
        log.warning("could not read the pause state of %s from Airflow", dag_id, exc_info=True)
        return False


def with_airflow_pause(items: Sequence[S]) -> list[S]:
    """``items`` with ``active: false`` where the rule's DAG is paused in Airflow.

    Airflow's metadata DB not answering is logged and the store's flag shown.
    """
    try:
        paused = paused_among([item.dag_id for item in items if item.active])
    except Exception:
        log.warning("could not read pause states from Airflow's metadata DB", exc_info=True)
        return list(items)
    return [item.model_copy(update={"active": False}) if item.dag_id in paused else item for item in items]
