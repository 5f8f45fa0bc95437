"""The one file Airflow's plugin manager imports for the rule engine."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin


class RuleEnginePlugin(AirflowPlugin):
    """Registers the rule engine with Airflow (the REST view arrives with its issue)."""

    name = "rule_engine"
