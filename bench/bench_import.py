"""Import throughput and coverage of ``meta import airflow`` on folders of real DAGs, against Airflow's own parse.

    .venv/bin/python -m bench.bench_import [NAME=]DIR... [--airflow-examples] [--reps 3] [--json OUT.json]

Each DIR is one repository (``meta_airflow.import_report.dag_folders`` finds its DAG folders: every ``dags`` folder,
else every folder whose files define DAGs; DIR itself when it is one). ``--airflow-examples`` adds Airflow's own
``airflow/example_dags`` (what the suite runs, no network; also the default without DIR, as ``python -m bench``
runs it). Each folder is imported the way ``meta import airflow``
does, with ``meta_airflow.importer.import_dags``, and parsed by the peer, Airflow's ``BundleDagBag`` (which
``import_dags`` runs too, then maps every DAG). Both run in this process, alternating which goes first, after one
untimed warm-up parse of the folder (the libraries a DAG file imports are then loaded for both); the best of
``--reps`` runs counts. While a folder is imported its project folder and ``plugins`` are on ``sys.path``, as in a
deployment of that project.

Printed per repository and in total: DAGs Airflow parsed; of them full / partial / refused / importer crash
(unforeseen errors: bugs); DAG files Airflow could not import because a module is missing (a provider or library
not installed here) or for another reason; DAGs per second of meta's import and of the peer's parse, and the ratio.
``--check TARGET`` also counts the imported pipelines each target accepts (``Target.check``, what ``meta compile``
and ``meta migrate plan`` check) and the features it refuses.
The counting (``meta_airflow.import_report.tally``) needs only ``import_dags`` and ``meta.ImportOutcome``, so an
older importer is measured with the same code (docs/benchmarks.md: before/after).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RepoRun:
    name: str
    root: Path
    meta_seconds: float = 0.0
    peer_seconds: float = 0.0
    peer_dags: int = 0
    tally: Any = None  # meta_airflow.import_report.Tally
    mismatches: list[str] = field(default_factory=list)
    accepted: Counter[str] = field(default_factory=Counter)  # target -> imported pipelines it compiles
    refused_features: dict[str, Counter[str]] = field(default_factory=dict)  # target -> feature -> pipelines


def check_targets(run: RepoRun, outcome: Any, names: list[str]) -> None:
    """Which imported pipelines each target accepts (``Target.check``, as ``meta compile --target`` checks)."""
    from meta.plugins.manager import get_target

    for name in names:
        target = get_target(name)
        for item in outcome.imported:
            errors = target.check(item.pipeline)
            if not errors:
                run.accepted[name] += 1
            features = run.refused_features.setdefault(name, Counter())
            for feature in {re.sub(r"'[^']*'", "'…'", e.feature) for e in errors}:
                features[feature] += 1


def airflow_examples() -> Path:
    import airflow

    return Path(airflow.__file__).parent / "example_dags"


def peer_parse(folder: Path) -> int:
    from airflow.dag_processing.dagbag import BundleDagBag

    return len(BundleDagBag(dag_folder=str(folder), bundle_path=folder, safe_mode=False, load_op_links=False).dags)


def measure(name: str, root: Path, reps: int, targets: list[str]) -> RepoRun:
    from meta_airflow.import_report import Tally, dag_folders, project_on_path, tally
    from meta_airflow.importer import import_dags

    run = RepoRun(name, root, tally=Tally())
    for folder in dag_folders(root):
        with project_on_path(folder):
            peer_parse(folder)  # warm-up, untimed
            meta_times, peer_times = [], []
            one = Tally(folders=1)
            dags = 0
            outcome: Any = None
            for rep in range(reps):
                for side in ("meta", "peer") if rep % 2 == 0 else ("peer", "meta"):
                    start = time.perf_counter()
                    if side == "peer":
                        dags = peer_parse(folder)
                        peer_times.append(time.perf_counter() - start)
                        continue
                    try:
                        outcome = import_dags(folder)
                    except Exception as exc:  # an importer crash on a whole folder: every DAG in it counts
                        outcome = exc
                    meta_times.append(time.perf_counter() - start)
                    one = Tally(folders=1) if isinstance(outcome, Exception) else tally(outcome)
                    if isinstance(outcome, Exception):
                        one.reasons[f"importer crash (folder): {type(outcome).__name__}: {outcome}"[:110]] += 1
            if not isinstance(outcome, Exception):
                check_targets(run, outcome, targets)
            if one.parsed == 0 and dags and one.reasons:  # the whole folder crashed
                one.counts["crash"] = dags
            if one.parsed != dags:
                run.mismatches.append(f"{folder}: Airflow parsed {dags} DAGs, the importer accounted for {one.parsed}")
            one.seconds = min(meta_times)
            run.meta_seconds += min(meta_times)
            run.peer_seconds += min(peer_times)
            run.peer_dags += dags
            run.tally.add(one)
    return run


def rate(dags: int, seconds: float) -> str:
    return f"{dags / seconds:.1f}" if seconds else "-"


def which_importer() -> str:
    """Where meta and meta_airflow were imported from, and that checkout's commit (before/after runs)."""
    import meta_airflow

    import meta

    where = Path(meta_airflow.__file__).resolve().parent
    commit = subprocess.run(
        ["git", "-C", str(where), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return f"{where} with meta from {Path(meta.__file__).resolve().parent} (git {commit or '?'})"


def print_table(runs: list[RepoRun], reps: int) -> dict[str, Any]:
    from meta_airflow.import_report import KINDS, Tally

    total = Tally()
    for r in runs:
        total.add(r.tally)
    head = ("repository", "folders", "parsed", "full", "partial", "refused", "crash", "no-module", "other-file")
    print(f"Import of {total.folders} DAG folders ({len(runs)} repositories), best of {reps} runs each")
    print(f"importer: {which_importer()}; load average {os.getloadavg()[0]:.1f}")
    print(f"{head[0]:<40}" + "".join(f"{h:>11}" for h in head[1:]) + f"{'meta DAG/s':>12}{'Airflow DAG/s':>15}")
    rows = [(r.name, r.tally, r.peer_dags, r.meta_seconds, r.peer_seconds) for r in runs]
    peer_dags = sum(r.peer_dags for r in runs)
    meta_s, peer_s = sum(r.meta_seconds for r in runs), sum(r.peer_seconds for r in runs)
    for name, t, dags, ms, ps in [*rows, ("total", total, peer_dags, meta_s, peer_s)]:
        c = t.counts
        cells = (t.folders, dags, c["full"], c["partial"], c["refused"], c["crash"])
        cells += (c["missing_provider"], c["not_parsed"])
        print(f"{name[:40]:<40}" + "".join(f"{v:>11}" for v in cells) + f"{rate(dags, ms):>12}{rate(dags, ps):>15}")
    print(
        f"meta import: {rate(peer_dags, meta_s)} DAGs/s ({meta_s:.2f} s), Airflow DagBag parse: "
        f"{rate(peer_dags, peer_s)} DAGs/s ({peer_s:.2f} s); ratio meta / peer (time): "
        f"{meta_s / peer_s if peer_s else float('nan'):.2f}x"
    )
    for r in runs:
        for line in r.mismatches:
            print(f"mismatch: {line}")
    print("top refusal reasons:")
    for reason, n in total.reasons.most_common(10):
        print(f"  {n:>4}  {reason}")
    imported = total.counts["full"] + total.counts["partial"]
    checked: dict[str, Any] = {}
    for name in sorted({t for r in runs for t in r.refused_features}):
        accepted = sum(r.accepted[name] for r in runs)
        features: Counter[str] = Counter()
        for r in runs:
            features.update(r.refused_features.get(name, Counter()))
        print(f"{name} accepts {accepted} of {imported} imported pipelines; refused features (pipelines):")
        for feature, n in features.most_common(8):
            print(f"  {n:>4}  {feature}")
        checked[name] = {"accepted": accepted, "imported": imported, "refused_features": dict(features.most_common())}
    if total.missing_modules:
        print("missing modules: " + ", ".join(f"{m} ({n})" for m, n in total.missing_modules.most_common(12)))
    return {
        "importer": which_importer(),
        "reps": reps,
        "meta_dags_per_second": peer_dags / meta_s if meta_s else None,
        "airflow_dags_per_second": peer_dags / peer_s if peer_s else None,
        "ratio_meta_over_peer_time": meta_s / peer_s if peer_s else None,
        "kinds": list(KINDS),
        "targets": checked,
        "total": total.as_json(),
        "repositories": {
            r.name: {
                **r.tally.as_json(),
                "meta_seconds": r.meta_seconds,
                "peer_seconds": r.peer_seconds,
                "peer_dags": r.peer_dags,
            }
            for r in runs
        },
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dirs", nargs="*", help="[NAME=]DIR, one repository each")
    ap.add_argument("--airflow-examples", action="store_true", help="add Airflow's own example_dags folder")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    ap.add_argument(
        "--check",
        action="append",
        default=[],
        metavar="TARGET",
        help="also count the imported pipelines TARGET accepts (its compile checks); repeatable",
    )
    args = ap.parse_args()
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench_import_"))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ.setdefault("AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT", "60")
    repos: dict[str, Path] = {}
    for arg in args.dirs:
        name, _, folder = arg.rpartition("=")
        repos[name or Path(folder).name] = Path(folder).resolve()
    if args.airflow_examples:
        repos["airflow/example_dags"] = airflow_examples()
    if not repos:  # `python -m bench` runs every benchmark without arguments: measure what needs no download
        repos["airflow/example_dags"] = airflow_examples()
    with contextlib.redirect_stdout(sys.stderr):  # DAG files print; our output is the table below
        import airflow.settings  # noqa: F401 - Airflow configures its logging here; then quiet it for both sides

        logging.disable(logging.CRITICAL)
        runs = [measure(name, root, max(1, args.reps), args.check) for name, root in repos.items()]
    data = print_table(runs, max(1, args.reps))
    if args.json:
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
