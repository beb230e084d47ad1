"""POST /pipelines/{id}/trigger: exactly once per key (checked in TriggerRow and in the triggerer's calls), the
backend chosen from placements, clear refusals (no triggerer 409, not placed 404, ambiguous 422), team scoping."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from meta.service.api.routers.trigger import derive_key
from meta.service.store.orm import TriggerRow
from tests.unit.service.api_support import (
    AIRFLOW_PASSWORD,
    UNREACHABLE,
    Api,
    api_fixture,  # noqa: F401 - provides the api fixture
)

PATH = "/api/v1/pipelines/{}/trigger"


def triggers(api: Api) -> list[TriggerRow]:
    with api.store.reading() as session:
        return list(session.scalars(select(TriggerRow).order_by(TriggerRow.requested_at)))


def test_an_identical_request_starts_one_run(api: Api) -> None:
    body = {"backend": "af", "params": {"day": "2026-11-01"}, "request_id": "cli-1"}
    first = api.post(PATH.format("alpha_etl"), "alpha_operator", json=body)
    assert first.status_code == 201, first.text
    started = first.json()
    assert started["created"] is True and started["requested_by"] == "alpha_operator"
    assert started["key"] == derive_key("alpha_etl", "af", {"day": "2026-11-01"}, "cli-1")
    assert started["key"].startswith("meta-") and len(started["key"]) == 45
    again = api.post(PATH.format("alpha_etl"), "alpha_operator", json=body)
    assert again.status_code == 200
    assert again.json() | {"created": True, "url": started["url"]} == started
    assert again.json()["created"] is False
    assert len(api.triggerer.calls) == 1  # the known key never reached the backend again
    [row] = triggers(api)
    assert (row.key, row.backend, row.pipeline_id, row.run_id, row.created) == (
        started["key"],
        "af",
        "alpha_etl",
        started["run_id"],
        True,
    )
    assert row.params == {"day": "2026-11-01"}


def test_a_new_request_id_or_params_start_a_new_run(api: Api) -> None:
    keys = set()
    for body in (
        {"backend": "af", "request_id": "a"},
        {"backend": "af", "request_id": "b"},
        {"backend": "af", "request_id": "b", "params": {"x": 1}},
        {"backend": "pf", "request_id": "b", "params": {"x": 1}},
    ):
        response = api.post(PATH.format("alpha_etl"), "alpha_operator", json=body)
        assert response.status_code == 201 and response.json()["created"] is True
        keys.add(response.json()["key"])
    assert len(keys) == 4 == len(triggers(api))


def test_the_backend_key_is_enough_when_the_store_lost_the_row(api: Api) -> None:
    """A crash after the backend started the run but before the row was written: the retry asks the backend with
    the same key, which starts nothing new, and the row is written then."""
    key = derive_key("alpha_etl", "af", {}, None)
    api.triggerer.started[key] = "run-from-before-the-crash"
    response = api.post(PATH.format("alpha_etl"), "alpha_operator", json={"backend": "af"})
    assert response.status_code == 200
    assert (response.json()["created"], response.json()["run_id"]) == (False, "run-from-before-the-crash")
    [row] = triggers(api)
    assert (row.key, row.created, row.run_id) == (key, False, "run-from-before-the-crash")


def test_a_client_key_is_used_as_is_and_guarded(api: Api) -> None:
    response = api.post(
        PATH.format("alpha_etl"), "alpha_operator", json={"backend": "af", "key": "nightly__2026-11-01"}
    )
    assert response.status_code == 201 and response.json()["run_id"] == "nightly__2026-11-01"
    assert api.triggerer.calls == [("alpha_etl", "nightly__2026-11-01", {})]
    other_params = api.post(
        PATH.format("alpha_etl"),
        "alpha_operator",
        json={"backend": "af", "key": "nightly__2026-11-01", "params": {"a": 1}},
    )
    assert other_params.status_code == 409 and "already started another request" in other_params.json()["detail"]
    other_backend = api.post(
        PATH.format("alpha_etl"), "alpha_operator", json={"backend": "pf", "key": "nightly__2026-11-01"}
    )
    assert other_backend.status_code == 409
    bad = api.post(PATH.format("alpha_etl"), "alpha_operator", json={"backend": "af", "key": "has space"})
    assert bad.status_code == 422
    assert len(api.triggerer.calls) == 1


def test_the_backend_comes_from_the_placements(api: Api) -> None:
    # beta_load is placed on af only: no backend needed.
    response = api.post(PATH.format("beta_load"), "beta_operator", json={})
    assert response.status_code == 201 and response.json()["backend"] == "af"
    # A placed pipeline never seen yet can be triggered too.
    assert api.post(PATH.format("beta_new"), "beta_operator", json={}).status_code == 201
    # alpha_etl is on af and pf: the request must say which.
    ambiguous = api.post(PATH.format("alpha_etl"), "alpha_operator", json={})
    assert ambiguous.status_code == 422 and "af, pf" in ambiguous.json()["detail"]


def test_refusals_say_why(api: Api) -> None:
    not_there = api.post(PATH.format("alpha_etl"), "alpha_operator", json={"backend": "loc"})
    assert not_there.status_code == 404 and "placed on or seen on af, pf only" in not_there.json()["detail"]
    nowhere = api.post(PATH.format("nowhere"), "admin", json={})
    assert nowhere.status_code == 404 and "placed on no backend" in nowhere.json()["detail"]
    local = api.post(PATH.format("alpha_local"), "alpha_operator", json={"backend": "loc"})
    assert local.status_code == 409
    assert (
        local.json()["detail"]
        == "backend 'loc' (kind local) cannot start runs from the control plane: it has no triggerer"
    )
    extra = api.post(PATH.format("beta_load"), "beta_operator", json={"bogus": 1})
    assert extra.status_code == 422
    nul = api.post(PATH.format("beta_load"), "beta_operator", json={"params": {"a": "x\x00y"}})
    assert nul.status_code == 422 and "NUL" in nul.json()["detail"]
    assert api.triggerer.calls == [] and triggers(api) == []


@pytest.mark.parametrize("who", ["beta_operator", "alpha_operator"])
def test_another_teams_pipeline_cannot_be_triggered_and_is_not_named(api: Api, who: str) -> None:
    target = "alpha_etl" if who == "beta_operator" else "beta_load"
    response = api.post(PATH.format(target), who, json={"backend": "af"})
    assert response.status_code == 404
    assert response.json()["detail"] == f"no pipeline {target!r} (or it belongs to a team this token cannot see)"
    # The external DAG of no team: only an admin of every team may trigger it.
    assert api.post(PATH.format("ext_dag"), who, json={}).status_code == 404
    assert api.post(PATH.format("ext_dag"), "admin", json={}).status_code == 201
    assert [call[0] for call in api.triggerer.calls] == ["ext_dag"]


def test_backend_failures_answer_5xx_without_secrets(api: Api) -> None:
    api.triggerer.fail = UNREACHABLE
    response = api.post(PATH.format("beta_load"), "beta_operator", json={})
    assert response.status_code == 503 and "did not answer" in response.json()["detail"]
    assert AIRFLOW_PASSWORD not in response.text
    api.triggerer.fail = RuntimeError(f"409 Conflict password={AIRFLOW_PASSWORD}")
    response = api.post(PATH.format("beta_load"), "beta_operator", json={})
    assert response.status_code == 502 and "refused the run: RuntimeError" in response.json()["detail"]
    assert AIRFLOW_PASSWORD not in response.text
    assert triggers(api) == []  # nothing recorded: a retry tries again
    api.triggerer.fail = None
    assert api.post(PATH.format("beta_load"), "beta_operator", json={}).status_code == 201
