"""The REST view inside Airflow: a FastAPI app mounted at ``/automations`` by the plugin.

``create_app()`` builds it; ``docs/api.md`` describes the routes, auth and roles. Only the
api-server imports this package (the plugin builds the app lazily), so DAG parsing never pays for it.
"""

from __future__ import annotations

from rule_engine.api.app import create_app

__all__ = ["create_app"]
