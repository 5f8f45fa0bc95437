"""Where things live, from the environment: the rule store URL and the loader's snapshot file."""

from __future__ import annotations

import os
from pathlib import Path

STORE_URL_ENV = "AUTOMATION_STORE_URL"
SNAPSHOT_ENV = "AUTOMATION_SNAPSHOT_PATH"


def home() -> Path:
    """The folder for local state: ``$AIRFLOW_HOME`` when set, else ``./.airflow``."""
    return Path(os.environ.get("AIRFLOW_HOME") or Path.cwd() / ".airflow")


def store_url() -> str:
    """``$AUTOMATION_STORE_URL``, or a SQLite file beside Airflow's own database."""
    return os.environ.get(STORE_URL_ENV) or f"sqlite:///{home() / 'automation.db'}"


def snapshot_path() -> Path:
    """The loader's last-known-good copy of the compiled specs."""
    return Path(os.environ.get(SNAPSHOT_ENV) or home() / "rule_engine" / "specs-snapshot.json")


MAX_MATCHES_ENV = "AUTOMATION_MAX_MATCHES"
DEFAULT_MAX_MATCHES = 10_000


def max_matches() -> int:
    """How many rows (or events) one run acts on at most (``$AUTOMATION_MAX_MATCHES``, default 10,000);
    a scheduled rule's other matching rows wait for its next run."""
    return _positive_int(MAX_MATCHES_ENV, DEFAULT_MAX_MATCHES)


WAITING_RUNS_ENV = "AUTOMATION_WAITING_RUNS"
DEFAULT_WAITING_RUNS = 256


def waiting_runs() -> int:
    """How many runs of one workflow with a delay or approval node may be active at once, each carrying
    one item (``$AUTOMATION_WAITING_RUNS``, default 256; read when DAGs are parsed). Items beyond it
    queue: their runs start as waiting runs end."""
    return _positive_int(WAITING_RUNS_ENV, DEFAULT_WAITING_RUNS)


def _positive_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name} must be a positive whole number, not {value!r}")
    return int(value)


INCLUDE_DIR_ENV = "AUTOMATION_INCLUDE_DIR"


def include_dir() -> Path:
    """Where report SQL files and templates live: ``$AUTOMATION_INCLUDE_DIR``, else ``include/``."""
    value = os.environ.get(INCLUDE_DIR_ENV)
    return Path(value) if value else Path(__file__).resolve().parents[1] / "include"


LOG_VALUES_ENV = "AUTOMATION_LOG_VALUES"
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


def log_values() -> bool:
    """Whether task logs may show row values in the condition verdicts (``$AUTOMATION_LOG_VALUES``,
    default false: verdicts and row keys only, since Airflow task logs reach more people than the
    data does). ``true``/``1``/``yes``/``on`` turn values on, ``false``/``0``/``no``/``off`` off."""
    return _flag(LOG_VALUES_ENV)


APPROVAL_VALUES_ENV = "AUTOMATION_APPROVAL_VALUES"


def approval_values() -> bool:
    """Whether an approval's subject and body as rendered from its item (row values included) show in
    Airflow's Required Actions (``$AUTOMATION_APPROVAL_VALUES``, default false: Airflow shows the
    workflow, the node, the item keys and counts; the rendered text reaches the assignees through our
    REST view and their notifications)."""
    return _flag(APPROVAL_VALUES_ENV)


METRICS_DEFINITION_TAGS_ENV = "AUTOMATION_METRICS_DEFINITION_TAGS"


def metrics_definition_tags() -> bool:
    """Whether metrics carry a ``definition`` tag with the rule's or workflow's name
    (``$AUTOMATION_METRICS_DEFINITION_TAGS``, default false: plain StatsD has no tags, and a tag per
    definition multiplies the series a metrics backend keeps)."""
    return _flag(METRICS_DEFINITION_TAGS_ENV)


def _flag(name: str) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name} must be true or false, not {value!r}")


FAILURE_ALERTS_ENV = "AUTOMATION_FAILURE_ALERTS"


def failure_alerts() -> dict[str, str] | None:
    """The deployment's failure-rate alert for rules and workflows that set no ``alerts``
    (``$AUTOMATION_FAILURE_ALERTS``, e.g. ``failure_rate=0.5,window=1h,min_runs=5``; unset or empty:
    none). The values are checked as a definition's ``alerts`` are, where they are used."""
    value = os.environ.get(FAILURE_ALERTS_ENV, "").strip()
    if not value:
        return None
    pairs = [item.partition("=") for item in value.split(",") if item.strip()]
    if any(not sep for _, sep, _ in pairs):
        raise ValueError(f"{FAILURE_ALERTS_ENV} is key=value pairs separated by commas, not {value!r}")
    return {key.strip(): item.strip() for key, _, item in pairs}
