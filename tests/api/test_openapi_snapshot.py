"""The OpenAPI document is a contract: it is committed (tests/api/openapi.json) and diffed here.

A change to the REST view's routes, parameters or models shows as a failing diff naming each path
that changed. When the change is intended, write the new snapshot with
``UPDATE_OPENAPI_SNAPSHOT=1 pytest tests/api/test_openapi_snapshot.py`` and commit it (the closing
note of the change lists what changed).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.api.conftest import Api

SNAPSHOT = Path(__file__).with_name("openapi.json")


def _text(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def _changed(before: Any, after: Any, path: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        found = []
        for key in sorted(set(before) | set(after)):
            where = f"{path}/{key}"
            if key not in before:
                found.append(f"added {where}")
            elif key not in after:
                found.append(f"removed {where}")
            else:
                found += _changed(before[key], after[key], where)
        return found
    return [] if before == after else [f"changed {path}"]


def test_the_openapi_document_is_the_committed_snapshot(api: Api) -> None:
    response = api.as_("vera").get("/openapi.json")
    assert response.status_code == 200
    served = response.json()
    if os.environ.get("UPDATE_OPENAPI_SNAPSHOT") == "1":
        SNAPSHOT.write_text(_text(served), encoding="utf-8")
    committed = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    changes = _changed(committed, served)
    assert not changes, (
        "the OpenAPI document differs from tests/api/openapi.json:\n  "
        + "\n  ".join(changes[:40])
        + "\nif intended: UPDATE_OPENAPI_SNAPSHOT=1 pytest tests/api/test_openapi_snapshot.py, and commit it"
    )
