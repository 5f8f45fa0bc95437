"""``rule-compiler report run NAME --date YYYY-MM-DD``: render a report locally, deliver nothing.

NAME is a report file (YAML/JSON, validated and compiled first, against ``--catalog`` or the
organization's stored catalog when the store exists) or a stored report (``ORG/NAME``, or ``NAME``
with ``--org``), which runs the SQL and template texts it was registered with. The run reads the
data interval a scheduled run at the end of ``--date`` reads (:mod:`rule_compiler.reporting.interval`),
runs each query read-only into ``--out`` and renders every format there, as the report DAG does.

Each query's connection is a SQLAlchemy URL given with ``--connection-url ID=URL``, or the Airflow
connection ID when the command is the ``rule-compiler`` installed with the plugin.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rule_compiler import settings
from rule_compiler.cli.common import Catalogs, CliError, print_invalid, print_warnings, store_from_args
from rule_compiler.definitions.report import REPORT_FORMATS
from rule_compiler.errors import DefinitionError, StoreError
from rule_compiler.reporting.report_errors import ReportError

if TYPE_CHECKING:
    import sqlalchemy as sa

    from rule_compiler.compiler.ir import DagSpec
    from rule_compiler.reporting.interval import DataInterval
    from rule_compiler.reporting.workdir import Manifest

    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

EXIT_OK, EXIT_INVALID = 0, 1
FORMATS = REPORT_FORMATS


def add_parser(sub: SubParsers) -> SubParsers:
    """Add ``report`` (returned, for extensions) with ``report run``."""
    p = sub.add_parser("report", help="scheduled reports: render one locally for a date")
    actions = p.add_subparsers(dest="report_command", required=True, metavar="ACTION")
    r = actions.add_parser(
        "run",
        help="render a report for a date into files (no delivery)",
        description="Run a report's queries for the data interval of the scheduled run at the end of "
        "DATE (in the report's time zone) and render each format into --out; nothing is delivered. "
        "Exit codes: 0 rendered, 1 invalid report file, 2 any other error.",
    )
    r.add_argument(
        "report", metavar="NAME", help="a report file, or ORG/NAME (or NAME with --org) of a stored one"
    )
    r.add_argument("--org", "--organization", dest="organization", help="organization of a stored report")
    r.add_argument("--date", required=True, metavar="YYYY-MM-DD", help="the day the run happens")
    r.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a report parameter's value (repeat for several; default: the parameter's default)",
    )
    r.add_argument(
        "--out", type=Path, default=None, help="folder for the files (default: ./report-NAME-DATE)"
    )
    r.add_argument(
        "--connection-url",
        action="append",
        default=[],
        metavar="ID=URL",
        help="SQLAlchemy URL for the queries of connection ID (default: Airflow's connection ID)",
    )
    r.add_argument(
        "--format", dest="formats", action="append", choices=FORMATS, help="only this format (repeatable)"
    )
    r.add_argument("--catalog", type=Path, help="catalog file to validate a report file against")
    r.set_defaults(run=run_report)
    return actions


def run_report(args: argparse.Namespace) -> int:
    from rule_compiler.reporting.interval import interval_for_date
    from rule_compiler.reporting.queries import bind_values

    day = _date(args.date)
    spec = _spec(args)
    if spec is None:
        return EXIT_INVALID
    queries_task = next(t for t in spec.tasks if t.kind == "report_queries").params
    renders = [t.params for t in spec.tasks if t.kind == "report_render"]
    if args.formats:
        renders = [r for r in renders if r["format"] in args.formats]
        missing = sorted(set(args.formats) - {str(r["format"]) for r in renders})
        if missing:
            raise CliError(f"the report has no format {', '.join(missing)}")
    assert spec.schedule.cron is not None  # noqa: S101 - a report always has a cron
    interval = interval_for_date(spec.schedule.cron, spec.schedule.timezone or "UTC", day)
    try:
        values = bind_values(
            _as_list(queries_task["parameters"]),
            _overrides(args.param),
            interval_start=interval.start,
            interval_end=interval.end,
            logical_date=interval.logical_date,
        )
    except ReportError as exc:
        raise CliError(str(exc)) from None
    out = args.out or Path(f"report-{spec.name}-{day.isoformat()}")
    out.mkdir(parents=True, exist_ok=True)
    try:
        manifest = _run_queries(args, spec, queries_task, values=values, interval=interval, out=out)
        _preview_checks(queries_task, manifest)
        _render(manifest, renders, out)
    except ReportError as exc:
        raise CliError(str(exc)) from None
    print(f"rendered {len(renders)} file{'s' if len(renders) != 1 else ''} in {out} (nothing was delivered)")
    return EXIT_OK


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CliError(f"--date {text!r} is not a date (YYYY-MM-DD)") from None


def _overrides(pairs: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise CliError(f"--param {pair!r}: give NAME=VALUE")
        if name.strip() in found:
            raise CliError(f"--param {name.strip()} is given twice")
        found[name.strip()] = value
    return found


def _spec(args: argparse.Namespace) -> DagSpec | None:
    """The compiled report: from a file (None when it is invalid: problems printed) or the store."""
    from rule_compiler.compiler.ir import DagSpec

    path = Path(args.report)
    if path.is_file():
        return _compile_file(args, path)
    if path.suffix in (".yaml", ".yml", ".json"):
        raise CliError(f"no such file: {path}")
    organization, _, name = args.report.rpartition("/")
    organization = organization or args.organization
    if not organization:
        raise CliError(f"{args.report}: no such file; for a stored report give ORG/NAME or --org")
    try:
        stored = store_from_args(args).get(organization=organization, kind="report", name=name)
    except StoreError as exc:
        raise CliError(f"rule store: {exc}") from None
    return DagSpec.model_validate_json(stored.spec_json)


def _compile_file(args: argparse.Namespace, path: Path) -> DagSpec | None:
    from rule_compiler.loading import read_definition_file
    from rule_compiler.registration import Compiled, compile_document

    try:
        data = read_definition_file(path)
    except DefinitionError as exc:
        print_invalid(path, exc)
        return None
    if data.get("kind") != "report":
        raise CliError(f"{path} is a {data.get('kind')!r} definition, not a report")
    catalog = Catalogs(args).for_org(data.get("organization")) if _catalog_available(args) else None
    try:
        compiled = compile_document(data, catalog, source=str(path))
    except DefinitionError as exc:
        print_invalid(path, exc)
        return None
    assert isinstance(compiled, Compiled)  # noqa: S101 - a report compiles to a DAG spec
    print_warnings(path, compiled.warnings)
    return compiled.spec


def _catalog_available(args: argparse.Namespace) -> bool:
    """``--catalog``, or a store that is configured (never create the default SQLite one)."""
    if args.catalog or args.store or os.environ.get(settings.STORE_URL_ENV):
        return True
    import sqlalchemy as sa

    database = sa.make_url(settings.store_url()).database
    return bool(database) and os.path.exists(str(database))


def _run_queries(
    args: argparse.Namespace,
    spec: DagSpec,
    task: dict[str, Any],
    *,
    values: dict[str, Any],
    interval: DataInterval,
    out: Path,
) -> Manifest:
    from rule_compiler.reporting.interval import period_text
    from rule_compiler.reporting.queries import json_safe_values, run_query_to_csv
    from rule_compiler.reporting.workdir import Manifest, write_manifest
    from rule_compiler.sql_check import QUERY_PARAMETERS

    engines = _Engines(args)
    manifest = Manifest(
        report_id=spec.rule_id,
        interval_start=interval.start.isoformat(),
        interval_end=interval.end.isoformat(),
        logical_date=interval.logical_date.isoformat(),
        parameters={},
        results=[],
        timezone=spec.schedule.timezone or "UTC",
    )
    print(f"report {spec.rule_id}, the run at the end of {args.date}: {period_text(manifest)}")
    results = []
    try:
        for query in _as_list(task["queries"]):
            started = time.perf_counter()
            result = run_query_to_csv(
                engines.get(str(query["connection"])),
                str(query["sql"]),
                values,
                query_id=str(query["id"]),
                row_limit=int(query["row_limit"]),
                timeout=int(query["timeout"]),
                path=out / f"{query['id']}.csv",
            )
            cut = f" (cut at the row limit of {query['row_limit']:,})" if result.truncated else ""
            took = time.perf_counter() - started
            print(f"  query {result.id}: {result.row_count:,} rows{cut} in {took:.2f} s → {result.path}")
            results.append(result)
    finally:
        engines.dispose()
    parameters = {k: v for k, v in json_safe_values(values).items() if k not in QUERY_PARAMETERS}
    manifest = dataclasses.replace(manifest, parameters=parameters, results=results)
    write_manifest(out, manifest)
    return manifest


def _preview_checks(task: dict[str, Any], manifest: Manifest) -> None:
    """Say what a scheduled run would decide (skip when empty, the alert check); render anyway."""
    from rule_compiler.reporting.alerts import alert_holds

    if task.get("skip_if_empty") and all(r.row_count == 0 for r in manifest.results):
        print("  note: every query returned no rows: a scheduled run would skip (skipped-empty)")
    alert = task.get("alert")
    if isinstance(alert, dict):
        check = alert["check"]
        holds, _, reason = alert_holds(check, manifest.result(check["query"]), None)
        verdict = (
            "holds: a scheduled run would send" if holds else "does not hold: a scheduled run would not send"
        )
        print(f"  alert check {verdict} ({reason}; a `changed` check compares with the previous run)")


def _render(manifest: Manifest, renders: list[dict[str, Any]], out: Path) -> None:
    from rule_compiler.reporting.render_format import render_format

    formats = [str(r["format"]) for r in renders]
    for params in renders:
        started = time.perf_counter()
        path = render_format(
            str(params["format"]),
            out,
            manifest,
            title=str(params["title"]),
            description=str(params.get("description") or ""),
            charts=_as_list(params.get("charts") or []),
            template=params.get("template") if isinstance(params.get("template"), str) else None,
            formats=formats,
            queries=_as_list(params.get("queries") or []),
        )
        took = time.perf_counter() - started
        print(f"  {params['format']:4}  {path}  {_size(path.stat().st_size)} in {took:.2f} s")


def _size(count: int) -> str:
    return f"{count / 1024:,.1f} KiB" if count >= 1024 else f"{count} B"


def _as_list(value: Any) -> list[dict[str, Any]]:
    return [dict(item) for item in value]


class _Engines:
    """An engine per connection id: ``--connection-url`` first, else the Airflow connection."""

    def __init__(self, args: argparse.Namespace) -> None:
        self._urls: dict[str, str] = {}
        for pair in args.connection_url:
            conn_id, sep, url = pair.partition("=")
            if not sep or not conn_id or not url:
                raise CliError(f"--connection-url {pair.split('=', 1)[0]!r}...: give ID=URL")
            self._urls[conn_id] = url
        self._engine_for = getattr(args, "engine_for", None)
        self._engines: dict[str, sa.Engine] = {}

    def get(self, conn_id: str) -> sa.Engine:
        if conn_id not in self._engines:
            self._engines[conn_id] = self._make(conn_id)
        return self._engines[conn_id]

    def _make(self, conn_id: str) -> sa.Engine:
        if conn_id in self._urls:
            import sqlalchemy as sa

            try:
                return sa.create_engine(self._urls[conn_id])
            except (sa.exc.ArgumentError, ImportError) as exc:
                raise CliError(f"--connection-url {conn_id}=...: {exc}") from None
        if self._engine_for is None:
            raise CliError(
                f"connection '{conn_id}': give --connection-url {conn_id}=URL, or use the `rule-compiler` "
                "command installed with the plugin to read Airflow's connection"
            )
        engine: sa.Engine = self._engine_for(conn_id)
        return engine

    def dispose(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
