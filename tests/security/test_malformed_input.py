"""Malformed input refused with a JSON path, never a crash (issue 13, part 5), in the compiler and the CLI:
numbers that are not finite, crons that never fire, documents nested thousands deep, NUL characters and
lone surrogates in values, membership usernames, and webhook URLs the send-time guard would always
refuse. The REST view's side is tests/api/test_malformed_input_api.py."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from rule_compiler import schedules
from rule_compiler.catalog import Catalog
from rule_compiler.cli import main
from rule_compiler.errors import DefinitionLoadError, RuleValidationError
from rule_compiler.loading import MAX_NESTING_DEPTH, parse_document, read_definition_file
from rule_compiler.netpolicy import BlockedURLError, check_webhook_url, url_problem
from rule_compiler.registration import Compiled, compile_document
from rule_compiler.store import RuleStore
from rule_compiler.store.memberships import username_problem
from rule_compiler.validation.structural import raw_value_issues
from tests.conftest import DEMO_CATALOG, ROOT

RULES = ROOT / "include" / "rules"
REPORT = ROOT / "include" / "reports" / "weekly-sales.yaml"


def _catalog() -> Catalog:
    return Catalog.model_validate(yaml.safe_load(DEMO_CATALOG.read_text()))


def rule(name: str = "flag-big-paid-orders", **changes: Any) -> dict[str, Any]:
    return {**read_definition_file(RULES / f"{name}.yaml"), **changes}


def report(**changes: Any) -> dict[str, Any]:
    return {**read_definition_file(REPORT), **changes}


def issues_of(data: dict[str, Any]) -> list[tuple[str, str | None]]:
    with pytest.raises(RuleValidationError) as caught:
        compile_document(data, _catalog())
    return [(i.path, i.code) for i in caught.value.issues]


def cli_validate(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["validate", "--catalog", str(DEMO_CATALOG), str(path)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out


# -- numbers that are not finite ----------------------------------------------------------------------


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf, float("1e400")])
def test_a_report_parameter_default_must_be_finite(number: float) -> None:
    parameter = {"name": "min_total", "type": "number", "default": number}
    assert issues_of(report(parameters=[parameter])) == [("parameters[0].default", "not_finite")]


def test_non_finite_numbers_are_refused_anywhere_in_a_definition() -> None:
    data = rule()
    data["actions"][0]["values"] = {"note": math.inf}
    assert issues_of(data) == [("actions[0].values.note", "not_finite")]


@pytest.mark.parametrize(("text", "suffix"), [("default: .nan", ".yaml"), ("default: .inf", ".yaml")])
def test_cli_refuses_a_yaml_nan_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, suffix: str
) -> None:
    source = REPORT.read_text().replace("default: 0", text)
    path = tmp_path / f"weekly-sales{suffix}"
    path.write_text(source)
    code, out = cli_validate(path, capsys)
    assert code == 1 and "parameters[0].default" in out and "finite" in out


def test_cli_refuses_a_json_nan_literal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = report()
    data["parameters"][0]["default"] = 1.5
    path = tmp_path / "weekly-sales.json"
    path.write_text(json.dumps(data).replace("1.5", "NaN"))
    code, out = cli_validate(path, capsys)
    assert code == 1 and "parameters[0].default" in out


# -- crons that never fire ----------------------------------------------------------------------------


@pytest.mark.parametrize("cron", ["0 0 31 2 *", "0 0 30 2 *", "15 10 31 4,6,9,11 *"])
def test_a_cron_that_never_fires_is_refused_at_its_path(cron: str) -> None:
    schedule = {"type": "schedule", "cron": cron, "target": {"connection": "app_db", "table": "orders"}}
    assert issues_of(rule(trigger=schedule)) == [("trigger.cron", "cron_never_fires")]
    assert issues_of(report(schedule={"cron": cron})) == [("schedule.cron", "cron_never_fires")]


def test_rare_but_real_crons_still_pass() -> None:
    leap_day = {
        "type": "schedule",
        "cron": "0 9 29 2 *",
        "target": {"connection": "app_db", "table": "orders"},
    }
    assert isinstance(compile_document(rule(trigger=leap_day), _catalog()), Compiled)
    runs = schedules.next_runs("0 9 29 2 *", "UTC", after=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), count=2)
    assert [r.year for r in runs] == [2028, 2032]


def test_next_runs_of_a_cron_that_never_fires_is_empty() -> None:
    assert schedules.next_runs("0 0 31 2 *", "UTC", after=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) == []


def test_cli_refuses_a_cron_that_never_fires(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "weekly-sales.yaml"
    path.write_text(REPORT.read_text().replace('cron: "0 7 * * 1"', 'cron: "0 0 31 2 *"'))
    code, out = cli_validate(path, capsys)
    assert code == 1 and "schedule.cron" in out and "never fires" in out


# -- nesting ------------------------------------------------------------------------------------------


def _deep_yaml(levels: int, style: str) -> str:
    if style == "flow":
        return "kind: rule\nname: deep\nx: " + "[" * levels + "]" * levels + "\n"
    if style == "block":
        return "kind: rule\nname: deep\nx:\n" + "- " * levels + "x\n"  # - - - x: lists in lists
    return "kind: rule\nname: deep\nx: " + "{a: " * levels + "1" + "}" * levels + "\n"


@pytest.mark.parametrize("style", ["flow", "block", "mapping"])
def test_yaml_nested_thousands_deep_is_a_load_error_not_a_recursion_error(style: str) -> None:
    with pytest.raises(DefinitionLoadError, match=f"more than {MAX_NESTING_DEPTH} levels"):
        parse_document(_deep_yaml(5_000, style))


def test_nesting_up_to_the_limit_loads() -> None:
    levels = MAX_NESTING_DEPTH - 1  # the document's own mapping is the first level
    assert parse_document(_deep_yaml(levels, "flow"))["name"] == "deep"
    with pytest.raises(DefinitionLoadError):
        parse_document(_deep_yaml(levels + 1, "flow"))


@pytest.mark.parametrize("levels", [65, 5_000, 100_000])
def test_json_nested_deep_is_a_load_error(levels: int) -> None:
    with pytest.raises(DefinitionLoadError, match="levels"):
        parse_document('{"kind": "rule", "x": ' + "[" * levels + "]" * levels + "}", fmt="json")


def test_cli_validate_of_a_deep_yaml_file_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(_deep_yaml(5_000, "flow"))
    code, out = cli_validate(path, capsys)
    assert code == 1 and f"more than {MAX_NESTING_DEPTH} levels" in out


# -- NUL characters and lone surrogates ---------------------------------------------------------------


def test_nul_is_refused_in_every_string_and_key_of_a_definition() -> None:
    data = rule(description="pa\u0000id")
    data["actions"][0]["values"] = {"note": "ok", "n\u0000te": "x"}
    assert sorted(issues_of(data)) == [
        ("actions[0].values.n?te", "nul_character"),
        ("description", "nul_character"),
    ]


def test_raw_value_issues_walks_in_document_order_and_caps_the_list() -> None:
    value = {"a": "x\u0000", "b": ["ok", "\ud800"], "c": {"d": math.nan}}
    assert [(i.path, i.code) for i in raw_value_issues(value)] == [
        ("a", "nul_character"),
        ("b[1]", "invalid_unicode"),
        ("c.d", "not_finite"),
    ]
    assert len(raw_value_issues({"x": ["\u0000"] * 10_000})) == 50


def test_cli_refuses_nul_in_a_yaml_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nul.yaml"
    path.write_text(yaml.safe_dump(rule(owner="pa\u0000id")))
    assert '"pa\\0id"' in path.read_text()  # YAML's own escape for NUL
    code, out = cli_validate(path, capsys)
    assert code == 1 and "owner" in out and "U+0000" in out


# -- membership usernames -----------------------------------------------------------------------------


@pytest.mark.parametrize("username", ["ada", "ada.lovelace@acme.example", "svc_reports-2", "a+b"])
def test_usual_usernames_are_accepted(username: str) -> None:
    assert username_problem(username) is None


@pytest.mark.parametrize("username", ["", "a b", "a\nb", "a\u0000b", "a\tb", "ä", "a/b", "x" * 201])
def test_odd_usernames_are_refused(username: str, tmp_path: Path) -> None:
    assert username_problem(username)
    store = RuleStore(f"sqlite:///{tmp_path / 'store.db'}")
    store.upgrade()
    with pytest.raises(ValueError, match="not a valid username"):
        store.put_membership(organization="acme", username=username, role="viewer", actor="setup")
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM memberships")).scalar() == 0
    store.close()


# -- webhook URLs: one static policy at registration and at send time ---------------------------------

#: URLs the send-time guard refuses whatever DNS says: registration must refuse them too.
ALWAYS_REFUSED = [
    "https://api.example.com:22/hook",
    "https://api.example.com:6379/",
    "https://api.example.com/a b",
    "https://api.example.com/a\tb",
    "https://exa mple.com/",
    "https://api.example.com\\@evil.example/",
    "https://@api.example.com/",
    "https://user:pass@api.example.com/",
    "https://999.1.1.1/",
    "https://1.2.3.4.5/",
    "https://0x7f.1/",
    "https://intranet/hook",
    "https://metadata.internal/",
    "http://api.example.com/",
    "ftp://api.example.com/",
    "https://" + "a" * 300 + ".example/",
    "https://[::1]/",
    "https://2130706433/",
]
#: URLs whose fate depends on DNS at send time: registration accepts them (a name made of digits and a
#: real top-level domain is a name, not an address).
ACCEPTED = [
    "https://api.example.com/hook",
    "https://api.example.com:8443/hook",
    "https://2130706433.com/",
    "https://BÜCHER.example/hook",
    "https://93.184.215.14/",
]


@pytest.mark.parametrize("url", ALWAYS_REFUSED)
def test_registration_refuses_what_the_send_time_guard_always_refuses(url: str) -> None:
    with pytest.raises(BlockedURLError):
        check_webhook_url(url, allow_hosts=frozenset())
    assert url_problem(url, allow_hosts=frozenset())
    data = rule(actions=[{"id": "hook", "type": "call_webhook", "url": url}])
    assert issues_of(data) == [("actions[0].url", "url")]


@pytest.mark.parametrize("url", ACCEPTED)
def test_registration_accepts_what_the_send_time_guard_accepts(url: str) -> None:
    check_webhook_url(url, allow_hosts=frozenset())
    assert url_problem(url, allow_hosts=frozenset()) is None


def test_the_admin_allow_list_counts_at_registration_as_at_send_time(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "http://10.0.0.5:8080/hook"
    assert url_problem(url) is not None
    monkeypatch.setenv("AUTOMATION_WEBHOOK_ALLOW_HOSTS", "10.0.0.5")
    assert url_problem(url) is None and check_webhook_url(url).allow_listed


def test_templated_urls_are_checked_around_their_markup() -> None:
    good = rule(
        actions=[{"id": "hook", "type": "call_webhook", "url": "https://api.example.com/o/{{ record.id }}"}]
    )
    assert isinstance(compile_document(good, _catalog()), Compiled)
    bad = rule(
        actions=[{"id": "hook", "type": "call_webhook", "url": "https://api.example.com:22/{{ record.id }}"}]
    )
    assert issues_of(bad) == [("actions[0].url", "url")]


def test_cli_refuses_a_webhook_url_on_port_22(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "hook.yaml"
    path.write_text(
        yaml.safe_dump(
            rule(actions=[{"id": "hook", "type": "call_webhook", "url": "https://a.example.com:22/"}])
        )
    )
    code, out = cli_validate(path, capsys)
    assert code == 1 and "actions[0].url" in out and "port 22" in out


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_cli_test_rule_with_a_deep_event_file_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    event = tmp_path / f"event{suffix}"
    levels = 5_000
    event.write_text(
        '{"table": "orders", "operation": "created", "new": ' + "[" * levels + "]" * levels + "}"
    )
    rule = str(RULES / "flag-big-paid-orders.yaml")
    code = main(["test-rule", rule, "--event", str(event), "--catalog", str(DEMO_CATALOG)])
    err = capsys.readouterr().err
    assert code == 2 and f"more than {MAX_NESTING_DEPTH} levels" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "text, named",
    [
        ("kind: rule\nname: x\nbase: &b {a: 1}\nother: *b\n", "anchor '&b'"),
        ("kind: rule\nname: &n x\n", "anchor '&n'"),
        ("kind: rule\nname: x\nlaughs: [*a]\n", "alias '*a'"),
    ],
)
def test_yaml_anchors_and_aliases_are_refused_before_anything_is_built(text: str, named: str) -> None:
    with pytest.raises(DefinitionLoadError, match="anchors and aliases are not accepted") as caught:
        parse_document(text)
    assert named in str(caught.value)
