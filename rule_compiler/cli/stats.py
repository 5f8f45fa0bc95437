"""``rule-compiler stats``: how an organization's rules and workflows perform, as readable tables.

``stats --org acme`` prints the organization's totals, each definition's summary, the series and the
top errors; ``stats --org acme rule flag-big-paid-orders`` one definition with its actions or nodes;
``stats --org acme webhooks`` the webhook attempts per action (success rate, latency, retries);
``stats --org acme reports [NAME]`` report runs (status, durations, sizes) and their deliveries;
``stats --org acme triggers`` what the event rules were handed per watched table (dropped, matched).
The numbers come from the analytics rollups (the same as ``GET /analytics``); ``stats rebuild``
recomputes those from the raw automation log (after an upgrade to the rollups, for instance).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from rule_compiler.cli.common import CliError, store_from_args
from rule_compiler.clock import utcnow
from rule_compiler.conditions.durations import DurationError, parse_duration
from rule_compiler.errors import StoreError
from rule_compiler.store.analytics import RunSummary, SeriesPoint, TimeRange
from rule_compiler.store.notification_analytics import ChannelSummary
from rule_compiler.store.report_analytics import ReportAnalytics, ReportSummary
from rule_compiler.store.trigger_analytics import EventRuleTotals, TableTotals, TriggerAnalytics
from rule_compiler.store.webhook_analytics import WebhookAnalytics, WebhookSummary

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

EXIT_OK = 0


def add_parser(sub: SubParsers) -> None:
    """Add ``stats`` (and ``stats rebuild``) to the top-level commands."""
    p = sub.add_parser("stats", help="how rules and workflows perform: runs, rates, durations, errors")
    p.add_argument(
        "target",
        nargs="*",
        metavar="KIND NAME",
        help="one definition: rule NAME or workflow NAME; 'notifications': deliveries per channel; "
        "'webhooks': attempts, success rate, latency and retries per action; "
        "'reports [NAME]': report runs, durations, sizes and deliveries; "
        "'triggers': events per watched table and event rule, dropped by filters, runs per event; "
        "'rebuild' recomputes the rollups",
    )
    p.add_argument("--org", "--organization", dest="organization", help="the organization")
    p.add_argument(
        "--since",
        help="a duration back from now (7d, 24h) or an ISO time (default: 7d; for rebuild: everything)",
    )
    p.add_argument("--until", help="an ISO time (default: now)")
    p.add_argument("--bucket", choices=("hour", "day"), default="day", help="the series' bucket")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=show_stats)


def moment(text: str, now: dt.datetime, what: str) -> dt.datetime:
    """``--since``/``--until``: a duration back from ``now`` (``7d``), or an ISO time (UTC without an
    offset)."""
    try:
        return now - parse_duration(text)
    except DurationError:
        pass
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"--{what} {text!r}: give a duration back from now (7d, 24h) or an ISO time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def show_stats(args: argparse.Namespace) -> int:
    store = store_from_args(args)
    if args.target == ["rebuild"]:
        return _rebuild(store, args)
    if not args.organization:
        raise CliError("name the organization with --org")
    now = utcnow()
    until = now if args.until is None else moment(args.until, now, "until")
    try:
        span = TimeRange.of(moment(args.since or "7d", now, "since"), until, args.bucket)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    try:
        found = _analytics(store, args.organization, args.target, span)
    except StoreError as exc:
        raise CliError(f"rule store: {exc}") from None
    if args.json:
        print(json.dumps(_jsonable(found), indent=2, ensure_ascii=False))
        return EXIT_OK
    for line in _report(found):
        print(line)
    return EXIT_OK


#: The targets that name one analytics of the organization: ``stats --org acme TARGET``.
_ORGANIZATION_TARGETS = {
    "notifications": "notification_analytics",
    "webhooks": "webhook_analytics",
    "triggers": "trigger_analytics",
}


def _analytics(store: Any, organization: str, target: list[str], span: TimeRange) -> Any:
    if not target:
        return store.organization_analytics(organization, span)
    if len(target) == 1 and target[0] in _ORGANIZATION_TARGETS:
        return getattr(store, _ORGANIZATION_TARGETS[target[0]])(organization, span)
    if target[0] == "reports" and len(target) <= 2:
        return store.report_analytics(organization, span, target[1] if len(target) == 2 else None)
    if len(target) == 2 and target[0] in ("rule", "workflow"):
        return store.definition_analytics(organization, target[0], target[1], span)
    raise CliError(
        "give no target (the organization), rule NAME, workflow NAME, notifications, webhooks, "
        "reports [NAME], triggers or rebuild"
    )


def _rebuild(store: Any, args: argparse.Namespace) -> int:
    since = None if args.since in (None, "all") else moment(args.since, utcnow(), "since")
    try:
        count = store.rebuild_rollups(since)
    except StoreError as exc:
        raise CliError(f"rule store: {exc}") from None
    where = "of every day" if since is None else f"from {since.astimezone(dt.UTC):%Y-%m-%d} (UTC) on"
    print(f"rebuilt the analytics rollups {where} from {count} runs of the automation log")
    return EXIT_OK


def _jsonable(value: Any) -> Any:
    if isinstance(value, RunSummary):
        rates = ("success_rate", "failure_rate", "partial_rate", "match_rate")
        return {**dataclasses.asdict(value), **{rate: getattr(value, rate) for rate in rates}}
    if isinstance(value, ChannelSummary):
        return {**dataclasses.asdict(value), "deliveries": value.deliveries}
    if isinstance(value, WebhookSummary):
        shown = ("attempts", "delivered", "retrying", "failed", "success_rate", "p50_ms", "p95_ms")
        return {name: getattr(value, name) for name in shown}
    if isinstance(value, ReportSummary):
        fields = ("runs", "p50_ms", "p95_ms", "bytes", "bytes_per_run", "attempts")
        return {
            **{name: getattr(value, name) for name in fields},
            "by_status": {k: v for k, v in value.by_status.items() if v},
            "deliveries": {f"{kind}/{status}": n for (kind, status), n in value.deliveries_by.items() if n},
        }
    if isinstance(value, ReportAnalytics):
        reports = [{"report": name, **_jsonable(s)} for name, s in value.reports.items()]
        plain = {
            f.name: _jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.name != "reports"
        }
        return {**plain, "reports": reports}
    if isinstance(value, EventRuleTotals | TableTotals):
        return {**dataclasses.asdict(value), "runs_per_event": value.runs_per_event}
    if isinstance(value, WebhookAnalytics):
        actions = [{"definition": d, "action": a, **_jsonable(s)} for (d, a), s in value.actions.items()]
        plain = {
            f.name: _jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.name != "actions"
        }
        return {**plain, "actions": actions}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _took(milliseconds: float | None) -> str:
    if milliseconds is None:
        return "-"
    if milliseconds < 1000:
        return f"{milliseconds:.0f} ms"
    return f"{milliseconds / 1000:.1f} s" if milliseconds < 120_000 else f"{milliseconds / 60_000:.1f} min"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """Rows under headers, columns padded to their widest cell (numbers right-aligned)."""
    cells = [[str(h) for h in headers], *([str(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [all(_is_number(row[i]) for row in cells[1:]) and len(cells) > 1 for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(row, widths, numeric, strict=True)
        ).rstrip()

    return [line(cells[0]), "  ".join("-" * w for w in widths), *(line(row) for row in cells[1:])]


def _is_number(text: str) -> bool:
    return text.replace(".", "", 1).replace("%", "").replace(" ms", "").replace(" s", "").strip().isdigit()


_SUMMARY_HEADERS = (
    "runs",
    "success",
    "failed",
    "partial",
    "no match",
    "matched",
    "acted",
    "ok %",
    "p50",
    "p95",
)


def _summary_cells(summary: RunSummary) -> list[Any]:
    return [
        summary.runs,
        summary.success,
        summary.failed,
        summary.partial,
        summary.no_match,
        f"{summary.matched}/{summary.evaluated}",
        summary.acted,
        _percent(summary.success_rate),
        _took(summary.p50_ms),
        _took(summary.p95_ms),
    ]


def _series_lines(series: list[SeriesPoint], bucket: str) -> list[str]:
    shown = "%Y-%m-%d %H:00" if bucket == "hour" else "%Y-%m-%d"
    return table(
        ("from", *_SUMMARY_HEADERS), ([p.start.strftime(shown), *_summary_cells(p.summary)] for p in series)
    )


_CHANNEL_HEADERS = (
    "deliveries",
    "sent",
    "failed",
    "muted",
    "digested",
    "waited (quiet)",
    "waited (digest)",
    "attempts",
)


def _channel_cells(c: Any) -> list[Any]:
    return [
        c.deliveries,
        c.of("sent"),
        c.of("failed"),
        c.of("muted"),
        c.of("digested"),
        c.deferred,
        c.digest,
        c.attempts,
    ]


_WEBHOOK_HEADERS = ("attempts", "delivered", "retried", "gave up", "ok %", "p50", "p95")


def _webhook_cells(w: WebhookSummary) -> list[Any]:
    return [
        w.attempts,
        w.delivered,
        w.retrying,
        w.failed,
        _percent(w.success_rate),
        _took(w.p50_ms),
        _took(w.p95_ms),
    ]


_REPORT_HEADERS = ("runs", "success", "partial", "failed", "p50", "p95", "bytes/run", "sent", "not sent")


def _report_cells(r: ReportSummary) -> list[Any]:
    per_run = "-" if r.bytes_per_run is None else f"{r.bytes_per_run:,.0f}"
    failed = r.by_status.get("error", 0)
    unsent = r.deliveries() - r.deliveries("sent")
    return [r.runs, r.by_status.get("success", 0), r.by_status.get("partial", 0), failed, _took(r.p50_ms),
            _took(r.p95_ms), per_run, r.deliveries("sent"), unsent]  # fmt: skip


_TRIGGER_HEADERS = ("runs", "events", "dropped", "matched", "runs/event")


def _trigger_cells(t: EventRuleTotals | TableTotals) -> list[Any]:
    per_event = "-" if t.runs_per_event is None else f"{t.runs_per_event:.2f}"
    return [t.runs, t.events, t.ignored, t.matched, per_event]


def _report(found: Any) -> list[str]:
    span = found.range
    lines = [f"{span.since:%Y-%m-%d %H:00} to {span.until:%Y-%m-%d %H:00} UTC, by {span.bucket}", ""]
    if isinstance(found, TriggerAnalytics):
        lines.append(
            f"event triggers of {found.organization}, by watched table (an event counts once per rule)"
        )
        lines += table(
            ("connection", "table", *_TRIGGER_HEADERS),
            ([t.connection, t.table, *_trigger_cells(t)] for t in found.tables),
        )
        lines += ["", "by event rule"]
        lines += table(
            ("kind", "name", "table", *_TRIGGER_HEADERS),
            ([r.kind, r.name, f"{r.connection}.{r.table}", *_trigger_cells(r)] for r in found.rules),
        )
        return [*lines, "", "consumer lag now: GET /automations/api/v1/health (or /analytics/triggers)"]
    if isinstance(found, ReportAnalytics):
        shown = "%Y-%m-%d %H:00" if span.bucket == "hour" else "%Y-%m-%d"
        lines.append(f"report runs of {found.organization}")
        lines += table(_REPORT_HEADERS, [_report_cells(found.summary)])
        lines += ["", "by report"]
        lines += table(
            ("report", *_REPORT_HEADERS), ([name, *_report_cells(r)] for name, r in found.reports.items())
        )
        lines += ["", f"by {span.bucket}"]
        return lines + table(
            ("from", *_REPORT_HEADERS),
            ([p.start.strftime(shown), *_report_cells(p.summary)] for p in found.series),
        )
    if isinstance(found, WebhookAnalytics):
        shown = "%Y-%m-%d %H:00" if span.bucket == "hour" else "%Y-%m-%d"
        lines.append(f"webhook attempts of {found.organization}")
        lines += table(_WEBHOOK_HEADERS, [_webhook_cells(found.summary)])
        lines += ["", "by action"]
        lines += table(
            ("definition", "action", *_WEBHOOK_HEADERS),
            ([d, a, *_webhook_cells(w)] for (d, a), w in found.actions.items()),
        )
        lines += ["", f"by {span.bucket}"]
        return lines + table(
            ("from", *_WEBHOOK_HEADERS),
            ([p.start.strftime(shown), *_webhook_cells(p.summary)] for p in found.series),
        )
    if hasattr(found, "channels"):
        shown = "%Y-%m-%d %H:00" if span.bucket == "hour" else "%Y-%m-%d"
        lines.append(f"notification deliveries of {found.organization}, by channel")
        lines += table(
            ("channel", *_CHANNEL_HEADERS), ([c.channel, *_channel_cells(c)] for c in found.channels)
        )
        lines += ["", f"by {span.bucket}"]
        rows = (
            [p.start.strftime(shown), p.summary.channel, *_channel_cells(p.summary)] for p in found.series
        )
        return lines + table(("from", "channel", *_CHANNEL_HEADERS), rows)
    if hasattr(found, "definitions"):
        lines.append(f"organization {found.organization}")
        lines += table(_SUMMARY_HEADERS, [_summary_cells(found.summary)])
        lines += ["", "by definition"]
        lines += table(
            ("kind", "name", *_SUMMARY_HEADERS),
            ([d.kind, d.name, *_summary_cells(d.summary)] for d in found.definitions),
        )
    else:
        lines.append(f"{found.kind} {found.organization}/{found.name}")
        lines += table(_SUMMARY_HEADERS, [_summary_cells(found.summary)])
        lines += ["", "actions and nodes"]
        lines += table(
            ("step", "results", "success", "failed", "skipped", "retries", "acted", "p50", "p95"),
            (
                [
                    s.step,
                    s.results,
                    s.success,
                    s.failed,
                    s.skipped,
                    s.retries,
                    s.acted,
                    _took(s.p50_ms),
                    _took(s.p95_ms),
                ]
                for s in found.steps
            ),
        )
    lines += ["", f"by {span.bucket}", *_series_lines(found.series, span.bucket)]
    if found.errors:
        lines += ["", "top errors"]
        lines += table(
            ("error", "where", "count", "first seen", "last seen"),
            (
                [
                    e.error_class,
                    f"{e.name}.{e.step}",
                    e.count,
                    f"{e.first_seen:%Y-%m-%d %H:%M}",
                    f"{e.last_seen:%Y-%m-%d %H:%M}",
                ]
                for e in found.errors
            ),
        )
    return lines
