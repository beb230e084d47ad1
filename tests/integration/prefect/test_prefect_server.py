"""The Prefect adapter on a real Prefect server and process worker: `meta deploy` from the CLI, runs triggered
through the REST API, a dataset event from one pipeline starting another through its deployment trigger."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from meta.spec.states import RunState, TaskState

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

PRODUCER = """\
pipeline: it_producer
tags: [integration]
tasks:
  load:
    shell: "echo loading {{ ds }}"
    outputs: ["s3://it-bucket/sales"]
"""

# A param value full of quotes and a newline travels through YAML, the generated flow file, the deployment's
# parameters and the worker's environment unchanged (JSON strings are valid YAML double-quoted scalars).
NOTE = "it's \"quoted\" ''' and\na new line"
CONSUMER = "\n".join(
    [
        "pipeline: it_consumer",
        'schedule: {datasets: ["s3://it-bucket/sales"], mode: any}',
        f"params: {{note: {{type: string, default: {json.dumps(NOTE)}}}}}",
        "tasks:",
        "  report:",
        "    shell:",
        '      command: \'test "$META_PARAM_NOTE" = "$EXPECTED"\'',
        f"      env: {{EXPECTED: {json.dumps(NOTE)}}}",
    ]
)


def meta_cli(server, *args: str) -> subprocess.CompletedProcess[str]:
    meta = Path(sys.executable).parent / "meta"
    return subprocess.run([str(meta), *args], env=server.env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def deployed(prefect_server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    specs = tmp_path_factory.mktemp("specs")
    (specs / "producer.yaml").write_text(PRODUCER)
    (specs / "consumer.yaml").write_text(CONSUMER)
    args = [
        "deploy",
        "--target",
        "prefect",
        str(specs / "producer.yaml"),
        str(specs / "consumer.yaml"),
        "--pool",
        prefect_server.pool,
        "--api-url",
        prefect_server.api_url,
    ]
    first = meta_cli(prefect_server, *args)
    assert first.returncode == 0, first.stderr
    again = meta_cli(prefect_server, *args)  # idempotent: the same deployments again
    assert again.returncode == 0, again.stderr
    assert first.stdout == again.stdout and len(first.stdout.splitlines()) == 2
    from meta_prefect.client import PrefectClient

    client = PrefectClient.connect(prefect_server.api_url)
    try:
        return {p: client.read_deployment_by_name(p, "meta")["id"] for p in ("it_producer", "it_consumer")}
    finally:
        client.close()


def test_dataset_event_runs_the_consumer_deployment(prefect_server, deployed: dict[str, str]) -> None:
    from meta_prefect.client import PrefectClient
    from meta_prefect.remote import wait_for

    client = PrefectClient.connect(prefect_server.api_url)
    try:
        producer_pipeline = _pipeline(PRODUCER)
        run = client.create_flow_run(deployed["it_producer"])
        [result] = wait_for(client, {run["id"]: producer_pipeline}, timeout=180).values()
        assert result.state == RunState.SUCCESS and result.tasks["load"].state == TaskState.SUCCESS
        body = {"deployments": {"id": {"any_": [deployed["it_consumer"]]}}, "limit": 10}
        deadline = time.monotonic() + 120
        runs: list[dict] = []
        while time.monotonic() < deadline and not runs:
            runs = client.request("POST", "flow_runs/filter", body) or []
            time.sleep(1)
        assert runs, "the dataset event did not start the consumer deployment"
        [consumer] = wait_for(client, {runs[0]["id"]: _pipeline(CONSUMER)}, timeout=180).values()
        assert consumer.state == RunState.SUCCESS, consumer
        assert consumer.tasks["report"].state == TaskState.SUCCESS and consumer.tasks["report"].attempts == 1
    finally:
        client.close()


def _pipeline(text: str):
    from meta.authoring.load import loads

    return loads(text)[0]
