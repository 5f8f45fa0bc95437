"""Template rendering must not exhaust workers (issue 13, part 3): the sandbox's operators, filters,
methods and loops have budgets, and output stops at its cap while rendering.

What is provably too big from literals is refused at registration (:func:`check_template`, naming
the limit); what only the row's data makes too big (``{{ 'a' * record.n }}``) passes registration
and stops at render, in the functions the operators call (update/create_record values, webhook
bodies, notifications, report HTML), as a permanent action error, with bounded memory (tracemalloc
peak) and counters within their limits. No wall-clock assertions. The REST view's side is
tests/api/test_template_limits_api.py.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from dataclasses import fields
from typing import Any

import pytest
from jinja2 import TemplateError

from rule_compiler.errors import PermanentActionError
from rule_compiler.reporting.html import default_template, render_html
from rule_compiler.reporting.report_errors import ReportRenderError
from rule_compiler.runtime.messages import render_message
from rule_compiler.runtime.rendering import render_for_action
from rule_compiler.runtime.webhook_requests import build_request
from rule_compiler.template_sandbox import ALLOWED_FILTERS, ALLOWED_METHODS
from rule_compiler.templating import (
    DEFAULT_REPORT_LIMITS,
    REPORT_LIMITS,
    RULE_LIMITS,
    RenderBudget,
    RenderStats,
    TemplateCheckError,
    TemplateLimitError,
    TemplateLimits,
    check_template,
    render,
    render_value,
    render_with_stats,
)

#: The peak memory a refused render may allocate (tracemalloc), far below what the attacks would
#: take unbounded (1 GB and more): the biggest value a rule template may make is 200,000 characters.
MAX_PEAK_BYTES = 20 * 1024 * 1024

#: Literal attacks, each provably past a limit: refused at registration, naming the limit.
LITERAL_ATTACKS = {
    "{{ 'a' * 10**9 }}": "max_value",
    "{{ 'a'|center(1000000000) }}": "max_value",
    "{% for a in 'x'*100000 %}{% for b in 'x'*100000 %}{{ a }}{% endfor %}{% endfor %}": "max_iterations",
    "{{ (['a']*10**8)|join }}": "max_value",
    "{{ (['a']*10**8)|batch(1)|list }}": "max_value",
    "{% for a in 'x' * 10001 %}{% endfor %}": "max_iterations",
    "{{ 2 ** 100000 }}": "max_int_bits",
    "{{ record.note|center(1000000000) }}": "max_value",
    "{{ record.note|indent(10**9) }}": "max_value",
    "{{ record.note|wordwrap(1000000000) }}": "max_value",
    "{{ record.items_list|batch(10**9, 'x') }}": "max_value",
    "{{ record.items_list|slice(10**9) }}": "max_value",
    "{{ record.note.ljust(10**9) }}": "max_value",
    "{{ '%1000000000s' % record.note }}": "max_format_width",
    "{{ '{:>1000000000}'.format(record.note) }}": "max_format_width",
    "{{ ('a' * 100000) ~ ('b' * 100000) ~ 'c' }}": "max_value",
}

#: Variants whose sizes come from the row: accepted at registration, stopped while rendering.
RUNTIME_ATTACKS = {
    "{{ 'a' * record.n }}": "max_value",
    "{{ record.s * record.n }}": "max_value",
    "{{ record.s|center(record.n) }}": "max_value",
    "{{ record.s|indent(record.n) }}": "max_value",
    "{{ record.s.ljust(record.n) }}": "max_value",
    "{{ (['a'] * record.n)|join }}": "max_value",
    "{{ record.many|batch(record.one)|list }}": "max_value",
    "{{ record.big|wordwrap(record.one) }}": "max_value",
    "{{ record.big.replace('y', record.big) }}": "max_value",
    "{{ '{0}{0}{0}'.format(record.big) }}": "max_value",
    "{{ 2 ** record.n }}": "max_int_bits",
    "{{ ('%' ~ record.n ~ 's') % record.s }}": "max_format_width",
    "{% for a in record.rows %}{% for b in record.rows %}{{ a }}{% endfor %}{% endfor %}": "max_iterations",
    "{% for a in record.many %}{% for b in record.many %}{% endfor %}{% endfor %}": "max_iterations",
    "{% for x in record.rows %}{{ record.big }}{% endfor %}": "max_output",
    "{% for x in record.rows %}{% set y = record.big ~ x %}{% endfor %}": "max_work",
    "{% for x in record.rows %}{% if 'z' in record.many %}{% endif %}{% endfor %}": "max_work",
    "{% for x in record.rows %}{% if record.many == record.many2 %}{% endif %}{% endfor %}": "max_work",
    "{{ record.many|map('center', 100000)|list }}": "max_work",
    "{% set x = 'a' * 150000 %}{% set y = x ~ x %}": "max_value",
}


def row() -> dict[str, Any]:
    return {
        "n": 10**9,
        "s": "abc",
        "one": 1,
        "note": "hello",
        "items_list": [1, 2, 3],
        "rows": list(range(5_000)),
        "many": ["x"] * 150_000,
        "many2": ["x"] * 150_000,
        "big": "y" * 150_000,
    }


def within_limits(stats: RenderStats, limits: TemplateLimits) -> None:
    assert stats.iterations <= limits.max_iterations
    assert stats.steps <= limits.max_steps
    assert stats.output <= limits.max_output
    assert stats.work <= limits.max_work
    assert stats.largest_value <= limits.max_value


def peak_bytes(run: Callable[[], Any]) -> tuple[int, BaseException | None]:
    """tracemalloc's peak while ``run`` runs, and what it raised."""
    raised: BaseException | None = None
    tracemalloc.start()
    try:
        run()
    except Exception as exc:
        raised = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, raised


