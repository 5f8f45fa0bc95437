"""Lowering of ``kind: report``: a valid report (with its SQL and template texts) becomes a ``DagSpec``.

The DAG, ``report__<org>__<name>`` on a ``CronDataIntervalTimetable`` (schedule kind ``interval``):

``run_queries`` (each query streamed to a file, read-only, with timeout and row cap; the alert check
and ``skip_if_empty`` decide whether the run goes on) → one ``render_<format>`` task per format →
``deliver`` (mapped: one task instance per destination, each delivery idempotent and recorded) →
``record_report`` (the execution log's final status, ``all_done``).
"""

from __future__ import annotations

from typing import Any

from rule_compiler.canonical import content_hash
from rule_compiler.compiler.ir import DagSpec, ScheduleSpec, TaskSpec
from rule_compiler.compiler.lower import COMPILER_VERSION, dag_display_name, dag_id_for
from rule_compiler.definitions.report import ReportDefinition
from rule_compiler.validation.report_checks import ReportSources

QUERIES_TASK = "run_queries"
DELIVER_TASK = "deliver"
REPORT_OUTCOME_TASK = "record_report"
#: The UI labels of the fixed tasks (their ids never change; labels may).
REPORT_TASK_DISPLAY_NAMES = {
    QUERIES_TASK: "run queries",
    DELIVER_TASK: "deliver",
    REPORT_OUTCOME_TASK: "record report",
}


def render_task_id(fmt: str) -> str:
    return f"render_{fmt}"


def compile_report(report: ReportDefinition, sources: ReportSources) -> DagSpec:
    """Lower a validated report. Pure and deterministic: same input, same bytes."""
    report_id = f"{report.organization}/{report.name}"
    source = report.model_dump(mode="json", by_alias=True, exclude_defaults=False)
    # What the renders (and the deliveries, through the first render's params) show of each query:
    # its heading and its card figures, as [name, figure] pairs in the author's order.
    query_options: list[dict[str, Any]] = [
        {
            "id": query.id,
            "title": query.title or query.id,
            "summary": [[name, figure] for name, figure in (query.summary or {}).items()],
        }
        for query in report.queries
    ]
    renders = [
        TaskSpec(
            task_id=render_task_id(fmt),
            display_name=f"render {fmt}",
            kind="report_render",
            params={
                "report_id": report_id,
                "format": fmt,
                "title": report.title or report.name,
                "description": report.description,
                "charts": [chart.model_dump(mode="json", exclude_none=True) for chart in report.charts]
                if fmt in ("html", "pdf")
                else [],
                "template": sources.template if fmt in ("html", "pdf") else None,
                "queries": query_options,
            },
            upstream=(QUERIES_TASK,),
            retries=1,
            timeout_seconds=1_800,
        )
        for fmt in report.formats
    ]
    tasks = [
        TaskSpec(
            task_id=QUERIES_TASK,
            display_name=REPORT_TASK_DISPLAY_NAMES[QUERIES_TASK],
            kind="report_queries",
            params={
                "report_id": report_id,
                "queries": [
                    {
                        "id": query.id,
                        "connection": query.connection,
                        "sql": sources.sql[query.id],
                        "row_limit": query.row_limit,
                        "timeout": query.timeout,
                    }
                    for query in report.queries
                ],
                "parameters": [p.model_dump(mode="json") for p in report.parameters],
                "skip_if_empty": report.skip_if_empty,
                "alert": report.alert.model_dump(mode="json") if report.alert else None,
            },
            retries=2,
            timeout_seconds=max(q.timeout for q in report.queries) * len(report.queries) + 300,
        ),
        *renders,
        TaskSpec(
            task_id=DELIVER_TASK,
            display_name=REPORT_TASK_DISPLAY_NAMES[DELIVER_TASK],
            kind="report_deliver",
            params={
                "report_id": report_id,
                "formats": list(report.formats),
                "deliveries": [
                    {"index": index, **delivery.model_dump(mode="json", exclude_none=True)}
                    for index, delivery in enumerate(report.deliver)
                ],
            },
            upstream=tuple(task.task_id for task in renders),
            retries=3,
            retry_delay_seconds=60,
            timeout_seconds=600,
        ),
        TaskSpec(
            task_id=REPORT_OUTCOME_TASK,
            display_name=REPORT_TASK_DISPLAY_NAMES[REPORT_OUTCOME_TASK],
            kind="report_outcome",
            params={"report_id": report_id},
            upstream=(DELIVER_TASK,),
            retries=2,
            timeout_seconds=120,
            trigger_rule="all_done",
        ),
    ]
    return DagSpec(
        compiler_version=COMPILER_VERSION,
        dag_id=dag_id_for("report", report.organization, report.name),
        rule_id=report_id,
        organization=report.organization,
        kind="report",
        name=report.name,
        display_name=dag_display_name(report.title, report.organization, report.name),
        description=report.description,
        owner=report.owner,
        active=report.active,
        tags=tuple(
            sorted({"automation", "report", f"org:{report.organization}", *(f"tag:{t}" for t in report.tags)})
        ),
        schedule=ScheduleSpec(kind="interval", cron=report.schedule.cron, timezone=report.schedule.timezone),
        doc_md=_doc_md(report),
        source_hash=content_hash(source),
        tasks=tuple(tasks),
    )


def _doc_md(report: ReportDefinition) -> str:
    lines: list[Any] = [f"### Report `{report.organization}/{report.name}`", ""]
    if report.description:
        lines += [report.description.replace("<", "&lt;"), ""]
    lines += [
        f"**Schedule:** `{report.schedule.cron}` ({report.schedule.timezone}); each run reads the interval "
        "since the previous one.",
        "",
        f"**Queries:** {', '.join(f'`{q.id}` ({q.connection})' for q in report.queries)}",
        "",
        f"**Formats:** {', '.join(report.formats)}"
        + (f"; charts: {', '.join(f'`{c.id}` ({c.type})' for c in report.charts)}" if report.charts else ""),
        "",
        f"**Delivered to:** {', '.join(d.type for d in report.deliver)}",
    ]
    if report.alert is not None:
        check = report.alert.check
        lines += [
            "",
            f"**Alert mode:** sent only when `{check.query}` {check.operator.replace('_', ' ')}"
            f"{'' if check.value is None else f' {check.value}'}; "
            f"not again within {report.alert.grace_period}.",
        ]
    if report.skip_if_empty:
        lines += ["", "Not sent when every query returns no rows."]
    return "\n".join(lines) + "\n"
