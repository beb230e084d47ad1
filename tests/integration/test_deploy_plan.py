"""``meta deploy`` from a workspace file and its ``--dry-run`` plan, against the session's real Airflow and real
Prefect server: the first plan says created, a deploy makes it unchanged, an edited spec makes it changed, a
pipeline the Prefect target refuses is refused with its reason, and a dry run changes nothing on either backend
(no spec file for Airflow's loader, no deployment or version change on Prefect).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from meta.cli import cli
from tests.fixtures.airflow_server import airflow_server  # noqa: F401 - a pytest fixture
from tests.fixtures.prefect_server import prefect_server  # noqa: F401 - a pytest fixture

pytestmark = [pytest.mark.airflow, pytest.mark.prefect, pytest.mark.slow]

ON_AIRFLOW = "pipeline: plan_it_airflow\ntags: [plan]\ntasks:\n  hello: {shell: 'echo hello'}\n"
ON_PREFECT = "pipeline: plan_it_prefect\ntasks:\n  hello: {shell: 'echo hello'}\n"
# Only Airflow runs an Airflow operator: the Prefect target refuses it. (catchup is no refusal any more: placed on
# prefect, the control plane runs the slots.)
OPERATOR = "airflow.providers.standard.operators.empty.EmptyOperator"
REFUSED = f"pipeline: plan_it_refused\ntasks:\n  hello: {{airflow_operator: {OPERATOR}}}\n"
REFUSAL = (
    f"  refused    plan_it_refused  prefect cannot express the Airflow operator {OPERATOR} (pipeline "
    "'plan_it_refused', task 'hello'): only the airflow backend runs airflow_operator tasks"
)


@pytest.fixture(scope="module")
def project(airflow_server, prefect_server, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    root = tmp_path_factory.mktemp("plan_project")
    (root / "dags" / "ok").mkdir(parents=True)
    (root / "dags" / "ok" / "airflow.yaml").write_text(ON_AIRFLOW)
    (root / "dags" / "ok" / "prefect.yaml").write_text(ON_PREFECT)
    (root / "dags" / "refused.yaml").write_text(REFUSED)
    (root / "meta.yaml").write_text(
        f"""\
name: plan-it
specs: [dags]
backends:
  af:
    kind: airflow
    url: {airflow_server.url}
    username: admin
    password: ${{secret:PLAN_IT_AIRFLOW_PW}}
    specs_dir: {airflow_server.specs_dir}
  pf:
    kind: prefect
    url: {prefect_server.api_url}
    work_pool: {prefect_server.pool}
    flows_dir: {prefect_server.deploy_dir}
placements:
  - {{backend: af, pipelines: [plan_it_airflow]}}
  - {{backend: pf, pipelines: [plan_it_prefect, plan_it_refused]}}
