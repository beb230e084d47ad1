"""The model round-trips losslessly: python dump, JSON, and the friendly YAML form."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings

from meta.authoring.load import loads, pipeline_to_yaml
from meta.plugins.ops import OpType
from meta.semantics.retries import delay_before_retry, retry_jitter_key
from meta.spec.model import Pipeline
from tests.strategies import pipelines, registered_ops

MIN = timedelta(minutes=1)
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


def test_settings_precedence_task_then_defaults_then_airflow() -> None:
    [p] = loads(
        "pipeline: p\ndefaults: {retries: 2, timeout: 10m, trigger_rule: all_done}\n"
        "tasks:\n  a: {noop: true, retries: 5}\n  b: {noop: true, retry_delay: 30s}\n"
    )
    a, b = (p.settings_for(t) for t in p.tasks)
    assert (a.retries, a.timeout, a.trigger_rule.value, a.retry_delay) == (5, MIN * 10, "all_done", MIN * 5)
    assert (b.retries, b.retry_delay.total_seconds(), b.pool, b.retry_backoff) == (2, 30, None, None)


def test_backoff_delays() -> None:
    [p] = loads("pipeline: p\ntasks:\n  a: {noop: true, retry_delay: 10s, retry_backoff: 2, max_retry_delay: 35s}\n")
    settings = p.settings_for(p.tasks[0])
    assert [delay_before_retry(settings, n).total_seconds() for n in (1, 2, 3, 4)] == [10, 20, 35, 35]


def test_params_required_and_checks() -> None:
    [p] = loads(
        "pipeline: p\nparams:\n  day: {type: string}\n  n: {type: integer, default: 3, minimum: 1, maximum: 5}\n"
        "tasks: {a: {noop: true}}\n"
    )
    assert p.params["day"].required and not p.params["n"].required
    assert p.default_params() == {"n": 3}
    assert p.params["n"].check_value(9) == "expected at most 5.0, got 9"
    assert p.params["n"].check_value("x") == "expected type integer, got str 'x'"
    assert p.params["n"].check_value(4) is None


def test_durations_serialize_short_in_json() -> None:
    [p] = loads("pipeline: p\nschedule: every 90m\ntasks:\n  a: {noop: true, timeout: PT1H30M}\n")
    data = json.loads(p.model_dump_json())
    assert data["schedule"] == {"kind": "interval", "every": "1h30m"}
    assert data["tasks"][0]["timeout"] == "1h30m"


def test_backoff_jitter_is_airflows_deterministic_hash_within_one_to_two_times() -> None:
    [p] = loads("pipeline: p\ntasks:\n  a: {noop: true, retry_delay: 10s, retry_backoff: 2}\n")
    settings = p.settings_for(p.tasks[0])
    for n in range(1, 6):
        key = retry_jitter_key("p", "a", "2026-01-01 00:00:00+00:00", n)
        lower = 10 * 2 ** (n - 1)
        delay = delay_before_retry(settings, n, key).total_seconds()
        assert lower <= delay < 2 * lower
        assert delay == delay_before_retry(settings, n, key).total_seconds()
    # The key changes the jitter: over several tasks at least two delays differ.
    keys = [retry_jitter_key("p", f"task{i}", "2026-01-01", 3) for i in range(8)]
    assert len({delay_before_retry(settings, 3, k) for k in keys}) > 1
