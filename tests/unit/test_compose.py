"""compose/: docker-compose.yml against the Compose Specification's JSON Schema, and the stack's wiring.

The schema is compose-spec's own ``schema/compose-spec.json`` as the PyPI package check-jsonschema ships it
(``check_jsonschema/builtin_schemas/vendor/compose-spec.json``, pinned in constraints/dev.txt); nothing third-party
is committed. It is checked with ``jsonschema``, and a broken copy of the file must fail. The rest reads the files
the way Docker and meta read them: the control plane's workspace (compose/meta.yaml) loads in the image's layout,
every ``${secret:NAME}`` in it is a compose secret of the ``meta`` service, and Airflow's OpenLineage transport and
UI plugin point at the control plane. ``tests/integration/test_compose.py`` runs the stack itself.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from meta.authoring.workspace import load_workspace
from meta.execution.secrets import forget_sensitive

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "compose"
COMPOSE_FILE = COMPOSE / "docker-compose.yml"
ENTRYPOINT = COMPOSE / "airflow_entrypoint.py"
SECRET_REF = re.compile(r"\$\{secret:([^}]+)\}")


@pytest.fixture(autouse=True)
def _forget_resolved_secrets() -> Any:
    """Resolving the stack's secrets remembers their values for redaction (its Postgres password is "airflow"):
    forgotten after each test, or every later test in this process would see that word masked in its messages."""
    yield
    forget_sensitive()


def compose_schema() -> dict[str, Any]:
    text = (resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text("utf-8")
    return json.loads(text)


def schema_errors(document: Any) -> list[str]:
    """Every violation of the Compose Specification in ``document`` (a parsed compose file), as 'path: message'."""
    schema = compose_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    return [f"{error.json_path}: {error.message}" for error in validator.iter_errors(document)]


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def secret_refs(node: Any) -> list[str]:
    """The NAME of every ``${secret:NAME}`` among a parsed YAML document's values."""
    if isinstance(node, dict):
        return [name for value in node.values() for name in secret_refs(value)]
    if isinstance(node, list):
        return [name for value in node for name in secret_refs(value)]
    return SECRET_REF.findall(node) if isinstance(node, str) else []


def stack() -> dict[str, Any]:
    return load(COMPOSE_FILE)


def test_the_schema_is_compose_specs_own() -> None:
    from check_jsonschema.catalog import SCHEMA_CATALOG

    # where check-jsonschema vendors it from: the Compose Specification's repository
    assert SCHEMA_CATALOG["compose-spec"]["url"].endswith("/compose-spec/compose-spec/master/schema/compose-spec.json")
    schema = compose_schema()
    assert schema["title"] == "Compose Specification"
    jsonschema.validators.validator_for(schema).check_schema(schema)
    assert {"services", "secrets", "networks", "volumes"} <= set(schema["properties"])


def test_docker_compose_yml_follows_the_compose_specification() -> None:
    assert schema_errors(stack()) == []


def _unknown_top_level_key(doc: dict[str, Any]) -> None:
    doc["servcies"] = doc.pop("services")


def _ports_not_a_list(doc: dict[str, Any]) -> None:
    doc["services"]["meta"]["ports"] = "127.0.0.1:8765:8765"


def _misspelled_healthcheck_key(doc: dict[str, Any]) -> None:
    doc["services"]["meta"]["healthcheck"]["intervall"] = doc["services"]["meta"]["healthcheck"].pop("interval")


def _unknown_depends_on_condition(doc: dict[str, Any]) -> None:
    doc["services"]["meta"]["depends_on"]["postgres"]["condition"] = "service_ready"


def _secret_without_a_source(doc: dict[str, Any]) -> None:
    doc["secrets"]["meta_admin_token"] = {"path": "./secrets/meta_admin_token"}


def _retries_not_a_number(doc: dict[str, Any]) -> None:
    doc["services"]["postgres"]["healthcheck"]["retries"] = ["20"]


@pytest.mark.parametrize(
    ("breakage", "where"),
    [
        (_unknown_top_level_key, "$"),
        (_ports_not_a_list, "$.services.meta.ports"),
        (_misspelled_healthcheck_key, "$.services.meta.healthcheck"),
        (_unknown_depends_on_condition, "$.services.meta.depends_on"),
        (_secret_without_a_source, "$.secrets.meta_admin_token"),
        (_retries_not_a_number, "$.services.postgres.healthcheck.retries"),
    ],
)
def test_a_broken_copy_fails(tmp_path: Path, breakage: Any, where: str) -> None:
    document = copy.deepcopy(stack())
    breakage(document)
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    errors = schema_errors(load(broken))
    assert errors, "the broken copy passed the schema"
    assert any(e.startswith(f"{where}:") for e in errors), errors


def airflow_services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        n: s for n, s in doc["services"].items() if s.get("build", {}).get("dockerfile") == "compose/airflow.Dockerfile"
    }


