"""The dags-folder loader: one DAG per spec, broken specs reported with their file, the shipped file is in sync."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from meta_airflow.deadline import PLUGIN_SOURCE
from meta_airflow.loader import LOADER_SOURCE, load_dags

from tests.conformance.cases import CASES

REPO = Path(__file__).resolve().parents[3]


def test_shipped_files_match_what_meta_run_writes() -> None:
    assert (REPO / "dags" / "meta_loader.py").read_text() == LOADER_SOURCE
    assert (REPO / "plugins" / "meta_deadline.py").read_text() == PLUGIN_SOURCE


def test_loads_meta_json_and_meta_yaml(tmp_path: Path) -> None:
    from meta.authoring.load import pipeline_to_yaml

    one, two = (c.pipeline for c in CASES[:2])
    (tmp_path / "one.json").write_text(json.dumps(one.model_dump(mode="json", by_alias=True)))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "two.yaml").write_text(pipeline_to_yaml(two))
    (tmp_path / "three.yml").write_text(
        "pipeline: three\ntasks:\n  a: {shell: 'echo a'}\n  b: {shell: 'echo b', upstream: [a]}\n"
    )
    (tmp_path / "notes.txt").write_text("ignored")
    dags = load_dags(tmp_path)
    assert sorted(dags) == sorted([one.id, two.id, "three"])
    assert set(dags[one.id].task_dict) == set(one.task_ids)
    assert dags["three"].task_dict["b"].upstream_task_ids == {"a"}


def test_broken_spec_is_skipped_with_its_file_or_raised_when_strict(tmp_path: Path, monkeypatch, caplog) -> None:
    good = CASES[0].pipeline.model_dump(mode="json", by_alias=True)
    (tmp_path / "good.json").write_text(json.dumps(good))
    (tmp_path / "bad.yaml").write_text("pipeline: bad\ntasks:\n  a: {shell: 'true', upstream: [nope]}\n")
    monkeypatch.delenv("META_LOADER_STRICT", raising=False)
    assert list(load_dags(tmp_path)) == [good["id"]]
    assert "bad.yaml" in caplog.text and "nope" in caplog.text
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
