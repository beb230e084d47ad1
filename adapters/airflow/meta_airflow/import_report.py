"""``python -m meta_airflow.import_report [OUT.md] [--json OUT.json] [--corpus NAME=DIR ... | --corpus-from J]``.

Airflow's own example DAGs, DAG by DAG: full (every task and field mapped), partial (imported, with notes on what was
left out or kept as an Airflow-only passthrough) or refused (no neutral form, with the reason); and whether import ->
compile -> import gives the same pipeline back (the fixed point).

A corpus of real-world repositories (``--corpus NAME=DIR``, each DIR holding one repository's DAG folders, see
``dag_folders``; docs/import-report.md names the repositories and how they were ported): counts per repository and
the most common refusal reasons, never their code; ``--corpus-from FILE`` reads them from a JSON file written by
``bench/bench_import.py --json`` (or by this report) instead. ``--json`` writes the same figures as JSON. The text
between ``<!-- corpus-notes -->`` and ``<!-- /corpus-notes -->`` of an existing OUT.md (the repositories, their
commits, the before/after figures) is kept when the file is regenerated.

``tally`` and ``dag_folders`` are also what ``bench/bench_import.py`` counts with; they need only ``import_dags``
and ``meta.ImportOutcome``, so the benchmark can measure an older importer with the same counting.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

NOTES_START, NOTES_END = "<!-- corpus-notes -->", "<!-- /corpus-notes -->"
# Folders that hold no DAGs of their own even when their files mention DAG (tests, plugins, helpers, CI).
NOT_DAG_FOLDERS = {"tests", "test", "plugins", "include", "utils", "docs", ".github", ".astro", "node_modules", "venv"}


def example_folders() -> list[Path]:
    import airflow
    import airflow.providers.standard

    return [
        Path(airflow.__file__).parent / "example_dags",
        Path(airflow.providers.standard.__file__).parent / "example_dags",
    ]


def fixed_point(imported: Any) -> str:
    from meta_airflow.build import build_dag
    from meta_airflow.importer import pipeline_of

    if imported.pipeline is None:
        return "-"
    try:
        again = pipeline_of(build_dag(imported.pipeline), {})
    except Exception as exc:
        return f"no: {type(exc).__name__}: {exc}"
    return "yes" if again.pipeline == imported.pipeline else "no: the re-imported pipeline differs"


def report(folders: list[Path]) -> tuple[str, list[Any]]:
    from meta_airflow.importer import import_folder

    lines: list[str] = []
    all_rows: list[Any] = []
    for folder in folders:
        results = import_folder(folder)
        rows = [(r, fixed_point(r)) for r in results]
        all_rows += rows
        counts = Counter(r.status for r in results)
        label = (
            "/".join(folder.parts[folder.parts.index("site-packages") + 1 :])
            if "site-packages" in folder.parts
            else folder
        )
        lines += [
            f"## {label}",
            "",
            f"{len(results)} DAGs: {counts['full']} full, {counts['partial']} partial, {counts['refused']} refused.",
            "",
            "| DAG | result | fixed point | why |",
            "|---|---|---|---|",
        ]
        for r, fp in rows:
            why = r.refused if r.refused else "; ".join(r.notes)
            why = " ".join(why.split()).replace("|", "\\|")
            lines.append(f"| {r.dag_id} | {r.status} | {fp} | {why[:400]} |")
        lines.append("")
    return "\n".join(lines), all_rows


# ------------------------------------------------------------------------------------------------ corpus


def mentions_a_dag(folder: Path) -> bool:
    for file in folder.glob("*.py"):
        try:
            text = file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if "DAG(" in text or "@dag" in text or "@asset" in text:
            return True
    return False


def dag_folders(root: Path) -> list[Path]:
    """The DAG folders under ``root``: every folder named ``dags`` (Airflow's convention; parsed with its
    subfolders), else every folder whose own ``.py`` files define a DAG, outside tests, plugins and helpers;
    ``root`` itself when it is one."""
    found: list[Path] = []
    for current, subdirs, _ in os.walk(root):
        here = Path(current)
        subdirs.sort()
        if here != root and (here.name in NOT_DAG_FOLDERS or here.name.startswith(".")):
            subdirs.clear()
            continue
        if here.name == "dags" or (mentions_a_dag(here) and "dags" not in subdirs):
            found.append(here)
            subdirs.clear()
    return found


KINDS = ("full", "partial", "refused", "missing_provider", "not_parsed", "crash")
KIND_LABELS = {
    "full": "full",
    "partial": "partial",
    "refused": "refused",
    "missing_provider": "files missing a provider",
    "not_parsed": "other files Airflow could not import",
    "crash": "importer crashes",
}
_MISSING_MODULE = re.compile(r"No module named '([^']+)'")
_CRASH = re.compile(r"could not map this DAG \((\w+): (.*)\); please report it", re.DOTALL)


@dataclass
class Tally:
    """What importing some DAG folders gave. ``full``/``partial``/``refused``/``crash`` count DAGs Airflow parsed
    (``crash``: the importer failed on it, unforeseen: a bug); ``missing_provider``/``not_parsed`` count DAG files
    Airflow could not import (a module that is not installed / anything else)."""

    folders: int = 0
    seconds: float = 0.0
    counts: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)  # refusal reason kinds of refused DAGs
    missing_modules: Counter[str] = field(default_factory=Counter)
    file_errors: Counter[str] = field(default_factory=Counter)  # the other files' error kinds

    @property
    def parsed(self) -> int:
        return self.counts["full"] + self.counts["partial"] + self.counts["refused"] + self.counts["crash"]

    def add(self, other: Tally) -> None:
        self.folders += other.folders
        self.seconds += other.seconds
        for mine, theirs in (
            (self.counts, other.counts),
            (self.reasons, other.reasons),
            (self.missing_modules, other.missing_modules),
            (self.file_errors, other.file_errors),
        ):
            mine.update(theirs)

    def summary(self) -> str:
        return f"{self.parsed} DAGs parsed: " + ", ".join(f"{self.counts[k]} {KIND_LABELS[k]}" for k in KINDS)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["parsed"] = self.parsed
        data["counts"] = {k: self.counts[k] for k in KINDS}
        for key in ("reasons", "missing_modules", "file_errors"):
            data[key] = dict(getattr(self, key).most_common())
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tally:
        """A tally written by ``as_json`` (this report's --json, or bench_import's per repository)."""
        return cls(
            folders=data["folders"],
            seconds=data["seconds"],
            counts=Counter(data["counts"]),
            reasons=Counter(data["reasons"]),
            missing_modules=Counter(data["missing_modules"]),
            file_errors=Counter(data["file_errors"]),
        )


def reason_kind(reason: str) -> str:
    """A refusal reason with its specifics (task ids, names, values) blanked, so alike reasons count together."""
    text = " ".join(reason.split())
    text = re.sub(r"^(task|DAG) [\w.\-\[\]]+: ", "", text)
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", text)
    text = re.sub(r"\[[^\]]*\]", "[…]", text)
    text = re.sub(r"\b[\w.]+\.(\w+(?:Operator|Sensor|Decorator\w*|Trigger))\b", r"\1", text)
    text = re.sub(r"\b(result of|argument|of task) [\w.\-]+", r"\1 …", text)  # the DAG's own task and argument names
    text = re.sub(r"\d+", "N", text)
    text = re.split(r"[;(]", text, maxsplit=1)[0].strip()
    return text[:110]


def file_error_kind(reason: str) -> str:
    message = reason.removeprefix("Airflow could not import it: ")
    return reason_kind(message.split(":", 1)[0] if ":" in message else message)


def module_kind(module: str) -> str:
    """A missing module as counted: a provider package (``airflow.providers.google``), another ``airflow`` module
    in full (one Airflow 3 no longer has), else its top-level package (``pandas``)."""
    parts = module.split(".")
    if parts[:2] == ["airflow", "providers"]:
        return ".".join(parts[:4] if parts[2:3] == ["common"] else parts[:3])
    return module if parts[0] == "airflow" else parts[0]


def tally(outcome: Any) -> Tally:
    """Count one ``meta.ImportOutcome`` (of ``import_dags``): refusals of a "DAG file" are files Airflow could not
    import (for a module that is not installed, or another reason: an Airflow 2 module counts as another reason);
    a refusal saying the importer could not map the DAG (an unforeseen error) is a crash."""
    out = Tally(folders=1)
    for item in outcome.imported:
        out.counts["partial" if item.notes else "full"] += 1
    for refusal in outcome.refused:
        text = f"{refusal.reason} {refusal.received or ''}"
        if not refusal.subject.startswith("DAG '"):
            missing = _MISSING_MODULE.search(text)
            module = module_kind(missing.group(1)) if missing else "?"
            if module.startswith("airflow.") and not module.startswith("airflow.providers."):
                # an Airflow 2 module Airflow 3 no longer has (the port left it): no package would bring it back
                out.counts["not_parsed"] += 1
                out.file_errors[f"Airflow 2 module {module}"] += 1
            elif missing or "missing provider" in text.lower():
                out.counts["missing_provider"] += 1
                out.missing_modules[module] += 1
            else:
                out.counts["not_parsed"] += 1
                out.file_errors[file_error_kind(refusal.reason)] += 1
        elif "could not map this DAG" in refusal.reason:
            out.counts["crash"] += 1
            crash = _CRASH.search(refusal.reason)
            kind = f"{crash.group(1)}: {reason_kind(crash.group(2))}" if crash else reason_kind(refusal.reason)
            out.reasons["importer crash: " + kind] += 1
        else:
            out.counts["refused"] += 1
            out.reasons[reason_kind(refusal.reason)] += 1
    return out


def import_corpus(repos: dict[str, Path]) -> dict[str, Tally]:
    """Each repository's DAG folders imported (``import_dags``, one folder at a time), tallied per repository."""
    import time

    from meta_airflow.importer import import_dags

    out: dict[str, Tally] = {}
    for name, root in repos.items():
        total = Tally()
        for folder in dag_folders(root):
            with project_on_path(folder):
                start = time.perf_counter()
                try:
                    one = tally(import_dags(folder))
                except Exception as exc:  # the importer must never raise for a folder Airflow can read
                    one = Tally(folders=1)
                    one.counts["crash"] += 1
                    one.reasons[f"importer crash (folder): {type(exc).__name__}"] += 1
                one.seconds = time.perf_counter() - start
            total.add(one)
        out[name] = total
    return out


