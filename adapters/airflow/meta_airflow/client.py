"""A small client for Airflow 3's REST API v2. Auth is injected (an ``httpx.Auth``), never built from globals.

Errors carry method, URL, status and a trimmed body; never a password or token.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from typing import Any
from urllib.parse import quote

import httpx

from meta import MetaError

TRIGGER_TRIES = 5


class AirflowApiError(MetaError, RuntimeError):
    def __init__(self, method: str, url: str, status: int, body: str):
        self.method, self.url, self.status, self.body = method, url, status, body
        super().__init__(f"Airflow API {method} {url} -> HTTP {status}: {body[:300]}")


class PasswordTokenAuth(httpx.Auth):
    """SimpleAuthManager / FAB login: ``POST /auth/token`` once, then ``Authorization: Bearer``; re-login on 401."""

    def __init__(self, base_url: str, username: str, password: str):
        self._token_url = base_url.rstrip("/") + "/auth/token"
        self._username = username
        self._password = password
        self._token: str | None = None

    def __repr__(self) -> str:  # keep the password out of reprs and logs
        return f"PasswordTokenAuth(user={self._username!r})"

    def _login(self) -> httpx.Request:
        return httpx.Request("POST", self._token_url, json={"username": self._username, "password": self._password})

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        for attempt in range(2):
            if self._token is None:
                response = yield self._login()
                if response.status_code not in (200, 201):
                    response.read()
                    raise AirflowApiError(
                        "POST", self._token_url, response.status_code, f"login as {self._username!r} failed"
                    )
                response.read()
                self._token = response.json()["access_token"]
            request.headers["Authorization"] = f"Bearer {self._token}"
            response = yield request
            if response.status_code != 401 or attempt == 1:
                return
            self._token = None  # expired: log in again once


class AirflowClient:
    def __init__(self, base_url: str, auth: httpx.Auth | None = None, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url + "/api/v2", auth=auth, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AirflowClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise AirflowApiError(method, str(response.request.url), response.status_code, response.text)
        return response.json() if response.content else None

    # -- DAGs -------------------------------------------------------------------------------------

    def dag(self, dag_id: str) -> dict[str, Any]:
        return self.request("GET", f"/dags/{quote(dag_id, safe='')}")

    def dag_ids(self) -> set[str]:
        ids: set[str] = set()
        offset = 0
        while True:
            page = self.request("GET", "/dags", params={"limit": 100, "offset": offset})
            ids.update(d["dag_id"] for d in page["dags"])
            offset += len(page["dags"])
            if not page["dags"] or offset >= page["total_entries"]:
                return ids

    def import_errors(self) -> list[dict[str, Any]]:
        return self.request("GET", "/importErrors", params={"limit": 100})["import_errors"]

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.request(
            "PATCH", f"/dags/{quote(dag_id, safe='')}", params={"update_mask": "is_paused"}, json={"is_paused": paused}
        )

    # -- runs -------------------------------------------------------------------------------------

    def trigger(
        self, dag_id: str, run_id: str, conf: dict[str, Any] | None = None, logical_date: str | None = None
    ) -> dict[str, Any]:
        body = {"dag_run_id": run_id, "logical_date": logical_date, "conf": conf or {}}
        # A busy Airflow answers 500 "Database error" now and then (its database locked by the scheduler). The run
        # id makes the call idempotent, so it is retried; a 409 after a failed try means that try created the run.
        for attempt in range(TRIGGER_TRIES):
            try:
                return self.request("POST", f"/dags/{quote(dag_id, safe='')}/dagRuns", json=body)
            except AirflowApiError as exc:
                if exc.status == 409 and attempt > 0:
                    return self.dag_run(dag_id, run_id)
                if exc.status < 500 or attempt == TRIGGER_TRIES - 1:
                    raise
                time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.request("GET", f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances"
        return list(self._paged(path, "task_instances"))

    def _paged(self, path: str, key: str) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            page = self.request("GET", path, params={"limit": 100, "offset": offset})
            yield from page[key]
            offset += len(page[key])
            if not page[key] or offset >= page["total_entries"]:
                return
