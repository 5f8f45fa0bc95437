"""Memberships: which Airflow user belongs to which organization, with which role.

The REST view reads a request's organization and role from here. Every change is audited (kind
``membership``, name = the username) in the transaction that makes it. Each function runs inside the
caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal, cast

import sqlalchemy as sa

from rule_compiler.errors import NotFoundError
from rule_compiler.store import audit
from rule_compiler.store.tables import MEMBERSHIP_ROLES, memberships

Role = Literal["viewer", "editor", "admin"]
MEMBERSHIP_KIND = "membership"
#: What a membership's username may be: an Airflow login as the auth managers issue them (letters,
#: digits and ``. _ @ + -``: plain names and e-mail addresses), never spaces or control characters.
USERNAME_PATTERN = r"^[A-Za-z0-9._@+-]{1,200}$"
_USERNAME_RE = re.compile(USERNAME_PATTERN)
m = memberships


@dataclass(frozen=True, slots=True)
class Membership:
    """One user's role in one organization."""

    organization: str
    username: str
    role: Role
    created_at: dt.datetime
    updated_at: dt.datetime
    updated_by: str


_COLUMNS = (m.c.organization, m.c.username, m.c.role, m.c.created_at, m.c.updated_at, m.c.updated_by)


def _check_role(role: str) -> None:
    if role not in MEMBERSHIP_ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(MEMBERSHIP_ROLES)}")


def username_problem(username: str) -> str | None:
    """Why ``username`` cannot be a member (a sentence), or None."""
    if _USERNAME_RE.fullmatch(username):
        return None
    return (
        f"{username[:80]!r} is not a valid username: use 1 to 200 letters, digits and '.', '_', '@', '+' "
        "or '-' (no spaces or control characters)"
    )


def of_user(conn: sa.Connection, username: str) -> list[Membership]:
    """The user's memberships, by organization."""
    rows = conn.execute(sa.select(*_COLUMNS).where(m.c.username == username).order_by(m.c.organization))
    return [Membership(*row) for row in rows]


def list_memberships(conn: sa.Connection, organization: str | None) -> list[Membership]:
    """Memberships (of one organization, or all), by organization and username."""
    query = sa.select(*_COLUMNS)
    if organization is not None:
        query = query.where(m.c.organization == organization)
    return [Membership(*row) for row in conn.execute(query.order_by(m.c.organization, m.c.username))]


def get(conn: sa.Connection, organization: str, username: str) -> Membership | None:
    """One membership, or None."""
    row = conn.execute(
        sa.select(*_COLUMNS).where(m.c.organization == organization, m.c.username == username)
    ).one_or_none()
    return None if row is None else Membership(*row)


def put(
    conn: sa.Connection, *, organization: str, username: str, role: str, actor: str, now: dt.datetime
) -> tuple[Membership, bool]:
    """Create or change a membership (audited); ``(membership, created)``. Unchanged: no audit row."""
    _check_role(role)
    if problem := username_problem(username):
        raise ValueError(problem)
    current = conn.execute(
        sa.select(*_COLUMNS)
        .where(m.c.organization == organization, m.c.username == username)
        .with_for_update()
    ).one_or_none()
    if current is not None and current.role == role:
        return Membership(*current), False
    if current is None:
        conn.execute(
            m.insert().values(
                organization=organization,
                username=username,
                role=role,
                created_at=now,
                updated_at=now,
                updated_by=actor,
            )
        )
    else:
        conn.execute(
            m.update()
            .where(m.c.organization == organization, m.c.username == username)
            .values(role=role, updated_at=now, updated_by=actor)
        )
    audit.insert_audit(
        conn,
        organization=organization,
        actor=actor,
        action="create" if current is None else "update",
        kind=MEMBERSHIP_KIND,
        name=username,
        version=None,
        hash_before=None,
        hash_after=None,
        detail={"role_before": None if current is None else current.role, "role_after": role},
        now=now,
    )
    created_at = now if current is None else current.created_at
    return Membership(organization, username, cast(Role, role), created_at, now, actor), current is None


def delete(conn: sa.Connection, *, organization: str, username: str, actor: str, now: dt.datetime) -> None:
    """Remove a membership (audited); NotFoundError when there is none."""
    current = get(conn, organization, username)
    if current is None:
        raise NotFoundError(f"{username!r} is not a member of {organization!r}")
    conn.execute(m.delete().where(m.c.organization == organization, m.c.username == username))
    audit.insert_audit(
        conn,
        organization=organization,
        actor=actor,
        action="delete",
        kind=MEMBERSHIP_KIND,
        name=username,
        version=None,
        hash_before=None,
        hash_after=None,
        detail={"role_before": current.role},
        now=now,
    )
