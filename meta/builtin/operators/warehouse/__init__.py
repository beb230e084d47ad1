"""Idempotent warehouse loads (``op: warehouse_load``): merge, replace_partition, replace, append_dedup."""

from meta.builtin.operators.warehouse.errors import LoadError
from meta.builtin.operators.warehouse.load import LoadResult, load
from meta.builtin.operators.warehouse.options import WarehouseLoadOptions

__all__ = ["LoadError", "LoadResult", "WarehouseLoadOptions", "load"]
