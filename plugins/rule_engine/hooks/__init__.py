"""Hooks: the only code that turns Airflow connections into clients."""
