"""The table benchmarks/api.py prints: p50/p95 of each operation through the API and its baseline, the
ratios, the indexes each log query's plan used; then the plans."""

from __future__ import annotations

from typing import Any

from bench_common import aligned


def _ms(value: float) -> str:
    return f"{value:.2f} ms"


def table(result: dict[str, Any]) -> str:
    header = (
        "operation",
        "n",
        "API p50",
        "API p95",
        "baseline p50",
        "baseline p95",
        "ratio p50",
        "ratio p95",
    )
    rows = [header]
    operations = [result["creation"], *result["log_queries"], result["rate_limit_check"]]
    for op in operations:
        rows.append(
            (
                op["operation"],
                str(op["api"]["n"]),
                _ms(op["api"]["p50_ms"]),
                _ms(op["api"]["p95_ms"]),
                _ms(op["baseline"]["p50_ms"]),
                _ms(op["baseline"]["p95_ms"]),
                f"{op['ratio_p50']:.2f}x",
                f"{op['ratio_p95']:.2f}x",
            )
        )
    lines = aligned(rows)
    info = result["setup"]
    check = result["plan_check"]
    enforced = "enforced" if check["enforced"] else "not enforced"
    notes = [
        f"log rows: {info['runs']:,} runs ({info['runs_of_the_organization']:,} of the queried organization),"
        " "
        f"{info['action_results']:,} action results; loaded in {info['load_s']:.1f} s",
        f"Postgres {info['postgres']}, Python {info['python']}, Airflow {info['airflow']}; rate limit "
        f"{info['rate_limit'] or 'off'} (counted in the store); seed {info['seed']}",
        "baselines: rule creation = definition_ops.compile_for + RuleStore.apply called directly; log query "
        "= the same page as plain SQL through SQLAlchemy (runs, then their action results), same run ids",
        f"plan check ({enforced} under {check['min_rows']:,} rows):"
        + (" every plan uses indexes, no sequential scan" if check["passed"] else " A PLAN USES NO INDEX"),
    ]
    plans = []
    for query in result["log_queries"]:
        runs = query["runs_query"]
        actions = query["actions_query"]
        notes.append(
            f"{query['case']}: mean page {query['mean_page_size']:.1f} runs; runs query indexes "
            f"{', '.join(runs['indexes']) or 'none'}"
            + (f"; action results: {', '.join(actions['indexes']) or 'none'}" if actions else "")
            + (f"; SEQUENTIAL SCANS: {runs['seq_scans']}" if runs["seq_scans"] else "")
        )
        plans.append(f"--- EXPLAIN (ANALYZE, BUFFERS), {query['case']} {query['explained_params']}:")
        plans.extend(runs["plan"])
    return "\n".join([*lines, "", *notes, "", *plans])
