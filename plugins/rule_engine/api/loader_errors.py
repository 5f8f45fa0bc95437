"""Which stored specs Airflow shows as placeholder DAGs, and why (for the health route).

The loader (``rule_engine.loader``) never hides a spec it cannot render: it serves a placeholder
DAG tagged ``render-error`` whose description is ``NOT RUNNABLE: <reason>``. The DAG processor
stores those in Airflow's metadata DB; this reads them back for the given dag ids.
"""

from __future__ import annotations

from collections.abc import Collection

RENDER_ERROR_TAG = "render-error"
_PREFIX = "NOT RUNNABLE: "


def render_errors(dag_ids: Collection[str]) -> dict[str, str]:
    """dag_id → reason, for those of ``dag_ids`` that Airflow holds as render-error placeholders."""
    if not dag_ids:
        return {}
    import sqlalchemy as sa
    from airflow.models.dag import DagModel, DagTag
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.execute(
            sa.select(DagModel.dag_id, DagModel.description)
            .join(DagTag, DagTag.dag_id == DagModel.dag_id)
            .where(DagTag.name == RENDER_ERROR_TAG, DagModel.dag_id.in_(list(dag_ids)))
            .order_by(DagModel.dag_id)
        ).all()
    return {dag_id: (description or "").removeprefix(_PREFIX) for dag_id, description in rows}
