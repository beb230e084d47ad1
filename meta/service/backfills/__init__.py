"""Backfills across orchestrators (``meta backfill``): the dates and keys (``plan``, pure) and the driver that runs
them on every backend, with their downstreams, resumably (``driver``). docs/backfills.md."""

from meta.service.backfills.driver import Backfill, Item

__all__ = ["Backfill", "Item"]
