"""Random author SQL, templates and condition-template graphs through registration (issue 13).

Hypothesis builds inputs from the pieces attacks are made of (functions outside the allow-list,
unterminated quotes and comments, size-making operators and filters, loops, templates that use
templates) mixed with arbitrary text, and sends them where an editor or viewer can:

- author SQL and templates through the real REST view (a viewer's dry run and an editor's create):
  never a 5xx, and a refusal always names a JSON path;
- a template that registration accepts, rendered by the worker's code path over a hostile row: the
  sandbox's counters (iterations, output, largest value, work) stay within their limits and the
  tracemalloc peak stays under :data:`PEAK_BYTES`;
- condition-template graphs: the expander never produces more than ``MAX_EXPANDED_LEAVES`` leaves.

Fixed seed (``derandomize``), bounded examples: the three tests draw at most 400 examples in all.
"""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from jinja2 import TemplateError

from rule_compiler import condition_templates
from rule_compiler.condition_templates import MAX_EXPANDED_LEAVES
from rule_compiler.definitions import ConditionTemplateDefinition
from rule_compiler.errors import RuleValidationError
from rule_compiler.registration import compile_document
from rule_compiler.template_limits import RULE_LIMITS, TemplateCheckError
from rule_compiler.templating import check_template, render_with_stats
from tests.api.conftest import Api, rule_body
from tests.api.test_reports_api import report_body
from tests.security.test_expansion_limits import _catalog, rule_doc

#: What one render of an accepted template may hold at its peak (tracemalloc), whatever the row.
PEAK_BYTES = 32 * 1024 * 1024

_FIXTURES = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]

SQL_PIECES = [
    "SELECT", "count(*)", "sum(total)", "status", "FROM orders", "FROM customers", "FROM secrets",
    "WHERE", "total >", "1", "AND", "OR", "GROUP BY status", "ORDER BY 1", "LIMIT 1", ",", "(", ")",
    "'", "''", "$$", "$x$", "/*", "*/", "--", ";", "::regclass", "::text", ":data_interval_start",
    "table_to_xml('secrets', true, false, '')", "query_to_xml_and_xmlschema('select 1', true, true, '')",
    "pg_sleep(10)", "dblink_connect('x')", "pg_advisory_xact_lock_shared(hashtext('x'))",
    "current_setting('data_directory')", "pg_ls_waldir()", "generate_series(1, 1000000000)",
    "lower(status)", "coalesce(note, '')", "date_trunc('day', created_at)", "WITH t AS (SELECT 1)",
    "UNION SELECT", "INSERT INTO orders", "UPDATE orders SET", "FOR UPDATE", "repeat('a', 1000000000)",
]  # fmt: skip
TEMPLATE_PIECES = [
    "{{", "}}", "{%", "%}", "{#", "#}", " for x in ", " endfor ", " if ", " endif ", " set y = ",
    "record.n", "record.s", "record.items", "'a'", "'x'", "10", "10**9", "**", "*", "+", "~", "%",
    "|center(", "|join", "|batch(1)", "|list", "|wordwrap(", "|indent(", "|replace('a', 'aa')",
    "|format(", ")", "(", "[", "]", "range(10)", "x", "y", "loop.index", "rule.name", "_", "__class__",
    "|attr('x')", "lipsum", "cycler", ".ljust(", ".format(", "1000000000", ",",
]  # fmt: skip
#: A row hostile to templates: a big number, a long string, a long list (what an event may carry).
HOSTILE_ROW = {"n": 10**9, "s": "s" * 150_000, "items": ["i"] * 150_000, "id": 7, "total": 12}


OPERANDS = ["record.n", "record.s", "record.items", "'a'", "['a']", "10", "10**9", "record.id", "x"]
SUFFIXES = [
    "", " * record.n", " * 1000", " * 10**9", " ~ record.s", " + record.items", "|center(record.n)",
    "|center(1000000000)", "|join", "|batch(1)|list", "|wordwrap(1)", "|indent(record.n)", "|list",
    "|replace('s', record.s)", "|length", ".ljust(record.n)", "|format(record.s)", " % record.n",
]  # fmt: skip


def _expression() -> st.SearchStrategy[str]:
    term = st.tuples(st.sampled_from(OPERANDS), st.sampled_from(SUFFIXES)).map("".join)
    return st.lists(term, min_size=1, max_size=3).map(lambda terms: "(" + ") ~ (".join(terms) + ")")


def _template() -> st.SearchStrategy[str]:
    """Well-formed templates built from size-making pieces: outputs and (nested) loops."""
    output = _expression().map(lambda e: "{{ " + e + " }}")
    loop = st.tuples(_expression(), output).map(
        lambda p: "{% for x in " + p[0] + " %}" + p[1] + "{% endfor %}"
    )
    nested = st.tuples(_expression(), loop).map(
        lambda p: "{% for y in " + p[0] + " %}" + p[1] + "{% endfor %}"
    )
    return st.lists(st.one_of(output, loop, nested), min_size=1, max_size=3).map("".join)


