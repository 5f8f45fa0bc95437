"""Notification templates: the definition and its sandbox checks, resolution per channel, errors at
`actions[i].template`, and rules compiled into self-contained `subject`/`body` params."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from rule_compiler.catalog import Catalog
from rule_compiler.compiler import DagSpec, compile_rule
from rule_compiler.definitions import NotificationTemplateDefinition, RuleDefinition
from rule_compiler.errors import CompileError, RuleValidationError
from rule_compiler.loading import read_definition_file
from rule_compiler.notification_templates import channel_content, template_hash
from rule_compiler.registration import Compiled, CompiledTemplate, compile_document
from rule_compiler.templating import render
from rule_compiler.validation import validate_definition
from tests.conftest import DEMO_CATALOG, ROOT

TEMPLATE_FILE = ROOT / "include" / "templates" / "vip-order.yaml"
RULE_FILE = ROOT / "include" / "rules-using-templates" / "tell-vip-account-managers.yaml"


def example_notification_templates() -> dict[str, NotificationTemplateDefinition]:
    """The notification templates of ``include/templates/`` (the examples' rules use them), by name."""
    found = {}
    for path in sorted((ROOT / "include" / "templates").glob("*.yaml")):
        data = read_definition_file(path)
        if data["kind"] == "notification_template":
            template = validate_definition(data, None)
            assert isinstance(template, NotificationTemplateDefinition)
            found[template.name] = template
    return found


def _catalog() -> Catalog:
    return Catalog.model_validate(yaml.safe_load(DEMO_CATALOG.read_text()))


def _template_doc() -> dict[str, Any]:
    return read_definition_file(TEMPLATE_FILE)


def _template(doc: dict[str, Any] | None = None) -> NotificationTemplateDefinition:
    result = validate_definition(doc or _template_doc(), None)
    assert isinstance(result, NotificationTemplateDefinition)
    return result


def _rule_doc(**action: Any) -> dict[str, Any]:
    doc = read_definition_file(RULE_FILE)
    doc["actions"][0].update(action)
    doc["actions"][0] = {k: v for k, v in doc["actions"][0].items() if v is not None}
    return doc


def _compile(doc: dict[str, Any], template: NotificationTemplateDefinition | None = None) -> Compiled:
    templates = {"vip-order": template or _template()}
    compiled = compile_document(doc, _catalog(), notification_templates=templates)
    assert isinstance(compiled, Compiled)
    return compiled


def _params(compiled: Compiled, task_id: str = "tell-manager") -> dict[str, Any]:
    return dict(compiled.spec.task(task_id).params)


def _issues(
    doc: dict[str, Any], templates: dict[str, NotificationTemplateDefinition]
) -> list[tuple[str, str]]:
    with pytest.raises(RuleValidationError) as caught:
        compile_document(doc, _catalog(), notification_templates=templates)
    return [(i.path, i.message) for i in caught.value.issues]


def _template_issues(doc: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(RuleValidationError) as caught:
        compile_document(doc, None)
    return [(i.path, i.message) for i in caught.value.issues]


# -- the definition ----------------------------------------------------------------------------------


def test_example_template_is_stored_as_its_own_kind() -> None:
    compiled = compile_document(_template_doc(), None)
    assert isinstance(compiled, CompiledTemplate)
    assert isinstance(compiled.definition, NotificationTemplateDefinition)
    assert compiled.dag_id == "notification_template__acme__vip-order"
    assert compiled.spec_hash == template_hash(compiled.definition)  # the version compiled specs name


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        ({"channels": {}}, "channels", "at least one channel"),
        ({"channels": {"sms": {"body": "x"}}}, "channels.sms", "unknown key"),
        ({"channels": {"email": {"body": "x"}}}, "channels.email.subject", "required"),
        ({"channels": {"slack": {"body": "x"}}}, "channels.slack.text", "required"),
        ({"channels": {"in_app": {"subject": "s", "body": ""}}}, "channels.in_app.body", "at least 1"),
        ({"default": {"body": "x"}}, "default.subject", "required"),
        ({"to": ["ops@example.com"]}, "to", "unknown key"),
        ({"name": "VIP Order"}, "name", "not a valid name"),
    ],
)
def test_structural_problems_have_paths(change: dict[str, Any], path: str, words: str) -> None:
    issues = _template_issues({**_template_doc(), **change})
    assert any(p == path and words in m for p, m in issues), issues


