"""The table benchmarks/parse.py prints: per case the medians, the ratio, the target and the verdict."""

from __future__ import annotations

from typing import Any

from bench_common import aligned, seconds


def table(result: dict[str, Any]) -> str:
    header = (
        "case",
        "DAGs",
        "loader median",
        "loader min",
        "floor median",
        "floor min",
        "ratio",
        "target",
        "verdict",
        "CPU ratio",
    )
    rows = [header]
    for case in result["cases"]:
        rows.append(
            (
                case["case"],
                str(case["dags"]),
                f"{case['loader']['median_s']:.4f} s",
                f"{case['loader']['min_s']:.4f} s",
                f"{case['floor']['median_s']:.4f} s",
                f"{case['floor']['min_s']:.4f} s",
                f"{case['ratio']:.2f}x",
                f"<= {case['target']:.1f}x",
                case["verdict"],
                f"{case['cpu_ratio']:.2f}x",
            )
        )
    lines = aligned(rows)
    info = result["setup"]
    notes = [
        "ratio = median wall time of the loader / of the floor (the verdict); CPU ratio = the same with "
        "this process's CPU time (less sensitive to other load on the machine; misses time spent in a "
        "database server)",
        f"rules stored: {info['rules']} ({info['store_backend']}); timed parses per side: {info['repeat']}; "
        f"Python {info['python']}, Airflow {info['airflow']}",
        f"hand-written files: {info['floor_all_bytes']:,} bytes (all), {info['floor_one_bytes']:,} bytes "
        f"(one); DAG files bytecode-cached: {info['bytecode_cached']}",
    ]
    for case in result["cases"]:
        notes.append(
            f"{case['case']}: DAGs found per timed parse: loader {case['loader']['dags_found']}, floor "
            f"{case['floor']['dags_found']}; same dag_ids: {case['identical_dag_ids']}, same task ids: "
            f"{case['identical_task_ids']}, same DAGs: {case['identical_dags']}; loader spec queries per "
            f"parse: {case['loader']['spec_queries_per_parse']}"
        )
        notes.append(
            f"{case['case']}: wall s, loader {seconds(case['loader']['times_s'])}; floor "
            f"{seconds(case['floor']['times_s'])}; CPU medians: loader "
            f"{case['loader']['cpu_median_s']:.4f} s, floor {case['floor']['cpu_median_s']:.4f} s"
        )
        steps = case["loader_only_steps"]
        notes.append(
            f"{case['case']}: loader-only steps timed alone (medians): store read with a new RuleStore "
            f"{steps['store_read_median_s']:.4f} s, spec JSON -> DagSpec "
            f"{steps['spec_validation_median_s']:.4f} s"
        )
    reread = result["store_reread_check"]
    notes.append(
        f"store re-read check: {reread['dags_after_adding_a_rule']} DAGs after adding a rule, "
        f"{reread['dags_after_deleting_it']} after deleting it"
    )
    return "\n".join([*lines, "", *notes])
