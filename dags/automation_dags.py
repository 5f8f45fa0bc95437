"""Airflow DAG file: renders every automation (rule) stored in the rule engine as a dag.

Thin on purpose: specs were validated and compiled at registration; this only reads and renders.
"""

from rule_engine.loader import publish

publish(globals())
