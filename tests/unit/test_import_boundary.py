"""meta/ is the neutral core: importing any of it must not pull in Airflow or Prefect."""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import meta

META_DIR = Path(meta.__file__).parent
FORBIDDEN = ("airflow", "prefect")


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages([str(META_DIR)], prefix="meta."))


def _orchestrator_modules_after(script: str) -> list[str]:
    """Run ``script`` in a fresh interpreter; return the airflow*/prefect* modules it left in sys.modules."""
    report = (
        "\nimport json, sys\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0].startswith(FORBIDDEN))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", f"FORBIDDEN = {FORBIDDEN!r}\n{script}{report}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_every_meta_module_loads_no_orchestrator() -> None:
    modules = _modules()
    assert "meta.authoring.load" in modules and "meta.dsl" in modules
    script = f"import importlib\nfor name in {modules!r}:\n    importlib.import_module(name)\n"
    assert _orchestrator_modules_after(script) == []


def test_loading_and_exporting_pipelines_loads_no_orchestrator() -> None:
    specs = Path(__file__).parents[1] / "fixtures" / "specs"
    script = (
        "from meta.authoring.load import load_file, load_paths, pipeline_to_yaml, json_schema\n"
        f"for p in load_file({str(specs / 'all_forms.yaml')!r}): pipeline_to_yaml(p)\n"
        f"load_file({str(specs / 'generate_list.yaml')!r}); json_schema()\n"
    )
    assert _orchestrator_modules_after(script) == []


def test_meta_sources_never_import_an_orchestrator() -> None:
    offenders = []
    for path in sorted(META_DIR.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif (
                isinstance(node, ast.Call)
                and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                names = [node.args[0].value]
            for name in names:
                if name.split(".")[0] in FORBIDDEN:
                    offenders.append(f"{path.relative_to(META_DIR.parent)}:{node.lineno}: imports {name}")
    assert offenders == []