"""
    )
    return root


def meta(project: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["deploy", "--workspace", str(project), *args])


def prefect_deployment(prefect_server, name: str) -> dict | None:  # noqa: F811
    from meta_prefect.client import PrefectClient

    client = PrefectClient.connect(prefect_server.api_url)
    try:
        found = client.request("GET", f"deployments/name/{name}/meta", ok=(404,))
    finally:
        client.close()
    return found if isinstance(found, dict) and "id" in found else None


def test_the_plan_follows_what_is_deployed(project: Path, airflow_server, prefect_server) -> None:  # noqa: F811
    spec_file = airflow_server.specs_dir / "plan_it_airflow.json"
    flows_dir = prefect_server.deploy_dir.resolve()

    # 1. Nothing deployed yet: created on both, the refusal with its reason; exit 1 because of the refusal.
    first = meta(project, "--dry-run")
    assert first.exit_code == 1, first.output
    assert f"  created    plan_it_airflow  writes {spec_file}" in first.output
    assert f"  created    plan_it_prefect  deployment plan_it_prefect/meta in {prefect_server.pool}" in first.output
    assert REFUSAL in first.output
    assert first.output.rstrip().endswith(
        "plan: 2 created, 0 changed, 0 unchanged, 1 refused (dry run: nothing was changed)"
    )
    # ... and the dry run changed nothing on either backend.
    assert not spec_file.exists()
    assert "plan_it_airflow" not in airflow_server.client().dag_ids()
    assert prefect_deployment(prefect_server, "plan_it_prefect") is None
    # A real deploy with a refused pipeline in it deploys nothing either.
    blocked = meta(project)
    assert blocked.exit_code == 1 and "nothing was deployed" in blocked.output
    assert not spec_file.exists() and prefect_deployment(prefect_server, "plan_it_prefect") is None

    # 2. Deploy the others (SPECS narrows the workspace deploy): both backends really have them.
    ok = str(project / "dags" / "ok")
    deployed = meta(project, ok)
    assert deployed.exit_code == 0, deployed.output
    assert "deployed: 2 created, 0 changed, 0 unchanged, 0 refused" in deployed.output
    from meta_airflow.remote import wait_for_dags

    wait_for_dags(airflow_server.client(), ["plan_it_airflow"], timeout=120)
    deployment = prefect_deployment(prefect_server, "plan_it_prefect")
    assert deployment is not None and deployment["work_pool_name"] == prefect_server.pool
    assert str(deployment["version"]).startswith("meta-")

    # 3. Nothing changed since: unchanged on both.
    again = meta(project, "--dry-run", ok)
    assert again.exit_code == 0, again.output
    assert f"  unchanged  plan_it_airflow  {spec_file}" in again.output
    assert f"  unchanged  plan_it_prefect  deployment plan_it_prefect/meta ({deployment['id']})" in again.output

    # 4. Edit both specs: changed, naming what; the dry run leaves the deployed versions alone.
    (project / "dags" / "ok" / "airflow.yaml").write_text(ON_AIRFLOW.replace("tags: [plan]", "tags: [plan, edited]"))
    (project / "dags" / "ok" / "prefect.yaml").write_text(ON_PREFECT.replace("echo hello", "echo edited"))
    before = spec_file.read_text()
    edited = meta(project, "--dry-run", ok)
    assert edited.exit_code == 0, edited.output
    assert f"  changed    plan_it_airflow  rewrites {spec_file} (changed: tags)" in edited.output
    flow_file = flows_dir / "plan_it_prefect.py"
    assert (
        f"  changed    plan_it_prefect  deployment plan_it_prefect/meta ({deployment['id']}): flow file {flow_file}"
        in edited.output
    )
    assert spec_file.read_text() == before
    assert prefect_deployment(prefect_server, "plan_it_prefect")["version"] == deployment["version"]
    assert "echo edited" not in flow_file.read_text()

    # 5. Deploying the edit makes the plan unchanged again; Prefect's deployment carries the new fingerprint.
    redeployed = meta(project, ok)
    assert redeployed.exit_code == 0, redeployed.output
    assert "deployed: 0 created, 2 changed, 0 unchanged, 0 refused" in redeployed.output
    assert prefect_deployment(prefect_server, "plan_it_prefect")["version"] != deployment["version"]
    final = meta(project, "--dry-run", ok)
    assert "plan: 0 created, 0 changed, 2 unchanged, 0 refused" in final.output, final.output


def test_the_prefect_plan_needs_the_work_pool_to_exist(project: Path, prefect_server) -> None:  # noqa: F811
    text = (project / "meta.yaml").read_text().replace(f"work_pool: {prefect_server.pool}", "work_pool: no-such-pool")
    other = project / "other"
    other.mkdir(exist_ok=True)
    (other / "meta.yaml").write_text(text.replace("specs: [dags]", f"specs: [{project / 'dags' / 'ok'}]"))
    result = CliRunner().invoke(cli, ["deploy", "--dry-run", "--workspace", str(other)])
    assert result.exit_code == 1, result.output
    assert "  error: work pool 'no-such-pool' not found on the Prefect server" in result.output
    assert "1 backend not planned (dry run: nothing was changed)" in result.output
