"""Send one report delivery on its channel: email with attachments, slack, webhook, in_app, storage.

Email, slack, webhook and in_app reuse the notification channels' senders (the SMTP connection
``smtp_default``, the SSRF-guarded webhook transport, the store's inbox); storage writes through
Airflow's ``ObjectStoragePath``: the organization's own folder of the administrator's storage
(``$AUTOMATION_REPORTS_STORAGE/<org>``, default ``$AIRFLOW_HOME/reports/<org>``) unless the delivery
names a ``location`` URL (a bucket, with the provider of its scheme installed and an Airflow
``connection``, or a folder). The rendered ``path`` never leaves that root: it is cleaned
(:mod:`rule_compiler.storage_paths`), and a local folder is resolved and then written without
following any symbolic link under the root. Failures raise
:class:`~rule_compiler.errors.PermanentActionError` or :class:`~rule_compiler.errors.RetryableActionError`;
recording them is the caller's job.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from airflow.sdk import ObjectStoragePath

from rule_compiler.addresses import is_address, is_user_name
from rule_compiler.canonical import canonical_json
from rule_compiler.clock import utcnow
from rule_compiler.errors import PermanentActionError, RetryableActionError
from rule_compiler.reporting.email_body import InlineImage, add_inline_images, email_folder, read_email_body
from rule_compiler.runtime.messages import message_id_for, slack_text
from rule_compiler.runtime.report_delivery import (
    ReportRunInfo,
    recipient_key,
    render_subject,
    report_email,
    storage_folder,
    summary_text,
    webhook_payload,
)
from rule_compiler.runtime.webhook_requests import classify_response, join_url, signature_headers
from rule_compiler.settings import home
from rule_compiler.storage_paths import (
    DEFAULT_STORAGE_PATH,
    StoragePathError,
    is_inside,
    organization_folder,
)
from rule_compiler.store.inbox import add_inbox_message
from rule_engine.channel_senders import DEFAULT_SMTP_CONNECTION
from rule_engine.hooks.slack import SlackWebhookSender
from rule_engine.hooks.smtp import SmtpSender
from rule_engine.hooks.webhook_client import WebhookHook, send_webhook

STORAGE_ENV = "AUTOMATION_REPORTS_STORAGE"
MAX_ATTACHMENTS_ENV = "AUTOMATION_REPORTS_MAX_ATTACHMENT_MB"
DEFAULT_MAX_ATTACHMENTS_MB = 20
_COPY_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Outgoing:
    """One delivery's material: its key, what the run produced, and the files by format."""

    key: str
    info: ReportRunInfo
    paths: Mapping[str, Path]

    def html_document(self) -> str | None:
        path = self.paths.get("html")
        return path.read_text(encoding="utf-8") if path is not None else None


def deliver(
    engine: sa.Engine, delivery: Mapping[str, Any], outgoing: Outgoing, *, timeout: float
) -> dict[str, Any]:
    """Send ``outgoing`` to the destination ``delivery`` describes; what was sent (names, counts, where)."""
    kind = str(delivery.get("type"))
    send = SENDERS.get(kind)
    if send is None:
        raise PermanentActionError(f"unknown report delivery type '{kind}'")
    return send(engine, delivery, outgoing, timeout)


def target_of(delivery: Mapping[str, Any]) -> str:
    """What the execution log says a delivery goes to (counts and connection ids, not addresses)."""
    kind = str(delivery.get("type"))
    if kind in ("email", "in_app"):
        count = len(delivery.get("to") or [])
        return f"{count} recipient{'s' if count != 1 else ''}"
    if kind in ("slack", "webhook"):
        return f"connection {delivery.get('connection')}"
    location = delivery.get("location") or f"${STORAGE_ENV}"
    return f"{location} {delivery.get('path', '')}".strip()


