"""meta's public surface (``meta/__init__.py``) and the layer contracts that keep the packages in order."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import meta

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def test_every_public_name_resolves_and_is_listed() -> None:
    for name in meta._PUBLIC:
        assert getattr(meta, name) is not None, name
    assert sorted(meta.__all__) == sorted(["__version__", *meta._PUBLIC])
    assert set(dir(meta)) >= set(meta._PUBLIC)
    misspelled = "Pipelin"
    with pytest.raises(AttributeError, match="no attribute 'Pipelin'"):
        getattr(meta, misspelled)


def test_public_names_are_the_objects_of_their_home_modules() -> None:
    from meta.execution import secrets
    from meta.semantics.rules import run_state
    from meta.spec.model import Pipeline

    assert meta.Pipeline is Pipeline
    assert meta.run_state is run_state
    assert meta.secrets is secrets


def test_the_type_checking_block_names_exactly_the_public_names() -> None:
    """Editors and mypy see the TYPE_CHECKING imports; the lazy table is what runs. They must agree."""
    tree = ast.parse((ROOT / "meta" / "__init__.py").read_text(encoding="utf-8"))
    block = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    typed: dict[str, str] = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names:
            typed[alias.asname or alias.name] = f"{node.module}:{alias.name}"
    lazy = {
        name: (ref if not ref.endswith(":") else "{}:{}".format(*ref[:-1].rsplit(".", 1)))
        for name, ref in meta._PUBLIC.items()
    }
    assert typed == lazy


def test_import_meta_loads_none_of_the_layers() -> None:
    """The surface is lazy: ``import meta`` (what every adapter and the Airflow loader does first) costs nothing."""
    script = "import json, sys, meta\nprint(json.dumps(sorted(m for m in sys.modules if m.startswith('meta.'))))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(out.stdout) == []


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{cwd}:{cwd / 'adapters/airflow'}:{cwd / 'adapters/prefect'}"},
    )


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packages and the contracts, copied: a contract can be broken there without touching the checkout."""
    dest = tmp_path_factory.mktemp("layers")
    shutil.copy(ROOT / "pyproject.toml", dest)
    ignore = shutil.ignore_patterns("__pycache__", "tests")
    shutil.copytree(ROOT / "meta", dest / "meta", ignore=ignore)
    for adapter in ("airflow", "prefect"):
        package = f"meta_{adapter}"
        shutil.copytree(ROOT / "adapters" / adapter / package, dest / "adapters" / adapter / package, ignore=ignore)
    return dest


def test_the_layer_contracts_hold(tree_copy: Path) -> None:
    result = _lint_imports(tree_copy)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "broken" not in result.stdout.lower().replace("0 broken", "")


def _lint_with(tree: Path, module: str, addition: str) -> subprocess.CompletedProcess[str]:
    """lint-imports on ``tree`` with ``addition`` appended to ``module`` (restored afterwards)."""
    path = tree / module
    original = path.read_text(encoding="utf-8")
    path.write_text(original + addition, encoding="utf-8")
    try:
        return _lint_imports(tree)
    finally:
        path.write_text(original, encoding="utf-8")


def test_an_upward_import_breaks_the_layer_contract(tree_copy: Path) -> None:
    """The check can fail: the model importing the CLI (a lazy import, inside a function) is reported by name."""
    lazy_upward = "\n\ndef _upward() -> None:\n    from meta.cli import cli  # noqa: F401\n"
    result = _lint_with(tree_copy, "meta/spec/dag.py", lazy_upward)
    assert result.returncode != 0
    assert "meta's layers import only downwards BROKEN" in result.stdout
    assert "meta.spec.dag -> meta.cli" in result.stdout


def test_an_adapter_reaching_past_the_surface_breaks_its_contract(tree_copy: Path) -> None:
    internal = "\nfrom meta.spec.model import Pipeline as _P  # noqa: E402,F401\n"
    result = _lint_with(tree_copy, "adapters/prefect/meta_prefect/states.py", internal)
    assert result.returncode != 0
    assert "adapters use only meta's public surface (meta, meta.dsl) BROKEN" in result.stdout
    assert "meta_prefect.states -> meta.spec.model" in result.stdout
