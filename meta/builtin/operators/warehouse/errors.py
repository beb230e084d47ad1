"""Errors of warehouse loads. Each names the target table and says what was received and what was expected."""

from __future__ import annotations

from meta.spec.errors import MetaError


class LoadError(MetaError, ValueError):
    """A load was refused (schema mismatch, bad source) or failed; the target table is unchanged."""
