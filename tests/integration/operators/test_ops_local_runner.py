"""The two op types inside a pipeline on the local backend: a merge into DuckDB that a re-run of the same run id
leaves unchanged, an alert sent once per run, and a schema error failing the task without writing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from meta.plugins.manager import get_target
from meta.semantics.request import RunRequest
from meta.spec.model import Pipeline
from tests.integration.operators.conftest import WebhookServer
from tests.unit.operators.loads_model import DDL, execute, table_state

LOGICAL = datetime(2024, 7, 1, tzinfo=UTC)


def pipeline(url: str, rows: list[dict[str, object]]) -> Pipeline:
    return Pipeline.model_validate(
        {
            "id": "sales",
            "tasks": [
                {
                    "id": "load",
                    "action": {
                        "kind": "op",
                        "op": "warehouse_load",
                        "with": {"table": "t", "keys": ["id"], "url": url, "source": {"rows": rows}, "audit": True},
                    },
                },
                {
                    "id": "tell",
                    "upstream": ["load"],
                    "action": {
                        "kind": "op",
                        "op": "alert",
                        "with": {"channel": "slack:data-team", "message": "sales {{ ds }} loaded"},
                    },
                },
            ],
        }
    )


def test_pipeline_with_ops_is_idempotent_per_run(
    tmp_path: Path, meta_home: Path, webhook_server: WebhookServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    execute(url, DDL.format(table="t"))
    hook_url, hook = webhook_server.hook()
    monkeypatch.setenv("META_SECRET_TEAM_HOOK", hook_url)
    monkeypatch.setenv("META_CHANNEL_SLACK_DATA_TEAM_URL", "${secret:team_hook}")
    spec = pipeline(url, [{"id": 1, "part": "odd", "v": 1}, {"id": 2, "part": "even", "v": 2}])
    local = get_target("local")
    for _ in range(2):  # the same run id twice: a re-run
        result = local.run(spec, RunRequest.build(spec, logical_date=LOGICAL, run_id="manual__sales_1"))
        assert result.states() == {"load": "success", "tell": "success"}
    assert table_state(url, "t") == {1: 1, 2: 2}
    assert [p["text"].split("\n")[0] for p in hook.received] == ["sales 2024-07-01 loaded"]


def test_schema_error_fails_the_task_and_writes_nothing(
    tmp_path: Path, meta_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    execute(url, DDL.format(table="t"))
    monkeypatch.setenv("META_CHANNEL_SLACK_DATA_TEAM_URL", "http://127.0.0.1:9/never-called")
    spec = pipeline(url, [{"id": 1, "part": "odd", "v": "one"}])
    result = get_target("local").run(spec, RunRequest.build(spec, logical_date=LOGICAL, run_id="manual__bad"))
    assert result.states() == {"load": "failed", "tell": "upstream_failed"}
    assert table_state(url, "t") == {}
    log = (meta_home / "logs" / "sales" / "manual__bad" / "load" / "attempt-1.log").read_text()
    assert "LoadError: table t: source row 1, column 'v': got str 'one'" in log
