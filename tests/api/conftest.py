"""Fixtures for the REST view: a migrated store with two organizations, real Airflow tokens, a client.

Authentication is Airflow's real one: tokens are JWTs issued by the configured auth manager
(SimpleAuthManager) and checked by ``airflow.api_fastapi.core_api.security.get_user`` exactly as in
the api-server; no dependency is overridden. Checking a token reads Airflow's ``revoked_token``
table, so the session migrates Airflow's metadata DB once per worker (about 5 s, shared with
``tests/airflow``). Roles come from the store's memberships.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient

from rule_compiler.loading import read_definition_file
from rule_compiler.store import RuleStore
from tests.conftest import DEMO_CATALOG, ROOT

RULES = ROOT / "include" / "rules"
PLATFORM_ADMIN = "root"
#: username -> (organization, role); "nomad" has no membership, "root" is a platform admin.
MEMBERS = {
    "vera": ("acme", "viewer"),
    "ed": ("acme", "editor"),
    "ada": ("acme", "admin"),
    "gus": ("globex", "admin"),
    "gina": ("globex", "editor"),
}


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """`airflow db migrate` once per worker's AIRFLOW_HOME (token checks read revoked_token)."""
    home = Path(os.environ["AIRFLOW_HOME"])
    marker = home / ".migrated-3.3.2"
    if not marker.exists():
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            check=True,
            capture_output=True,
            env=os.environ.copy(),
        )
        marker.touch()


@pytest.fixture(scope="session")
def issue_token(airflow_db: None) -> Callable[[str], str]:
    """``issue_token(username)``: a real Airflow JWT (Airflow role viewer: ours come from memberships)."""
    from airflow.api_fastapi.app import init_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    manager = init_auth_manager()
    cache: dict[str, str] = {}

    def issue(username: str) -> str:
        if username not in cache:
            cache[username] = manager.generate_jwt(SimpleAuthManagerUser(username=username, role="viewer"))
        return cache[username]

    return issue


def catalog_for(organization: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(DEMO_CATALOG.read_text())
    return {**data, "organization": organization}


def rule_body(name: str = "flag-big-paid-orders", **changes: Any) -> dict[str, Any]:
    """An example rule from include/rules as a JSON body (without organization), with changes."""
    data = read_definition_file(RULES / f"{name}.yaml")
    data.pop("organization")
    return {**data, **changes}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RuleStore]:
    """A migrated SQLite store: catalogs for acme and globex, and the members above."""
    rule_store = RuleStore(f"sqlite:///{tmp_path / 'automation.db'}")
    rule_store.upgrade()
    for org in ("acme", "globex"):
        rule_store.put_catalog(organization=org, catalog=catalog_for(org), actor="setup")
    for username, (org, role) in MEMBERS.items():
        rule_store.put_membership(organization=org, username=username, role=role, actor="setup")
    yield rule_store
    rule_store.close()


@dataclass
class Recorder:
    """What the app told Airflow (the on_change hook), and the render errors it reports."""

    changes: list[Any] = field(default_factory=list)
    render_errors: dict[str, str] = field(default_factory=dict)

    def render_errors_of(self, dag_ids: Any) -> dict[str, str]:
        return {d: r for d, r in self.render_errors.items() if d in set(dag_ids)}


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def make_app(store: RuleStore, recorder: Recorder) -> Callable[..., FastAPI]:
    """``make_app(**settings)``: the app over the test store (rate limit off unless given)."""
    from rule_engine.api import create_app
    from rule_engine.api.api_settings import ApiSettings

    def make(**settings: Any) -> FastAPI:
        values: dict[str, Any] = {
            "rate_limit": "",
            "platform_admins": frozenset({PLATFORM_ADMIN}),
            **settings,
        }
        return create_app(
            store,
            settings=ApiSettings(**values),
            on_change=recorder.changes.append,
            render_errors_of=recorder.render_errors_of,
        )

    return make


class Api:
    """A TestClient that signs requests as a user: ``api.as_("ed").get(...)``; paths are under /api/v1."""

    def __init__(self, client: TestClient, issue_token: Callable[[str], str]) -> None:
        self.client = client
        self._issue = issue_token

    def headers(self, username: str | None, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if username is not None:
            headers["Authorization"] = f"Bearer {self._issue(username)}"
        return headers

    def request(self, username: str | None, method: str, path: str, **kwargs: Any) -> Any:
        headers = self.headers(username, kwargs.pop("headers", None))
        url = path if path.startswith("/openapi") or path.startswith("/docs") else f"/api/v1{path}"
        return self.client.request(method, url, headers=headers, **kwargs)

    def as_(self, username: str | None) -> _As:
        return _As(self, username)


class _As:
    def __init__(self, api: Api, username: str | None) -> None:
        self.api, self.username = api, username

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.api.request(self.username, method, path, **kwargs)

    def __getattr__(self, method: str) -> Callable[..., Any]:
        return lambda path, **kwargs: self.api.request(self.username, method.upper(), path, **kwargs)


@pytest.fixture
def api(make_app: Callable[..., FastAPI], issue_token: Callable[[str], str]) -> Iterator[Api]:
    with TestClient(make_app(), raise_server_exceptions=False) as client:
        yield Api(client, issue_token)


def create(api: Api, name: str = "flag-big-paid-orders", user: str = "ed", **changes: Any) -> Any:
    """POST an example rule; asserts 201 and returns the response."""
    response = api.as_(user).post("/rules", json=rule_body(name, **changes))
    assert response.status_code == 201, response.text
    return response