@pytest.mark.parametrize(
    ("path", "text", "words"),
    [
        ("channels.email.body", "{{ conn.smtp_default.password }}", "unknown template variable 'conn'"),
        ("channels.email.subject", "{{ record.__class__ }}", "unsafe attribute"),
        ("channels.slack.text", "{% if record.id %}", "syntax error"),
        ("default.body", "{{ record.id | attr('x') }}", "unsafe filter"),
    ],
)
def test_every_text_is_checked_in_the_sandbox_at_its_path(path: str, text: str, words: str) -> None:
    doc = _template_doc()
    keys = path.split(".")
    copy_of = doc
    for key in keys[:-1]:
        copy_of = copy_of[key]
    copy_of[keys[-1]] = text
    issues = _template_issues(doc)
    assert [p for p, _ in issues] == [path]
    assert words in issues[0][1]


def test_templates_do_not_need_a_catalog_or_a_table() -> None:
    doc = _template_doc()
    doc["channels"]["email"]["body"] = "{{ record.anything__at_all }}"  # checked where a rule uses it
    assert _template(doc).name == "vip-order"


# -- resolution per channel --------------------------------------------------------------------------


def test_channel_content_prefers_the_channel_then_the_default() -> None:
    template = _template()
    email = channel_content(template, "email")
    assert email is not None and email.subject_path == "channels.email.subject"
    assert email.subject == template.channels.email.subject  # type: ignore[union-attr]
    slack = channel_content(template, "slack")
    assert slack is not None and slack.subject is None and slack.body_path == "channels.slack.text"
    in_app = channel_content(template, "in_app")
    assert in_app is not None and in_app.body_path == "default.body"
    assert in_app.subject == template.default.subject  # type: ignore[union-attr]
    no_default = _template({**_template_doc(), "default": None})
    assert channel_content(no_default, "webhook") is None


def test_webhook_subject_is_optional_and_slack_ignores_the_default_subject() -> None:
    doc = _template_doc()
    doc["channels"]["webhook"] = {"body": "order {{ record.id }}"}
    del doc["channels"]["slack"]
    template = _template(doc)
    webhook = channel_content(template, "webhook")
    assert webhook is not None and webhook.subject is None and webhook.subject_path is None
    slack = channel_content(template, "slack")
    assert slack is not None and slack.subject is None and slack.body_path == "default.body"


# -- compiling rules that use a template -------------------------------------------------------------


def test_compiled_params_are_self_contained() -> None:
    template = _template()
    params = _params(_compile(_rule_doc()))
    assert params["subject"] == template.channels.email.subject  # type: ignore[union-attr]
    assert params["body"] == template.channels.email.body  # type: ignore[union-attr]
    assert params["from_template"] == {"name": "vip-order", "hash": template_hash(template)}
    assert "template" not in params
    # the operator reads these columns: the template's record fields are in the row plan
    assert "customer__name" in params["row_source"]["paths"]
    record = {"id": 7, "total": 1500, "status": "paid", "customer__name": "Ann"}
    context = {"record": record, "rule": {"id": "acme/tell-vip-account-managers"}, "run": {"id": "r"}}
    assert render(params["subject"], context) == "VIP order 7 from Ann: 1500"
    assert "Ann (a VIP customer) has order 7" in render(params["body"], context)


def test_the_rule_is_stored_as_written() -> None:
    compiled = _compile(_rule_doc())
    assert compiled.definition.actions[0].template == "vip-order"  # type: ignore[union-attr]
    assert compiled.definition.actions[0].body is None  # type: ignore[union-attr]


def test_inline_subject_overrides_the_templates_subject() -> None:
    params = _params(_compile(_rule_doc(subject="Look at order {{ record.id }}")))
    assert params["subject"] == "Look at order {{ record.id }}"
    assert params["body"] == _template().channels.email.body  # type: ignore[union-attr]


def test_slack_gets_the_text_as_body_and_an_empty_subject() -> None:
    doc = _rule_doc(channel="slack", connection="slack_oncall", to=[])
    params = _params(_compile(doc))
    assert params["body"] == _template().channels.slack.text  # type: ignore[union-attr]
    assert params["subject"] == ""
    assert params["channel"] == "slack"


def test_a_channel_without_content_uses_the_default() -> None:
    params = _params(_compile(_rule_doc(channel="in_app", to=["sales-ops"])))
    default = _template().default
    assert default is not None
    assert (params["subject"], params["body"]) == (default.subject, default.body)


