"""Every table of the rule store on one :data:`metadata`: the modules that define them, gathered (the
migrations' environment compares against it)."""

from __future__ import annotations

from rule_compiler.store import analytics_tables, maintenance_tables
from rule_compiler.store.tables import metadata

__all__ = ["TABLE_MODULES", "metadata"]

#: The modules besides :mod:`rule_compiler.store.tables` that add tables to :data:`metadata`.
TABLE_MODULES = (analytics_tables, maintenance_tables)
