"""Helpers shared by the CLI's commands: errors, the store, catalogs, file lists and problem output."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rule_compiler.catalog import Catalog
from rule_compiler.errors import (
    DefinitionError,
    DefinitionLoadError,
    Issue,
    RuleValidationError,
    StoreError,
    UsageError,
)
from rule_compiler.loading import expand_paths, read_definition_file
from rule_compiler.store import RuleStore

#: Above this many files, progress is shown as a counter.
PROGRESS_THRESHOLD = 10


class CliError(UsageError):
    """A usage or environment problem (exit code 2)."""


def store_from_args(args: argparse.Namespace) -> RuleStore:
    return RuleStore(args.store)


def actor_from_args(args: argparse.Namespace) -> str:
    return str(getattr(args, "actor", None) or os.environ.get("USER") or getpass.getuser() or "cli")


class Catalogs:
    """Catalogs by organization: from ``--catalog``, else from the store (read once each)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self._file: Catalog | None = read_catalog(args.catalog) if getattr(args, "catalog", None) else None
        self._args = args
        self._cache: dict[str, Catalog | None] = {}

    def for_org(self, organization: Any) -> Catalog | None:
        if self._file is not None:
            return self._file
        if not isinstance(organization, str):
            return None
        if organization not in self._cache:
            try:
                raw = store_from_args(self._args).get_catalog(organization)
            except StoreError as exc:
                raise CliError(f"cannot read the catalog from the rule store: {exc}") from None
            self._cache[organization] = Catalog.model_validate(raw) if raw is not None else None
        return self._cache[organization]


def read_catalog(path: Path) -> Catalog:
    try:
        data = read_definition_file(path)
        return Catalog.model_validate(data)
    except DefinitionLoadError as exc:
        raise CliError(str(exc)) from None
    except ValidationError as exc:
        raise CliError(f"{path}: not a valid catalog:\n{exc}") from None


def definition_files(paths: list[Path]) -> list[Path]:
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise CliError(f"no such file or folder: {', '.join(missing)}")
    files = expand_paths(paths)
    if not files:
        raise CliError("no .yaml, .yml or .json files found")
    return files


def progress(index: int, total: int) -> str:
    return f"[{index}/{total}] " if total > PROGRESS_THRESHOLD else ""


def issues_of(exc: DefinitionError) -> list[Issue]:
    """The problems an invalid definition has (a load error is one problem at ``(document)``)."""
    if isinstance(exc, RuleValidationError):
        return list(exc.issues)
    if isinstance(exc, DefinitionLoadError):
        return [exc.issue]
    return [Issue("(document)", str(exc))]


def print_invalid(path: Path, exc: DefinitionError) -> None:
    issues = issues_of(exc)
    where = f"{path}:{exc.line}" if isinstance(exc, DefinitionLoadError) and exc.line else str(path)
    print(f"✗ {where}: {len(issues)} problem{'s' if len(issues) != 1 else ''}")
    for issue in issues:
        print(f"    {issue.path}: {issue.message}")


def print_warnings(path: Path, warnings: Iterable[Issue]) -> None:
    """Problems that do not block a definition, on stderr: ``warning: <json path>: <message> (<file>)``."""
    for issue in warnings:
        print(f"warning: {issue.path}: {issue.message} ({path})", file=sys.stderr)