def test_spec_hash_follows_the_template() -> None:
    first = _compile(_rule_doc())
    doc = _template_doc()
    doc["channels"]["email"]["body"] += "\nThanks."
    second = _compile(_rule_doc(), _template(doc))
    assert second.spec_hash != first.spec_hash
    assert _params(second)["from_template"] != _params(first)["from_template"]
    again = _compile(_rule_doc())
    assert again.spec_json == first.spec_json  # deterministic


def test_inline_notifications_compile_as_before() -> None:
    doc = _rule_doc(template=None, subject="hi {{ record.id }}", body="order {{ record.id }}")
    params = _params(_compile(doc))
    assert params["subject"] == "hi {{ record.id }}" and "from_template" not in params


def test_compiling_an_unresolved_rule_is_a_compiler_error() -> None:
    rule = RuleDefinition.model_validate(_rule_doc())
    with pytest.raises(CompileError, match="still names notification template 'vip-order'"):
        compile_rule(rule, _catalog())


def test_compiled_spec_round_trips() -> None:
    compiled = _compile(_rule_doc())
    assert DagSpec.model_validate_json(compiled.spec_json).spec_hash == compiled.spec_hash


# -- problems ----------------------------------------------------------------------------------------


def test_unknown_template_lists_the_organizations_templates() -> None:
    issues = _issues(_rule_doc(template="vip-ordr"), {"vip-order": _template()})
    assert [p for p, _ in issues] == ["actions[0].template"]
    assert "unknown notification template 'vip-ordr'" in issues[0][1]
    assert "vip-order" in issues[0][1] and "--templates" in issues[0][1]


def test_a_template_of_another_organization_is_refused() -> None:
    other = _template({**_template_doc(), "organization": "globex"})
    issues = _issues(_rule_doc(), {"vip-order": other})
    assert issues == [
        (
            "actions[0].template",
            "notification template 'vip-order' belongs to organization 'globex'; a rule of 'acme' may use "
            "only its own",
        )
    ]


def test_template_without_content_for_the_channel() -> None:
    template = _template({**_template_doc(), "default": None})
    issues = _issues(_rule_doc(channel="webhook", connection="crm_api"), {"vip-order": template})
    assert [p for p, _ in issues] == ["actions[0].template"]
    message = issues[0][1]
    assert "has no content for channel 'webhook'" in message and "it has: email, slack" in message
    assert "add `channels.webhook` or `default`" in message


def test_template_and_inline_body_are_exclusive() -> None:
    issues = _issues(_rule_doc(body="inline"), {"vip-order": _template()})
    assert [p for p, _ in issues] == ["actions[0]"]
    assert "not both" in issues[0][1]


def test_unknown_record_field_in_a_template_is_reported_at_the_template_use() -> None:
    doc = _template_doc()
    doc["channels"]["email"]["body"] = "{{ record.customer__nme }}"
    issues = _issues(_rule_doc(), {"vip-order": _template(doc)})
    assert [p for p, _ in issues] == ["actions[0].template"]
    message = issues[0][1]
    assert message.startswith(
        "in notification template 'vip-order': the template reads record.customer__nme:"
    )
    assert message.endswith("(at channels.email.body)")


def test_a_bad_field_in_the_templates_subject_points_at_the_subject() -> None:
    doc = _template_doc()
    doc["channels"]["email"]["subject"] = "{{ record.totl }}"
    issues = _issues(_rule_doc(), {"vip-order": _template(doc)})
    assert len(issues) == 1 and issues[0][1].endswith("(at channels.email.subject)")
    # an inline subject replaces the template's, so the template's bad subject is not used
    assert _params(_compile(_rule_doc(subject="hi"), _template(doc)))["subject"] == "hi"


def test_record_fields_need_a_row() -> None:
    doc = _rule_doc(to=["ops@example.com"])
    doc["trigger"] = {"type": "manual"}
    del doc["conditions"]
    issues = _issues(doc, {"vip-order": _template()})
    assert {p for p, _ in issues} == {"actions[0].template"}
    assert all("this rule's trigger has no row" in m and "in notification template" in m for _, m in issues)


def test_every_problem_is_reported_at_once() -> None:
    doc = _rule_doc()
    second = copy.deepcopy(doc["actions"][0])
    doc["actions"].append({**second, "id": "again", "template": "nope"})
    doc["actions"].append({**second, "id": "both", "body": "x"})
    issues = _issues(doc, {"vip-order": _template()})
    assert [p for p, _ in issues] == ["actions[1].template", "actions[2]"]