def _email(
    engine: sa.Engine, delivery: Mapping[str, Any], outgoing: Outgoing, timeout: float
) -> dict[str, Any]:
    recipients = [str(address) for address in delivery.get("to") or []]
    bad = [address for address in recipients if not is_address(address)]
    if bad or not recipients:
        raise PermanentActionError(f"{len(bad) or 'no'} recipient(s) are not email addresses")
    wanted = delivery.get("attach") or list(outgoing.paths)
    files = [outgoing.paths[fmt] for fmt in wanted if fmt in outgoing.paths]
    total = sum(path.stat().st_size for path in files)
    cap = _max_attachment_bytes()
    if total > cap:
        raise PermanentActionError(
            f"the attachments take {total / 1024 / 1024:.1f} MB, more than {cap // 1024 // 1024} MB "
            f"(${MAX_ATTACHMENTS_ENV}); attach fewer formats (`attach`) or deliver to storage"
        )
    body, images = _email_body(outgoing)
    sender = SmtpSender(DEFAULT_SMTP_CONNECTION)
    message = report_email(
        sender=sender.sender,
        recipients=recipients,
        subject=render_subject(delivery.get("subject"), outgoing.info),
        text=summary_text(outgoing.info),
        html_document=body,
        attachments=[(path.name, path.read_bytes()) for path in files],
        message_id=message_id_for(outgoing.key, sender.domain),
    )
    add_inline_images(message, images)
    sender.send(message)
    return {"recipients": len(recipients), "files": [path.name for path in files], "bytes": total}


def _email_body(outgoing: Outgoing) -> tuple[str | None, list[InlineImage]]:
    """The HTML body with its charts as inline images (the render task's ``<name>.email/``); a run
    rendered without it falls back to the html file (charts as data URIs), no html to the summary."""
    html_path = outgoing.paths.get("html")
    rendered = read_email_body(email_folder(html_path)) if html_path is not None else None
    if rendered is None:
        return outgoing.html_document(), []
    body, images = rendered
    return body, images


def _slack(
    engine: sa.Engine, delivery: Mapping[str, Any], outgoing: Outgoing, timeout: float
) -> dict[str, Any]:
    sender = SlackWebhookSender(_connection(delivery))
    text = slack_text(render_subject(None, outgoing.info), summary_text(outgoing.info))
    sender.post({"text": text}, timeout=timeout)
    return {"files": [path.name for path in outgoing.paths.values()]}


def _webhook(
    engine: sa.Engine, delivery: Mapping[str, Any], outgoing: Outgoing, timeout: float
) -> dict[str, Any]:
    base_url, secrets = WebhookHook(_connection(delivery)).base_url_and_secrets()
    url = join_url(base_url, str(delivery.get("path") or "/"))
    body = canonical_json(webhook_payload(outgoing.info, key=outgoing.key))
    headers = {"Content-Type": "application/json", **signature_headers(secrets, outgoing.key, utcnow(), body)}
    response = send_webhook(method="POST", url=url, headers=headers, body=body, timeout=timeout)
    error = classify_response(response.status, response.retry_after, utcnow())
    if error is not None:
        raise error
    return {"status": response.status, "files": [file.name for file in outgoing.info.files]}


def _in_app(
    engine: sa.Engine, delivery: Mapping[str, Any], outgoing: Outgoing, timeout: float
) -> dict[str, Any]:
    names = [str(name) for name in delivery.get("to") or []]
    if not names or any(not is_user_name(name) for name in names):
        raise PermanentActionError("every in-app recipient must be a user name")
    subject = render_subject(None, outgoing.info)
    body = summary_text(outgoing.info)
    added = 0
    for name in names:
        added += add_inbox_message(
            engine,
            idempotency_key=recipient_key(outgoing.key, name),
            organization=outgoing.info.organization,
            recipient=name,
            rule_id=outgoing.info.report_id,
            subject=subject,
            body=body,
            now=utcnow(),
        )
    return {"recipients": len(names), "added": added}


