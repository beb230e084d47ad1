"""The examples in docs/yaml.md and docs/dsl.md load as documented (with meta's built-in op types)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from meta.authoring.load import load_file, loads

DOCS = Path(__file__).parents[2] / "docs"


def _blocks(name: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", (DOCS / name).read_text(encoding="utf-8"), re.DOTALL)


YAML_EXAMPLES = [b for b in _blocks("yaml.md", "yaml") if b.startswith(("pipeline:", "generate:"))]
DSL_EXAMPLES = [b for b in _blocks("dsl.md", "python") if "with pipeline(" in b]


def test_examples_were_found() -> None:
    assert len(YAML_EXAMPLES) >= 2 and len(DSL_EXAMPLES) >= 2


@pytest.mark.parametrize("text", YAML_EXAMPLES)
def test_yaml_examples_load(text: str) -> None:
    assert loads(text, "docs/yaml.md")


@pytest.mark.parametrize("text", DSL_EXAMPLES)
def test_dsl_examples_load(tmp_path: Path, text: str) -> None:
    spec = tmp_path / "example.py"
    spec.write_text(text, encoding="utf-8")
    assert load_file(spec)
