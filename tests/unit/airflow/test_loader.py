"""The dags-folder loader: one DAG per spec, broken specs reported with their file, the shipped file is in sync."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from meta_airflow.deadline import PLUGIN_SOURCE
from meta_airflow.loader import LOADER_SOURCE, load_dags

from tests.conformance.cases import CASES

REPO = Path(__file__).resolve().parents[3]


def test_shipped_files_match_what_meta_run_writes() -> None:
    assert (REPO / "dags" / "meta_loader.py").read_text() == LOADER_SOURCE
    assert (REPO / "plugins" / "meta_deadline.py").read_text() == PLUGIN_SOURCE


def test_loads_json_yaml_and_lists(tmp_path: Path) -> None:
    one, two, three = (c.pipeline.model_dump(mode="json", by_alias=True) for c in CASES[:3])
    (tmp_path / "one.json").write_text(json.dumps(one))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "two.yaml").write_text(yaml.safe_dump(two))
    (tmp_path / "many.yml").write_text(yaml.safe_dump({"pipelines": [three]}))
    (tmp_path / "notes.txt").write_text("ignored")
    dags = load_dags(tmp_path)
    assert sorted(dags) == sorted([one["id"], two["id"], three["id"]])
    assert set(dags[one["id"]].task_dict) == {t["id"] for t in one["tasks"]}


def test_broken_spec_is_skipped_with_its_file_or_raised_when_strict(tmp_path: Path, monkeypatch, caplog) -> None:
    good = CASES[0].pipeline.model_dump(mode="json", by_alias=True)
    (tmp_path / "good.json").write_text(json.dumps(good))
    (tmp_path / "bad.yaml").write_text("id: bad\ntasks:\n  - id: a\n    action: {kind: shell}\n")
    monkeypatch.delenv("META_LOADER_STRICT", raising=False)
    assert list(load_dags(tmp_path)) == [good["id"]]
    assert "bad.yaml" in caplog.text and "command" in caplog.text
    monkeypatch.setenv("META_LOADER_STRICT", "1")
    with pytest.raises(ValueError, match=r"bad\.yaml"):
        load_dags(tmp_path)


def test_duplicate_pipeline_ids_are_refused(tmp_path: Path, monkeypatch) -> None:
    spec = json.dumps(CASES[0].pipeline.model_dump(mode="json", by_alias=True))
    (tmp_path / "a.json").write_text(spec)
    (tmp_path / "b.json").write_text(spec)
    monkeypatch.setenv("META_LOADER_STRICT", "1")
    with pytest.raises(ValueError, match="defined twice"):
        load_dags(tmp_path)


def test_missing_folder_loads_nothing(tmp_path: Path) -> None:
    assert load_dags(tmp_path / "nope") == {}
