"""Storage location URLs: which ones a worker can write to, and whether one lies under another.

A report's storage ``location`` and a catalog storage connection's ``locations`` are both checked by
:func:`storage_location_problem`, so every accepted location is already in one spelling (no empty,
``.`` or ``..`` folder, no query, fragment, escape or space) and :func:`is_under` can compare them
as plain text. Pure: no Airflow import (the run time reuses it on the worker).
"""

from __future__ import annotations

import re

_AMAZON, _GOOGLE, _AZURE = (
    f"apache-airflow-providers-{name}" for name in ("amazon[s3fs]", "google", "microsoft-azure")
)
#: The schemes a storage ``location`` may use, each with the Airflow provider that registers its
#: filesystem for ``ObjectStoragePath`` (``file`` is built in). No other scheme has a filesystem on
#: the workers, so a location using one is refused at registration.
STORAGE_PROVIDERS: dict[str, str | None] = {
    "file": None,
    "s3": _AMAZON,
    "s3a": _AMAZON,
    "gs": _GOOGLE,
    "gcs": _GOOGLE,
    "abfs": _AZURE,
    "abfss": _AZURE,
    "adl": _AZURE,
}
STORAGE_SCHEMES = tuple(STORAGE_PROVIDERS)
#: What a location may hold after ``scheme://``: ``%``, ``?``, ``#``, ``\``, ``:`` and spaces are
#: refused, so no spelling of a folder can hide another one from :func:`is_under`.
_UNSAFE = re.compile(r"[^A-Za-z0-9._~+=,@/-]")


def storage_location_problem(location: str) -> str | None:
    """What is wrong with a storage ``location`` URL, or None when a worker can write to it (given
    the provider of its scheme)."""
    example = "such as s3://bucket/reports or file:///srv/reports"
    scheme, separator, rest = location.partition("://")
    if not separator:
        return f"give a URL {example}, not {location[:100]!r}"
    if scheme not in STORAGE_PROVIDERS:
        return (
            f"'{scheme[:20]}://' is not a storage scheme Airflow can write to; use one of "
            f"{', '.join(STORAGE_SCHEMES)} (a bucket needs the provider of its scheme on the workers)"
        )
    place, _, folder = rest.partition("/")
    if "@" in place:
        return "name the Airflow connection in `connection`, not in the URL"
    unsafe = _UNSAFE.search(rest)
    if unsafe:
        return (
            f"{unsafe.group()!r} may not appear in a location: use letters, digits, '/' and "
            ". _ ~ + = , @ - only"
        )
    if scheme == "file" and (place or not folder):
        return f"give an absolute folder: file:///srv/reports, not {location[:100]!r}"
    if scheme != "file" and not place:
        return f"name the bucket: {scheme}://bucket/folder"
    folders = folder.removesuffix("/").split("/") if folder else []
    if any(name in ("", ".", "..") for name in folders):
        return f"a location may not contain empty, '.' or '..' folders: {location[:100]!r}"
    return None


def location_prefix(location: str) -> str:
    """A valid ``location`` with exactly one trailing slash: the prefix of everything under it."""
    return location.rstrip("/") + "/"


def is_under(location: str, allowed: str) -> bool:
    """Whether the valid ``location`` is ``allowed`` or a folder below it (``s3://acme-reports-evil``
    is not under ``s3://acme-reports``)."""
    return location_prefix(location).startswith(location_prefix(allowed))