class project_on_path:
    """While a DAG folder is imported, its project's folder and ``plugins`` folder are on ``sys.path`` (as in an
    Airflow deployment of that project), and modules an earlier project loaded from its own files are forgotten
    (two projects' ``include`` or ``utils`` packages must not shadow each other)."""

    def __init__(self, folder: Path) -> None:
        self.project = folder.parent
        self.paths = [str(folder), str(self.project), str(self.project / "plugins")]

    loaded: set[str] = set()  # the projects whose modules may be in sys.modules

    def __enter__(self) -> None:
        self.saved = list(sys.path)
        sys.path[:0] = self.paths
        roots = tuple(root + os.sep for root in project_on_path.loaded)
        doomed: set[str] = set()
        for name, module in list(sys.modules.items()) if roots else []:
            if name.rpartition(".")[0] in doomed:
                doomed.add(name)
                continue
            # a namespace package (an ``include`` folder without __init__.py) has no __file__, only its __path__
            try:
                places = [getattr(module, "__file__", None) or "", *list(getattr(module, "__path__", None) or [])]
            except Exception:  # a namespace path that cannot be recomputed any more
                places = []
            if any(str(place).startswith(roots) for place in places):
                doomed.add(name)
        for name in doomed:
            del sys.modules[name]
        project_on_path.loaded.add(str(self.project))

    def __exit__(self, *exc: object) -> None:
        sys.path[:] = self.saved


