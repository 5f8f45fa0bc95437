"""The rule store: definitions, versions, compiled specs, audit log, catalogs and the automation log.

SQLAlchemy Core over SQLite (default) or Postgres, migrated by the Alembic scripts shipped in
``migrations/``. Start at :class:`RuleStore`; :func:`load_specs` is the DAG loader's fallback to its
last-known-good snapshot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rule_compiler._lazy import lazy_exports

if TYPE_CHECKING:
    from rule_compiler.store.definition_queries import DefinitionPage, DefinitionQuery
    from rule_compiler.store.memberships import Membership, Role
    from rule_compiler.store.migrate import VERSION_TABLE
    from rule_compiler.store.models import (
        ActionResult,
        ActionStatus,
        ApplyResult,
        ApplyStatus,
        Approval,
        ApprovalRequest,
        AuditAction,
        AuditEntry,
        DefinitionSummary,
        DefinitionWrite,
        RunLog,
        RunStatus,
        SpecRow,
        StoredDefinition,
        VersionInfo,
    )
    from rule_compiler.store.rule_store import RuleStore, StaleWriteError
    from rule_compiler.store.run_queries import RunPage, RunQuery
    from rule_compiler.store.snapshot import SpecLoad, load_specs

__getattr__ = lazy_exports(
    __name__,
    {
        "DefinitionPage": "definition_queries",
        "DefinitionQuery": "definition_queries",
        "Membership": "memberships",
        "Role": "memberships",
        "VERSION_TABLE": "migrate",
        "ActionResult": "models",
        "ActionStatus": "models",
        "ApplyResult": "models",
        "Approval": "models",
        "ApprovalRequest": "models",
        "ApplyStatus": "models",
        "AuditAction": "models",
        "AuditEntry": "models",
        "DefinitionSummary": "models",
        "DefinitionWrite": "models",
        "RunLog": "models",
        "RunStatus": "models",
        "SpecRow": "models",
        "StoredDefinition": "models",
        "VersionInfo": "models",
        "RunPage": "run_queries",
        "RunQuery": "run_queries",
        "SpecLoad": "snapshot",
        "load_specs": "snapshot",
        "RuleStore": "rule_store",
        "StaleWriteError": "rule_store",
    },
)

__all__ = [
    "VERSION_TABLE",
    "ActionResult",
    "ActionStatus",
    "ApplyResult",
    "ApplyStatus",
    "Approval",
    "ApprovalRequest",
    "AuditAction",
    "AuditEntry",
    "DefinitionPage",
    "DefinitionQuery",
    "DefinitionSummary",
    "DefinitionWrite",
    "Membership",
    "Role",
    "RuleStore",
    "RunLog",
    "RunPage",
    "RunQuery",
    "RunStatus",
    "SpecLoad",
    "SpecRow",
    "StaleWriteError",
    "StoredDefinition",
    "VersionInfo",
    "load_specs",
]
