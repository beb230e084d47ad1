"""Op types: reusable task kinds provided by plugins (``op: warehouse_load``, ``op: alert``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from meta.semantics.context import RunContext


@dataclass(frozen=True)
class OpContext:
    """What an op receives besides its ``with:`` arguments, identical on every backend."""

    run: RunContext
    task_id: str
    try_number: int = 1
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("meta.op"))


@dataclass(frozen=True)
class OpType:
    """An op type. ``run(ctx, **with_args)`` does the work; ``options`` (a pydantic model) validates ``with:``
    when the pipeline is loaded, so a typo is reported before anything runs."""

    name: str
    run: Callable[..., Any]
    options: type[BaseModel] | None = None
    description: str = ""
    backends: frozenset[str] | None = None  # None: every backend
