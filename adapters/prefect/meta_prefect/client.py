"""A small client for the Prefect server REST API (``/api``), over an injected ``httpx.Client``.

Errors carry the method, URL, status and a trimmed body, never the credentials (basic auth lives in the injected
client, e.g. ``httpx.Client(auth=...)`` for ``PREFECT_SERVER_API_AUTH_STRING``).
"""

from __future__ import annotations

import os
import time
from typing import Any

import httpx

from meta import MetaError

BODY_LIMIT = 500
RETRIES = 5
RETRY_STATUSES = frozenset({429, 502, 503, 504})


class PrefectApiError(MetaError, RuntimeError):
    def __init__(self, method: str, url: str, status: int | None, body: str):
        self.method, self.url, self.status, self.body = method, url, status, body
        shown = body if len(body) <= BODY_LIMIT else body[:BODY_LIMIT] + "..."
        super().__init__(f"Prefect API {method} {url} -> {status if status is not None else 'no response'}: {shown}")


def api_url(explicit: str | None = None) -> str:
    """The API base URL: the explicit one, else ``PREFECT_API_URL``; says what to do when neither is set."""
    url = explicit or os.environ.get("PREFECT_API_URL")
    if not url:
        raise MetaError(
            "no Prefect server given: pass --api-url http://HOST:PORT/api or set PREFECT_API_URL "
            "(start one with `prefect server start`)"
        )
    return url.rstrip("/")


class PrefectClient:
    def __init__(self, http: httpx.Client):
        self.http = http

    @classmethod
    def connect(cls, url: str | None = None, timeout: float = 30.0, auth_string: str | None = None) -> PrefectClient:
        """A client of ``url`` (default PREFECT_API_URL) with basic auth from ``auth_string`` (``user:password``,
        default PREFECT_API_AUTH_STRING)."""
        auth_string = auth_string or os.environ.get("PREFECT_API_AUTH_STRING")
        auth = httpx.BasicAuth(*auth_string.split(":", 1)) if auth_string and ":" in auth_string else None
        return cls(httpx.Client(base_url=api_url(url) + "/", timeout=timeout, auth=auth))

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, json: Any = None, ok: tuple[int, ...] = ()) -> Any:
        url = str(self.http.base_url.join(path.lstrip("/")).copy_with(userinfo=b""))  # never show credentials
        for attempt in range(RETRIES + 1):
            try:
                response = self.http.request(method, path.lstrip("/"), json=json)
            except httpx.HTTPError as exc:
                raise PrefectApiError(method, url, None, f"{type(exc).__name__}: {exc}") from exc
            # A busy server (SQLite locked: 503, rate limits: 429) answers again shortly; Prefect's client retries too.
            if response.status_code not in RETRY_STATUSES or attempt == RETRIES:
                break
            time.sleep(float(response.headers.get("Retry-After") or 0) or 0.5 * 2**attempt)
        if response.status_code >= 400 and response.status_code not in ok:
            raise PrefectApiError(method, url, response.status_code, response.text)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # ------------------------------------------------------------------------------------------------ resources

    def health(self) -> bool:
        try:
            self.request("GET", "health")
        except PrefectApiError:
            return False
        return True

    def ensure_flow(self, name: str) -> str:
        """``POST /flows/`` returns the existing flow of that name, so it is idempotent."""
        return str(self.request("POST", "flows/", {"name": name})["id"])

    def upsert_deployment(self, body: dict[str, Any]) -> str:
        """``POST /deployments/`` updates the deployment with the same flow and name (schedules are replaced)."""
        return str(self.request("POST", "deployments/", body)["id"])

    def read_deployment(self, deployment_id: str) -> dict[str, Any]:
        return dict(self.request("GET", f"deployments/{deployment_id}"))

    def read_deployment_by_name(self, flow_name: str, name: str) -> dict[str, Any]:
        return dict(self.request("GET", f"deployments/name/{flow_name}/{name}"))

    def read_work_pool(self, name: str) -> dict[str, Any] | None:
        data = self.request("GET", f"work_pools/{name}", ok=(404,))
        return None if data is None or "id" not in data else dict(data)

    def replace_owned_automations(self, owner: str, automations: list[dict[str, Any]]) -> list[str]:
        """Delete the automations owned by ``owner`` (e.g. ``prefect.deployment.<id>``) and create these."""
        self.request("DELETE", f"automations/owned-by/{owner}")
        return [str(self.request("POST", "automations/", body)["id"]) for body in automations]

    def automations_related_to(self, resource: str) -> list[dict[str, Any]]:
        """Automations owned by or acting on ``resource`` (the server does not return the owner itself)."""
        return list(self.request("GET", f"automations/related-to/{resource}") or [])

    def create_flow_run(
        self, deployment_id: str, parameters: dict[str, Any] | None = None, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"parameters": parameters or {}}
        if idempotency_key is not None:
            body["idempotency_key"] = idempotency_key
        return dict(self.request("POST", f"deployments/{deployment_id}/create_flow_run", body))

    def read_flow_run(self, flow_run_id: str) -> dict[str, Any]:
        return dict(self.request("GET", f"flow_runs/{flow_run_id}"))

    def task_runs(self, flow_run_id: str) -> list[dict[str, Any]]:
        """Every task run of a flow run (pages of 200, the server's maximum)."""
        out: list[dict[str, Any]] = []
        while True:
            body = {"flow_runs": {"id": {"any_": [flow_run_id]}}, "sort": "NAME_ASC", "limit": 200, "offset": len(out)}
            page = self.request("POST", "task_runs/filter", body) or []
            out.extend(page)
            if len(page) < 200:
                return out