def storage_base(location: str | None, connection: str | None) -> ObjectStoragePath:
    """The delivery's location, else ``$AUTOMATION_REPORTS_STORAGE``, else ``$AIRFLOW_HOME/reports``
    (the administrator's storage, shared by every organization, each writing under its own folder);
    PermanentActionError when no Airflow filesystem serves its scheme on this worker.

    Registration checked the location against the catalog; this only refuses what no valid spec
    holds (a location that is not a valid URL or has no connection, a connection without a
    location), so a spec from before those checks cannot write anywhere the worker can. A local
    folder is opened without a connection: only a bucket uses one.
    """
    from rule_compiler.storage_locations import STORAGE_PROVIDERS, storage_location_problem

    if location is not None:
        problem = storage_location_problem(location)
        if problem or not connection:
            reason = problem or "it names no storage connection of the catalog"
            raise PermanentActionError(
                f"the storage location {location[:100]!r} cannot be used: {reason}; register the "
                "report again to have it checked against the catalog"
            )
    elif connection:
        raise PermanentActionError(
            f"a storage delivery with connection '{connection}' needs a `location`; register the "
            "report again to have it checked against the catalog"
        )
    base = location or os.environ.get(STORAGE_ENV) or str(home() / "reports")
    if "://" not in base:
        base = Path(base).resolve().as_uri()
    root = ObjectStoragePath(base, conn_id=None if base.startswith("file://") else connection)
    try:
        root.fs  # noqa: B018 - resolve the scheme's filesystem now, before anything is written
    except ValueError:  # Airflow: "No filesystem registered for scheme ..."
        provider = STORAGE_PROVIDERS.get(root.protocol)
        hint = f"install {provider} on the workers" if provider else "use a folder or a bucket URL"
        raise PermanentActionError(
            f"no Airflow filesystem serves '{root.protocol}://' on this worker; {hint}"
        ) from None
    return root


def _organization_folder(organization: str) -> str:
    try:
        return organization_folder(organization)
    except StoragePathError as exc:
        raise PermanentActionError(f"the report's organization cannot be stored: {exc}") from None


def _storage(
    engine: sa.Engine, delivery: Mapping[str, Any], outgoing: Outgoing, timeout: float
) -> dict[str, Any]:
    """Write the run's files into ``<root>/<path>``; the rendered path was cleaned
    (:func:`storage_folder`), and the final folder is checked to lie under the root: for a local
    folder, with symbolic links resolved and then never followed while writing."""
    template = str(delivery.get("path") or DEFAULT_STORAGE_PATH)
    folder_name = storage_folder(template, outgoing.info)
    location = delivery.get("location")
    below = [] if location is not None else [_organization_folder(outgoing.info.organization)]
    try:
        base = storage_base(location, delivery.get("connection"))
        folder = base.joinpath(*below, *folder_name.split("/"))
        if base.protocol == "file":
            written = _write_local(Path(base.path), below, folder_name.split("/"), outgoing.paths)
        else:
            written = _write_objects(base.joinpath(*below), folder, outgoing.paths)
    except OSError as exc:
        raise RetryableActionError(
            f"could not write to the storage location: {type(exc).__name__}: {exc}"
        ) from None
    except (ValueError, ImportError, AttributeError) as exc:
        raise PermanentActionError(
            f"the storage location cannot be used: {type(exc).__name__}: {exc}"
        ) from None
    return {"folder": str(folder), "files": written}


def _write_objects(
    root: ObjectStoragePath, folder: ObjectStoragePath, files: Mapping[str, Path]
) -> list[str]:
    """Copy ``files`` into ``folder`` of a bucket (no links there: its key must start with the root's)."""
    if not (folder.path.rstrip("/") + "/").startswith(root.path.rstrip("/") + "/"):
        raise PermanentActionError(f"the storage folder {str(folder)[:200]!r} is outside {str(root)!r}")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for path in files.values():
        destination: Any = folder / _file_name(path)  # ObjectStoragePath.open is untyped
        with path.open("rb") as source, destination.open("wb") as target:
            shutil.copyfileobj(source, target, _COPY_CHUNK)
        written.append(path.name)
    return written


