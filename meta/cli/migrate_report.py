"""``meta migrate report P``: live and shadow runs compared, run by run (docs/migrate.md)."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
