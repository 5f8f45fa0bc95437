"""The floor of benchmarks/parse.py (and of benchmarks/workflow.py's parse): hand-written DAG files equal
to the loader's work, and the check that both sides built the same DAGs (ids, operators, edges,
timetables, trigger rules, params).
"""

from __future__ import annotations

import keyword
import pprint
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# -- the hand-written files ----------------------------------------------------------------------------

_RESERVED = {
    "DAG",
    "Asset",
    "AssetWatcher",
    "CronDataIntervalTimetable",
    "CronTriggerTimetable",
    "OutboxEventTrigger",
    "START_DATE",
    "START_DATES",
    "dt",
    "pendulum",
    "dag",
}


def _identifier(task_id: str, taken: set[str]) -> str:
    name = re.sub(r"\W", "_", task_id)
    if not name or name[0].isdigit():
        name = f"task_{name}"
    if keyword.iskeyword(name) or name in _RESERVED:
        name = f"{name}_task"
    base, number = name, 2
    while name in taken:
        name, number = f"{base}_{number}", number + 1
    taken.add(name)
    return name


def _literal(value: Any, indent: int) -> str:
    text = pprint.pformat(value, width=110 - indent, sort_dicts=False)
    return text.replace("\n", "\n" + " " * indent)


def _kwargs(lines: list[str], pairs: list[tuple[str, str]], indent: int) -> None:
    pad = " " * indent
    for key, value in pairs:
        lines.append(f"{pad}{key}={value},")


@dataclass
class HandWritten:
    """What a generated hand-written file needs to import (class → module)."""

    imports: dict[str, str] = field(default_factory=dict)
    blocks: list[str] = field(default_factory=list)
    sdk_names: set[str] = field(default_factory=set)  # from airflow.sdk, besides DAG
    timezones: set[str] = field(default_factory=set)  # of the start dates (render_dag's start_date_in)


def _dag_block(out: HandWritten, number: int, spec: Any, spec_hash: str) -> None:
    """One literal ``with DAG(...)`` block building what ``render_dag`` builds for this spec."""
    from rule_engine.render.dag import UNSUPPORTED_TRIGGERS, RenderErrorOperator

    from rule_compiler.events.watch import watch_of_spec

    lines: list[str] = []
    var = f"dag_{number:04d}"
    if spec.schedule.kind in UNSUPPORTED_TRIGGERS:  # render_dag's placeholder DAG, written out
        reason = UNSUPPORTED_TRIGGERS[spec.schedule.kind]
        out.imports[RenderErrorOperator.__name__] = RenderErrorOperator.__module__
        lines.append("with DAG(")
        _kwargs(
            lines,
            [
                ("dag_id", repr(spec.dag_id)),
                ("schedule", "None"),
                ("start_date", "START_DATE"),
                ("catchup", "False"),
                ("tags", repr(sorted({*spec.tags, "automation", "render-error"}))),
                ("description", repr(f"NOT RUNNABLE: {reason}"[:200])),
                (
                    "doc_md",
                    repr(f"### This automation could not be rendered\n\n{reason.replace('<', '&lt;')}\n"),
                ),
                ("is_paused_upon_creation", "True"),
            ],
            4,
        )
        lines.append(f") as {var}:")
        lines.append(f"    RenderErrorOperator(task_id='render_error', reason={reason!r})")
        out.blocks.append("\n".join(lines))
        return
    timezone = spec.schedule.timezone or "UTC"
    if spec.schedule.kind == "cron":
        out.sdk_names.add("CronTriggerTimetable")
        schedule = f"CronTriggerTimetable({spec.schedule.cron!r}, timezone={timezone!r})"
    elif spec.schedule.kind in ("data", "interval"):
        out.sdk_names.add("CronDataIntervalTimetable")
        schedule = f"CronDataIntervalTimetable({spec.schedule.cron!r}, timezone={timezone!r})"
    elif spec.schedule.kind == "event":  # the watch's asset and its one watcher, written out
        out.sdk_names.update({"Asset", "AssetWatcher"})
        out.imports["OutboxEventTrigger"] = "rule_engine.triggers.outbox"
        watch = watch_of_spec(spec)
        assert watch is not None  # an event schedule names its table
        trigger_args = ", ".join(f"{name}={value!r}" for name, value in watch.trigger_kwargs().items())
        schedule = (
            f"[Asset(name={watch.asset_name!r}, uri={watch.asset_uri!r}, "
            f"group='rule_engine', watchers=[AssetWatcher(name={watch.watcher_name!r}, "
            f"trigger=OutboxEventTrigger({trigger_args}))])]"
        )
    else:
        schedule = "None"
    doc_md = (
        f"{spec.doc_md}\n---\nspec `{spec_hash}` · IR v{spec.ir_version} · compiler {spec.compiler_version}\n"
    )
    out.timezones.add(timezone)
    lines.append("with DAG(")
    _kwargs(
        lines,
        [
            ("dag_id", repr(spec.dag_id)),
            ("schedule", schedule),
            ("start_date", f"START_DATES[{timezone!r}]"),
            ("catchup", "False"),
            ("max_active_runs", "1"),
            ("tags", repr(list(spec.tags))),
            ("dag_display_name", repr(spec.display_name or spec.dag_id)),
            ("description", repr((spec.description or spec.rule_id)[:200])),
            ("doc_md", repr(doc_md)),
            ("is_paused_upon_creation", repr(not spec.active)),
            ("default_args", _default_args(out, spec)),
        ],
        4,
    )
    lines.append(f") as {var}:")
    names: dict[str, str] = {}
    taken: set[str] = set()
    for task in spec.tasks:
        names[task.task_id] = _identifier(task.task_id, taken)
        _task_lines(out, lines, task, names[task.task_id], spec_hash)
    for task in spec.tasks:
        for upstream in task.upstream:
            lines.append(f"    {names[upstream]} >> {names[task.task_id]}")
    out.blocks.append("\n".join(lines))


