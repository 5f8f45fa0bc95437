"""The one file Airflow's plugin manager imports for the rule engine.

Every Airflow process imports it (scheduler, DAG processor, workers), so it stays light: the REST
app (``rule_engine.api``, FastAPI routes, the store) is built only when something reads
``fastapi_apps`` — the api-server when it mounts plugin apps, or ``/api/v2/plugins``.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin
from rule_engine.preload import preload_listener
from rule_engine.run_notes import run_note_listener


class RuleEnginePlugin(AirflowPlugin):
    """Registers the rule engine's REST view at ``/automations`` (docs at ``/automations/docs``), its pages
    in Airflow's UI (an "Automations" entry in the nav, an "Automation" tab on DAGs and DAG runs), the
    listener that preloads the task modules in the scheduler (``rule_engine.preload``) and the one
    that notes rule runs that matched nothing (``rule_engine.run_notes``)."""

    name = "rule_engine"
    listeners = [preload_listener, run_note_listener]
    #: The pages Airflow's UI shows in an iframe (ADR 0016), served by the REST view at /automations/ui/.
    external_views = [
        {
            "name": "Automations",
            "href": "/automations/ui/?page=overview",
            "destination": "nav",
            "url_route": "automations",
            "nav_top_level": True,
            "icon": "/automations/ui/automations.svg",
        },
        {  # Airflow shows it on every DAG: the page says so on a DAG that is not an automation
            "name": "Automation",
            "href": "/automations/ui/?page=definition&dag_id={DAG_ID}",
            "destination": "dag",
            "url_route": "automation",
        },
        {  # Airflow shows it on every DAG run: the page says so on a run that is not an automation's
            "name": "Automation",
            "href": "/automations/ui/?page=run&dag_id={DAG_ID}&run_id={RUN_ID}",
            "destination": "dag_run",
            "url_route": "automation-run",
        },
    ]
    _apps: list[dict[str, Any]] | None = None

    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]  # lazy, where a list is declared
        if self._apps is None:
            from rule_engine.api.app import mounted_app_entry

            self._apps = [mounted_app_entry()]
        return self._apps
