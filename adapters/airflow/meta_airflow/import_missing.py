"""A DAG file that does not import because a module is missing (a provider not installed where ``meta import``
runs): say which module, and the pip package when it can be derived, instead of reporting a broken file."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

# Provider namespaces with a second level in the package name (airflow.providers.apache.spark ->
# apache-airflow-providers-apache-spark); every other provider is one level (airflow.providers.amazon.aws ->
# apache-airflow-providers-amazon).
TWO_LEVEL_PROVIDERS = frozenset({"apache", "atlassian", "cncf", "common", "dbt", "microsoft"})

# Airflow 2 modules Airflow 3 no longer has -> where their operators live now (ruff's AIR3 rules rewrite the imports:
# ``ruff check --select AIR3 --fix --unsafe-fixes --preview``).
AIRFLOW2_MOVES = {
    "airflow.operators.dummy_operator": "airflow.providers.standard.operators.empty (EmptyOperator)",
    "airflow.operators.dummy": "airflow.providers.standard.operators.empty (EmptyOperator)",
    "airflow.operators.bash_operator": "airflow.providers.standard.operators.bash",
    "airflow.operators.python_operator": "airflow.providers.standard.operators.python",
    "airflow.operators.email_operator": "airflow.providers.smtp.operators.smtp",
    "airflow.operators.email": "airflow.providers.smtp.operators.smtp",
    "airflow.operators.postgres_operator": "airflow.providers.common.sql.operators.sql (SQLExecuteQueryOperator)",
    "airflow.operators.mysql_operator": "airflow.providers.common.sql.operators.sql (SQLExecuteQueryOperator)",
    "airflow.operators.sqlite_operator": "airflow.providers.common.sql.operators.sql (SQLExecuteQueryOperator)",
    "airflow.operators.dagrun_operator": "airflow.providers.standard.operators.trigger_dagrun",
    "airflow.operators.trigger_dagrun": "airflow.providers.standard.operators.trigger_dagrun",
    "airflow.sensors.external_task_sensor": "airflow.providers.standard.sensors.external_task",
    "airflow.sensors.external_task": "airflow.providers.standard.sensors.external_task",
    "airflow.operators.slack_operator": "airflow.providers.slack.operators.slack",
    "airflow.operators.subdag": "TaskGroups (SubDAGs were removed in Airflow 3)",
    "airflow.operators.subdag_operator": "TaskGroups (SubDAGs were removed in Airflow 3)",
}

# Provider modules of SQL operators that recent provider releases removed in favour of common.sql's
# SQLExecuteQueryOperator (e.g. apache-airflow-providers-postgres 6.0 removed PostgresOperator): installing the
# provider brings the connection type, not the operator.
REMOVED_SQL_OPERATORS = {
    "airflow.providers.postgres.operators.postgres": "PostgresOperator",
    "airflow.providers.mysql.operators.mysql": "MySqlOperator",
    "airflow.providers.sqlite.operators.sqlite": "SqliteOperator",
    "airflow.providers.microsoft.mssql.operators.mssql": "MsSqlOperator",
    "airflow.providers.jdbc.operators.jdbc": "JdbcOperator",
}

_NO_MODULE = re.compile(r"ModuleNotFoundError: No module named '([^']+)'")


@dataclass(frozen=True)
class MissingModule:
    module: str  # the module the DAG file imports (the full dotted path when the import statement is found)
    missing: str  # the part Python reported missing
    install: str | None  # "pip install ..." when derivable
    local: bool = False  # a module of the project itself (its package is in the dags folder)

    @property
    def reason(self) -> str:
        if self.local:
            return (
                f"needs the module {self.module} of this project, which did not import (see the refusal of its own "
                "file) or is not on sys.path (run meta import from the project folder)"
            )
        how = f" ({self.install})" if self.install else ""
        removed = REMOVED_SQL_OPERATORS.get(self.module)
        if removed:
            return (
                f"needs the missing module {self.module}{how}; its {removed} is gone from recent releases of that "
                "provider: use SQLExecuteQueryOperator(conn_id=..., sql=...) from airflow.providers.common.sql "
                "(meta imports it as a sql task)"
            )
        moved = next((AIRFLOW2_MOVES[m] for m in _prefixes(self.module) if m in AIRFLOW2_MOVES), None)
        if moved:
            how = f" (an Airflow 2 module; in Airflow 3: {moved})"
        elif self.install is None and self.module.startswith("airflow.") and not self.module.startswith("airflow.prov"):
            how = " (an Airflow 2 module that Airflow 3 no longer has: import it from its provider package)"
        elif self.install is None:
            how = " (install the package that provides it)"
        return f"needs the missing module {self.module}{how}"


def _prefixes(module: str) -> list[str]:
    """``a.b.c`` -> ``a.b.c``, ``a.b``, ``a`` (the longest known one wins)."""
    parts = module.split(".")
    return [".".join(parts[:n]) for n in range(len(parts), 0, -1)]


def missing_module(text: str, file: Path, line: int | None, root: Path | None = None) -> MissingModule | None:
    """The missing module of an import error's traceback ``text``, or None when the error is something else.
    ``root``: the dags folder, where the project's own packages live."""
    found = _NO_MODULE.findall(text)
    if not found:
        return None
    missing = found[-1]
    module = _imported_at(file, line, missing) or missing
    top = module.split(".")[0]
    local = root is not None and ((root / top).is_dir() or (root / f"{top}.py").is_file())
    return MissingModule(module, missing, None if local else provider_install(module), local)


def provider_install(module: str) -> str | None:
    """``pip install apache-airflow-providers-<name>`` for a module of a provider package, else None."""
    parts = module.split(".")
    if parts[:2] != ["airflow", "providers"] or len(parts) < 3:
        return None
    name = parts[2:4] if parts[2] in TWO_LEVEL_PROVIDERS and len(parts) > 3 else parts[2:3]
    return "pip install apache-airflow-providers-" + "-".join(name).replace("_", "-")


def _imported_at(file: Path, line: int | None, missing: str) -> str | None:
    """The full module named by the import statement at ``line`` (Python reports only the first missing part)."""
    try:
        tree = ast.parse(file.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None
    for node in ast.walk(tree):
        if line is not None and getattr(node, "lineno", None) != line:
            continue
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            if name == missing or name.startswith(missing + "."):
                return name
    return None
