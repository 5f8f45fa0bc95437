"""``rule-compiler limits``: a platform admin sets an organization's pool (created in Airflow's
metadata database first) and quotas, lists them, and ``sync`` gives every organization a pool."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rule_engine.console_script import main

from rule_compiler.store import RuleStore
from tests.api.test_org_limits_api import _airflow_pool


def _limits(capsys: pytest.CaptureFixture[str], store: RuleStore) -> dict[str, Any]:
    assert main(["--store", store.url, "limits", "show", "--json"]) == 0
    return {row["organization"]: row for row in json.loads(capsys.readouterr().out)}


def test_set_show_and_sync(
    store: RuleStore, airflow_db: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    shown = _limits(capsys, store)
    assert set(shown) == {"acme", "globex"} and shown["acme"]["pool"] is None

    assert (
        main(
            ["--store", store.url, "limits", "set", "--org", "acme", "--pool-slots", "3", "--max-active", "5"]
        )
        == 0
    )
    capsys.readouterr()
    assert _airflow_pool("rule_engine__acme") == 3
    assert main(["--store", store.url, "limits", "set", "--org", "acme", "--max-active", "none"]) == 0
    capsys.readouterr()
    acme = _limits(capsys, store)["acme"]
    assert (acme["pool"], acme["pool_slots"], acme["max_active_definitions"]) == (
        "rule_engine__acme",
        3,
        None,
    )

    assert main(["--store", store.url, "limits", "set", "--org", "acme"]) == 2  # nothing to set
    capsys.readouterr()

    monkeypatch.setenv("AUTOMATION_ORG_POOL_SLOTS", "6")
    assert main(["--store", store.url, "limits", "sync", "--actor", "init"]) == 0
    capsys.readouterr()
    after = _limits(capsys, store)
    assert after["acme"]["pool_slots"] == 3  # kept: it had a size
    assert after["globex"]["pool_slots"] == 6 and _airflow_pool("rule_engine__globex") == 6
