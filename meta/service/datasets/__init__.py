"""Dataset updates forwarded across backends (docs/dataset-forwarding.md): a task listing ``outputs`` that succeeds
on one backend becomes, on every other backend whose placed pipelines are scheduled on that dataset, the event that
backend's own dataset scheduler listens to (an Airflow asset event, a Prefect ``meta.dataset.updated`` event)."""

from meta.service.datasets.base import Forward, ForwardError, Sender
from meta.service.datasets.forwarder import DatasetForwarder

__all__ = ["DatasetForwarder", "Forward", "ForwardError", "Sender"]
