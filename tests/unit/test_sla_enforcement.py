"""Who enforces what: every SLA feature is native to the backend or watched by a workspace's control plane, else the
target refuses it naming the feature (never a silent drop). Real targets through the plugin manager."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from meta.plugins.manager import get_target
from meta.plugins.supervision import Supervision, sla_features
from meta.semantics.request import RunRequest
from meta.spec.model import Pipeline
from meta.spec.workspace import Workspace

EVERY_FEATURE: dict[str, Any] = {
    "id": "sales_daily",
    "schedule": {"kind": "cron", "cron": "0 1 * * *"},
    "timezone": "Europe/Zurich",
    "sla": {
        "finish_by": "09:00",
        "start_by": "02:00",
        "max_duration": "2h",
        "fresh_within": "26h",
        "deadlines": [{"reference": "average_runtime", "interval": "10m", "max_runs": 5, "min_runs": 2}],
    },
    "alerts": {"on_sla_miss": ["slack:sla"], "sla_escalation": {"after": "30m", "channels": ["email:oncall"]}},
    "tasks": [{"id": "load", "action": {"kind": "noop"}, "max_duration": "5m"}],
}
FEATURES = [
    "sla.finish_by",
    "sla.start_by",
    "sla.max_duration",
    "sla.fresh_within",
    "sla.deadline:average_runtime+10m",
    "tasks.load.max_duration",
    "alerts.on_sla_miss",
    "alerts.sla_escalation",
]


def pipeline(**overrides: Any) -> Pipeline:
    return Pipeline.model_validate({**EVERY_FEATURE, **overrides})


def supervision(*placements: tuple[str, list[str]]) -> Supervision:
    kinds = {"lake": "airflow", "flows": "prefect", "laptop": "local"}
    workspace = Workspace.model_validate(
        {
            "name": "acme",
            "backends": {
                "lake": {"kind": "airflow", "url": "http://127.0.0.1:8080"},
                "flows": {"kind": "prefect", "url": "http://127.0.0.1:4200/api"},
                "laptop": {"kind": "local"},
            },
            "placements": [{"backend": b, "pipelines": p} for b, p in placements if b in kinds],
        }
    )
    return Supervision.of(workspace, "/srv/acme/meta.yaml")


def refused(errors: list[Any]) -> dict[str, str]:
    return {e.feature: str(e) for e in errors if "cannot enforce" in str(e)}


def test_every_sla_feature_is_listed() -> None:
    assert [feature for feature, _ in sla_features(pipeline())] == FEATURES
    assert dict(sla_features(pipeline()))["tasks.load.max_duration"] == "load"


def test_prefect_refuses_each_sla_feature_without_a_workspace_naming_it() -> None:
    errors = get_target("prefect").check(pipeline())
    messages = refused(errors)
    assert sorted(messages) == sorted(FEATURES)
    assert len(errors) == len(FEATURES)  # nothing else about this pipeline is refused
    for feature, message in messages.items():
        assert (
            f"prefect cannot enforce {feature} itself; place the pipeline on a prefect backend in a workspace "
            "(meta.yaml) so the control plane (`meta serve`) watches it"
        ) in message
    task_error = next(e for e in errors if e.feature == "tasks.load.max_duration")
    assert task_error.task == "load"


def test_prefect_accepts_them_when_the_workspace_places_the_pipeline_on_prefect() -> None:
    target = get_target("prefect")
    assert target.supervised(supervision(("flows", ["sales_*"]))).check(pipeline()) == []
    assert target.supervision is None  # supervised() returned a copy; the registered target is unchanged
    assert target.check(pipeline()) != []


def test_a_workspace_placing_it_on_another_kind_still_refuses_and_says_so() -> None:
    elsewhere = get_target("prefect").supervised(supervision(("lake", ["sales_daily"]), ("laptop", ["*"])))
    messages = refused(elsewhere.check(pipeline()))
    assert sorted(messages) == sorted(FEATURES)
    assert (
        "workspace 'acme' (/srv/acme/meta.yaml) places 'sales_daily' on no prefect backend" in messages["sla.start_by"]
    )
    other_pipeline = get_target("prefect").supervised(supervision(("flows", ["finance_*"])))
    assert sorted(refused(other_pipeline.check(pipeline()))) == sorted(FEATURES)


def test_airflow_enforces_its_deadline_alert_kinds_itself_and_leaves_the_rest_to_the_control_plane() -> None:
    airflow = get_target("airflow")
    assert airflow.native_sla(pipeline()) == {"max_duration", "finish_by", "deadline:average_runtime+10m"}
    alone = refused(airflow.check(pipeline()))
    assert sorted(alone) == ["alerts.sla_escalation", "sla.fresh_within", "sla.start_by", "tasks.load.max_duration"]
    assert (
        "airflow cannot enforce sla.start_by itself; place the pipeline on an airflow backend" in alone["sla.start_by"]
    )
    assert airflow.supervised(supervision(("lake", ["sales_daily"]))).check(pipeline()) == []
    # Only native kinds: no workspace needed, and on_sla_miss is routed by the Deadline Alert callbacks.
    native_only = pipeline(
        sla={"max_duration": "1h", "deadlines": [{"reference": "fixed", "at": "2026-12-24T18:00:00+01:00"}]},
        alerts={"on_sla_miss": ["slack:sla"]},
        tasks=[{"id": "load", "action": {"kind": "noop"}}],
    )
    assert airflow.check(native_only) == []


def test_airflow_finish_by_off_a_fixed_daily_time_needs_the_control_plane() -> None:
    every_5_min = pipeline(
        schedule={"kind": "cron", "cron": "*/5 * * * *"},
        sla={"finish_by": "06:00"},
        alerts={},
        tasks=[{"id": "load", "action": {"kind": "noop"}}],
    )
    airflow = get_target("airflow")
    assert airflow.native_sla(every_5_min) == set()
    assert list(refused(airflow.check(every_5_min))) == ["sla.finish_by"]
    assert airflow.supervised(supervision(("lake", ["*"]))).check(every_5_min) == []


def test_no_sla_no_workspace_needed() -> None:
    plain = pipeline(sla=None, alerts={}, tasks=[{"id": "load", "action": {"kind": "noop"}}])
    assert list(sla_features(plain)) == []
    assert get_target("prefect").check(plain) == [] and get_target("airflow").check(plain) == []


def test_local_runs_on_demand_so_it_runs_unwatched_slas_and_names_them() -> None:
    local = get_target("local")
    assert local.check(pipeline()) == []
    assert local.native_sla(pipeline()) == {"max_duration"}
    # on_sla_miss hears of the native max_duration misses: not listed
    assert local.unwatched_sla(pipeline()) == [
        f for f in FEATURES if f not in ("sla.max_duration", "alerts.on_sla_miss")
    ]
    assert local.supervised(supervision(("laptop", ["*"]))).unwatched_sla(pipeline()) == []


def test_local_run_report_notes_what_nobody_watches(meta_home: Path) -> None:
    p = pipeline(
        schedule=None, sla={"fresh_within": "1h"}, alerts={}, tasks=[{"id": "load", "action": {"kind": "noop"}}]
    )
    report = get_target("local").run_report(p, RunRequest.build(p, run_id="r1"))
    assert str(report.result.state) == "success"
    (note,) = [n for n in report.notes if n.startswith("not watched:")]
    assert note.startswith("not watched: sla.fresh_within (")
    watched = get_target("local").supervised(supervision(("laptop", ["sales_daily"])))
    assert not [n for n in watched.run_report(p, RunRequest.build(p, run_id="r2")).notes if "not watched" in n]


@pytest.fixture
def webhook(meta_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    from tests.integration.operators.conftest import WebhookServer

    server = WebhookServer()
    try:
        url, hook = server.hook()
        monkeypatch.setenv("META_CHANNELS_FILE", str(meta_home / "channels.yaml"))
        monkeypatch.setenv("META_SECRET_SLA_HOOK", url)
        monkeypatch.setenv("META_CHANNEL_SLACK_SLA_URL", "${secret:sla_hook}")
        yield hook.received
    finally:
        server.server.shutdown()
        server.server.server_close()


def test_the_local_max_duration_miss_and_the_control_planes_dedupe_against_each_other(
    webhook: list[dict[str, Any]],
) -> None:
    from meta.builtin.operators.alerts import AlertEvent, send_alert

    slow = Pipeline.model_validate(
        {
            "id": "slow",
            "sla": {"max_duration": "1s"},
            "alerts": {"on_sla_miss": ["slack:sla"]},
            "tasks": [{"id": "work", "action": {"kind": "shell", "command": "sleep 1.2"}}],
        }
    )
    get_target("local").run(slow, RunRequest.build(slow, run_id="late"))
    assert [m["text"] for m in webhook if "missed its SLA" in m["text"]], webhook
    # The control plane's miss of the same run and kind, with its key f"sla_miss:{kind}", is a duplicate.
    plane = AlertEvent(pipeline_id="slow", run_id="late", event="sla_miss", dedup_key="sla_miss:max_duration")
    assert [o.status for o in send_alert(["slack:sla"], plane)] == ["duplicate"]
    assert len(webhook) == 1
