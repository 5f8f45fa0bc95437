"""``/health``: store reachable and migrated, loader errors of the caller's organizations."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from fastapi.testclient import TestClient

from rule_compiler.store import RuleStore
from rule_compiler.store.migrate import head_revision
from tests.api.conftest import Api, Recorder, create


def test_ok_when_the_store_is_current_and_nothing_failed_to_render(api: Api) -> None:
    create(api)
    body = api.as_("vera").get("/health").json()
    assert body == {
        "status": "ok",
        "store": {
            "reachable": True,
            "revision": head_revision(),
            "expected_revision": head_revision(),
            "error": None,
        },
        "loader_errors": [],
        "loader_errors_checked": True,
    }


def test_loader_errors_of_your_organizations_only(api: Api, recorder: Recorder) -> None:
    create(api)
    create(api, "archive-void-orders", user="gina")
    recorder.render_errors.update(
        {
            "rule__acme__flag-big-paid-orders": "the stored spec could not be rendered: ValueError: boom",
            "rule__globex__archive-void-orders": "event triggers ... not run by this release yet",
        }
    )
    body = api.as_("vera").get("/health").json()
    assert body["status"] == "degraded"
    assert body["loader_errors"] == [
        {
            "dag_id": "rule__acme__flag-big-paid-orders",
            "rule_name": "acme/flag-big-paid-orders",
            "reason": "the stored spec could not be rendered: ValueError: boom",
        }
    ]
    everything = api.as_("root").get("/health").json()
    assert len(everything["loader_errors"]) == 2


def test_degraded_when_the_store_is_unreachable(issue_token: Callable[[str], str]) -> None:
    from rule_engine.api import create_app
    from rule_engine.api.settings import ApiSettings

    broken = RuleStore("postgresql+psycopg2://nobody@127.0.0.1:1/none")
    app = create_app(
        broken, settings=ApiSettings(rate_limit=""), on_change=None, render_errors_of=lambda _: {}
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        headers = {"Authorization": f"Bearer {issue_token('vera')}"}
        health = client.get("/api/v1/health", headers=headers)
        assert health.status_code == 200
        assert health.json()["status"] == "degraded"
        assert health.json()["store"]["reachable"] is False
        rules = client.get("/api/v1/rules", headers=headers)
        assert rules.status_code == 503 and rules.headers["Retry-After"] == "5"
        assert rules.json() == {"detail": "the rule store is unreachable; try again later"}


def test_degraded_when_airflow_cannot_be_read(
    make_app: Callable[..., FastAPI], store: RuleStore, api: Api
) -> None:
    def failing(_: object) -> dict[str, str]:
        raise RuntimeError("metadata DB down")

    api.client.app.state.render_errors = failing  # type: ignore[attr-defined]
    body = api.as_("vera").get("/health").json()
    assert body["status"] == "degraded" and body["loader_errors_checked"] is False