def _task_lines(out: HandWritten, lines: list[str], task: Any, name: str, spec_hash: str) -> None:
    """The operator of one task, as ``render_dag`` makes it (mapped over its list for a mapped kind)."""
    from rule_engine.render.dag import MAPPED_KINDS
    from rule_engine.render.registry import operator_class as operator_of

    operator_class = operator_of(task.kind)
    out.imports[operator_class.__name__] = operator_class.__module__
    pairs = [
        ("task_id", repr(task.task_id)),
        ("spec_params", _literal({**task.params, "kind": task.kind}, 8 + len("spec_params="))),
        ("spec_hash", repr(spec_hash)),
        ("retries", repr(task.retries)),
        ("retry_delay", f"dt.timedelta(seconds={task.retry_delay_seconds})"),
        ("retry_exponential_backoff", "2.0"),
        ("execution_timeout", f"dt.timedelta(seconds={task.timeout_seconds})"),
        ("trigger_rule", repr(task.trigger_rule)),
        ("task_display_name", repr(task.display_name)),
    ]
    if operator_class.takes_on_failure:
        pairs.append(("on_failure", repr(task.on_failure)))
    if task.kind in MAPPED_KINDS:  # one task instance per item of a list in the params
        source, argument, label = MAPPED_KINDS[task.kind]
        pairs.append(("map_index_template", repr(label)))
        lines.append(f"    {name} = {operator_class.__name__}.partial(")
        _kwargs(lines, pairs, 8)
        items = _literal(list(task.params.get(source) or []), 8 + len(argument) + 1)
        lines.append(f"    ).expand({argument}={items})")
        return
    lines.append(f"    {name} = {operator_class.__name__}(")
    _kwargs(lines, pairs, 8)
    lines.append("    )")


def _default_args(out: HandWritten, spec: Any) -> str:
    """render_dag's default_args: the owner, and with a rule owner its failure notifier."""
    if not spec.owner:
        return repr({"owner": "automation"})
    from rule_engine.notifiers import OwnerFailureNotifier

    out.imports[OwnerFailureNotifier.__name__] = OwnerFailureNotifier.__module__
    notifier = (
        f"OwnerFailureNotifier(owner={spec.owner!r}, organization={spec.organization!r}, "
        f"rule_id={spec.rule_id!r})"
    )
    return f"{{'owner': {spec.owner!r}, 'on_failure_callback': {notifier}}}"