def _joined(pieces: list[str]) -> st.SearchStrategy[str]:
    made = st.lists(st.sampled_from(pieces), min_size=1, max_size=14).map(" ".join)
    return st.one_of(made, st.text(max_size=60), st.tuples(made, st.text(max_size=10)).map("".join))


def _answered(response: Any) -> None:
    assert response.status_code < 500, response.text
    if response.status_code == 422 or (response.status_code == 200 and "valid" in response.json()):
        for error in response.json().get("errors") or []:
            assert error["path"], error  # every refusal says where


@settings(max_examples=150, derandomize=True, deadline=None, suppress_health_check=_FIXTURES)
@given(sql=_joined(SQL_PIECES))
def test_random_author_sql_never_gets_a_5xx(api: Api, sql: str) -> None:
    body = report_body()
    body["queries"][0]["sql"] = sql
    _answered(api.as_("vera").post("/reports/validate", json=body))
    created = api.as_("ed").post("/reports", json={**body, "name": "fuzzed"})
    _answered(created)
    event(f"create answered {created.status_code}")
    if created.status_code == 201:  # accepted SQL: gone again, so the next example creates anew
        etag = created.headers["ETag"]
        assert (
            api.as_("ada").delete("/reports/fuzzed?hard=true", headers={"If-Match": etag}).status_code == 204
        )


@settings(max_examples=150, derandomize=True, deadline=None, suppress_health_check=_FIXTURES)
@given(text=st.one_of(_template(), _joined(TEMPLATE_PIECES)))
def test_random_templates_never_get_a_5xx_and_renders_stay_in_budget(api: Api, text: str) -> None:
    body = rule_body("flag-big-paid-orders")
    body["actions"][0]["values"] = {"priority": "high", "note": text}
    _answered(api.as_("vera").post("/rules/validate", json=body))

    try:
        check_template(text)
    except TemplateCheckError:
        event("refused at registration")
        return  # refused at registration: nothing is ever rendered
    context = {"record": HOSTILE_ROW, "old": {}, "changes": [], "rule": {"name": "r"}, "run": {}, "event": {}}
    tracemalloc.start()
    try:
        try:
            _, stats = render_with_stats(text, context)
        except (TemplateCheckError, TemplateError):
            stats = None  # stopped by a limit or a template error: a permanent action failure
            event("accepted, stopped while rendering")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < PEAK_BYTES, (text, peak)
    if stats is not None:
        assert stats.iterations <= RULE_LIMITS.max_iterations
        assert stats.output <= RULE_LIMITS.max_output
        assert stats.largest_value <= RULE_LIMITS.max_value
        assert stats.work <= RULE_LIMITS.max_work


def _graph() -> st.SearchStrategy[dict[str, Any]]:
    """Condition templates t0..t3, each a group of leaves and uses of earlier templates."""
    leaf = {"field": "total", "operator": "gt", "value": 1}
    layers: list[st.SearchStrategy[dict[str, Any]]] = []
    for index in range(4):
        earlier = [{"use": f"t{i}"} for i in range(index)] or [leaf]
        member = st.sampled_from([leaf, *earlier])
        layers.append(st.lists(member, min_size=1, max_size=40).map(lambda members: {"any": members}))
    return st.tuples(*layers).map(
        lambda conditions: {
            f"t{i}": {"kind": "condition_template", "name": f"t{i}", "organization": "acme", "condition": c}
            for i, c in enumerate(conditions)
        }
    )


@pytest.fixture
def expanded_leaves_made(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many leaf conditions the expander produced, per call (it still works)."""
    made: list[int] = []
    original = condition_templates._Expander.node

    def counting(self: Any, node: Any, path: str, *args: Any) -> Any:
        if isinstance(node, condition_templates.Condition):
            made.append(1)
        return original(self, node, path, *args)

    monkeypatch.setattr(condition_templates._Expander, "node", counting)
    return made


@settings(max_examples=100, derandomize=True, deadline=None, suppress_health_check=_FIXTURES)
@given(graph=_graph(), top=st.integers(min_value=0, max_value=3))
def test_condition_template_graphs_never_expand_past_the_leaf_limit(
    expanded_leaves_made: list[int], graph: dict[str, Any], top: int
) -> None:
    templates = {name: ConditionTemplateDefinition.model_validate(doc) for name, doc in graph.items()}
    expanded_leaves_made.clear()
    try:
        compile_document(rule_doc({"use": f"t{top}"}), _catalog(), templates=templates)
    except RuleValidationError as exc:
        assert all(issue.path for issue in exc.issues)
    assert len(expanded_leaves_made) <= MAX_EXPANDED_LEAVES
