"""The project's exception tree.

Every error raised on purpose by the rule engine derives from :class:`RuleEngineError`, so callers
can catch the whole family, or one branch of it::

    RuleEngineError
    ├── DefinitionError            a definition could not be accepted
    │   ├── DefinitionLoadError    the file or body is not readable YAML/JSON (bad syntax, unsafe tags)
    │   └── RuleValidationError    it parsed, but is wrong; carries every problem, each with a JSON path
    ├── CompileError               a valid definition could not be lowered (a bug: report it)
    ├── SpecError                  a stored compiled spec is unreadable or from an unknown IR version
    ├── StoreError                 the rule store failed
    │   ├── StoreUnavailableError  it could not be reached (the loader then serves its snapshot)
    │   ├── NotFoundError          no such definition/version
    │   └── ConflictError          a write lost a race or broke a uniqueness rule
    │       └── AlreadyExistsError a create found the name taken
    ├── AppDatabaseError           an application database's Airflow connection cannot be used
    │   ├── ConnectionNotFoundError    no Airflow connection has that id
    │   └── ConnectionUnusableError    it exists, but is not a SQL database
    └── ActionError                an action failed at run time
        ├── RetryableActionError   worth retrying: timeouts, lost connections, 5xx, 429
        └── PermanentActionError   retrying cannot help: bad data, constraint violations, 4xx
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class RuleEngineError(Exception):
    """Base of every error the rule engine raises on purpose."""


class DefinitionError(RuleEngineError):
    """A definition could not be accepted."""


@dataclass(frozen=True, order=True)
class Issue:
    """One problem in a definition: where it is (a JSON path such as ``actions[1].values``) and why."""

    path: str
    message: str
    code: str = "invalid"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message, "code": self.code}


class DefinitionLoadError(DefinitionError):
    """The document is not readable: YAML/JSON syntax, an unsafe tag, or not a mapping."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None) -> None:
        self.source = source
        self.line = line
        where = source or "<input>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}")
        self.issue = Issue(path="(document)", message=message, code="load")


class RuleValidationError(DefinitionError):
    """A definition is wrong. ``issues`` lists every problem found, sorted by path."""

    def __init__(self, issues: Iterable[Issue], *, source: str | None = None) -> None:
        self.issues: tuple[Issue, ...] = tuple(sorted(set(issues), key=lambda i: (i.path, i.message)))
        self.source = source
        count = len(self.issues)
        head = f"{source}: " if source else ""
        lines = "\n".join(f"  - {issue}" for issue in self.issues)
        super().__init__(f"{head}{count} problem{'s' if count != 1 else ''} found:\n{lines}")

    def as_list(self) -> list[dict[str, str]]:
        return [issue.as_dict() for issue in self.issues]


class CompileError(RuleEngineError):
    """A validated definition could not be compiled. This is a bug in the compiler."""


class SpecError(RuleEngineError):
    """A stored compiled spec cannot be read (corrupt JSON, unknown IR version, bad hash)."""


class StoreError(RuleEngineError):
    """The rule store failed."""


class StoreUnavailableError(StoreError):
    """The rule store could not be reached."""


class NotFoundError(StoreError):
    """No such definition, version or catalog."""


class ConflictError(StoreError):
    """A write conflicted with another one (name taken, stale version)."""


class AlreadyExistsError(ConflictError):
    """A create found the name taken by a definition that is not deleted (HTTP 409)."""


class AppDatabaseError(RuleEngineError):
    """An application database cannot be used through its Airflow connection ``conn_id``.

    Raised by the plugin's one connection seam (``rule_engine.hooks.app_database``). ``reason``
    continues "connection '<id>' ..." (``is not defined in Airflow``), so each caller can word its
    own answer around it (a REST route: 503 and "ask the platform administrators"; the CLI: exit 2).
    """

    def __init__(self, conn_id: str, reason: str, message: str | None = None) -> None:
        self.conn_id = conn_id
        self.reason = reason
        super().__init__(message or f"connection '{conn_id}' {reason}")


class ConnectionNotFoundError(AppDatabaseError):
    """No Airflow connection (env var, secrets backend or metadata DB) has this id."""

    def __init__(self, conn_id: str) -> None:
        super().__init__(
            conn_id,
            "is not defined in Airflow",
            f"Airflow connection '{conn_id}' is not defined (set AIRFLOW_CONN_{conn_id.upper()} "
            "or add it with `airflow connections add`)",
        )


class ConnectionUnusableError(AppDatabaseError):
    """The connection exists, but no SQL database engine can be made from it (its type)."""

    def __init__(self, conn_id: str, why: str) -> None:
        super().__init__(conn_id, f"cannot be used: {why}")


class ActionError(RuleEngineError):
    """An action failed at run time."""


class RetryableActionError(ActionError):
    """A transient failure: the task should be retried with backoff."""


class PermanentActionError(ActionError):
    """A failure that a retry cannot fix; fail now and say why."""