def corpus_markdown(tallies: dict[str, Tally], top: int = 15) -> str:
    total = Tally()
    for one in tallies.values():
        total.add(one)
    lines = [
        "## Real-world corpus",
        "",
        f"**{total.summary()}.** {total.folders} DAG folders, imported in {total.seconds:.1f} s.",
        "",
        "| repository | folders | DAGs parsed | full | partial | refused | importer crashes | files missing a "
        "provider | other files Airflow could not import |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, t in tallies.items():
        c = t.counts
        lines.append(
            f"| {name} | {t.folders} | {t.parsed} | {c['full']} | {c['partial']} | {c['refused']} | {c['crash']} "
            f"| {c['missing_provider']} | {c['not_parsed']} |"
        )
    lines += ["", f"Top refusal reasons (of {sum(total.reasons.values())}; names and values blanked as '…'):", ""]
    lines += ["| DAGs | reason |", "|---|---|"]
    lines += [f"| {n} | {reason.replace('|', chr(92) + '|')} |" for reason, n in total.reasons.most_common(top)]
    if total.missing_modules:
        lines += [
            "",
            "Modules missing for the files that did not import: "
            + ", ".join(f"`{m}` ({n})" for m, n in total.missing_modules.most_common(top))
            + ".",
        ]
    if total.file_errors:
        lines += [
            "",
            "Other files' errors: " + ", ".join(f"{k} ({n})" for k, n in total.file_errors.most_common(top)) + ".",
        ]
    return "\n".join(lines) + "\n"


def kept_notes(out: Path | None) -> str:
    """The hand-written corpus notes of an existing report, markers included (empty if none)."""
    if out is None or not out.exists():
        return ""
    text = out.read_text(encoding="utf-8")
    if NOTES_START in text and NOTES_END in text:
        return text[text.index(NOTES_START) : text.index(NOTES_END) + len(NOTES_END)] + "\n"
    return ""


def parse_args(argv: list[str]) -> tuple[Path | None, Path | None, dict[str, Path], Path | None]:
    out: Path | None = None
    json_out: Path | None = None
    corpus_from: Path | None = None
    repos: dict[str, Path] = {}
    args = iter(argv[1:])
    for arg in args:
        if arg == "--json":
            json_out = Path(next(args))
        elif arg == "--corpus":
            name, _, folder = next(args).rpartition("=")
            repos[name or Path(folder).name] = Path(folder)
        elif arg == "--corpus-from":
            corpus_from = Path(next(args))
        else:
            out = Path(arg)
    return out, json_out, repos, corpus_from


def corpus_from_json(path: Path) -> dict[str, Tally]:
    """The per-repository tallies of a JSON file: bench_import's ``--json`` (``repositories``) or this report's
    (``corpus``). The corpus can then be measured in an environment with its providers installed while the
    example DAGs are reported in the project's own."""
    data = json.loads(path.read_text(encoding="utf-8"))
    repos = data.get("repositories", data.get("corpus", {}))
    return {name: Tally.from_json(t) for name, t in repos.items()}


def main(argv: list[str]) -> int:
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="meta_import_report_"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    out, json_out, repos, corpus_from = parse_args(argv)
    tallies = import_corpus(repos) if repos else corpus_from_json(corpus_from) if corpus_from else {}
    body, rows = report(example_folders())
    counts = Counter(r.status for r, _ in rows)
    reasons: Counter[str] = Counter()
    for r, _ in rows:
        if r.refused:
            text = r.refused.split(": ", 1)[-1]
            for key in (
                "mapped task group",
                "dynamic mapping",
                "expand_kwargs",
                "expand(",
                "XComArg",
                "takes the XCom",
                "take results of other tasks",
                "takes the result of",
                "not importable by name",
                "positional argument",
                "not plain data",
                "literal credential",
                "trigger_rule",
                "defined inside a function",
            ):
                if key in text:
                    reasons[key] += 1
                    break
            else:
                reasons["other"] += 1
    broken = [(r.dag_id, fp) for r, fp in rows if fp.startswith("no")]
    head = [
        "# Importing Airflow's example DAGs",
        "",
        "Generated by `.venv/bin/python -m meta_airflow.import_report docs/import-report.md` (Airflow 3.3.2,",
        "providers-standard 1.21.0). Nothing crashes: every DAG is mapped fully, partly, or refused with a reason.",
        "",
        f"**{len(rows)} DAGs: {counts['full']} full, {counts['partial']} partial, {counts['refused']} refused.** "
        f"Fixed point (import -> compile -> import gives the same pipeline): "
        f"{sum(1 for _, fp in rows if fp == 'yes')} of {counts['full'] + counts['partial']} imported DAGs"
        + (f"; differs for {', '.join(d for d, _ in broken)}." if broken else "."),
        "",
        "Refusal reasons: " + ", ".join(f"{k}: {v}" for k, v in reasons.most_common()) + ".",
        "",
        "- *full*: every task and DAG field has a neutral form. Callables the DAG file defines (module functions,",
        "  TaskFlow functions in `with DAG` or nested in `@dag`) are lifted into a module written beside the specs",
        "  (docs/airflow.md). Return values flow between tasks: an XComArg argument (`load(transform(extract()))`,",
        "  `op.output`) becomes `{{ tasks.ID.result }}`, a plain `ti.xcom_pull(task_ids='ID')` in templated text",
        "  becomes `tasks.ID.result`, and `f.partial(...).expand(...)` of a python task becomes a python task with",
        "  `kwargs` and `map`. A result must be JSON of at most 64 KiB: meta checks it when the task runs.",
        "- *partial*: imported; the notes list what was left out (UI-only param keywords, timetables without a",
        "  neutral form, XComs pushed or pulled by key, `multiple_outputs`' per-key XComs, callables that call",
        "  `ti.xcom_pull`/`xcom_push` themselves) or kept as an `airflow_operator` passthrough that compiles back",
        "  to Airflow only (sensors among them; other backends refuse it, naming the operator).",
        "- *refused*: no neutral form: callables that cannot be lifted (lambdas, closures over values that are not",
        "  constants), operator arguments that are not plain data (objects, callables; an XComArg included: a",
        "  passthrough takes no results), mapping that is not `expand` of a python task over keyword arguments",
        "  (`expand_kwargs`, mapped task groups, other operators), XComArgs by key or transformed (`.map()`,",
        "  `.zip()`, `.concat()`), setup/teardown trigger rules, literal secrets.",
        "",
    ]
    if tallies:
        head[2:4] = [
            "Generated by `.venv/bin/python -m meta_airflow.import_report docs/import-report.md --json",
            "docs/import-report.json --corpus-from after.json` (Airflow 3.3.2, providers-standard 1.21.0; the corpus",
            "of real-world repositories and how it was measured is described below). Of the example DAGs, every one",
            "is mapped fully, partly, or refused with a reason.",
        ]
        head += [kept_notes(out), corpus_markdown(tallies)]
    text = "\n".join(head) + "\n" + body
    if out is not None:
        out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    if json_out is not None:
        data = {
            "examples": {
                "dags": len(rows),
                "counts": dict(counts),
                "reasons": dict(reasons.most_common()),
                "per_dag": [
                    {"dag_id": r.dag_id, "status": r.status, "fixed_point": fp, "why": r.refused or "; ".join(r.notes)}
                    for r, fp in rows
                ],
            },
            "corpus": {name: t.as_json() for name, t in tallies.items()},
        }
        json_out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
