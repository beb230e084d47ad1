"""Find and load the workspace file (``meta.yaml``), reporting every problem with file:line:col like pipeline specs.

``find_workspace`` walks up from a folder to the first ``meta.yaml``, as Prefect finds ``prefect.yaml`` and dbt
``dbt_project.yml``, so every command run anywhere inside a project sees the same workspace. ``load_workspace``
parses it with meta's YAML (1.2 scalars, duplicate keys refused, positions kept: ``meta.authoring.yamlpos``),
validates it into :class:`meta.spec.workspace.Workspace` and returns a :class:`LoadedWorkspace`: the model, the
file and its folder, against which relative paths in the file (``specs``, ``specs_dir``, ``flows_dir``,
``state_dir``) resolve. Secrets are not resolved here (that is ``meta.service.connections``): loading a workspace
never needs a credential.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from yaml.nodes import Node

from meta.authoring import yamlpos
from meta.authoring.build import Loaded, describe_error, in_file_order
from meta.spec.checks import SECRET_KEY
from meta.spec.errors import Problem, ValidationFailed
from meta.spec.model import Pipeline
from meta.spec.workspace import (
    BACKEND_KINDS,
    NAME_PATTERN,
    AirflowBackend,
    Loc,
    LocalBackend,
    PrefectBackend,
    Workspace,
    WorkspaceInvalid,
)

WORKSPACE_FILE = "meta.yaml"
# Fields whose input is never echoed in an error, besides credential-looking keys (a URL may embed a password).
_NEVER_SHOWN = frozenset({"database", "url"})
# Pydantic's Python words for YAML shapes.
_PLAIN = {
    "tuple_type": "expected a list",
    "list_type": "expected a list",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "too_short": "needs at least one item",
}
_PATTERN_HELP = {
    NAME_PATTERN: "a name of lower-case letters, digits, '_' and '-' that starts with a letter",
    r"^https?://": "an http:// or https:// URL",
}


@dataclass(frozen=True)
class LoadedWorkspace:
    """A validated workspace and where it was read from. ``node`` (the YAML tree) lets later stages point at a
    value's line (``problem``)."""

    workspace: Workspace
    path: Path  # absolute
    node: Node | None = field(default=None, repr=False, compare=False)

    @property
    def root(self) -> Path:
        """The folder of the workspace file: relative paths in it are relative to this folder."""
        return self.path.parent

    def resolve(self, value: str | Path) -> Path:
        """``value`` (``~`` expanded) as an absolute path; relative ones against the workspace file's folder."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.root / path

    @property
    def state_dir(self) -> Path:
        """The state directory for this workspace: ``META_HOME`` (a relative one against the workspace's folder),
        else ``.meta`` beside the workspace file (the control plane's default database lives there)."""
        from meta.settings import state_dir

        home = state_dir()
        return home if home.is_absolute() else self.root / home

    def spec_paths(self) -> list[Path]:
        """The ``specs`` files and folders, resolved."""
        return [self.resolve(s) for s in self.workspace.specs]

    def load_pipelines(self) -> Loaded:
        """Every pipeline under ``specs`` with where it was defined (raises ValidationFailed like ``meta validate``)."""
        from meta.authoring.load import load_paths_with_sources

        return load_paths_with_sources(self.spec_paths())

    def backend_dir(self, backend: str) -> Path | None:
        """The folder a backend's deploy or history lives in (Airflow ``specs_dir``, Prefect ``flows_dir``, local
        ``state_dir``), resolved; None when the file does not say (the backend's default applies)."""
        found = self.workspace.backends[backend]
        if isinstance(found, AirflowBackend):
            value = found.specs_dir
        elif isinstance(found, PrefectBackend):
            value = found.flows_dir
        elif isinstance(found, LocalBackend):
            value = found.state_dir
        else:  # a plugin's kind keeps its folders in its own options
            value = None
        return self.resolve(value) if value else None

    def problem(self, loc: Loc, message: str, at_key: bool = False) -> Problem:
        """A Problem at the value ``loc`` (``("placements", 0, "backend")``) of the file."""
        line = col = None
        if self.node is not None:
            node, key_node, depth = yamlpos.find(self.node, loc)
            line, col = yamlpos.mark_of(key_node if at_key and depth == len(loc) and key_node is not None else node)
        return Problem(message, file=str(self.path), line=line, col=col)

    def placement_problems(
        self, pipelines: Sequence[Pipeline], all_ids: Sequence[str] = (), sources: Loaded | None = None
    ) -> list[Problem]:
        """Warnings about placements and teams against ``pipelines``: a placement pattern that matches none of
        ``all_ids`` (default: their ids; usually a typo), a spec whose ``team:`` the workspace does not define
        (located at its spec when ``sources`` says where it was defined)."""
        ws = self.workspace
        out = [
            self.problem(
                ("placements", i, "pipelines", j),
                f"no pipeline matches {pattern!r} (placed on {ws.placements[i].backend!r}); "
                f"specs: {', '.join(ws.specs)}",
            )
            for i, j, pattern in ws.unmatched_patterns(all_ids or [p.id for p in pipelines])
        ]
        if ws.teams:
            for pipeline in pipelines:
                if pipeline.team and pipeline.team not in ws.teams:
                    source = sources.source_of(pipeline.id) if sources else None
                    out.append(
                        Problem(
                            f"team {pipeline.team!r} is not a team of the workspace {self.path}; "
                            f"defined: {', '.join(sorted(ws.teams))}",
                            file=source.file if source else None,
                            line=source.line if source else None,
                            pipeline=pipeline.id,
                        )
                    )
        return out


def declared_teams(workspace: LoadedWorkspace, pipelines: Sequence[Pipeline] | None = None) -> dict[str, str | None]:
    """Pipeline id -> the ``team:`` its spec declares (None when it declares none), for ``Workspace.team_of``.
    ``pipelines``: the workspace's specs already loaded (default: loaded here)."""
    found = workspace.load_pipelines().pipelines if pipelines is None else pipelines
    return {p.id: p.team for p in found}


def find_workspace(start: Path | None = None) -> Path | None:
    """The first ``meta.yaml`` in ``start`` (default: the working directory) or any folder above it; None if none."""
    here = (start or Path.cwd()).absolute()
    if here.is_file():
        here = here.parent
    for folder in (here, *here.parents):
        candidate = folder / WORKSPACE_FILE
        if candidate.is_file():
            return candidate
    return None


def load_workspace(path: str | Path) -> LoadedWorkspace:
    """Read and validate a workspace file; raises ValidationFailed listing every problem with file:line:col."""
    file = Path(path).absolute()
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationFailed([Problem(f"cannot read the workspace file: {exc}", file=str(file))]) from None
    return loads_workspace(text, file)


def loads_workspace(text: str, path: str | Path = WORKSPACE_FILE) -> LoadedWorkspace:
    """``load_workspace`` for text already read; ``path`` is where it says it came from (and relative paths root)."""
    file = Path(path).absolute()
    name = str(file)
    docs, problems = yamlpos.compose_all(text, name)
    if len(docs) > 1:
        line, col = yamlpos.mark_of(docs[1].node)
        problems.append(Problem("a workspace file holds one YAML document; found more", name, line, col))
    if not docs:
        if not problems:
            problems.append(Problem(_EMPTY, name, 1, 1))
        raise ValidationFailed(problems)
    node = docs[0].node
    builder = yamlpos.Builder(name)
    value = builder.value(node)
    problems.extend(builder.problems)
    loaded = LoadedWorkspace(Workspace(), file, node)  # a placeholder that can locate problems
    if value is None:
        value = {}  # a file of only comments: every default
    if not isinstance(value, dict):
        problems.append(loaded.problem((), "the workspace file must be a mapping (backends:, placements:, ...)"))
        raise ValidationFailed(in_file_order(problems))
    workspace: Workspace | None = None
    unknown = _unknown_kinds(value, loaded)
    problems.extend(unknown.values())
    try:
        workspace = Workspace.model_validate(value)
    except ValidationError as exc:
        problems.extend(p for p in _problems(exc, loaded, skip=set(unknown)))
        problems.extend(_raw_placements(value, loaded))
    if problems or workspace is None:
        raise ValidationFailed(in_file_order(_dedupe(problems)))
    return LoadedWorkspace(workspace, file, node)


_EMPTY = (
    "the workspace file is empty; it names the backends and where pipelines run, e.g.\n"
    "    backends:\n      prod-airflow: {kind: airflow, url: 'http://127.0.0.1:8080'}\n"
    "    placements:\n      - {backend: prod-airflow, pipelines: ['*']}"
)


def _unknown_kinds(value: dict[str, Any], at: LoadedWorkspace) -> dict[str, Problem]:
    """Backends whose ``kind`` neither meta nor an installed plugin (``register_observers``) knows, by name: a
    misspelled ``airflw`` is reported here, at its line, not as a plugin kind nobody provides."""
    from meta.plugins.manager import observer_kinds
    from meta.spec.checks import did_you_mean

    backends = value.get("backends")
    if not isinstance(backends, dict):
        return {}
    known = sorted({*BACKEND_KINDS, *observer_kinds()})
    out: dict[str, Problem] = {}
    for name, backend in backends.items():
        kind = backend.get("kind") if isinstance(backend, dict) else None
        if isinstance(kind, str) and kind not in known:
            loc = ("backends", name, "kind")
            plugins = sorted(set(known) - set(BACKEND_KINDS))
            extra = f" (plugins add: {', '.join(plugins)})" if plugins else " (or a kind an installed plugin adds)"
            message = f"expected one of {', '.join(BACKEND_KINDS)}{extra}; received {kind!r}{did_you_mean(kind, known)}"
            out[str(name)] = at.problem(loc, f"{_label(loc)}: {message}")
    return out


def _problems(exc: ValidationError, at: LoadedWorkspace, skip: set[str] | None = None) -> list[Problem]:
    """``skip``: backends already reported (an unknown kind), whose other errors would only be noise."""
    out: list[Problem] = []
    for err in exc.errors():
        raw = tuple(err["loc"])
        if skip and len(raw) >= 2 and raw[0] == "backends" and str(raw[1]) in skip:
            continue
        inner = (err.get("ctx") or {}).get("error")
        if isinstance(inner, WorkspaceInvalid):
            out.extend(at.problem(loc, f"{_label(loc)}: {message}") for loc, message in inner.problems)
            continue
        loc, at_key = _authoring_path(raw)
        at_key = at_key or err["type"] == "extra_forbidden"
        message = _describe(err, loc)
        if err["type"] == "union_tag_invalid":
            loc = (*loc, "kind")
        label = _label(loc)
        out.append(at.problem(loc, f"{label}: {message}" if label else message, at_key))
    return out


def _raw_placements(value: dict[str, Any], at: LoadedWorkspace) -> list[Problem]:
    """Placements naming undefined backends, for when field errors kept pydantic from the cross-field checks (so a
    file with a bad URL *and* a misspelled placement reports both; repeats are dropped by ``_dedupe``)."""
    from meta.spec.checks import did_you_mean

    backends, placements = value.get("backends"), value.get("placements")
    if not isinstance(backends, dict) or not isinstance(placements, list):
        return []
    defined = sorted(str(k) for k in backends)
    out: list[Problem] = []
    for i, placement in enumerate(placements):
        name = placement.get("backend") if isinstance(placement, dict) else None
        if isinstance(name, str) and name not in backends:
            loc = ("placements", i, "backend")
            message = f"unknown backend {name!r}{did_you_mean(name, defined)}; defined: {', '.join(defined) or 'none'}"
            out.append(at.problem(loc, f"{_label(loc)}: {message}"))
    return out


def _authoring_path(loc: tuple[Any, ...]) -> tuple[Loc, bool]:
    """Pydantic's error location -> the path of the value in the file (drop the union's tag, point at keys)."""
    parts = list(loc)
    at_key = False
    if parts and parts[-1] == "[key]":
        parts.pop()
        at_key = True
    if len(parts) >= 3 and parts[0] == "backends" and parts[2] in (*BACKEND_KINDS, "plugin"):
        del parts[2]
    return tuple(parts), at_key


def _describe(err: Any, loc: Loc) -> str:
    kind = err["type"]
    if kind == "union_tag_invalid":
        return f"expected one of {', '.join(BACKEND_KINDS)}; received {err['ctx'].get('tag')!r}"
    if kind == "union_tag_not_found":
        return f"missing 'kind:' (one of {', '.join(BACKEND_KINDS)})"
    if kind == "extra_forbidden" and len(loc) == 1:
        known = ", ".join(Workspace.model_fields)
        return f"unknown key; a workspace file has {known}"
    if kind in _PLAIN:
        return _PLAIN[kind]
    raw = tuple(err["loc"])
    if kind == "extra_forbidden" and len(raw) == 4 and raw[0] == "backends" and raw[2] in _BACKEND_MODELS:
        article = "an" if raw[2][0] in "aeiou" else "a"
        return f"unknown key for {article} {raw[2]} backend; it takes {', '.join(_BACKEND_MODELS[raw[2]].model_fields)}"
    if kind == "string_pattern_mismatch" and err["ctx"].get("pattern") in _PATTERN_HELP:
        shown = "(a value that is not shown)" if any(p in _NEVER_SHOWN for p in loc) else repr(err.get("input"))
        return f"expected {_PATTERN_HELP[err['ctx']['pattern']]}; received {shown}"
    # Our validators never put a value in their messages; other errors echo the input unless it may be a secret.
    secret = kind != "value_error" and any(SECRET_KEY.search(str(p)) or p in _NEVER_SHOWN for p in loc)
    return describe_error(err, secret=secret)


_BACKEND_MODELS: dict[str, type[AirflowBackend | PrefectBackend | LocalBackend]] = {
    "airflow": AirflowBackend,
    "prefect": PrefectBackend,
    "local": LocalBackend,
}


def _label(loc: Sequence[Any]) -> str:
    return ".".join(str(p) for p in loc)


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[Problem] = set()
    return [p for p in problems if not (p in seen or seen.add(p))]  # type: ignore[func-returns-value]
