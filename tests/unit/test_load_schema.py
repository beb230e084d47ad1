"""The JSON Schema of the authoring form accepts the files the loader accepts and names the same keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from jsonschema import Draft202012Validator

from meta.authoring import form
from meta.authoring.load import json_schema, pipeline_to_yaml
from meta.authoring.yamlpos import Builder, compose_all
from tests.strategies import pipelines

SPECS = Path(__file__).parents[1] / "fixtures" / "specs"


def _values(text: str) -> list[object]:
    docs, problems = compose_all(text, "x.yaml")
    assert not problems
    return [Builder("x.yaml").value(d.node) for d in docs]


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_schema_keys_match_the_loader() -> None:
    defs = json_schema()["$defs"]
    assert set(defs["pipeline"]["properties"]) == set(form.PIPELINE_KEYS)
    assert set(defs["task"]["properties"]) == set(form.TASK_KEYS)
    assert set(defs["param"]["anyOf"][0]["properties"]) == set(form.PARAM_KEYS)


@pytest.mark.parametrize(
    "name", ["all_forms.yaml", "multi.yaml", "anchors.yaml", "generate_list.yaml", "generate_csv.yaml"]
)
def test_fixture_files_are_valid(validator: Draft202012Validator, name: str) -> None:
    for value in _values((SPECS / name).read_text()):
        assert list(validator.iter_errors(value)) == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pipelines())
def test_exported_pipelines_are_valid(p) -> None:
    validator = Draft202012Validator(json_schema())
    [value] = _values(pipeline_to_yaml(p))
    assert list(validator.iter_errors(value)) == []


@pytest.mark.parametrize(
    "text",
    [
        "pipeline: p\ntasks: {a: {noop: true}}\nschedul: x\n",  # unknown key
        "pipeline: p\ntasks: {a: {retries: 1}}\n",  # no action
        "pipeline: p\ntasks: {a: {shell: x, python: 'a:b'}}\n",  # two actions
        "pipeline: p\ntasks: {a: {noop: true, trigger_rule: nope}}\n",
        "pipeline: 'bad id'\ntasks: {a: {noop: true}}\n",
        "pipeline: p\ntasks: {}\n",
        "pipeline: p\n",
        "pipeline: p\ntasks: {a: {python: 'x', with: {}}}\n",  # with only for op
    ],
)
def test_schema_refuses_what_the_loader_refuses(validator: Draft202012Validator, text: str) -> None:
    [value] = _values(text)
    assert list(validator.iter_errors(value)) != []