def write_hand_written(path: Path, specs: list[Any], title: str) -> int:
    """Generate a plain DAG file (one literal block per spec) from stored spec rows; its size in bytes."""
    from rule_compiler.compiler import DagSpec

    out = HandWritten()
    for number, row in enumerate(specs, start=1):
        _dag_block(out, number, DagSpec.model_validate_json(row.spec_json), row.spec_hash)
    sdk_names = ["DAG", *sorted(out.sdk_names)]
    header = [
        f'"""{title}\n\nGenerated by a benchmark (benchmarks/) from the stored specs: the Airflow DAGs',
        'the rule engine renders, written out as plain code (the benchmark\'s floor). Do not edit."""',
        "",
        "import datetime as dt",
        "",
        "import pendulum",
        f"from airflow.sdk import {', '.join(sdk_names)}",
        "",
        *sorted(f"from {module} import {name}" for name, module in out.imports.items()),
        "",
        "START_DATE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)",
        "START_DATES = {",
        *(f"    {tz!r}: pendulum.datetime(2024, 1, 1, tz={tz!r})," for tz in sorted(out.timezones)),
        "}",
    ]
    text = "\n".join(header) + "\n\n\n" + "\n\n\n".join(out.blocks) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return len(text.encode("utf-8"))


# -- what a parse found ----------------------------------------------------------------------------------


def _timetable(timetable: Any) -> tuple[str, dict[str, str]]:
    import attrs

    if attrs.has(type(timetable)):
        fields = attrs.asdict(timetable, recurse=False)
    else:
        fields = dict(getattr(timetable, "__dict__", {}))
    return type(timetable).__qualname__, {key: repr(value) for key, value in sorted(fields.items())}


def fingerprint(dag: Any) -> dict[str, Any]:
    """Everything that makes the DAG what it is (but where it was defined)."""
    tasks = {}
    for task in sorted(dag.tasks, key=lambda t: t.task_id):
        tasks[task.task_id] = {
            "class": f"{type(task).__module__}.{type(task).__qualname__}",
            "upstream": sorted(task.upstream_task_ids),
            "downstream": sorted(task.downstream_task_ids),
            "owner": task.owner,
            "retries": task.retries,
            "retry_delay": task.retry_delay,
            "retry_exponential_backoff": task.retry_exponential_backoff,
            "execution_timeout": task.execution_timeout,
            "trigger_rule": str(task.trigger_rule),
            "task_display_name": task.task_display_name,
            "spec_params": getattr(task, "spec_params", None),
            "spec_hash": getattr(task, "spec_hash", None),
            "on_failure": getattr(task, "on_failure", None),
            "reason": getattr(task, "reason", None),
            "start_date": task.start_date,
        }
    return {
        "timetable": _timetable(dag.timetable),
        "start_date": dag.start_date,
        "timezone": repr(dag.timezone),
        "dag_display_name": dag.dag_display_name,
        "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs,
        "tags": sorted(dag.tags),
        "description": dag.description,
        "doc_md": dag.doc_md,
        "is_paused_upon_creation": dag.is_paused_upon_creation,
        "default_args": dag.default_args,
        "tasks": tasks,
    }


def compare_bags(loader_bag: Any, floor_bag: Any, case: str) -> dict[str, Any]:
    """Same dag ids, task ids and everything else; raises SystemExit(2) with the first difference."""
    for side, bag in (("loader", loader_bag), ("floor", floor_bag)):
        if bag.import_errors:
            raise SystemExit(f"{case}: the {side} parse had import errors: {bag.import_errors}")
    loader_ids, floor_ids = set(loader_bag.dag_ids), set(floor_bag.dag_ids)
    if loader_ids != floor_ids:
        raise SystemExit(
            f"{case}: the two sides found different DAGs; only the loader: "
            f"{sorted(loader_ids - floor_ids)[:5]}, only the floor: {sorted(floor_ids - loader_ids)[:5]}"
        )
    mismatched_task_ids = [
        dag_id
        for dag_id in sorted(loader_ids)
        if set(loader_bag.dags[dag_id].task_ids) != set(floor_bag.dags[dag_id].task_ids)
    ]
    if mismatched_task_ids:
        raise SystemExit(f"{case}: different task ids in {mismatched_task_ids[:5]}")
    for dag_id in sorted(loader_ids):
        mine, theirs = fingerprint(loader_bag.dags[dag_id]), fingerprint(floor_bag.dags[dag_id])
        if mine != theirs:
            keys = [key for key in mine if mine[key] != theirs[key]]
            detail = {key: (mine[key], theirs[key]) for key in keys}
            raise SystemExit(
                f"{case}: DAG {dag_id} differs between the sides in {keys}: {str(detail)[:2000]}"
            )
    return {
        "identical_dag_ids": True,
        "identical_task_ids": True,
        "identical_dags": True,
        "dags": len(loader_ids),
        "tasks": sum(len(dag.tasks) for dag in loader_bag.dags.values()),
    }
