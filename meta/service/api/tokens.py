"""API tokens against ``orm.TokenRow``: ``meta_`` + 256 random bits, shown once at creation; only a SHA-256 is kept.

A fast hash is enough here (unlike passwords): the token is random, so there is nothing to guess that a slow hash
would protect. Verification looks the hash up by its unique index, so no secret is compared byte by byte in Python.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from meta.service.store.orm import TokenRow

PREFIX = "meta_"
ROLES = ("viewer", "operator", "admin", "ingest", "metrics")
# Ordered roles: each may do everything the ones before it may. ``ingest`` (POST lineage) and ``metrics``
# (GET /metrics) stand apart: they can do nothing else.
RANKED = ("viewer", "operator", "admin")
# Roles that must name a team, and those that must not (they are per control plane, not per team).
TEAM_REQUIRED = frozenset({"viewer", "operator"})
TEAM_FORBIDDEN = frozenset({"ingest", "metrics"})


class TokenError(ValueError):
    """A token cannot be created as asked (the message says why and what is allowed)."""


@dataclass(frozen=True)
class Created:
    row: TokenRow
    secret: str  # the token itself: returned once, never stored


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def check_role_team(role: str, team: str | None) -> None:
    if role not in ROLES:
        raise TokenError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    if role in TEAM_REQUIRED and team is None:
        article = "an" if role[0] in "aeiou" else "a"
        raise TokenError(f"{article} {role} token needs a team (only admin tokens may span every team)")
    if role in TEAM_FORBIDDEN and team is not None:
        article = "an" if role[0] in "aeiou" else "a"
        raise TokenError(f"{article} {role} token belongs to the whole control plane: give no team")


def create(session: Session, *, name: str, role: str, team: str | None) -> Created:
    check_role_team(role, team)
    secret = new_secret()
    row = TokenRow(name=name, team=team, role=role, token_hash=hash_token(secret), created_at=datetime.now(UTC))
    session.add(row)
    session.flush()
    return Created(row, secret)


def verify(session: Session, secret: str) -> TokenRow | None:
    """The live token row for ``secret``, or None (unknown or revoked)."""
    if not secret.startswith(PREFIX):
        return None
    row = session.scalars(select(TokenRow).where(TokenRow.token_hash == hash_token(secret))).first()
    if row is None or row.revoked_at is not None:
        return None
    return row


def revoke(session: Session, token_id: int) -> TokenRow | None:
    """Mark the token revoked (kept for the record); None when there is no such token."""
    row = session.get(TokenRow, token_id)
    if row is not None and row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
    return row


def listed(session: Session, team: str | None = None) -> list[TokenRow]:
    statement = select(TokenRow).order_by(TokenRow.id)
    if team is not None:
        statement = statement.where(TokenRow.team == team)
    return list(session.scalars(statement))
