"""The workspace file (meta.yaml): model, loader errors with file:line:col, finding it by walking up, secret
references (refused when literal, resolved through meta's providers), placement and team helpers, its JSON Schema,
and ``meta deploy`` from the workspace against a real specs folder (Airflow's deploy writes files; no server needed).
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from meta.authoring.workspace import (
    declared_teams,
    find_workspace,
    load_workspace,
    loads_workspace,
)
from meta.cli import cli
from meta.execution.secrets import forget_sensitive, redact
from meta.service.connections import (
    WorkspaceSecretMissing,
    backend_credentials,
    control_plane_secret,
    database_url,
    resolve_connection,
    resolve_connections,
)
from meta.spec.errors import ValidationFailed
from meta.spec.workspace import SECRET_REF, Workspace, WorkspaceInvalid

FULL = """\
name: demo
specs: [dags]
backends:
  prod-airflow:
    kind: airflow
    url: http://127.0.0.1:8080
    username: admin
    password: ${secret:AIRFLOW_PW}
    specs_dir: airflow/specs
  prefect-main:
    kind: prefect
    url: http://127.0.0.1:4200/api
    auth: ${secret:PREFECT_AUTH}
    work_pool: main
  laptop:
    kind: local
    state_dir: .state
placements:
  - backend: prod-airflow
    pipelines: ["sales_*"]
  - backend: prefect-main
    pipelines: [report, "sales_daily"]
  - backend: laptop
    pipelines: ["*"]
teams:
  sales: {pipelines: ["sales_*"]}
  finance: {pipelines: [report, "ext_*"]}
control_plane:
  database: postgresql://meta:${secret:PG_PW}@127.0.0.1:5432/meta
  listen: 127.0.0.1:9000
  poll_interval: 5s
  ingest_token: ${secret:INGEST}
