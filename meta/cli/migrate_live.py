"""``meta migrate shadow|report|cutover|rollback P``: dual-run, compare, switch over and back (docs/migrate.md)."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
