"""The html format's email body (``<name>.email/``): the same template with the charts as ``cid:``
images, the images beside it, and the message's HTML turned into multipart/related around them.
The standalone ``<name>.html`` keeps its data URIs."""

from __future__ import annotations

import base64
import email
import email.policy
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from rule_compiler.reporting.email_body import (
    BODY_FILE,
    add_inline_images,
    email_folder,
    read_email_body,
)
from rule_compiler.reporting.queries import run_query_to_csv
from rule_compiler.reporting.render_format import render_format
from rule_compiler.reporting.workdir import Manifest, read_manifest, write_manifest
from rule_compiler.runtime.report_delivery import report_email

CHARTS: list[dict[str, Any]] = [
    {"id": "trend", "query": "daily", "type": "line", "x": "day", "y": ["revenue"], "title": "Trend"},
    {"id": "per-day", "query": "daily", "type": "bar", "x": "day", "y": ["orders"], "title": "Orders"},
    {"id": "top", "query": "daily", "type": "table", "y": ["day", "revenue"], "title": "Top days"},
]
DATA_URI = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
CID = re.compile(r'src="cid:([^"]+)"')


@pytest.fixture
def run(tmp_path: Path) -> tuple[Path, Manifest]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE daily (day TEXT, orders INTEGER, revenue NUMERIC)"))
        conn.execute(
            sa.text("INSERT INTO daily VALUES (:d, :o, :r)"),
            [{"d": f"2026-11-{day:02d}", "o": day, "r": day * 100.5} for day in range(16, 23)],
        )
    workdir = tmp_path / "run"
    workdir.mkdir()
    result = run_query_to_csv(
        engine,
        "SELECT day, orders, revenue FROM daily ORDER BY day",
        {},
        query_id="daily",
        row_limit=1_000,
        timeout=30,
        path=workdir / "daily.csv",
    )
    engine.dispose()
    manifest = Manifest(
        report_id="acme/weekly-sales",
        interval_start="2026-11-16T06:00:00+00:00",
        interval_end="2026-11-23T06:00:00+00:00",
        logical_date="2026-11-16T06:00:00+00:00",
        parameters={},
        results=[result],
    )
    write_manifest(workdir, manifest)
    return workdir, read_manifest(workdir)


def _render_html(run: tuple[Path, Manifest], template: str | None = None) -> Path:
    workdir, manifest = run
    return render_format(
        "html", workdir, manifest, title="weekly-sales", description="", charts=CHARTS, template=template
    )


def test_the_email_body_references_the_same_chart_images_by_content_id(run: tuple[Path, Manifest]) -> None:
    html_file = _render_html(run)
    standalone = html_file.read_text(encoding="utf-8")
    drawn = [base64.b64decode(data) for data in DATA_URI.findall(standalone)]
    assert len(drawn) == 2 and "cid:" not in standalone  # the file stays self-contained

    folder = email_folder(html_file)
    assert folder == html_file.with_name("weekly-sales.email") and (folder / BODY_FILE).is_file()
    read = read_email_body(folder)
    assert read is not None
    body, images = read
    assert "data:" not in body
    referenced = CID.findall(body)
    assert sorted(referenced) == sorted(image.content_id for image in images) and len(referenced) == 2
    assert all(re.fullmatch(r"chart[12]-[0-9a-f]{16}@report\.rule-engine", cid) for cid in referenced)
    by_id = {image.content_id: image.png for image in images}
    assert [by_id[cid] for cid in referenced] == drawn  # the very images of the html file, in order
    # apart from the image sources, the body is the html file
    assert CID.sub('src=""', body) == DATA_URI.sub('src=""', standalone)


def test_only_the_charts_a_template_shows_are_kept_and_its_own_text_is_left_alone(
    run: tuple[Path, Manifest],
) -> None:
    _render_html(run)  # the default template first: its two images must not linger
    logo = "data:image/gif;base64,R0lGODlhAQABAAAAACw="
    template = (
        f'<img src="{logo}"><p>cid:chart1 is only text</p><img src="{{{{ charts["per-day"].image }}}}">'
        "{% for f in files %}<i>{{ f }}</i>{% endfor %}"
    )
    html_file = _render_html(run, template)
    read = read_email_body(email_folder(html_file))
    assert read is not None
    body, images = read
    assert len(images) == 1 and CID.findall(body) == [images[0].content_id]
    assert images[0].content_id.startswith("chart2-")  # per-day is the second chart
    assert f'<img src="{logo}">' in body and "<p>cid:chart1 is only text</p>" in body
    assert sorted(path.name for path in email_folder(html_file).iterdir()) == sorted(
        [BODY_FILE, images[0].file_name]
    )
    assert not email_folder(html_file).with_name("weekly-sales.email.partial").exists()


def test_a_run_without_an_email_body_reads_as_none(tmp_path: Path) -> None:
    assert read_email_body(email_folder(tmp_path / "weekly-sales.html")) is None


def test_the_message_html_becomes_multipart_related_and_the_attachments_stay(
    run: tuple[Path, Manifest],
) -> None:
    html_file = _render_html(run)
    read = read_email_body(email_folder(html_file))
    assert read is not None
    body, images = read
    message = report_email(
        sender="automation@example.com",
        recipients=["sales@example.com"],
        subject="Weekly sales",
        text="summary",
        html_document=body,
        attachments=[("weekly-sales.html", html_file.read_bytes()), ("daily.csv", b"day\n")],
        message_id="<key@example.com>",
    )
    add_inline_images(message, images)

    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert [part.get_content_type() for part in parsed.walk()] == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "multipart/related",
        "text/html",
        "image/png",
        "image/png",
        "text/html",
        "text/csv",
    ]
    related = next(part for part in parsed.walk() if part.get_content_type() == "multipart/related")
    assert related.get_param("type") == "text/html"
    image_parts = [part for part in related.iter_parts() if part.get_content_maintype() == "image"]
    inline = {str(part["Content-ID"]): part for part in image_parts}
    assert set(inline) == {f"<{cid}>" for cid in CID.findall(body)}
    assert all(part.get_content_disposition() == "inline" for part in inline.values())
    assert {part.get_payload(decode=True) for part in inline.values()} == {image.png for image in images}
    attached = {str(part.get_filename()): part.get_payload(decode=True) for part in parsed.iter_attachments()}
    assert attached == {"weekly-sales.html": html_file.read_bytes(), "daily.csv": b"day\n"}


def test_no_images_leaves_the_message_as_it_was() -> None:
    message = report_email(
        sender="a@example.com",
        recipients=["b@example.com"],
        subject="s",
        text="t",
        html_document="<p>x</p>",
        attachments=[],
        message_id="<k@example.com>",
    )
    before = message.as_bytes()
    add_inline_images(message, [])
    assert message.as_bytes() == before
