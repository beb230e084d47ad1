"""Idempotent warehouse loads (``op: warehouse_load``): merge, replace_partition, replace, append_dedup."""

from meta.operators.warehouse.errors import LoadError
from meta.operators.warehouse.load import LoadResult, load
from meta.operators.warehouse.options import WarehouseLoadOptions

__all__ = ["LoadError", "LoadResult", "WarehouseLoadOptions", "load"]