"""

SALES = "pipeline: sales_daily\ntasks:\n  load: {shell: 'echo load'}\n"
REPORT = "pipeline: report\nteam: finance\ntasks:\n  send: {shell: 'echo send'}\n"


def write(folder: Path, text: str = FULL) -> Path:
    (folder / "dags").mkdir(parents=True, exist_ok=True)
    (folder / "dags" / "sales.yaml").write_text(SALES)
    (folder / "dags" / "report.yaml").write_text(REPORT)
    path = folder / "meta.yaml"
    path.write_text(text)
    return path


def problems_of(text: str, tmp_path: Path) -> list[str]:
    path = tmp_path / "meta.yaml"
    path.write_text(text)
    with pytest.raises(ValidationFailed) as caught:
        load_workspace(path)
    return [str(p) for p in caught.value.problems]


@pytest.fixture(autouse=True)
def _clean_secrets():
    forget_sensitive()
    yield
    forget_sensitive()


# ------------------------------------------------------------------------------------------------ the model


def test_a_full_workspace_loads_with_its_values(tmp_path: Path) -> None:
    loaded = load_workspace(write(tmp_path))
    ws = loaded.workspace
    assert ws.name == "demo" and list(ws.backends) == ["prod-airflow", "prefect-main", "laptop"]
    assert ws.control_plane.poll_interval.total_seconds() == 5
    assert ws.control_plane.client_url == "http://127.0.0.1:9000"
    assert loaded.path == tmp_path / "meta.yaml" and loaded.root == tmp_path


def test_an_empty_mapping_is_a_workspace_of_defaults() -> None:
    ws = Workspace()
    assert ws.specs == ("dags",) and ws.backends == {} and ws.control_plane.listen == "127.0.0.1:8765"
    assert ws.control_plane.poll_interval.total_seconds() == 10


@pytest.mark.parametrize(
    ("backend", "field"),
    [
        ({"kind": "airflow", "url": "http://a", "username": "u", "password": "hunter22"}, "password"),
        ({"kind": "prefect", "url": "http://p/api", "auth": "user:hunter22"}, "auth"),
    ],
)
def test_a_literal_credential_is_refused_without_echoing_it(backend: dict, field: str) -> None:
    with pytest.raises(ValueError) as caught:
        Workspace.model_validate({"backends": {"b": backend}})
    assert "hunter22" not in str(caught.value)
    assert f"{field} must be a secret reference like '${{secret:NAME}}'" in str(caught.value)


@pytest.mark.parametrize("field", ["ingest_token", "admin_token"])
def test_control_plane_tokens_must_be_secret_references(field: str) -> None:
    with pytest.raises(ValueError, match=f"{field} must be a secret reference") as caught:
        Workspace.model_validate({"control_plane": {field: "tok-abc-123"}})
    assert "tok-abc-123" not in str(caught.value)
    ok = Workspace.model_validate({"control_plane": {field: "${secret:T}"}})
    assert getattr(ok.control_plane, field) == "${secret:T}"


def test_urls_carry_no_literal_password() -> None:
    with pytest.raises(ValueError, match="url must not hold credentials") as caught:
        Workspace.model_validate({"backends": {"a": {"kind": "airflow", "url": "http://admin:pw-9931@host"}}})
    assert "pw-9931" not in str(caught.value)
    with pytest.raises(ValueError, match="database holds a literal password") as caught:
        Workspace.model_validate({"control_plane": {"database": "postgresql://meta:pw-9931@db/meta"}})
    assert "pw-9931" not in str(caught.value)
    for ok in ("postgresql://meta:${secret:PG}@db/meta", "${secret:DB_URL}", "sqlite:////tmp/x.db"):
        assert Workspace.model_validate({"control_plane": {"database": ok}}).control_plane.database == ok


def test_cross_field_problems_keep_their_paths() -> None:
    with pytest.raises(ValueError) as caught:
        Workspace.model_validate(
            {
                "backends": {
                    "a": {"kind": "airflow", "url": "http://a", "username": "admin"},
                    "b": {"kind": "airflow", "url": "http://b", "openlineage_namespace": "a"},
                },
                "placements": [{"backend": "aa", "pipelines": ["x"]}],
            }
        )
    inner = caught.value.errors()[0]["ctx"]["error"]  # type: ignore[attr-defined]
    assert isinstance(inner, WorkspaceInvalid)
    assert dict(inner.problems) == {
        ("placements", 0, "backend"): "unknown backend 'aa'; did you mean 'a'?; defined: a, b",
        ("backends", "a", "username"): "username without password: give both or neither",
        ("backends", "b", "openlineage_namespace"): (
            "OpenLineage namespace 'a' is also backend 'a''s; each Airflow instance needs its own"
        ),
    }


# ------------------------------------------------------------------------------------------------ the loader


def test_problems_are_reported_with_file_line_col(tmp_path: Path) -> None:
    text = """\
backends:
  prod:
    kind: airflow
    url: http://h
    username: admin
    password: hunter22
    speks_dir: x
  Bad: {kind: local}
  pf: {kind: prefect, url: "ftp://p"}
  what: {kind: dagster}
  nokind: {url: "http://x"}
placements:
  - backend: prd
    pipelines: ["*"]
control_plane:
  poll_interval: 2h
  listen: "h:70000"
extra: 1
"""
    file = tmp_path / "meta.yaml"
    assert problems_of(text, tmp_path) == [
        f"{file}:6:15: backends.prod.password: password must be a secret reference like '${{secret:NAME}}', "
        "not a literal value",
        f"{file}:7:5: backends.prod.speks_dir: unknown key for an airflow backend; it takes description, kind, url, "
        "username, password, specs_dir, openlineage_namespace, ui_url",
        f"{file}:8:3: backends.Bad: expected a name of lower-case letters, digits, '_' and '-' that starts with a "
        "letter; received 'Bad'",
        f"{file}:9:28: backends.pf.url: expected an http:// or https:// URL; received (a value that is not shown)",
        f"{file}:10:16: backends.what.kind: expected one of airflow, prefect, local (or a kind an installed plugin "
        "adds); received 'dagster'",
        f"{file}:11:11: backends.nokind: missing 'kind:' (one of airflow, prefect, local)",
        f"{file}:13:14: placements.0.backend: unknown backend 'prd'; did you mean 'prod'?; defined: Bad, nokind, pf, "
        "prod, what",
        f"{file}:16:18: control_plane.poll_interval: poll_interval must be between 0.2s and 1h",
        f"{file}:17:11: control_plane.listen: listen needs a port between 1 and 65535, e.g. 127.0.0.1:8765",
        f"{file}:18:1: extra: unknown key; a workspace file has name, specs, backends, placements, teams, "
        "control_plane, slas, migrations",
    ]
    assert not any("hunter22" in p for p in problems_of(text, tmp_path))


def test_cross_field_problems_point_at_their_values(tmp_path: Path) -> None:
    text = """\
