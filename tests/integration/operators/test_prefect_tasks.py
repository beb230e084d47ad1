"""The Prefect task wrappers in a real flow on a throwaway Prefect server (prefect_test_harness): a DuckDB load
re-run in the same flow run, and an alert whose webhook URL lives in a Prefect Secret block."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("prefect")

from meta_prefect.tasks import (
    PrefectSecretProvider,
    alert_task,
    block_name,
    email_alert_task,
    slack_alert_task,
    warehouse_load_task,
)
from prefect import flow
from prefect.testing.utilities import prefect_test_harness

from meta.execution import secrets
from tests.integration.operators.conftest import WebhookServer
from tests.unit.operators.loads_model import DDL, execute, table_state


@pytest.fixture(scope="module")
def prefect_server() -> Iterator[None]:
    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.mark.prefect
@pytest.mark.slow
def test_tasks_in_a_flow(
    prefect_server: None,
    webhook_server: WebhookServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    meta_home: Path,
) -> None:
    from prefect.blocks.system import Secret

    secrets.forget_sensitive()
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    execute(url, DDL.format(table="t"))
    hook_url, hook = webhook_server.hook()
    Secret(value=hook_url).save(block_name("TEAM_HOOK"), overwrite=True)
    monkeypatch.setenv("META_CHANNEL_SLACK_DATA_TEAM_URL", "${secret:TEAM_HOOK}")
    rows = [{"id": 1, "part": "odd", "v": 1}, {"id": 2, "part": "even", "v": 2}]

    @flow(name="sales-flow")
    def sales() -> dict[str, Any]:
        first = warehouse_load_task(table="t", source={"rows": rows}, keys=["id"], url=url, audit=True)
        again = warehouse_load_task(table="t", source={"rows": rows}, keys=["id"], url=url, audit=True)
        sent = alert_task(channel="slack:data-team", message="sales loaded")
        resent = alert_task(channel="slack:data-team", message="sales loaded")  # like a retry: same run, same task
        other = slack_alert_task(channel="slack:data-team", message="sales loaded")  # another task: its own key
        return {"first": first, "again": again, "sent": sent, "resent": resent, "other": other}

    result = sales()
    assert (result["first"]["inserted"], result["again"]["updated"]) == (2, 2)
    assert result["sent"] == {"alerts": {"slack:data-team": "sent"}}
    assert result["resent"] == {"alerts": {"slack:data-team": "duplicate"}}
    assert result["other"] == {"alerts": {"slack:data-team": "sent"}}
    assert table_state(url, "t") == {1: 1, 2: 2}
    assert [p["text"].split("\n")[0] for p in hook.received] == ["sales loaded", "sales loaded"]
    assert hook.received[0]["text"].split("\n")[1].startswith("run prefect__")
    assert hook_url not in secrets.redact(f"url={hook_url}")

    provider = PrefectSecretProvider()
    assert provider.get("TEAM_HOOK") == hook_url and provider.get("nope") is None
    with pytest.raises(ValueError, match="expected a 'email:<name>' channel"):
        email_alert_task.fn(channel="slack:data-team", message="x")
