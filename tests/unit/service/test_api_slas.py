"""GET /slas and /slas/history: team-scoped like every route, states as the engine recorded them, paged history;
and `meta sla` printing that board from a real control plane judged in-process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from meta.semantics.sla import SlaSpec, SlotStatus
from meta.service.sla import records
from meta.service.sla.subjects import WatchedSubject
from tests.unit.service.api_support import (
    Api,
    api_fixture,  # noqa: F401 - provides the api fixture
)

NOW = datetime.now(UTC)


def record(api: Api, pipeline: str, team: str | None, *statuses: SlotStatus, backend: str = "af") -> None:
    subject = WatchedSubject(backend, "airflow", pipeline, team, SlaSpec())
    with api.store.transaction() as session:
        written = records.write_slots(session, [(subject, s) for s in statuses], NOW)
        for status, (newly_missed, newly_resolved) in zip(statuses, written, strict=True):
            records.owe_notices(session, subject, status, newly_missed, newly_resolved, NOW)


def seed(api: Api) -> None:
    record(
        api,
        "alpha_etl",
        "alpha",
        SlotStatus("max_duration", "r1", "missed", NOW - timedelta(minutes=5), "still not ended", "r1"),
        SlotStatus("finish_by", "2026-12-01T08:00:00+00:00", "met", NOW - timedelta(hours=3), "succeeded", "r0"),
    )
    record(
        api,
        "alpha_etl",
        "alpha",
        SlotStatus("max_duration", "p1", "at_risk", NOW + timedelta(minutes=5), "running 9m, longer than 90%", "p1"),
        backend="pf",
    )
    record(api, "beta_load", "beta", SlotStatus("start_by", "t", "met", NOW - timedelta(hours=1), "started", "b1"))


def cells(body: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(c["pipeline"], c["backend"]): c["state"] for c in body["cells"]}


def test_the_board_shows_each_team_its_own_cells_with_counts(api: Api) -> None:
    seed(api)
    admin = api.get("/api/v1/slas", "admin").json()
    assert cells(admin) == {("alpha_etl", "af"): "missed", ("alpha_etl", "pf"): "at_risk", ("beta_load", "af"): "met"}
    assert admin["counts"] == {"missed": 1, "at_risk": 1, "met": 1}
    alpha = api.get("/api/v1/slas", "alpha_viewer").json()
    assert set(cells(alpha)) == {("alpha_etl", "af"), ("alpha_etl", "pf")}
    # another team's board answers as if it had none
    assert api.get("/api/v1/slas", "alpha_viewer", params={"team": "beta"}).json()["cells"] == []
    assert cells(api.get("/api/v1/slas", "beta_viewer").json()) == {("beta_load", "af"): "met"}
    af = next(c for c in admin["cells"] if c["backend"] == "af" and c["pipeline"] == "alpha_etl")
    assert af["missed_in_window"] == 1 and [s["kind"] for s in af["attention"]] == ["max_duration"]
    assert af["latest"]["kind"] == "max_duration" and af["latest"]["missed_at"] is not None
    assert [s["slot"] for s in af["missed"]] == ["r1"]
    only_risk = api.get("/api/v1/slas", "admin", params={"state": "at_risk"}).json()
    assert cells(only_risk) == {("alpha_etl", "pf"): "at_risk"}
    assert api.get("/api/v1/slas", "admin", params={"state": "late"}).status_code == 422


def test_history_pages_newest_first_and_is_team_scoped(api: Api) -> None:
    seed(api)
    page = api.get("/api/v1/slas/history", "admin", params={"limit": 2}).json()
    assert len(page["slots"]) == 2 and page["next_cursor"]
    rest = api.get("/api/v1/slas/history", "admin", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    ids = [s["id"] for s in page["slots"] + rest["slots"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == 4 and rest["next_cursor"] is None
    beta = api.get("/api/v1/slas/history", "beta_viewer").json()["slots"]
    assert [(s["pipeline"], s["kind"]) for s in beta] == [("beta_load", "start_by")]
    assert api.get("/api/v1/slas/history", "admin", params={"cursor": "nonsense!"}).status_code == 400
    missed = api.get("/api/v1/slas/history", "alpha_viewer", params={"state": "missed"}).json()["slots"]
    assert [(s["backend"], s["slot"]) for s in missed] == [("af", "r1")]


def test_a_recorded_miss_stays_missed_when_judged_again(api: Api) -> None:
    seed(api)
    # a later judgement of the same slot (say, after the run ended late) cannot erase the miss
    record(api, "alpha_etl", "alpha", SlotStatus("max_duration", "r1", "met", NOW, "ended", "r1"))
    (slot,) = api.get("/api/v1/slas/history", "admin", params={"kind": "max_duration", "backend": "af"}).json()["slots"]
    assert slot["state"] == "missed"
    # once the late run has recovered it needs no attention, but it is still among the window's misses
    record(
        api,
        "alpha_etl",
        "alpha",
        SlotStatus("max_duration", "r1", "missed", NOW - timedelta(minutes=5), "ended late", "r1", None, NOW),
    )
    (cell,) = api.get("/api/v1/slas", "admin", params={"backend": "af", "pipeline": "alpha_etl"}).json()["cells"]
    assert cell["attention"] == [] and [s["resolved_at"] is not None for s in cell["missed"]] == [True]
