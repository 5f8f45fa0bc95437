"""Rendering: compiled specs become Airflow DAGs."""

from rule_engine.render.dag import render_dag, render_error_dag

__all__ = ["render_dag", "render_error_dag"]
