"""The table benchmarks/workflow.py prints: per case the medians, the ratio, the target and the verdict."""

from __future__ import annotations

from typing import Any

from bench_common import aligned, seconds


def _sides(case: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    return case["workflow" if case["case"] == "run" else "loader"], case["floor"]


def table(result: dict[str, Any]) -> str:
    header = (
        "case",
        "size",
        "workflow median",
        "hand-written median",
        "ratio",
        "target",
        "verdict",
        "CPU ratio",
    )
    rows = [header]
    for case in result["cases"]:
        mine, theirs = _sides(case)
        size = f"{case['orders_per_run']} orders" if case["case"] == "run" else f"{case['dags']} DAGs"
        rows.append(
            (
                case["case"],
                size,
                f"{mine['median_s']:.4f} s",
                f"{theirs['median_s']:.4f} s",
                f"{case['ratio']:.2f}x",
                f"<= {case['target']:.1f}x",
                case["verdict"],
                f"{case['cpu_ratio']:.2f}x",
            )
        )
    lines = aligned(rows)
    info = result["setup"]
    notes = [
        "ratio = median wall time of the workflow side / of the hand-written side (the verdict); CPU ratio "
        "= the same with this process's CPU time",
        f"Python {info['python']}, Airflow {info['airflow']}; SQLite files in {info['temporary_folder']}; "
        f"run: {info['runs']} timed dag.test runs per "
        f"side; parse: {info['workflows']} stored workflows ({info['store_backend']}), {info['repeat']} "
        "timed parses per side",
    ]
    for case in result["cases"]:
        mine, theirs = _sides(case)
        notes.append(
            f"{case['case']}: wall s, workflow side {seconds(mine['times_s'])}; hand-written "
            f"{seconds(theirs['times_s'])}"
        )
        if case["case"] == "run":
            notes += _run_notes(case)
        else:
            notes.append(
                f"parse: same dag_ids {case['identical_dag_ids']}, same task ids "
                f"{case['identical_task_ids']}, same DAGs {case['identical_dags']} ({case['tasks']} tasks); "
                "a route-new-orders copy: "
                + "; ".join(f"{task}: {what}" for task, what in case["trigger_rules"].items())
            )
            steps = case["loader_only_steps"]
            notes.append(
                f"parse: loader-only steps timed alone (medians): store read "
                f"{steps['store_read_median_s']:.4f} s, spec JSON -> DagSpec "
                f"{steps['spec_validation_median_s']:.4f} s"
            )
    reread = result["store_reread_check"]
    notes.append(
        f"store re-read check: {reread['dags_after_adding_a_rule']} DAGs after adding a workflow, "
        f"{reread['dags_after_deleting_it']} after deleting it"
    )
    return "\n".join([*lines, "", *notes])


def _run_notes(case: dict[str, Any]) -> list[str]:
    mine, theirs = case["workflow"], case["floor"]
    tasks = sorted({*mine["task_median_s"], *theirs["task_median_s"]})
    per_task = ", ".join(
        f"{task} {_ms(mine['task_median_s'].get(task))}/{_ms(theirs['task_median_s'].get(task))}"
        for task in tasks
    )
    return [
        f"run: {case['orders_per_run']} new orders a run ({case['big_orders_per_run']} big); same row "
        f"changes on both sides: {case['identical_row_changes']}",
        f"run: task span (first task start to last task end) medians: workflow "
        f"{mine['task_span_median_s']:.4f} s, hand-written {theirs['task_span_median_s']:.4f} s, ratio "
        f"{case['task_span_ratio']:.2f}x",
        f"run: task medians in ms, workflow/hand-written: {per_task}",
        "run: transactions committed in one run, workflow/hand-written: "
        + ", ".join(
            f"{db} {mine['commits_per_run'].get(db, 0)}/{theirs['commits_per_run'].get(db, 0)}"
            for db in sorted({*mine["commits_per_run"], *theirs["commits_per_run"]})
        ),
    ]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}"
