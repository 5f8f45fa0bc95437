"""Scheduled reports at run time: queries streamed to CSV files, rendered to csv/xlsx/html/pdf with
charts, and the alert check — pure (no Airflow), shared by the report DAG's operators and
``rule-compiler report run``.

A run works in one folder (:func:`~rule_compiler.reporting.workdir.run_workdir`): each query's rows go
to ``<query id>.csv`` and a ``manifest.json`` describes them; each format is rendered from those
files into ``<report name>.<format>`` without loading every row into memory.
"""