# -- registration -------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "limit"), list(LITERAL_ATTACKS.items()))
def test_literal_attacks_are_refused_at_registration_naming_the_limit(text: str, limit: str) -> None:
    with pytest.raises(TemplateLimitError) as refused:
        check_template(text)
    assert refused.value.limit == limit
    assert refused.value.maximum == getattr(RULE_LIMITS, limit)
    assert f"template limit {limit} = " in str(refused.value)
    assert isinstance(refused.value, TemplateCheckError) and isinstance(refused.value, ValueError)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("{% macro f() %}x{% endmacro %}{{ f() }}", "{% macro %}"),
        ("{% set x %}{{ record.s }}{% endset %}", "{% set %}...{% endset %}"),
        ("{% filter upper %}x{% endfilter %}", "{% filter %}"),
        ("{% include 'x.html' %}", "{% include %}"),
        ("{% import 'x.html' as x %}", "{% import %}"),
        ("{% extends 'x.html' %}", "{% extends %}"),
        ("{% block b %}x{% endblock %}", "{% block %}"),
        ("{% autoescape false %}{{ record.s }}{% endautoescape %}", "{% autoescape %}"),
        ("{% for x in record.rows recursive %}{% endfor %}", "recursive loops"),
        ("{{ record.s|pprint }}", "filter 'pprint'"),
        ("{{ record.s|safe }}", "filter 'safe'"),
        ("{{ record.s|attr('x') }}", "unsafe filter 'attr'"),
        ("{{ record.rows|map('pprint')|list }}", "filter 'pprint'"),
        ("{{ record.s is nosuchtest }}", "test 'nosuchtest'"),
        ("{{ record.s.expandtabs(100) }}", "method 'expandtabs'"),
        ("{{ record.s.format_map(record) }}", "method 'format_map'"),
        ("{{ record.s.upper(*record.rows) }}", "*args"),
        ("{{ record() }}", "calling anything but a method"),
        ("{{ " + "(" * 200 + "1" + ")" * 200 + " }}", "nests too deeply"),
        ("{{ " + "9" * 5000 + " }}", "cannot be read"),
    ],
)
def test_unlisted_features_filters_tests_and_methods_are_refused_by_name(text: str, named: str) -> None:
    with pytest.raises(TemplateCheckError, match=r"not allowed|too deeply|cannot be read") as refused:
        check_template(text)
    assert named in str(refused.value)