backends:
  a: {kind: airflow, url: "http://a", username: admin}
  b:
    kind: airflow
    url: http://b
    openlineage_namespace: a
placements:
  - {backend: a, pipelines: ["*"]}
  - {backend: c, pipelines: [x]}
"""
    file = tmp_path / "meta.yaml"
    assert problems_of(text, tmp_path) == [
        f"{file}:2:49: backends.a.username: username without password: give both or neither",
        f"{file}:6:28: backends.b.openlineage_namespace: OpenLineage namespace 'a' is also backend 'a''s; each "
        "Airflow instance needs its own",
        f"{file}:9:15: placements.1.backend: unknown backend 'c'; defined: a, b",
    ]


def test_yaml_problems_use_the_spec_loaders_positions(tmp_path: Path) -> None:
    file = tmp_path / "meta.yaml"
    assert problems_of("backends:\n  a: {kind: local}\n  a: {kind: local}\n", tmp_path) == [
        f"{file}:3:3: duplicate key 'a': first defined at line 2, again at line 3; YAML would silently keep only "
        "the last one"
    ]
    syntax = problems_of("backends:\n  a: [unclosed\n", tmp_path)
    assert len(syntax) == 1 and syntax[0].startswith(f"{file}:3:1: YAML syntax error")
    assert problems_of("- a\n- b\n", tmp_path) == [
        f"{file}:1:1: the workspace file must be a mapping (backends:, placements:, ...)"
    ]
    assert problems_of("name: a\n---\nname: b\n", tmp_path) == [
        f"{file}:3:1: a workspace file holds one YAML document; found more"
    ]
    empty = problems_of("", tmp_path)
    assert len(empty) == 1 and empty[0].startswith(f"{file}:1:1: the workspace file is empty")


def test_a_file_of_comments_is_the_default_workspace(tmp_path: Path) -> None:
    path = tmp_path / "meta.yaml"
    path.write_text("# nothing yet\n{}\n")
    assert load_workspace(path).workspace == Workspace()


def test_relative_paths_resolve_against_the_files_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = load_workspace(write(tmp_path / "project"))
    monkeypatch.chdir(tmp_path)  # not the project folder
    root = tmp_path / "project"
    assert loaded.spec_paths() == [root / "dags"]
    assert loaded.backend_dir("prod-airflow") == root / "airflow" / "specs"
    assert loaded.backend_dir("laptop") == root / ".state"
    assert loaded.backend_dir("prefect-main") is None
    assert [p.id for p in loaded.load_pipelines().pipelines] == ["report", "sales_daily"]
    assert loaded.resolve("/abs/x") == Path("/abs/x")


def test_state_dir_is_meta_home_or_beside_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = load_workspace(write(tmp_path))
    monkeypatch.delenv("META_HOME", raising=False)
    assert loaded.state_dir == tmp_path / ".meta"
    monkeypatch.setenv("META_HOME", str(tmp_path / "home"))
    assert loaded.state_dir == tmp_path / "home"
    assert database_url(loads_workspace("{}", tmp_path / "meta.yaml")) == f"sqlite:///{tmp_path}/home/control-plane.db"


# ------------------------------------------------------------------------------------------------ finding it


def test_the_workspace_is_found_by_walking_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "project")
    deep = tmp_path / "project" / "dags" / "sub" / "deeper"
    deep.mkdir(parents=True)
    assert find_workspace(deep) == path
    assert find_workspace(tmp_path / "project" / "dags" / "sales.yaml") == path  # a file: from its folder
    monkeypatch.chdir(deep)
    assert find_workspace() == path
    nested = write(tmp_path / "project" / "dags" / "sub")  # the nearest one wins
    assert find_workspace(deep) == nested


def test_no_workspace_above_a_folder_is_none(tmp_path: Path) -> None:
    found = find_workspace(tmp_path)
    assert found is None or tmp_path not in found.parents  # whatever lies above the test's temp dir is not ours


def test_commands_say_how_to_get_a_workspace_when_there_is_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    if find_workspace(tmp_path) is not None:
        pytest.skip("a meta.yaml exists above the temp directory")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["deploy", "--dry-run"])
    assert result.exit_code == 2
    assert "no workspace file: no meta.yaml in" in result.output and "--workspace PATH" in result.output


# ------------------------------------------------------------------------------------------------ placements, teams


def test_placement_and_team_helpers(tmp_path: Path) -> None:
    loaded = load_workspace(write(tmp_path))
    ws = loaded.workspace
    assert ws.backends_of("sales_daily") == ["prod-airflow", "prefect-main", "laptop"]
    assert ws.backends_of("report") == ["prefect-main", "laptop"]
    assert ws.placed_on("prod-airflow", ["report", "sales_daily", "sales_weekly"]) == ["sales_daily", "sales_weekly"]
    assert Workspace.model_validate({"placements": [], "backends": {}}).unplaced(["a"]) == ["a"]
    assert ws.team_of("sales_daily") == "sales"
    assert ws.team_of("ext_dag") == "finance"  # an external DAG matched by pattern
    assert ws.team_of("sales_daily", declared="finance") == "finance"  # the spec's own team wins
    assert ws.team_of("unknown") is None
    assert declared_teams(loaded) == {"report": "finance", "sales_daily": None}
    assert (
        ws.namespace_of("prod-airflow") == "prod-airflow" and ws.backend_of_namespace("prod-airflow") == "prod-airflow"
    )
    assert ws.backend_of_namespace("spark") is None


def test_placement_warnings_point_at_the_pattern_and_the_spec(tmp_path: Path) -> None:
    text = FULL.replace('pipelines: [report, "sales_daily"]', 'pipelines: [reprot, "sales_daily"]')
    loaded = load_workspace(write(tmp_path, text.replace("team: finance", "team: marketing")))
    (tmp_path / "dags" / "report.yaml").write_text(REPORT.replace("team: finance", "team: marketing"))
    sources = loaded.load_pipelines()
    warnings = [str(w) for w in loaded.placement_problems(sources.pipelines, sources=sources)]
    assert warnings == [
        f"{tmp_path}/meta.yaml:22:17: no pipeline matches 'reprot' (placed on 'prefect-main'); specs: dags",
        f"{tmp_path}/dags/report.yaml:1: pipeline 'report': team 'marketing' is not a team of the workspace "
        f"{tmp_path}/meta.yaml; defined: finance, sales",
    ]


# ------------------------------------------------------------------------------------------------ connections


def test_connections_resolve_secrets_and_map_pipelines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("META_SECRET_AIRFLOW_PW", "af-secret-4411")
    monkeypatch.setenv("META_SECRET_PREFECT_AUTH", "user:pf-secret-4411")
    monkeypatch.setenv("META_SECRET_PG_PW", "pg-secret-4411")
    monkeypatch.setenv("META_SECRET_INGEST", "ingest-secret-4411")
    loaded = load_workspace(write(tmp_path))
    airflow = resolve_connection(loaded, "prod-airflow")
    assert airflow.kind == "airflow" and airflow.url == "http://127.0.0.1:8080"
    assert airflow.credentials == {"username": "admin", "password": "af-secret-4411"}
    assert airflow.pipelines == {"sales_daily": "sales_daily"}  # the DAG id is the pipeline id
    assert airflow.options["specs_dir"] == str(tmp_path / "airflow" / "specs")
    assert airflow.options["openlineage_namespace"] == "prod-airflow"
    assert "af-secret-4411" not in repr(airflow)
    prefect, local = resolve_connections(loaded)[1:]
    assert prefect.credentials == {"auth": "user:pf-secret-4411"} and prefect.options["work_pool"] == "main"
    assert prefect.pipelines == {"report": "report", "sales_daily": "sales_daily"}  # the flow name is the id
    assert local.options["state_dir"] == str(tmp_path / ".state") and local.url == (tmp_path / ".state").as_uri()
    assert local.options["specs"] == {
        "report": str(tmp_path / "dags" / "report.yaml"),
        "sales_daily": str(tmp_path / "dags" / "sales.yaml"),
    }
    assert database_url(loaded) == "postgresql://meta:pg-secret-4411@127.0.0.1:5432/meta"
    assert control_plane_secret(loaded, "ingest_token") == "ingest-secret-4411"
    assert control_plane_secret(loaded, "admin_token") is None
    # Every resolved value is redacted from logs and errors from now on.
    assert redact("pw af-secret-4411 / pg-secret-4411") == "pw *** / ***"


def test_a_missing_secret_names_backend_field_and_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("META_SECRET_AIRFLOW_PW", raising=False)
    monkeypatch.setenv("META_SECRETS_DIR", str(tmp_path / "no-secrets"))
    loaded = load_workspace(write(tmp_path))
    with pytest.raises(WorkspaceSecretMissing) as caught:
        backend_credentials(loaded, "prod-airflow")
    message = str(caught.value)
    assert message.startswith("backend 'prod-airflow': password needs secret 'AIRFLOW_PW', which is not set")
    assert "META_SECRET_AIRFLOW_PW" in message  # where it was looked for
    with pytest.raises(WorkspaceSecretMissing, match=r"^control_plane\.database needs secret 'PG_PW'"):
        database_url(loaded)


def test_an_unknown_backend_is_named(tmp_path: Path) -> None:
    with pytest.raises(Exception, match=r"no backend 'nope' in the workspace .*; defined: laptop, prefect-main"):
        resolve_connection(load_workspace(write(tmp_path)), "nope")


# ------------------------------------------------------------------------------------------------ schema


def test_meta_schema_workspace_publishes_a_schema_the_examples_satisfy(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["schema", "--workspace"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    assert schema["$id"] == "https://meta-orchestrator.dev/schema/workspace.json"
    validator = jsonschema.Draft202012Validator(schema)
    from meta.authoring.yamlpos import Builder, compose_all

    docs, _ = compose_all(FULL, "meta.yaml")
    validator.validate(Builder("meta.yaml").value(docs[0].node))
    docs_example = _docs_example()
    validator.validate(Builder("docs").value(compose_all(docs_example, "docs")[0][0].node))
    airflow = jsonschema.Draft202012Validator({"$defs": schema["$defs"], "$ref": "#/$defs/AirflowBackend"})
    errors = [e.message for e in airflow.iter_errors({"kind": "airflow", "url": "http://a", "password": "x"})]
    assert errors == [f"'x' does not match {SECRET_REF.pattern!r}"]  # editors flag a literal credential too
    assert validator.is_valid({"backends": {"a": {"kind": "dagster", "url": "http://a"}}})  # a plugin's kind
    assert not validator.is_valid({"backends": {"a": {"kind": "airflow", "url": "http://a", "bogus": 1}}})
    # `meta schema` without the flag is still the pipeline schema.
    plain = json.loads(CliRunner().invoke(cli, ["schema"]).output)
    assert plain["$id"] == "https://meta-orchestrator.dev/schema/pipeline.json"


def _docs_example() -> str:
    """The complete example of docs/workspace.md (the first ```yaml block): it must load and fit the schema."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "workspace.md").read_text()
    return text.split("```yaml\n", 1)[1].split("```", 1)[0]


def test_the_docs_example_loads(tmp_path: Path) -> None:
    loaded = loads_workspace(_docs_example(), tmp_path / "meta.yaml")
    assert loaded.workspace.backends and loaded.workspace.placements and loaded.workspace.teams


# ------------------------------------------------------------------------------------------------ meta deploy


def test_deploy_from_the_workspace_plans_then_deploys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Airflow's deploy writes spec files, so the plan's three states are observable on a real folder."""
    text = """\
backends:
  af: {kind: airflow, url: "http://127.0.0.1:1", specs_dir: out}
  laptop: {kind: local}
placements:
  - {backend: af, pipelines: ["sales_*"]}
  - {backend: laptop, pipelines: ["*"]}
"""
    write(tmp_path, text)
    monkeypatch.chdir(tmp_path / "dags")  # found by walking up
    runner = CliRunner()
    dry = runner.invoke(cli, ["deploy", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    spec = tmp_path / "out" / "sales_daily.json"
    assert f"  created    sales_daily  writes {spec}" in dry.output
    assert "backend laptop (local): 2 pipelines" in dry.output
    assert "nothing to deploy: the local runner reads the specs directly: report, sales_daily" in dry.output
    assert dry.output.rstrip().endswith("(dry run: nothing was changed)")
    assert not (tmp_path / "out").exists()
    done = runner.invoke(cli, ["deploy"])
    assert done.exit_code == 0, done.output
    assert spec.is_file() and "deployed: 1 created, 0 changed, 0 unchanged, 0 refused" in done.output
    again = runner.invoke(cli, ["deploy", "--dry-run"])
    assert f"  unchanged  sales_daily  {spec}" in again.output
    before = spec.read_text()
    (tmp_path / "dags" / "sales.yaml").write_text(SALES.replace("echo load", "echo reload"))
    changed = runner.invoke(cli, ["deploy", "--dry-run"])
    assert f"  changed    sales_daily  rewrites {spec} (changed: tasks)" in changed.output
    assert spec.read_text() == before  # a dry run changes nothing


def test_a_refused_pipeline_blocks_the_whole_deploy(tmp_path: Path) -> None:
    text = """\
backends:
  af: {kind: airflow, url: "http://127.0.0.1:1", specs_dir: out}
placements:
  - {backend: af, pipelines: ["*"]}
"""
    write(tmp_path, text)
    (tmp_path / "dags" / "late.yaml").write_text(
        "pipeline: late\nschedule: '0 1 * * *'\nparams:\n  country: {type: string}\ntasks:\n  t: {noop: true}\n"
    )
    for args in (["--dry-run"], []):
        result = CliRunner().invoke(cli, ["deploy", "--workspace", str(tmp_path), *args])
        assert result.exit_code == 1, result.output
        assert (
            "  refused    late         airflow cannot express required params on a scheduled pipeline "
            "(pipeline 'late'): Airflow refuses a schedule when a param has no default (country); give them defaults"
        ) in result.output
        assert "  created    report" in result.output and "  created    sales_daily" in result.output
        assert not (tmp_path / "out").exists()  # nothing is half-deployed
    assert result.output.rstrip().endswith("nothing was deployed (fix the refusals and errors above first)")


def test_backend_options_belong_to_target_mode(tmp_path: Path) -> None:
    write(tmp_path)
    result = CliRunner().invoke(cli, ["deploy", "--workspace", str(tmp_path), "--pool", "x"])
    assert result.exit_code == 2
    assert "--pool goes with --target prefect; without --target the workspace file says" in result.output
    both = CliRunner().invoke(cli, ["deploy", "--target", "airflow", str(tmp_path / "dags"), "--workspace", "."])
    assert both.exit_code == 2 and "give it or --target, not both" in both.output


def test_target_dry_run_plans_without_writing(tmp_path: Path) -> None:
    write(tmp_path)
    out = tmp_path / "specs"
    args = ["deploy", "--target", "airflow", str(tmp_path / "dags"), "--specs-dir", str(out)]
    dry = CliRunner().invoke(cli, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert dry.output.splitlines() == [
        f"created    report       writes {out / 'report.json'}",
        f"created    sales_daily  writes {out / 'sales_daily.json'}",
    ]
    assert not out.exists()
    real = CliRunner().invoke(cli, args)  # as before: one written path per line
    assert real.output.splitlines() == [str(out / "report.json"), str(out / "sales_daily.json")]


def test_shape_errors_use_yaml_words(tmp_path: Path) -> None:
    file = tmp_path / "meta.yaml"
    assert problems_of("backends: []\nplacements: {a: 1}\nspecs: []\ncontrol_plane: 5\n", tmp_path) == [
        f"{file}:1:11: backends: expected a mapping",
        f"{file}:2:13: placements: expected a list",
        f"{file}:3:8: specs: needs at least one item",
        f"{file}:4:16: control_plane: expected a mapping",
    ]