def workspace_in_image_layout(tmp_path: Path) -> Path:
    """compose/meta.Dockerfile's layout: /opt/meta/meta.yaml beside /opt/meta/dags."""
    root = tmp_path / "opt-meta"
    shutil.copytree(REPO / "dags", root / "dags", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(COMPOSE / "meta.yaml", root / "meta.yaml")
    dockerfile = (COMPOSE / "meta.Dockerfile").read_text(encoding="utf-8")
    assert "COPY dags dags" in dockerfile and "COPY compose/meta.yaml meta.yaml" in dockerfile
    assert "WORKDIR /opt/meta" in dockerfile
    return root / "meta.yaml"


def test_the_control_plane_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = stack()
    meta = doc["services"]["meta"]
    assert meta["build"] == {"context": "..", "dockerfile": "compose/meta.Dockerfile"}
    assert meta["command"] == ["meta", "serve", "--workspace", "/opt/meta/meta.yaml"]
    assert meta["environment"]["META_SECRETS_DIR"] == "/run/secrets"

    loaded = load_workspace(workspace_in_image_layout(tmp_path))
    ws = loaded.workspace
    assert set(ws.backends) == {"airflow", "prefect"}
    assert ws.backends["airflow"].url == "http://airflow-api:8080"  # type: ignore[union-attr]
    assert ws.backends["prefect"].url == "http://prefect-server:4200/api"  # type: ignore[union-attr]
    assert "marketing_roi" in {p.id for p in loaded.load_pipelines().pipelines}
    port = ws.control_plane.listen.rsplit(":", 1)[1]
    assert ws.control_plane.listen.startswith("0.0.0.0:")  # reachable from the other containers
    assert meta["ports"] == [f"127.0.0.1:${{META_PORT:-{port}}}:{port}"]
    assert f"127.0.0.1:{port}/api/v1/health" in " ".join(meta["healthcheck"]["test"])

    # every ${secret:NAME} of the workspace is a compose secret mounted into the meta service, and resolves there
    assert set(secret_refs(load(COMPOSE / "meta.yaml"))) == set(meta["secrets"])
    folder = tmp_path / "secrets"
    init_secrets(folder)
    monkeypatch.setenv("META_SECRETS_DIR", str(folder))
    from meta.service.connections import control_plane_secret, database_url, resolve_connections

    assert database_url(loaded) == "postgresql://airflow:airflow@postgres:5432/meta"
    assert "CREATE DATABASE meta;" in (COMPOSE / "postgres-init.sql").read_text(encoding="utf-8")
    airflow = next(c for c in resolve_connections(loaded) if c.name == "airflow")
    admin = json.loads((folder / "airflow_passwords.json").read_text(encoding="utf-8"))["admin"]
    assert airflow.credentials == {"username": "admin", "password": admin}
    assert airflow.pipelines == {"marketing_roi": "marketing_roi"}
    assert control_plane_secret(loaded, "ingest_token") == (folder / "openlineage_ingest_token").read_text()


def test_airflow_pushes_openlineage_to_the_control_plane_and_links_to_it(tmp_path: Path) -> None:
    doc = stack()
    ws = load_workspace(workspace_in_image_layout(tmp_path)).workspace
    port = ws.control_plane.listen.rsplit(":", 1)[1]
    services = airflow_services(doc)
    assert set(services) == {
        "airflow-init",
        "airflow-api",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
    }
    for name, service in services.items():
        env = service["environment"]
        assert env["META_OPENLINEAGE_URL"] == f"http://meta:{port}", name
        assert env["AIRFLOW__OPENLINEAGE__NAMESPACE"] == ws.namespace_of("airflow"), name
        assert "openlineage_ingest_token" in service["secrets"], name
        assert env["AIRFLOW__META__CONTROL_PLANE_URL"] == f"http://localhost:${{META_PORT:-{port}}}", name
        assert ws.backends[env["AIRFLOW__META__BACKEND_NAME"]].kind == "airflow", name
        assert ws.backends["airflow"].url == "http://airflow-api:8080"  # type: ignore[union-attr]
        assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == "/opt/airflow/plugins", name
        assert "AIRFLOW__OPENLINEAGE__TRANSPORT" not in env  # built from the secret by the image's entrypoint
    dockerfile = (COMPOSE / "airflow.Dockerfile").read_text(encoding="utf-8")
    assert "COPY plugins /opt/airflow/plugins" in dockerfile
    assert "apache-airflow-providers-openlineage" in dockerfile
    assert "COPY compose/airflow_entrypoint.py /usr/local/bin/meta-airflow-entrypoint" in dockerfile
    assert 'ENTRYPOINT ["python", "/usr/local/bin/meta-airflow-entrypoint"]' in dockerfile
    assert (REPO / "plugins" / "meta_ui.py").exists()


def test_secrets_come_from_files_only(tmp_path: Path) -> None:
    doc = stack()
    secrets_dir = "${META_COMPOSE_SECRETS:-./secrets}"
    for name, secret in doc["secrets"].items():
        assert set(secret) == {"file"} and secret["file"].startswith(secrets_dir + "/"), name
    written = set(init_secrets(tmp_path / "secrets"))
    assert {Path(s["file"]).name for s in doc["secrets"].values()} == written
    for name, service in doc["services"].items():
        assert set(service.get("secrets", [])) <= set(doc["secrets"]), name
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|TOKEN|SECRET", key) and not key.endswith(("_FILE", "_CMD", "_DIR")):
                assert (name, key, value) == ("postgres", "POSTGRES_PASSWORD", "airflow"), (name, key)
            if isinstance(value, str) and "://" in value and "@" in value:  # only the placeholder in URLs
                assert "://airflow:airflow@postgres/" in value, (name, key)


def init_secrets(folder: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, str(COMPOSE / "init_secrets.py"), str(folder)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split(": wrote ", 1)[1].strip().split(", ") if ": wrote " in done.stdout else []


def test_init_secrets_writes_once_and_prints_no_value(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    first = subprocess.run(
        [sys.executable, str(COMPOSE / "init_secrets.py"), str(folder)], capture_output=True, text=True, timeout=30
    )
    assert first.returncode == 0, first.stderr
    files = {p.name: p.read_text(encoding="utf-8") for p in folder.iterdir()}
    assert len(files) == 6
    for value in files.values():
        assert value.strip() not in first.stdout + first.stderr or value.strip() == "airflow"
    passwords = json.loads(files["airflow_passwords.json"])
    assert files["airflow_admin_password"] == passwords["admin"] != passwords["viewer"]
    assert len(files["openlineage_ingest_token"]) >= 16 and len(files["meta_admin_token"]) >= 16
    assert all((p.stat().st_mode & 0o077) == 0 for p in folder.iterdir())
    again = subprocess.run(
        [sys.executable, str(COMPOSE / "init_secrets.py"), str(folder)], capture_output=True, text=True, timeout=30
    )
    assert "every secret file exists already" in again.stdout
    assert {p.name: p.read_text(encoding="utf-8") for p in folder.iterdir()} == files


def run_entrypoint(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = "import os; print(os.environ.get('AIRFLOW__OPENLINEAGE__TRANSPORT', '<unset>'))"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__OPENLINEAGE", "META_OPENLINEAGE"))}
    return subprocess.run(
        [sys.executable, str(ENTRYPOINT), sys.executable, "-c", command],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_the_entrypoint_builds_the_transport_from_the_secret(tmp_path: Path) -> None:
    token = tmp_path / "openlineage_ingest_token"
    token.write_text("meta_ingest_0123456789abcdef\n", encoding="utf-8")
    done = run_entrypoint({"META_OPENLINEAGE_URL": "http://meta:8765/", "META_OPENLINEAGE_TOKEN_FILE": str(token)})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "type": "http",
        "url": "http://meta:8765",
        "endpoint": "api/v1/lineage",
        "auth": {"type": "api_key", "apiKey": "meta_ingest_0123456789abcdef"},
        "timeout": 5,
    }
    explicit = '{"type": "console"}'
    done = run_entrypoint({"META_OPENLINEAGE_URL": "http://meta:8765", "AIRFLOW__OPENLINEAGE__TRANSPORT": explicit})
    assert done.stdout.strip() == explicit  # set by hand: kept
    assert run_entrypoint({}).stdout.strip() == "<unset>"  # no control plane: no transport


def test_the_entrypoint_refuses_a_missing_token(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    done = run_entrypoint({"META_OPENLINEAGE_URL": "http://meta:8765", "META_OPENLINEAGE_TOKEN_FILE": str(missing)})
    assert done.returncode == 1
    assert f"cannot read the OpenLineage ingest token from {missing}" in done.stderr
    missing.write_text("\n", encoding="utf-8")
    done = run_entrypoint({"META_OPENLINEAGE_URL": "http://meta:8765", "META_OPENLINEAGE_TOKEN_FILE": str(missing)})
    assert done.returncode == 1 and "is empty" in done.stderr


def test_images_use_the_tests_versions() -> None:
    pins = dict(
        line.split("==", 1) for line in (REPO / "constraints" / "dev.txt").read_text().splitlines() if "==" in line
    )
    assert pins["apache-airflow"] == "3.3.2"
    assert pins["prefect"].startswith("3.7.")
    for name in ("airflow", "prefect", "meta"):
        dockerfile = (COMPOSE / f"{name}.Dockerfile").read_text(encoding="utf-8")
        assert dockerfile.count("FROM ") == 1 and "FROM python:3.11-slim\n" in dockerfile, name
        assert "COPY constraints/dev.txt constraints/dev.txt" in dockerfile, name
        assert "uv pip install --system -c constraints/dev.txt " in dockerfile, name
        for source in re.findall(r"^COPY (\S+) ", dockerfile, flags=re.MULTILINE):
            assert (REPO / source).exists(), f"{name}.Dockerfile copies {source}, which does not exist"
    assert '".[server,postgres]"' in (COMPOSE / "meta.Dockerfile").read_text(encoding="utf-8")
