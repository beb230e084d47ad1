from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from meta.execution import secrets


@pytest.fixture
def clean_secrets(meta_home: Path) -> Iterator[None]:
    """A fresh state directory and no remembered secret values before and after the test."""
    secrets.forget_sensitive()
    yield
    secrets.forget_sensitive()
