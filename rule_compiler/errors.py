"""The project's exception tree.

Every error raised on purpose by the rule engine derives from :class:`RuleEngineError`, so callers
can catch the whole family, or one branch of it. A class defined in another module is named with
its module (under ``rule_compiler.`` unless it starts with ``rule_engine.``); the REST view answers
each branch with its own status (``rule_engine.api.error_handlers.ANSWERS``, listed in docs/api.md)::

    RuleEngineError
    ├── DefinitionError                         a definition could not be accepted
    │   ├── DefinitionLoadError                 not readable YAML/JSON (bad syntax, unsafe tags)
    │   └── RuleValidationError                 it parsed, but is wrong: every problem at its JSON path
    ├── InvalidValueError                       one value is not acceptable (also a ValueError)
    │   ├── catalog.FieldResolutionError        a field path names a hop or column the catalog lacks
    │   ├── catalog_grants.GrantsError          the grant statements cannot be written for these names
    │   ├── conditions.durations.DurationError  not a duration such as '90m' or '3d'
    │   ├── conditions.regex.UnsafePatternError  a pattern `matches` does not accept
    │   ├── runtime.preferences.PreferencesError  a recipient's notification preferences
    │   ├── sql_check.UnsafeQueryError          SQL that is not one read-only query
    │   ├── storage_paths.StoragePathError      a storage folder that could leave its root
    │   └── template_limits.TemplateCheckError  a template is not acceptable (syntax, unknown name, ...)
    │       └── template_limits.TemplateLimitError  a template would pass one of its limits
    ├── CompileError                            a valid definition could not be lowered (a bug: report it)
    │   ├── conditions.evaluator.ConditionCompileError  a condition validation should have rejected
    │   │   └── conditions.sql.NotTranslatableError    an event-only condition asked for as SQL
    │   └── definitions.conditions.UnexpandedTemplateError  a template use was not expanded
    ├── SpecError                               a stored compiled spec is unreadable (or of an unknown IR)
    ├── StoreError                              the rule store failed
    │   ├── StoreUnavailableError               it could not be reached (the loader then serves its snapshot)
    │   ├── NotFoundError                       no such definition/version
    │   └── ConflictError                       a write lost a race or broke a uniqueness rule
    │       ├── store.rule_store.StaleWriteError  a guarded write found the definition changed (If-Match)
    │       ├── AlreadyExistsError              a create found the name taken
    │       └── BrokenDependentsError           a change would make stored definitions using it invalid
    ├── UsageError                              the caller asked for something that cannot be done as asked
    │   ├── cli.common.CliError                 a CLI usage or environment problem (exit code 2)
    │   ├── rule_tester.RuleTestError           the rule cannot be tested with this input
    │   │   └── rule_tester.EventError          the test event is not a valid event
    │   └── rule_engine.api.yaml_bodies.YamlBodyError  a REST YAML body is refused
    ├── RefusedError                            well-formed, but refused in the current state (a conflict)
    │   ├── events.outbox_rows.EventConflictError    a client event id was already used for another event
    │   ├── runtime.webhook_requests.RedeliveryRefusedError  a delivery cannot be redelivered (a ValueError)
    │   └── rule_engine.api.airflow_runs.NotRunnableError  Airflow cannot start the run now
    ├── QuotaExceededError                      an organization's quota refuses it (HTTP 429; Retry-After)
    │   ├── store.org_limits.ActiveDefinitionsQuotaError  one more active definition passes the quota (422)
    │   └── rule_engine.api.quotas.EventQuotaError  the organization pushed its events of this minute
    ├── ConfigurationError                      the deployment lacks something the request needs
    │   └── AppDatabaseError                    an application database's Airflow connection cannot be used
    │       ├── ConnectionNotFoundError         no Airflow connection has that id
    │       └── ConnectionUnusableError         it exists, but is not a SQL database
    ├── ActionError                             an action failed at run time
    │   ├── RetryableActionError                worth retrying: timeouts, lost connections, 5xx, 429
    │   │   └── runtime.webhook_requests.WebhookRetryableError  a webhook delivery worth retrying
    │   └── PermanentActionError                retrying cannot help: bad data, constraint violations, 4xx
    │       └── netpolicy.BlockedURLError       a URL the network policy refuses
    ├── runtime.author_sql.AuthorSqlError       author SQL cannot run here as configured
    │   └── runtime.data_query.DataQueryError   a data trigger's query cannot run or be checked
    ├── reporting.report_errors.ReportError              a report could not run or render
    │   ├── reporting.report_errors.ReportParameterError  a parameter override is unknown or of the wrong type
    │   ├── reporting.report_errors.ReportQueryError     a report query was refused, failed or timed out
    │   │   └── reporting.queries.ReportQueryRefusedError  refused as it is: the SQL must change
    │   ├── reporting.report_errors.ReportRenderError    a format could not be rendered
    │   └── reporting.report_errors.ReportAlertError     the alert check cannot be evaluated
    ├── events.capture.CaptureError             change capture cannot be installed on a table
    ├── catalog_reflect.ReflectionError         a database could not be reflected into a catalog
    └── runtime.record_effects._MissingRowError        internal: the row to change is gone (never escapes)

tests/test_exception_tree.py checks that every exception class of ``rule_compiler`` and
``rule_engine`` is in this tree, under its own base class.
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


class BrokenDependentsError(ConflictError):
    """A change would make stored definitions that use it invalid; ``issues`` are their problems, each
    at its path in the stored definition, the message naming it (HTTP 409; nothing is stored)."""

    def __init__(self, message: str, issues: Iterable[Issue]) -> None:
        self.issues: tuple[Issue, ...] = tuple(issues)
        super().__init__(message)


class InvalidValueError(RuleEngineError, ValueError):
    """One value is not acceptable; the message says why. Also a ValueError: pydantic validators turn
    it into a validation problem, and ``except ValueError`` callers keep working."""


class UsageError(RuleEngineError):
    """The caller asked for something that cannot be done as asked (CLI usage, unusable test input)."""


class RefusedError(RuleEngineError):
    """The request is well-formed, but refused in the current state (a conflict; the message says why)."""


class QuotaExceededError(RuleEngineError):
    """A limit a platform admin set for the organization refuses the request (docs/production.md).
    ``issues`` say where (when a definition is refused); ``retry_after`` seconds when waiting helps."""

    issues: tuple[Issue, ...] = ()
    retry_after: int | None = None


class ConfigurationError(RuleEngineError):
    """The deployment lacks something the request needs (an Airflow connection that is not defined)."""


class AppDatabaseError(ConfigurationError):
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
