"""Service levels as pure functions: schedule slots and wall-clock deadlines (``slots``), and the state of every
SLA slot from run facts (``evaluate``). The control plane's engine (``meta.service.sla``) feeds them facts on a timer.
"""

from meta.semantics.sla.evaluate import (
    AT_RISK,
    MET,
    MISSED,
    PENDING,
    STATES,
    UNKNOWN,
    AttemptFact,
    Evaluation,
    Facts,
    RunFact,
    SlaSpec,
    SlotStatus,
    evaluate,
)
from meta.semantics.sla.slots import local_deadline, next_tick, ticks

__all__ = [
    "AT_RISK",
    "MET",
    "MISSED",
    "PENDING",
    "STATES",
    "UNKNOWN",
    "AttemptFact",
    "Evaluation",
    "Facts",
    "RunFact",
    "SlaSpec",
    "SlotStatus",
    "evaluate",
    "local_deadline",
    "next_tick",
    "ticks",
]
