"""What a report delivery sends, without I/O: keys, the template context, messages and paths.

A delivery is identified by (report, data interval end, delivery index) — never the run, the try
number or the report's version — so a second run of the same interval finds it sent, and an email
retried after a crash carries the same ``Message-ID``. Subjects and storage paths are the author's
templates, rendered here in our sandbox with the HTML template's variables
(:data:`rule_compiler.definitions.report.REPORT_TEMPLATE_VARIABLES`, built by
:func:`rule_compiler.reporting.render_format.template_context`). Summaries, Slack texts and webhook bodies
carry counts and file names, never rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import mimetypes
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any

from jinja2 import TemplateError

from rule_compiler.canonical import canonical_json
from rule_compiler.clock import utcnow
from rule_compiler.conditions.durations import DURATION_RE, UNIT_SECONDS
from rule_compiler.errors import PermanentActionError
from rule_compiler.storage_paths import StoragePathError, clean_folder
from rule_compiler.templating import TemplateCheckError, render

_MIME_TYPES = {
    "csv": "text/csv",
    "zip": "application/zip",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "html": "text/html",
    "pdf": "application/pdf",
}


@dataclass(frozen=True)
class ReportFile:
    """One rendered file: its format, file name and size."""

    format: str
    name: str
    bytes: int

    def as_dict(self) -> dict[str, Any]:
        return {"format": self.format, "name": self.name, "bytes": self.bytes}


@dataclass(frozen=True)
class ReportRunInfo:
    """What a delivery may say about its run: ids, the interval, counts and file names."""

    report_id: str
    description: str
    run_id: str
    interval_start: str
    interval_end: str
    logical_date: str | None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    rows: Mapping[str, int] = field(default_factory=dict)
    truncated: Sequence[str] = ()
    files: Sequence[ReportFile] = ()
    #: The HTML template's context of this run (report, run, queries, parameters, files).
    template_context: Mapping[str, Any] = field(default_factory=dict)

    @property
    def organization(self) -> str:
        return self.report_id.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.report_id.split("/", 1)[-1]

    def context(self) -> dict[str, Any]:
        """The template context of subjects and storage paths: the HTML template's, plus ``run.id``."""
        run = {
            "id": self.run_id,
            "interval_start": self.interval_start,
            "interval_end": self.interval_end,
            "logical_date": self.logical_date,
        }
        if self.template_context:
            context = dict(self.template_context)
            context["run"] = {**run, **dict(context.get("run") or {})}
            return context
        return {
            "report": {
                "id": self.report_id,
                "name": self.name,
                "organization": self.organization,
                "description": self.description,
            },
            "run": run,
            "parameters": dict(self.parameters),
            "queries": {
                query_id: {"id": query_id, "row_count": rows, "truncated": query_id in self.truncated}
                for query_id, rows in self.rows.items()
            },
            "charts": {},
            "files": [file.name for file in self.files],
        }


def delivery_key(report_id: str, interval_end: dt.datetime, index: int) -> str:
    """The idempotency key of one delivery of one interval: 64 hex characters."""
    moment = interval_end.astimezone(dt.UTC).isoformat()
    material = canonical_json(["report", report_id, moment, index])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def recipient_key(key: str, recipient: str) -> str:
    """The key of one recipient's copy (an in-app message) within a delivery."""
    return hashlib.sha256(canonical_json([key, recipient]).encode("utf-8")).hexdigest()


def grace_period(text: str | None) -> dt.timedelta:
    """An alert's grace period (``0m``, the default, means none)."""
    match = DURATION_RE.match((text or "0m").strip())
    if match is None:
        raise PermanentActionError(f"the alert's grace period {text!r} is not a duration such as 6h or 1d")
    return dt.timedelta(seconds=int(match.group(1)) * UNIT_SECONDS[match.group(2)])


def render_subject(template: str | None, info: ReportRunInfo) -> str:
    """The author's subject in the sandbox (one line), or ours: the report's name and its period in
    the report's time zone, as the HTML body shows it."""
    if not template:
        period = (info.template_context.get("run") or {}).get("period")
        if period:
            return f"Report {info.name}: {period}"
        return f"Report {info.name}: {info.interval_start} to {info.interval_end}"
    return " ".join(_render(template, info.context(), "subject").split())[:900]


