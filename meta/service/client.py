"""A small client of the control plane's API, used by ``meta status``, ``meta runs`` and ``meta trigger``.

Errors name the URL and status and the API's own message, never the token.
"""

from __future__ import annotations

from typing import Any

import httpx

from meta.spec.errors import MetaError


class ApiError(MetaError, RuntimeError):
    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status  # the HTTP status, when the API answered


def is_serving(base_url: str, timeout: float = 1.0) -> bool:
    """True when a control plane answers its (unauthenticated) health endpoint at ``base_url``."""
    return serving_store(base_url, timeout) is not None


def serving_store(base_url: str, timeout: float = 1.0) -> str | None:
    """The store fingerprint (``store.db.fingerprint``) of the control plane answering at ``base_url``; "" when it
    answers without one; None when nothing answers."""
    try:
        response = httpx.get(f"{base_url}/api/v1/health", timeout=timeout)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    store = body.get("store") if isinstance(body, dict) else None
    return store if isinstance(store, str) else ""


def _detail(response: httpx.Response) -> str:
    """The API's own message: ``detail`` as a sentence, or a validation list as ``where: what`` lines."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                where = ".".join(str(p) for p in item.get("loc", ()) if p not in ("body", "query", "path"))
                parts.append(f"{where}: {item.get('msg', item)}" if where else str(item.get("msg", item)))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail)


class ApiClient:
    """``http``: an httpx-style client already aimed at ``<base>/api/v1`` (the CLI passes Starlette's TestClient
    to call the app in-process when no server runs; typed loosely, as Starlette moves to httpx2); default: a plain
    ``httpx.Client`` for ``base_url``."""

    def __init__(self, base_url: str, token: str | None, timeout: float = 30.0, *, http: Any = None):
        self.base_url = base_url.rstrip("/")
        self.in_process = False
        self._http = http or httpx.Client(base_url=self.base_url + "/api/v1", timeout=timeout)
        if token:
            self._http.headers["Authorization"] = f"Bearer {token}"

    def __repr__(self) -> str:
        return f"ApiClient({self.base_url!r})"

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(f"control plane at {self.base_url} did not answer {method} {path}: {exc}") from None
        if response.status_code >= 400:
            detail = _detail(response)
            hint = " (pass --token or set META_API_TOKEN)" if response.status_code == 401 else ""
            raise ApiError(f"{method} {path} -> HTTP {response.status_code}: {detail}{hint}", response.status_code)
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("POST", path, json=body)

    def close(self) -> None:
        self._http.close()
