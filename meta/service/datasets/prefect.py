"""Forwarding to Prefect: ``POST /api/events`` with the very event a meta-built Prefect task emits for its outputs
(``meta.dataset.updated`` on the resource whose id is the dataset URI, see ``meta_prefect.events``), so the
automations ``meta deploy --target prefect`` created for dataset-scheduled deployments fire on it.

The event's ``id`` is a uuid5 of the forward's key and its ``occurred`` the forward's creation time, so a re-send is
the same event: Prefect stores an event id once (``INSERT ... ON CONFLICT DO NOTHING``) and its triggers service
skips an event id it has already evaluated (its causal-ordering "seen" memory, 30 minutes). ``find`` asks
``POST /api/events/filter`` by that id before a re-send; Prefect persists events a few seconds after accepting
them, which is where its own dedupe covers the gap.
"""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

from meta.service.datasets.base import Forward
from meta.service.observers.prefect import _Http

DATASET_EVENT = "meta.dataset.updated"  # meta_prefect.events.DATASET_EVENT (not imported: adapters are optional)
MARGIN = timedelta(minutes=5)


def event(forward: Forward) -> dict[str, Any]:
    pipeline, task = forward.source_pipeline, forward.source_task
    related = [{"prefect.resource.id": f"meta.pipeline.{pipeline}", "prefect.resource.role": "pipeline"}]
    if task:
        related.append({"prefect.resource.id": f"meta.task.{pipeline}.{task}", "prefect.resource.role": "task"})
    related.append({"prefect.resource.id": f"meta.backend.{forward.source_backend}", "prefect.resource.role": "source"})
    return {
        "id": forward.event_id,
        "occurred": forward.created_at.astimezone(UTC).isoformat(),
        "event": DATASET_EVENT,
        "resource": {"prefect.resource.id": forward.dataset, "prefect.resource.role": "dataset"},
        "related": related,
        "payload": {"pipeline": pipeline, "task": task, "run_id": forward.source_run, **forward.details()},
    }


class PrefectEventSender:
    def __init__(self, backend: str, http: _Http, *, owned: bool = True):
        self.backend = backend
        self.http = http
        self.owned = owned

    def __repr__(self) -> str:
        return f"PrefectEventSender({self.backend!r}, {self.http.shown!r})"

    def send(self, forward: Forward) -> str:
        self.http.call("POST", "events", [event(forward)])
        return forward.event_id

    def find(self, forward: Forward) -> str | None:
        since = forward.created_at - MARGIN
        until = forward.created_at + timedelta(days=1)
        body = {
            "filter": {
                "id": {"id": [forward.event_id]},
                "occurred": {"since": since.astimezone(UTC).isoformat(), "until": until.astimezone(UTC).isoformat()},
            },
            "limit": 1,
        }
        page = self.http.json("POST", "events/filter", body) or {}
        found = [e for e in page.get("events") or [] if e.get("id") == forward.event_id]
        return forward.event_id if found else None

    def close(self) -> None:
        if self.owned:
            self.http.close()
