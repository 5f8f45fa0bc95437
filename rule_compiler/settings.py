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