def test_the_allow_lists_hold_what_templates_need_and_nothing_unbounded() -> None:
    assert {"upper", "join", "default", "format", "round", "length", "tojson", "replace"} <= ALLOWED_FILTERS
    assert not {"attr", "safe", "pprint", "random", "urlize", "xmlattr", "striptags"} & ALLOWED_FILTERS
    assert {"items", "get", "upper", "strftime", "format"} <= ALLOWED_METHODS
    assert not {"format_map", "expandtabs", "encode", "mro", "pop", "update"} & ALLOWED_METHODS


# -- rendering, sizes from the row ----------------------------------------------------------------


@pytest.mark.parametrize(("text", "limit"), list(RUNTIME_ATTACKS.items()))
def test_row_driven_attacks_pass_registration_and_stop_at_render_with_bounded_memory(
    text: str, limit: str
) -> None:
    check_template(text)  # not provably too big: only the row makes it so
    context = {"record": row()}
    budget = RenderBudget(RULE_LIMITS)
    peak, raised = peak_bytes(lambda: render_with_stats(text, context, budget=budget))
    assert isinstance(raised, TemplateLimitError), raised
    assert raised.limit == limit
    assert raised.requested > raised.maximum == getattr(RULE_LIMITS, limit)
    assert peak < MAX_PEAK_BYTES, f"{peak:,} bytes"
    within_limits(budget.stats, RULE_LIMITS)


@pytest.mark.parametrize("text", list(RUNTIME_ATTACKS))
def test_the_worker_paths_turn_a_limit_into_a_permanent_failure(text: str) -> None:
    """What the record, webhook and notification operators call: never retried."""
    context = {"record": row(), "rule": {"id": "acme/r"}, "run": {"id": "run-1"}}
    runs: list[Callable[[], Any]] = [
        lambda: render_for_action({"note": text}, context, "values"),
        lambda: build_request({"body": {"x": text}}, context, base_url="https://api.example.com"),
        lambda: render_message("subject", text, context),
        lambda: render_message(text, "body", context),
    ]
    for run in runs:
        peak, raised = peak_bytes(run)
        assert isinstance(raised, PermanentActionError), raised
        assert "could not be rendered" in str(raised) and "template limit" in str(raised)
        assert peak < MAX_PEAK_BYTES, f"{peak:,} bytes"


def test_output_stops_at_its_cap_while_rendering_not_after() -> None:
    context = {"record": {"rows": list(range(5_000)), "chunk": "z" * 1_000}}
    budget = RenderBudget(RULE_LIMITS)
    with pytest.raises(TemplateLimitError) as stopped:
        render_with_stats("{% for x in record.rows %}{{ record.chunk }}{% endfor %}", context, budget=budget)
    assert stopped.value.limit == "max_output"
    assert budget.stats.output == RULE_LIMITS.max_output  # 200 chunks; the 201st was refused
    assert budget.stats.iterations == RULE_LIMITS.max_output // 1_000 + 1  # not 5,000


def test_a_json_value_shares_one_budget_across_its_strings() -> None:
    context = {"record": {"big": "y" * 150_000}}
    assert len(render_value({"a": "{{ record.big }}"}, context)["a"]) == 150_000
    with pytest.raises(TemplateLimitError, match="max_output"):
        render_value({"a": "{{ record.big }}", "b": ["{{ record.big }}"]}, context)


def test_a_template_stored_before_the_checks_is_refused_when_rendered() -> None:
    with pytest.raises(TemplateCheckError, match=r"\{% macro %\}"):
        render("{% macro f() %}x{% endmacro %}{{ f() }}", {})
    with pytest.raises(TemplateLimitError, match="max_value"):
        render("{{ 'a' * 10**9 }}", {})


def test_other_render_failures_are_template_errors_so_callers_fail_permanently() -> None:
    for text in ("{{ 1 // 0 }}", "{{ record.s + 1 }}", "{{ 10 is divisibleby 0 }}", "{{ record.missing }}"):
        with pytest.raises(TemplateError):
            render(text, {"record": {"s": "a"}})
        with pytest.raises(PermanentActionError, match="could not be rendered"):
            render_for_action(text, {"record": {"s": "a"}}, "values")


# -- what still works, and what it costs ------------------------------------------------------------


