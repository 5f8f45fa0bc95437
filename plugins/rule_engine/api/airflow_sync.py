"""After a write through the REST view, tell Airflow at once instead of waiting for its next parse.

Two things, both in Airflow's metadata DB (the REST app runs inside the api-server, where that is
allowed):

- a ``DagPriorityParsingRequest`` for the loader file (``dags/automation_dags.py``): the DAG processor
  parses it next, ahead of its 30-second cycle (what ``PUT /api/v2/parseDagFile/{token}`` does);
- the DAG's pause state follows the rule's ``active`` flag (activate → unpause, deactivate or delete →
  pause), for DAGs Airflow already knows; a new DAG starts paused or not from its spec.

Failures are logged, never raised: the write already happened, and the regular parse picks it up.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("rule_engine.api")

LOADER_FILE_ENV = "AUTOMATION_LOADER_FILE"
DEFAULT_LOADER_FILE = "automation_dags.py"
DEFAULT_BUNDLE = "dags-folder"


@dataclass(frozen=True)
class RuleChange:
    """A stored change: the rule's DAG, and whether it should run now (None: it was deleted)."""

    organization: str
    name: str
    dag_id: str
    active: bool | None


def notify_airflow(change: RuleChange) -> None:
    """Ask for a re-parse of the loader file and sync the DAG's pause state; log any failure."""
    try:
        _notify(change)
    except Exception:
        log.warning(
            "could not notify Airflow of the change to %s; its DAG updates on the next parse (about 30 s)",
            change.dag_id,
            exc_info=True,
        )


def request_loader_parse(session: Any) -> str:
    """Queue a priority parse of the loader file in ``session`` (once); the file's relative path."""
    import sqlalchemy as sa
    from airflow.models.dag import DagModel
    from airflow.models.dagbag import DagPriorityParsingRequest

    loader_file = os.environ.get(LOADER_FILE_ENV) or DEFAULT_LOADER_FILE
    known = session.execute(
        sa.select(DagModel.bundle_name).where(DagModel.relative_fileloc == loader_file).limit(1)
    ).scalar_one_or_none()
    bundle = known or DEFAULT_BUNDLE
    request_id = hashlib.md5(f"{bundle}:{loader_file}".encode(), usedforsecurity=False).hexdigest()
    if session.get(DagPriorityParsingRequest, request_id) is None:
        session.add(DagPriorityParsingRequest(bundle_name=bundle, relative_fileloc=loader_file))
    return loader_file


def _notify(change: RuleChange) -> None:
    import sqlalchemy as sa
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        loader_file = request_loader_parse(session)
        session.execute(
            sa.update(DagModel)
            .where(DagModel.dag_id == change.dag_id)
            .values(is_paused=not bool(change.active))
        )
    log.info("asked Airflow to re-parse %s for %s", loader_file, change.dag_id)
