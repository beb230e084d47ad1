"""What a forward is, and what a target backend's sender does with it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

# The key the forward travels with on the target (Airflow: the asset event's ``extra``; Prefect: the payload), so
# a restarted forwarder can tell whether a send it does not know the outcome of arrived. Not a word Airflow's
# secrets masker hides ("key" alone is not; "token", "secret", "password" ... would be).
FORWARD_FIELD = "meta_forward"
# uuid5 namespace of forwarded Prefect event ids (fixed: the same key always gives the same id)
EVENT_NAMESPACE = uuid.UUID("5b0c7a52-8a4e-4d0e-9a53-3f1b6f0e2c11")


class ForwardError(RuntimeError):
    """The target refused the forward in a way that needs someone to act (an asset no DAG there references, a
    refused request). Retried with backoff like an outage; the message is stored on the row (never a secret)."""


@dataclass(frozen=True)
class Forward:
    """One dataset update for one target backend (a ``dataset_forwards`` row)."""

    key: str
    dataset: str
    source_backend: str
    source_pipeline: str
    source_run: str
    source_task: str | None
    target_backend: str
    created_at: datetime

    @property
    def event_id(self) -> str:
        """The deterministic id of the event on a target that takes ids (Prefect)."""
        return str(uuid.uuid5(EVENT_NAMESPACE, self.key))

    def details(self) -> dict[str, str | None]:
        """What the target's event says about where the update came from."""
        return {
            FORWARD_FIELD: self.key,
            "meta_source_backend": self.source_backend,
            "meta_source_pipeline": self.source_pipeline,
            "meta_source_run": self.source_run,
            "meta_source_task": self.source_task,
        }


class Sender(Protocol):
    """Delivers forwards to one backend. Both calls may raise ``BackendUnreachable`` (an outage) or
    :class:`ForwardError` (a refusal); both are retried with backoff."""

    def send(self, forward: Forward) -> str:
        """Create the event on the target; returns its id there (stored as ``remote_id``)."""
        ...

    def find(self, forward: Forward) -> str | None:
        """The id of the event ``forward`` already created on the target, or None: asked before re-sending a
        forward whose earlier send has no known outcome (the forwarder died, or the answer was lost)."""
        ...

    def close(self) -> None: ...
