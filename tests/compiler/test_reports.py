"""``kind: report``: validation with files and templates, and the compiled DAG's shape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from rule_compiler.catalog import Catalog
from rule_compiler.errors import RuleValidationError
from rule_compiler.registration import Compiled, compile_document
from rule_compiler.validation.report_checks import output_columns
from tests.conftest import DEMO_CATALOG, ROOT

WEEKLY = ROOT / "include" / "reports" / "weekly-sales.yaml"


def _catalog() -> Catalog:
    return Catalog.model_validate(yaml.safe_load(DEMO_CATALOG.read_text()))


def _report(**changes: Any) -> dict[str, Any]:
    data = yaml.safe_load(WEEKLY.read_text())
    data.update(changes)
    return data


def _issues(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(RuleValidationError) as caught:
        compile_document(data, _catalog())
    return {issue.path: issue.message for issue in caught.value.issues}


def test_the_weekly_report_compiles_to_queries_renders_deliver_and_outcome() -> None:
    compiled = compile_document(_report(), _catalog())
    assert isinstance(compiled, Compiled) and compiled.rule is None
    spec = compiled.spec
    assert spec.dag_id == "report__acme__weekly-sales" and spec.kind == "report"
    assert spec.schedule.kind == "interval" and spec.schedule.timezone == "Europe/Berlin"
    assert [t.task_id for t in spec.tasks] == [
        "run_queries",
        "render_csv",
        "render_xlsx",
        "render_html",
        "render_pdf",
        "deliver",
        "record_report",
    ]
    queries = spec.task("run_queries").params["queries"]
    assert isinstance(queries, list)
    sql_file = (ROOT / "include" / "sql" / "reports" / "weekly_sales.sql").read_text()
    assert queries[0]["sql"] == sql_file  # the file's text travels in the spec: runs execute what was checked
    assert spec.task("deliver").upstream == ("render_csv", "render_xlsx", "render_html", "render_pdf")
    assert spec.task("record_report").trigger_rule == "all_done"
    assert spec.task("render_csv").params["charts"] == []
    assert len(spec.task("render_pdf").params["charts"]) == 2  # type: ignore[arg-type]


def test_a_template_file_is_checked_in_the_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sql" / "reports").mkdir(parents=True)
    (tmp_path / "sql" / "reports" / "weekly_sales.sql").write_text(
        (ROOT / "include" / "sql" / "reports" / "weekly_sales.sql").read_text()
    )
    folder = tmp_path / "templates" / "reports"
    folder.mkdir(parents=True)
    (folder / "good.html").write_text("<h1>{{ report.name }}</h1>{% for q in queries %}{{ q }}{% endfor %}")
    (folder / "leaky.html").write_text("{{ conn.app_db.password }}")
    (folder / "broken.html").write_text("{% for x in %}")
    monkeypatch.setenv("AUTOMATION_INCLUDE_DIR", str(tmp_path))

    good = compile_document(_report(template="good.html"), _catalog())
    assert isinstance(good, Compiled)
    assert good.spec.task("render_html").params["template"] == (folder / "good.html").read_text()
    assert "conn" in _issues(_report(template="leaky.html"))["template"]
    assert "syntax error" in _issues(_report(template="broken.html"))["template"]
    assert "no report template" in _issues(_report(template="missing.html"))["template"]


def test_a_sql_file_outside_the_reports_folder_is_refused() -> None:
    data = _report(queries=[{"id": "q", "connection": "app_db", "sql_file": "../../etc/passwd.sql"}])
    assert "queries[0].sql_file" in _issues(data)


def test_parameters_must_not_shadow_the_runs_times_and_defaults_fit_their_type() -> None:
    data = _report(
        parameters=[
            {"name": "logical_date", "type": "date"},
            {"name": "min_total", "type": "number", "default": "lots"},
        ]
    )
    issues = _issues(data)
    assert "set by the run itself" in issues["parameters[0].name"]
    assert "not a number" in issues["parameters[1].default"]


@pytest.mark.parametrize(
    ("sql", "columns"),
    [
        ("SELECT status, COUNT(*) AS n FROM orders GROUP BY status", ["status", "n"]),
        ("WITH t AS (SELECT id FROM orders) SELECT id AS order_id FROM t", ["order_id"]),
        ("SELECT * FROM customers", None),  # no catalog given
        ("SELECT status FROM orders UNION SELECT tier FROM customers", None),
    ],
)
def test_output_columns_are_known_when_the_sql_says_them(sql: str, columns: list[str] | None) -> None:
    assert output_columns(sql, None) == columns


def test_star_over_one_catalog_table_gives_its_columns() -> None:
    connection = _catalog().connections["app_db"]
    assert output_columns("SELECT * FROM customers", connection) == list(
        connection.tables["customers"].columns
    )
    assert (
        output_columns("SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id", connection) is None
    )
