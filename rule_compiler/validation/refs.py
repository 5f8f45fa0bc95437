"""Catalog look-ups for validation: each reports a JSON-path issue when a name is not allowed."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from rule_compiler.catalog import Catalog, Connection, Table
from rule_compiler.errors import Issue

#: kind (``report``, ``workflow``) → the organization's stored definitions of that kind: their names, or
#: a mapping name → source as written where the checks read what a target says (a workflow's trigger, a
#: report's parameters, the workflows a workflow starts).
StoredNames = Mapping[str, Collection[str]]


class CatalogRefs:
    """Catalog look-ups that report a JSON-path issue when a name is not allowed.

    ``stored``: the names of the organization's stored definitions by kind, for actions that start one
    (``generate_report``, ``trigger_workflow``); None when the caller did not look them up.
    """

    def __init__(
        self, organization: str, catalog: Catalog | None, *, stored: StoredNames | None = None
    ) -> None:
        self.organization = organization
        self.catalog = catalog
        self.stored = stored

    def stored_definition(self, kind: str, name: str, path: str, issues: list[Issue]) -> bool:
        """Whether the organization has a stored ``kind`` named ``name``; an issue at ``path`` if not.

        Fails closed: when the stored names were not given, nothing can be started.
        """
        if self.stored is None:
            issues.append(
                Issue(
                    path,
                    f"the stored {kind}s of organization '{self.organization}' were not looked up, so "
                    f"{kind} '{name}' cannot be checked; validate against the rule store",
                    "reference",
                )
            )
            return False
        names = self.stored.get(kind, ())
        if name in names:
            return True
        known = ", ".join(sorted(names)) or "none"
        issues.append(
            Issue(
                path,
                f"{kind} '{name}' is not stored in organization '{self.organization}' "
                f"(its {kind}s: {known}); apply it first",
                "reference",
            )
        )
        return False

    def stored_source(self, kind: str, name: str, path: str) -> Mapping[str, Any] | Issue:
        """The stored source of a ``kind`` named ``name`` (known to be stored), or the issue at ``path``
        saying it was not looked up (only names were): fails closed."""
        names = self.stored.get(kind, ()) if self.stored is not None else ()
        source = names.get(name) if isinstance(names, Mapping) else None
        if isinstance(source, Mapping):
            return source
        message = (
            f"what {kind} '{name}' of organization '{self.organization}' says was not looked up (only its "
            "name), so this cannot be checked; validate against the rule store"
        )
        return Issue(path, message, "reference")

    def connection(self, conn_id: str, path: str, issues: list[Issue], kind: str) -> Connection | None:
        if self.catalog is None:
            issues.append(
                Issue(
                    path,
                    f"organization '{self.organization}' has no catalog yet, so connection "
                    f"'{conn_id}' cannot be checked; apply one with "
                    "`rule-compiler catalog apply FILE`",
                    "catalog",
                )
            )
            return None
        found = self.catalog.connections.get(conn_id)
        if found is None:
            allowed = ", ".join(sorted(self.catalog.connections)) or "none"
            issues.append(
                Issue(
                    path,
                    f"connection '{conn_id}' is not in the catalog of organization "
                    f"'{self.organization}' (allowed: {allowed})",
                    "catalog",
                )
            )
            return None
        if found.kind != kind:
            issues.append(
                Issue(
                    path,
                    f"connection '{conn_id}' is a {found.kind} connection; this needs a {kind} connection",
                    "catalog",
                )
            )
            return None
        return found

    def table(
        self, conn_id: str, table: str, path: str, issues: list[Issue]
    ) -> tuple[Connection, Table] | None:
        connection = self.connection(conn_id, path.rsplit(".", 1)[0] + ".connection", issues, "database")
        if connection is None:
            return None
        found = connection.tables.get(table)
        if found is None:
            allowed = ", ".join(sorted(connection.tables)) or "none"
            issues.append(
                Issue(
                    path,
                    f"table '{table}' is not in the catalog for connection '{conn_id}' "
                    f"(allowed tables: {allowed})",
                    "catalog",
                )
            )
            return None
        return connection, found
