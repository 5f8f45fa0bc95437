"""The html format's email body: the same template and context as ``<name>.html``, with each chart
as a ``cid:`` reference to an inline image instead of a ``data:`` URI (Gmail and Outlook do not show
``data:`` images in a message).

The render task writes ``<name>.email/`` beside ``<name>.html``: :data:`BODY_FILE` and one
``<content id>.png`` per chart image the body shows. The email delivery reads it back
(:func:`read_email_body`) and sends the HTML as ``multipart/related`` with the images as inline parts
(:func:`add_inline_images`). ``<name>.html`` itself stays self-contained, and only it is attached or
stored.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rule_compiler.reporting.charts import Chart

__all__ = [
    "BODY_FILE",
    "InlineImage",
    "add_inline_images",
    "email_folder",
    "read_email_body",
    "write_email_body",
]

BODY_FILE = "body.html"
#: The right-hand side of our Content-IDs; the left is ``chart<n>-<digest of the PNG>``.
CONTENT_ID_DOMAIN = "report.rule-engine"


@dataclass(frozen=True)
class InlineImage:
    """A chart image of the email body: ``content_id`` without angle brackets, as ``cid:`` names it."""

    content_id: str
    png: bytes

    @property
    def file_name(self) -> str:
        return f"{self.content_id.partition('@')[0]}.png"


def email_folder(html_path: Path) -> Path:
    """Where the email body of ``<name>.html`` lives: ``<name>.email/`` beside it."""
    return html_path.with_name(f"{html_path.stem}.email")


def write_email_body(
    folder: Path, template: str | None, context: Mapping[str, Any], charts: Sequence[Chart]
) -> None:
    """Render ``template`` over ``context`` with the charts' images as ``cid:`` references; write
    the body and the images it refers to into ``folder`` (replaced as a whole)."""
    from rule_compiler.reporting.html import render_html  # the sandbox; the email delivery needs none

    images = _inline_images(charts)
    body = render_html(template, _with_content_ids(context, images))
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    (partial / BODY_FILE).write_text(body, encoding="utf-8")
    for image in images.values():
        if f"cid:{image.content_id}" in body:  # a template that leaves a chart out gets no stray part
            (partial / image.file_name).write_bytes(image.png)
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)


def read_email_body(folder: Path) -> tuple[str, list[InlineImage]] | None:
    """The body and its images, or None when the run has none (no html format, an older run)."""
    body = folder / BODY_FILE
    if not body.is_file():
        return None
    images = [
        InlineImage(f"{path.stem}@{CONTENT_ID_DOMAIN}", path.read_bytes())
        for path in sorted(folder.glob("*.png"))
    ]
    return body.read_text(encoding="utf-8"), images


def add_inline_images(message: EmailMessage, images: Sequence[InlineImage]) -> None:
    """Turn the message's HTML body into ``multipart/related``: the HTML, then each image as an
    inline part with its Content-ID."""
    if not images:
        return
    html = message.get_body(preferencelist=("html",))
    if html is None or html.get_content_type() != "text/html":
        raise ValueError("the message has no HTML body to relate the images to")
    for image in images:
        html.add_related(
            image.png,
            maintype="image",
            subtype="png",
            cid=f"<{image.content_id}>",
            disposition="inline",
            filename=image.file_name,
        )
    html.set_param("type", "text/html")  # RFC 2387: the root part's type


def _inline_images(charts: Sequence[Chart]) -> dict[str, InlineImage]:
    """Each drawn chart's image by chart id; the digest keeps ids unique across a mailbox."""
    images = {}
    for number, chart in enumerate(charts, start=1):
        if chart.png is not None:
            digest = hashlib.sha256(chart.png).hexdigest()[:16]
            images[chart.id] = InlineImage(f"chart{number}-{digest}@{CONTENT_ID_DOMAIN}", chart.png)
    return images


def _with_content_ids(context: Mapping[str, Any], images: Mapping[str, InlineImage]) -> dict[str, Any]:
    """The same context, each drawn chart's ``image`` a ``cid:`` reference instead of a data URI."""
    charts = {
        chart_id: {**chart, "image": f"cid:{images[chart_id].content_id}"} if chart_id in images else chart
        for chart_id, chart in context["charts"].items()
    }
    return {**context, "charts": charts}
