"""Every ``META_*`` setting meta reads from the environment, in one place.

Read at call time, never cached at import: tests and long-lived processes change the environment.
"""

from __future__ import annotations

import os
from pathlib import Path

STATE_DIR_ENV = "META_HOME"


def state_dir() -> Path:
    """meta's state directory: ``$META_HOME`` (``~`` expanded), else ``./.meta`` relative to the working dir."""
    return Path(os.environ.get(STATE_DIR_ENV) or ".meta").expanduser()
