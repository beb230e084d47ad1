"""Helpers the routers share: aware datetimes, clean JSON, team-blind 404s, and scrubbing secrets from messages."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException

from meta.service.api.schemas import Problem

PREFIX = "/api/v1"
# Every authenticated route documents these; the routers carry them (and the prefix) themselves, so each route's
# own ``path`` and ``responses`` are complete on every FastAPI version (0.15x keeps included routers unflattened).
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "a malformed request (a body that is not JSON, a foreign cursor)"},
    401: {"model": Problem, "description": "no token, or an unknown or revoked one"},
    403: {"model": Problem, "description": "the token's role may not call this endpoint"},
    422: {"model": Problem, "description": "a parameter or body that fails validation, with the reason"},
}


def api_router(tag: str, *, prefix: str = PREFIX, authenticated: bool = True) -> APIRouter:
    return APIRouter(prefix=prefix, tags=[tag], responses=AUTH_RESPONSES if authenticated else None)


_TOKEN = re.compile(r"meta_[A-Za-z0-9_\-]{8,}")
_BEARER = re.compile(r"(?i)(bearer|basic|token|password|secret|api[_-]?key)([\"'=:\s]+)[^\s\"',;]+")
_USERINFO = re.compile(r"(?i)([a-z][a-z0-9+.\-]*://)[^/@\s]+@")


def scrub(message: str, limit: int = 500) -> str:
    """``message`` with anything that looks like a token, a credential assignment or URL userinfo replaced."""
    message = _TOKEN.sub("meta_***", message)
    message = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}***", message)
    message = _USERINFO.sub(lambda m: f"{m.group(1)}***@", message)
    return message[:limit]


def aware(value: datetime | None, name: str) -> datetime | None:
    """UTC-aware ``value`` (a naive time is read as UTC); 422 when it cannot be expressed in UTC."""
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise HTTPException(422, f"{name}={value.isoformat()} is outside the representable UTC range") from None


def clean_json(value: Any, name: str) -> None:
    """422 unless ``value`` can be stored as JSON on every database (no NUL, no lone surrogates)."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")
    except (ValueError, TypeError, UnicodeEncodeError):
        raise HTTPException(422, f"{name} must be JSON without NaN, infinities or unpaired surrogates") from None
    if "\x00" in text or "\\u0000" in text:
        raise HTTPException(422, f"{name} must not contain NUL characters")


def not_found(what: str) -> HTTPException:
    """The same answer whether ``what`` does not exist or belongs to another team (names must not leak)."""
    return HTTPException(404, f"no {what} (or it belongs to a team this token cannot see)")