def summary_text(info: ReportRunInfo) -> str:
    """A plain-text summary: the interval, rows per query and the files (no row data)."""
    period = (info.template_context.get("run") or {}).get("period")
    interval = period or f"{info.interval_start} to {info.interval_end}"
    lines = [f"Report {info.report_id}", f"Interval: {interval}"]
    if info.description:
        lines += ["", info.description]
    if info.rows:
        lines += ["", "Rows:"]
        lines += [
            f"  {query_id}: {rows}" + (" (capped at the row limit)" if query_id in info.truncated else "")
            for query_id, rows in info.rows.items()
        ]
    if info.files:
        lines += ["", "Files:"]
        lines += [f"  {file.name} ({human_size(file.bytes)})" for file in info.files]
    return "\n".join(lines) + "\n"


def human_size(size: int) -> str:
    """``2048`` → ``2.0 KB``."""
    value = float(size)
    for unit in ("bytes", "KB", "MB"):
        if value < 1024 or unit == "MB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} MB"  # pragma: no cover - the loop returns


def report_email(
    *,
    sender: str,
    recipients: Sequence[str],
    subject: str,
    text: str,
    html_document: str | None,
    attachments: Sequence[tuple[str, bytes]],
    message_id: str,
    date: dt.datetime | None = None,
) -> EmailMessage:
    """Text and HTML alternatives (the rendered HTML report inline, else the summary escaped), then
    each file attached. ``Date`` is when it is built (``date``, default now, in UTC)."""
    email = EmailMessage()
    email["From"] = formataddr(parseaddr(sender))
    email["To"] = ", ".join(recipients)
    email["Subject"] = " ".join(subject.split())
    email["Date"] = format_datetime((date or utcnow()).astimezone(dt.UTC))
    email["Message-ID"] = message_id
    email.set_content(text)
    if html_document is None:
        html_document = (
            '<!doctype html><html><body><div style="font-family:sans-serif;white-space:pre-wrap">'
            f"{html.escape(text)}</div></body></html>"
        )
    email.add_alternative(html_document, subtype="html")
    for name, content in attachments:
        maintype, subtype = mime_type(name).split("/", 1)
        email.add_attachment(content, maintype=maintype, subtype=subtype, filename=name)
    return email


def mime_type(name: str) -> str:
    """The content type of a report file by its extension."""
    extension = name.rsplit(".", 1)[-1].lower()
    return _MIME_TYPES.get(extension) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def storage_folder(template: str, info: ReportRunInfo) -> str:
    """The folder a storage delivery writes to, relative to its root: the author's template
    rendered in the sandbox, then :func:`rule_compiler.storage_paths.clean_folder` (each segment
    reduced to ``A-Z a-z 0-9 . _ + = @ -``, ``:`` of a timestamp becomes ``-``); a NUL byte, an
    absolute path, ``.`` and ``..`` folders (also behind ``\\`` or URL escapes) fail for good."""
    text = _render(template, info.context(), "storage path")
    try:
        return clean_folder(text)
    except StoragePathError as exc:
        raise PermanentActionError(
            f"the storage path {template[:200]!r} rendered to {text[:200]!r}: {exc}; nothing was written"
        ) from None


def webhook_payload(info: ReportRunInfo, *, key: str) -> dict[str, Any]:
    """The signed JSON a webhook delivery posts: which report, which interval, counts and files."""
    return {
        "type": "report.ready",
        "delivery_id": key,
        "report": info.report_id,
        "run_id": info.run_id,
        "interval_start": info.interval_start,
        "interval_end": info.interval_end,
        "rows": dict(info.rows),
        "files": [file.as_dict() for file in info.files],
    }


def _render(template: str, context: Mapping[str, Any], what: str) -> str:
    try:
        return render(template, context)
    except (TemplateError, TemplateCheckError) as exc:
        raise PermanentActionError(f"the {what} template could not be rendered: {exc}") from None