def test_ordinary_templates_render_as_before_and_report_their_counters() -> None:
    context = {"record": {"id": 7, "name": "Ann", "total": 1234.5, "tags": ["a", "b"], "s": "<b>"}}
    cases = {
        "{{ record.name|upper }}: {{ '%.2f'|format(record.total) }}": "ANN: 1234.50",
        "{{ '{:,}'.format(record.id * 1000) }} {{ record.name ~ '!' }}": "7,000 Ann!",
        "{% for t in record.tags %}[{{ t }}]{% endfor %} {{ record.tags|join(', ') }}": "[a][b] a, b",
        "{{ record.tags|map('upper')|list }} {{ record.name[1:] }} {{ 'n' in record.name }}": (
            "['A', 'B'] nn True"
        ),
        "{% for k, v in record.items() if k == 'id' %}{{ k }}={{ v }}{% endfor %}": "id=7",
        "{{ record.missing|default('-') }} {{ record.get('name') }} {{ record.tags|length }}": "- Ann 2",
    }
    for text, expected in cases.items():
        check_template(text)
        output, stats = render_with_stats(text, context)
        assert output == expected
        assert stats.output == len(expected)
        within_limits(stats, RULE_LIMITS)
    _, stats = render_with_stats("{% for t in record.tags %}{{ t|upper }}{% endfor %}", context)
    assert (stats.iterations, stats.operations, stats.largest_value) == (2, 2, 1)
    assert {f.name for f in fields(RenderStats)} == {
        "iterations",
        "steps",
        "output",
        "work",
        "operations",
        "largest_value",
    }


def test_html_escaping_is_unchanged_by_the_guarded_operators() -> None:
    context = {"record": {"s": "<i>", "tags": ["<a>", "b"]}}
    assert render("{{ '<b>' ~ record.s }}", context, html=True) == "&lt;b&gt;&lt;i&gt;"
    assert render("{{ '{}!'.format(record.s) }}", context, html=True) == "&lt;i&gt;!"
    assert render("{{ record.tags|join(', ') }}", context, html=True) == "&lt;a&gt;, b"
    assert render("{{ record.s|e ~ 'x' }}", context, html=True) == "&lt;i&gt;x"


def _report_context(queries: int, rows: int, columns: int) -> dict[str, Any]:
    names = [f"c{i}" for i in range(columns)]
    data = [[f"v{r}-{c}" for c in range(columns)] for r in range(rows)]
    query = {
        "columns": names,
        "rows": data,
        "row_count": rows,
        "truncated": False,
        "shown": rows,
        "more": 0,
        "header": [(name, False) for name in names],
        "display": [[(value, False) for value in line] for line in data],
        "in_table_chart": False,
    }
    return {
        "report": {"id": "acme/r", "organization": "acme", "name": "r", "title": "T", "description": ""},
        "run": {"period": "the week"},
        "queries": {f"q{i}": {**query, "id": f"q{i}", "file": f"q{i}.csv"} for i in range(queries)},
        "charts": {},
        "parameters": {},
        "files": ["r.html"],
    }


def test_our_default_report_template_fits_its_budget_at_the_report_row_caps() -> None:
    """10 queries of 200 shown rows x 40 columns: 80,000+ cells, within the trusted budget."""
    context = _report_context(10, 200, 40)
    html, stats = render_with_stats(default_template(), context, html=True, limits=DEFAULT_REPORT_LIMITS)
    assert html.count("<tr>") == 10 * 201
    within_limits(stats, DEFAULT_REPORT_LIMITS)
    assert stats.iterations > 80_000
    assert render_html(None, context) == html


def test_an_authors_report_template_has_the_report_budget() -> None:
    context = _report_context(10, 200, 3)
    looping = (
        "{% for q in queries.values() %}{% for a in q.rows %}{% for b in q.rows %}.{% endfor %}"
        "{% endfor %}{% endfor %}"
    )
    with pytest.raises(ReportRenderError, match="max_iterations") as stopped:
        render_html(looping, context)
    assert "the report template stopped at a limit" in str(stopped.value)
    ok = "{% for q in queries.values() %}{{ q.id }}:{{ q.rows|length }} {% endfor %}"
    assert render_html(ok, context).startswith("q0:200 q1:200")
    assert REPORT_LIMITS.max_iterations < DEFAULT_REPORT_LIMITS.max_iterations
