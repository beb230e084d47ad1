"""The control plane's SLA engine: every SLA on every backend, judged the same way.

``subjects`` says what is watched (placed pipelines with an ``sla`` or task ``max_duration``, the workspace's
``slas:`` on observed DAGs/flows and datasets); ``facts`` reads what the store knows of each; the pure
``meta.semantics.sla.evaluate`` judges it; ``records`` keeps each slot's state and its notices in the store;
``notices`` delivers them through the alert operators; ``engine`` runs all of it on a timer (every second), so a
run that hangs is caught at its deadline, not when it ends.
"""

from meta.service.sla.engine import SlaEngine, TickReport
from meta.service.sla.subjects import WatchedSubject, watched_subjects

__all__ = ["SlaEngine", "TickReport", "WatchedSubject", "watched_subjects"]
