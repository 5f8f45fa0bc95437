"""The records hook of the operators: the application-database seam under its operators' name.

Connection id → engine, the process-wide engine cache and the error mapping live in one place,
:mod:`rule_engine.hooks.app_database`; this module keeps the name the operators import.
"""

from __future__ import annotations

from rule_engine.hooks.app_database import AppDatabaseHook, engine_for

#: The operators' name of :class:`~rule_engine.hooks.app_database.AppDatabaseHook`.
RecordsHook = AppDatabaseHook

__all__ = ["RecordsHook", "engine_for"]