def _write_local(base: Path, below: list[str], parts: list[str], files: Mapping[str, Path]) -> list[str]:
    """Copy ``files`` into ``base/below/parts`` on this machine, never outside ``base/below``.

    ``base`` (the location, or the administrator's storage folder) is taken as it is, links and
    all; under it, the final folder and each file are first resolved (``os.path.realpath``) and
    refused when they lie outside the root (``base/below``: the organization's folder), then the
    folders are walked one ``openat`` at a time with ``O_NOFOLLOW``, so a symbolic link anywhere
    under ``base`` fails the delivery instead of being followed, even one planted after the check.
    """
    names = [_file_name(path) for path in files.values()]
    shown = "/".join(parts)
    real_root = os.path.join(os.path.realpath(base), *below)
    real_folder = os.path.realpath(base.joinpath(*below, *parts))
    real_files = [os.path.realpath(os.path.join(real_folder, name)) for name in names]
    if not all(is_inside(real_root, target) for target in [real_folder, *real_files]):
        whose = "the organization's storage folder" if below else "the storage location"
        raise PermanentActionError(
            f"the storage folder {shown!r} leads out of {whose} through a symbolic link; nothing was "
            "written (remove the link)"
        )
    base.mkdir(parents=True, exist_ok=True)
    directory = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for name in [*below, *parts]:
            directory = _enter(directory, name, shown)
        for name in names:
            _refuse_link(directory, name, f"{shown}/{name}")
        written = []
        for path, name in zip(files.values(), names, strict=True):
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
            try:
                handle = os.open(name, flags, 0o666, dir_fd=directory)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise _link_error(f"{shown}/{name}") from None
                raise
            with os.fdopen(handle, "wb") as target, path.open("rb") as source:
                shutil.copyfileobj(source, target, _COPY_CHUNK)
            written.append(path.name)
        return written
    finally:
        os.close(directory)


def _enter(directory: int, name: str, shown: str) -> int:
    """The folder ``name`` inside the open folder ``directory`` (created if missing), opened
    without following a link; ``directory`` is closed once the folder is open."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, dir_fd=directory)
    try:
        child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=directory)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            _refuse_link(directory, name, shown)
            raise PermanentActionError(
                f"the storage folder {shown!r} cannot be created: '{name}' is a file there"
            ) from None
        raise
    os.close(directory)
    return child


def _refuse_link(directory: int, name: str, shown: str) -> None:
    try:
        is_link = stat.S_ISLNK(os.stat(name, dir_fd=directory, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return
    if is_link:
        raise _link_error(shown)


def _link_error(shown: str) -> PermanentActionError:
    return PermanentActionError(
        f"the storage folder {shown!r} holds a symbolic link; report storage never follows links, so "
        "nothing was written there (remove the link)"
    )


def _file_name(path: Path) -> str:
    """A rendered file's name: one plain name, never a folder."""
    name = path.name
    if name in {"", ".", ".."} or "/" in name or "\\" in name or "\x00" in name:
        raise PermanentActionError(f"the report file {name[:100]!r} cannot be stored under that name")
    return name


def _connection(delivery: Mapping[str, Any]) -> str:
    connection = delivery.get("connection")
    if not connection:
        raise PermanentActionError(f"a {delivery.get('type')} delivery needs a connection")
    return str(connection)


def _max_attachment_bytes() -> int:
    value = os.environ.get(MAX_ATTACHMENTS_ENV, "")
    megabytes = int(value) if value.isdigit() and int(value) > 0 else DEFAULT_MAX_ATTACHMENTS_MB
    return megabytes * 1024 * 1024


#: delivery type → its sender (engine: the rule store's, for ``in_app``; timeout: for HTTP senders).
SENDERS: dict[str, Callable[[sa.Engine, Mapping[str, Any], Outgoing, float], dict[str, Any]]] = {
    "email": _email,
    "slack": _slack,
    "webhook": _webhook,
    "in_app": _in_app,
    "storage": _storage,
}
