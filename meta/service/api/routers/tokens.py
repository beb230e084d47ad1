"""``/api/v1/tokens``: admins list, create and revoke API tokens. A team's admin manages its own team's tokens; an
admin without a team manages every token, including ingest and metrics tokens. The token is shown once."""

from __future__ import annotations

from typing import Annotated

from fastapi import HTTPException, Path

from meta.service.api import tokens
from meta.service.api.auth import Admin, Context
from meta.service.api.routers.common import api_router, not_found
from meta.service.api.schemas import Problem, Token, TokenCreated, TokenRequest
from meta.service.store.orm import TokenRow

router = api_router("tokens")


@router.get("/tokens", response_model=list[Token], summary="tokens (never their secrets)")
def list_tokens(principal: Admin, context: Context) -> list[Token]:
    with context.store.reading() as session:
        return [Token.of(row) for row in tokens.listed(session, principal.team)]


@router.post(
    "/tokens",
    response_model=TokenCreated,
    status_code=201,
    responses={403: {"model": Problem}, 422: {"model": Problem}},
    summary="create a token (its secret is in this response only)",
)
def create_token(body: TokenRequest, principal: Admin, context: Context) -> TokenCreated:
    if principal.team is not None and body.team != principal.team:
        raise HTTPException(403, f"a team admin creates tokens of its own team only (team {principal.team!r})")
    try:
        tokens.check_role_team(body.role, body.team)
    except tokens.TokenError as exc:
        raise HTTPException(422, str(exc)) from None
    with context.store.transaction() as session:
        created = tokens.create(session, name=body.name, role=body.role, team=body.team)
        return TokenCreated(**Token.of(created.row).model_dump(), token=created.secret)


@router.delete(
    "/tokens/{token_id}", response_model=Token, responses={404: {"model": Problem}}, summary="revoke a token"
)
def revoke_token(token_id: Annotated[int, Path(ge=1, lt=2**31)], principal: Admin, context: Context) -> Token:
    with context.store.transaction() as session:
        row = session.get(TokenRow, token_id)
        if row is None or (principal.team is not None and row.team != principal.team):
            raise not_found(f"token {token_id}")
        revoked = tokens.revoke(session, token_id)
        assert revoked is not None
        return Token.of(revoked)
