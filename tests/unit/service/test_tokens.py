"""meta.service.api.tokens on a real store: ``meta_`` + 256 random bits, only the SHA-256 stored, roles and teams
checked at creation, revocation kept for the record."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from meta.service.api import tokens
from meta.service.store.db import Store, open_store
from meta.service.store.orm import TokenRow


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'cp.db'}")
    yield opened
    opened.close()


def columns(session: Session) -> str:
    return repr([row.__dict__ for row in session.query(TokenRow)])


def test_a_token_is_random_prefixed_and_stored_only_as_its_hash(store: Store) -> None:
    with store.transaction() as session:
        first = tokens.create(session, name="ci", role="operator", team="alpha")
        second = tokens.create(session, name="ci", role="operator", team="alpha")
    assert first.secret.startswith("meta_") and len(first.secret) == len("meta_") + 43  # 32 bytes, urlsafe b64
    assert first.secret != second.secret
    with store.reading() as session:
        row = session.get(TokenRow, first.row.id)
        assert row is not None
        assert row.token_hash == hashlib.sha256(first.secret.encode()).hexdigest()
        assert (row.name, row.role, row.team, row.revoked_at) == ("ci", "operator", "alpha", None)
        assert first.secret not in columns(session) and first.secret[5:] not in columns(session)


def test_verify_and_revoke(store: Store) -> None:
    with store.transaction() as session:
        created = tokens.create(session, name="ops", role="admin", team=None)
    with store.reading() as session:
        row = tokens.verify(session, created.secret)
        assert row is not None and row.id == created.row.id
        assert tokens.verify(session, created.secret + "x") is None
        assert tokens.verify(session, "not-a-meta-token") is None
        assert tokens.verify(session, tokens.hash_token(created.secret)) is None  # the hash is no key
    with store.transaction() as session:
        revoked = tokens.revoke(session, created.row.id)
        assert revoked is not None and revoked.revoked_at is not None
        when = revoked.revoked_at
        assert tokens.revoke(session, created.row.id).revoked_at == when  # type: ignore[union-attr]
        assert tokens.revoke(session, 999) is None
    with store.reading() as session:
        assert tokens.verify(session, created.secret) is None
        assert [r.id for r in tokens.listed(session)] == [created.row.id]  # kept for the record


@pytest.mark.parametrize(
    ("role", "team", "message"),
    [
        ("viewer", None, "a viewer token needs a team"),
        ("operator", None, "an operator token needs a team"),
        ("ingest", "alpha", "an ingest token belongs to the whole control plane"),
        ("metrics", "alpha", "belongs to the whole control plane"),
        ("superuser", None, "unknown role 'superuser'; expected one of viewer, operator, admin, ingest, metrics"),
    ],
)
def test_roles_and_teams_are_checked(store: Store, role: str, team: str | None, message: str) -> None:
    with store.transaction() as session, pytest.raises(tokens.TokenError, match=message):
        tokens.create(session, name="x", role=role, team=team)


def test_listing_by_team(store: Store) -> None:
    with store.transaction() as session:
        tokens.create(session, name="a", role="viewer", team="alpha")
        tokens.create(session, name="b", role="viewer", team="beta")
        tokens.create(session, name="g", role="admin", team=None)
    with store.reading() as session:
        assert [r.name for r in tokens.listed(session, "alpha")] == ["a"]
        assert [r.name for r in tokens.listed(session)] == ["a", "b", "g"]
