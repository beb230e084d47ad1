"""Forwarding to Airflow: ``POST /api/v2/assets/events {"asset_id", "extra"}``, which queues every DAG scheduled on
that asset exactly as a producing task would.

The asset's integer id is resolved from the dataset URI with ``GET /api/v2/assets?uri_pattern=`` (a substring
search: the exact URI, or the asset's name, which ``Asset(uri)`` sets to the URI as written, is picked from the
answer) and cached; only active assets are listed, so an asset no DAG references any more is "unknown". The event's
``extra`` carries the forward's key: ``find`` lists the asset's events since the forward was created and looks for
it, which tells a send that arrived before the forwarder died from one that did not.
"""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

from meta.service.datasets.base import FORWARD_FIELD, Forward, ForwardError
from meta.service.observers.airflow import AirflowHttp

PAGE = 100  # Airflow's [api] maximum_page_limit
# Airflow stamps asset events with its own clock: look this much before the forward's creation for them
CLOCK_MARGIN = timedelta(minutes=10)
MAX_PAGES = 50


class AirflowAssetSender:
    def __init__(self, backend: str, http: AirflowHttp):
        self.backend = backend
        self.http = http
        self._ids: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"AirflowAssetSender({self.backend!r}, {self.http.base!r})"

    def asset_id(self, uri: str) -> int:
        found = self._ids.get(uri)
        if found is not None:
            return found
        for offset in range(0, PAGE * MAX_PAGES, PAGE):
            params = {"uri_pattern": uri, "limit": PAGE, "offset": offset, "order_by": "id"}
            page = self.http.call("GET", "/api/v2/assets", params=params).json()
            assets = page.get("assets") or []
            exact = [a for a in assets if a.get("uri") == uri] or [a for a in assets if a.get("name") == uri]
            if exact:
                self._ids[uri] = int(exact[0]["id"])
                return self._ids[uri]
            if len(assets) < PAGE:
                break
        raise ForwardError(
            f"Airflow backend {self.backend!r} has no active asset {uri!r}: no DAG there is scheduled on it or "
            "writes it (deploy the consuming pipeline there, or fix the URI)"
        )

    def send(self, forward: Forward) -> str:
        asset_id = self.asset_id(forward.dataset)
        body = {"asset_id": asset_id, "extra": forward.details()}
        response = self.http.call("POST", "/api/v2/assets/events", ok=(200, 201, 404), json=body)
        if response.status_code == 404:
            self._ids.pop(forward.dataset, None)  # deleted since it was resolved: resolve again next time
            raise ForwardError(f"Airflow backend {self.backend!r} no longer has asset {forward.dataset!r}")
        return str(response.json()["id"])

    def find(self, forward: Forward) -> str | None:
        asset_id = self.asset_id(forward.dataset)
        since = (forward.created_at - CLOCK_MARGIN).astimezone(UTC)
        for offset in range(0, PAGE * MAX_PAGES, PAGE):
            params: dict[str, Any] = {
                "asset_id": asset_id,
                "timestamp_gte": since.isoformat(),
                "order_by": "-timestamp",
                "limit": PAGE,
                "offset": offset,
            }
            events = self.http.call("GET", "/api/v2/assets/events", params=params).json().get("asset_events") or []
            for event in events:
                if (event.get("extra") or {}).get(FORWARD_FIELD) == forward.key:
                    return str(event["id"])
            if len(events) < PAGE:
                return None
        raise ForwardError(
            f"Airflow backend {self.backend!r}: more than {PAGE * MAX_PAGES} events on asset {forward.dataset!r} "
            f"since {since.isoformat()}; cannot tell whether forward {forward.key} arrived"
        )

    def close(self) -> None:
        pass  # the client is the observer's
