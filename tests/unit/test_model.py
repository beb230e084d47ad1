"""The model round-trips losslessly: python dump, JSON, and the friendly YAML form."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings

from meta.load import loads, pipeline_to_yaml
from meta.model import Pipeline
from meta.ops import OpType
from tests.strategies import pipelines, registered_ops

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(pipelines())
def test_python_round_trip(p: Pipeline) -> None:
    assert Pipeline.model_validate(p.model_dump()) == p
    assert Pipeline.model_validate(p.model_dump(by_alias=True)) == p


@SETTINGS
@given(pipelines())
def test_json_round_trip(p: Pipeline) -> None:
    text = p.model_dump_json(by_alias=True)
    assert Pipeline.model_validate_json(text) == p
    assert Pipeline.model_validate(json.loads(text)) == p


@SETTINGS
@given(pipelines())
def test_yaml_export_round_trip(p: Pipeline) -> None:
    text = pipeline_to_yaml(p)
    assert loads(text, "exported.yaml") == [p], text
    assert pipeline_to_yaml(p) == text  # deterministic


@pytest.fixture(scope="module")
def hyp_op():
    with registered_ops(OpType(name="hyp_op", run=lambda ctx, **kw: None)):
        yield


@SETTINGS
@given(p=pipelines(include_ops=True))
def test_yaml_export_round_trip_with_ops(hyp_op, p: Pipeline) -> None:
    assert loads(pipeline_to_yaml(p), "exported.yaml") == [p]


def test_export_is_the_friendly_form() -> None:
    [p] = loads(
        """
pipeline: demo
schedule: every 15m
params: {country: CH, limit: {type: integer, default: 5, minimum: 1}}
sla: {finish_by: "10:30"}
tasks:
  extract: {shell: "echo {{ ds }}"}
  score: {python: "pkg.mod:fn", kwargs: {x: 1}, upstream: extract, retry_delay: 90s}
"""
    )
    assert pipeline_to_yaml(p) == (
        "pipeline: demo\n"
        "schedule: every 15m\n"
        "params:\n"
        "  country: CH\n"
        "  limit:\n"
        "    type: integer\n"
        "    minimum: 1.0\n"
        "    default: 5\n"
        "sla:\n"
        "  finish_by: '10:30'\n"
        "tasks:\n"
        "  extract:\n"
        "    shell: echo {{ ds }}\n"
        "  score:\n"
        "    python: pkg.mod:fn\n"
        "    kwargs:\n"
        "      x: 1\n"
        "    upstream: [extract]\n"
        "    retry_delay: 1m30s\n"
    )
