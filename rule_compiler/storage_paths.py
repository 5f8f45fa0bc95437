"""Report storage folders: the ``path`` template of a ``storage`` delivery can never leave its root.

A storage delivery writes under a root: its ``location`` (checked against the catalog, ADR 0007), or
the organization's own folder of the administrator's storage (``<storage>/<organization>``). The
``path`` under it is an author's template, so it is checked twice:

- at registration, its static text (:func:`static_path_problem`): no absolute path, no ``.`` or
  ``..`` folder (also behind ``\\``, URL escapes such as ``%2e%2e``, or constant expressions such
  as ``{{ '..' }}``), no NUL byte;
- on the worker, the rendered text (:func:`clean_folder`): the same refusals, then each folder name
  reduced to ``A-Z a-z 0-9 . _ + = @ -``; the worker then resolves the final folder (symbolic links
  followed) and refuses one outside the root (``rule_engine.report_sending``).

Pure: no Airflow import (registration and the worker both use it).
"""

from __future__ import annotations

import os
import re
from urllib.parse import unquote

from jinja2 import Environment, TemplateSyntaxError, nodes
from jinja2.nodes import EvalContext

from rule_compiler.definitions.common import SLUG_RE
from rule_compiler.errors import InvalidValueError

#: What a folder name may hold after the worker cleaned it; anything else becomes ``-``.
_PATH_UNSAFE = re.compile(r"[^A-Za-z0-9._+=@-]+")
#: ``C:/`` or ``C:\``: a Windows absolute path.
_DRIVE = re.compile(r"^[A-Za-z]:[/\\]")
#: Longest folder name most filesystems and object stores take.
MAX_FOLDER_NAME = 255
#: Stands for the part of a path only a run knows (an expression, an ``{% if %}``...).
_HOLE = "\x00"
_PARSER = Environment(autoescape=True)  # parsing only: nothing is rendered with it
#: A delivery's ``path`` when it gives none (as :class:`~rule_compiler.definitions.report.StorageDelivery`).
DEFAULT_STORAGE_PATH = "{{ report.name }}/{{ run.interval_end }}"
CLIMB = "the folder may not climb out of the location ('..')"


class StoragePathError(InvalidValueError):
    """A storage folder that could leave its root; the message says why."""


def static_path_problem(template: str) -> str | None:
    """What makes the static text of a ``path`` template unsafe, or None.

    Only what no run can change is judged: the template's literal text and constant expressions
    (``{{ '..' }}``); an expression's value is the worker's to check. A template that does not parse
    is left to the template check.
    """
    if "\x00" in template:
        return "the folder may not contain a NUL byte"
    skeleton = _skeleton(template)
    if skeleton is None:
        return None
    return _problem(skeleton, static=True)


def clean_folder(text: str) -> str:
    """The rendered ``path`` as ``a/b/c`` relative to the storage root: each folder name reduced to
    ``A-Z a-z 0-9 . _ + = @ -`` (``:`` of a timestamp becomes ``-``), empty ones dropped.

    Raises :class:`StoragePathError` for a NUL byte, an absolute path, a ``.`` or ``..`` folder
    (also spelled with ``\\`` or URL escapes), no folder at all, or a folder name longer than 255.
    """
    problem = _problem(text, static=False)
    if problem:
        raise StoragePathError(problem)
    parts = [_PATH_UNSAFE.sub("-", part).strip("-") for part in text.replace("\\", "/").split("/")]
    parts = [part for part in parts if part]
    if not parts:
        raise StoragePathError("it names no folder")
    if any(part in {".", ".."} for part in parts):
        raise StoragePathError("it may not contain '.' or '..' folders")
    if any(len(part) > MAX_FOLDER_NAME for part in parts):
        raise StoragePathError(f"a folder name is longer than {MAX_FOLDER_NAME} characters")
    return "/".join(parts)


def organization_folder(organization: str) -> str:
    """The folder of ``organization`` under the administrator's storage: its slug, checked again
    here so that no spec can name another folder."""
    if not SLUG_RE.match(organization) or len(organization) > MAX_FOLDER_NAME:
        raise StoragePathError(f"{organization[:100]!r} is not an organization name")
    return organization


def is_inside(root: str, target: str) -> bool:
    """Whether the absolute, resolved path ``target`` is ``root`` or below it (whole folders)."""
    root, target = os.path.normpath(root), os.path.normpath(target)
    return os.path.commonpath([root, target]) == root


def _problem(text: str, *, static: bool) -> str | None:
    """What lets ``text`` (a rendered path, or a template's skeleton with holes) leave its root."""
    if "\x00" in text and not static:
        return "the folder may not contain a NUL byte"
    slashed = text.replace("\\", "/")
    if slashed.lstrip(" \t\r\n").startswith("/") or _DRIVE.match(slashed.lstrip()):
        return "the folder is relative to the storage location: remove the leading '/' (no absolute paths)"
    dots = {_cleaned(segment) for segment in _segments(slashed) if _HOLE not in segment} & {".", ".."}
    if dots:
        if not static:
            return "it may not contain '.' or '..' folders"
        return CLIMB if ".." in dots else "the folder may not contain '.' folders: leave them out"
    decoded = _unquoted(slashed).replace("\\", "/")
    climbs = decoded.lstrip().startswith("/") or any(
        _is_dot(segment) for segment in _segments(decoded) if _HOLE not in segment
    )
    if decoded != slashed and climbs:
        return "the folder may not contain '/', '.' or '..' written as URL escapes (%2e, %2f)"
    return None


def _segments(path: str) -> list[str]:
    return path.split("/")


def _is_dot(segment: str) -> bool:
    """``.`` or ``..``, also once the worker cleaned it (``.. `` becomes ``..``)."""
    return _cleaned(segment) in {".", ".."}


def _cleaned(segment: str) -> str:
    """A folder name as the worker keeps it (``..`` stays ``..``, ``.. `` becomes ``..``)."""
    return segment if segment in {".", ".."} else _PATH_UNSAFE.sub("-", segment).strip("-")


def _unquoted(text: str) -> str:
    """``text`` with URL escapes decoded until nothing changes (``%252e`` → ``%2e`` → ``.``)."""
    for _ in range(5):
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    return text


def _skeleton(template: str) -> str | None:
    """The template's text with each part only a run knows replaced by a hole; None: no parse."""
    try:
        tree = _PARSER.parse(template)
    except TemplateSyntaxError:
        return None
    context = EvalContext(_PARSER)
    out: list[str] = []
    for node in tree.body:
        if not isinstance(node, nodes.Output):
            out.append(_HOLE)  # {% if %}, {% for %}, {% set %}...: decided by the run
            continue
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                out.append(child.data)
                continue
            try:
                value = child.as_const(context)
            except Exception:  # nodes.Impossible, or a filter failing: not a constant
                out.append(_HOLE)
            else:
                out.append(str(value))
    return "".join(out)
