"""``meta migrate plan DAGS_FOLDER --to BACKEND``: what each DAG of a folder needs to move (docs/migrate.md)."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
