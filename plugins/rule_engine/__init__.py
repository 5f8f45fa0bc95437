"""The Airflow side of the rule engine: render compiled specs as DAGs and run their tasks.

Imported by name (it is installed with the project and lives under ``plugins/``, which every
Airflow process puts on ``sys.path``); ``plugins/.airflowignore`` keeps the plugin manager from
importing its modules one by one.
"""
