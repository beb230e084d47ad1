"""When each subject of an engine is next due: a min-heap with one live entry per key (the earliest asked for).

The SLA and dependency engines judge a subject when its facts changed or when its own next check comes (a
deadline, a timeout, a schedule tick); this keeps the second kind cheap for thousands of quiet subjects."""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from datetime import datetime
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class DueQueue(Generic[K]):
    def __init__(self) -> None:
        self.next_at: dict[K, datetime] = {}
        self._heap: list[tuple[datetime, K]] = []

    def schedule(self, key: K, at: datetime) -> None:
        """Judge ``key`` at ``at``, unless it is already due at or before then."""
        held = self.next_at.get(key)
        if held is not None and held <= at:
            return
        self.next_at[key] = at
        heapq.heappush(self._heap, (at, key))

    def pop_due(self, now: datetime) -> set[K]:
        """The keys due at ``now`` (each forgotten until scheduled again); superseded entries are dropped."""
        due: set[K] = set()
        while self._heap and self._heap[0][0] <= now:
            at, key = heapq.heappop(self._heap)
            if self.next_at.get(key) == at:
                del self.next_at[key]
                due.add(key)
        return due
