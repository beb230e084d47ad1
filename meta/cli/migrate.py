"""``meta migrate``: move pipelines between orchestrators safely (docs/migrate.md).

``plan`` (meta/cli/migrate_plan.py) says, per DAG of a folder, what moves as is, what moves with changes and what
blocks the move; ``shadow``, ``cutover`` and ``rollback`` (meta/cli/migrate_live.py) and ``report``
(meta/cli/migrate_report.py) run a pipeline on
its target beside the live one, compare the two, switch over and back, driven by the control plane.
"""

from __future__ import annotations

import click


@click.group("migrate")
def migrate() -> None:
    """Move pipelines between orchestrators: plan, shadow, report, cutover, rollback."""


def _register() -> None:
    from meta.cli import migrate_live, migrate_plan, migrate_report

    for command in (*migrate_plan.COMMANDS, *migrate_live.COMMANDS, *migrate_report.COMMANDS):
        migrate.add_command(command)


_register()
