"""A corpus of real-world DAG repositories, ported to Airflow 3 as a new user would (docs/import-report.md).

    .venv/bin/python -m bench.corpus export GIT_DIR DEST [--branches]  # a repository's tree (each branch's)
    .venv/bin/python -m bench.corpus prepare SRC DEST   # copy SRC to DEST, then port the copy to Airflow 3
    .venv/bin/python -m bench.corpus folders DIR...     # the DAG folders bench_import would import under DIR
    .venv/bin/python -m bench.corpus env DEST           # a side venv: the project's .venv + the corpus' providers

The repositories themselves are never part of this project: they are exported into /tmp (``git archive``) and
ported there, in three mechanical steps (docs/import-report.md):

1. ``days_ago(N)`` -> ``pendulum.today("UTC").add(days=-(N))``: the one Airflow 3 removal ruff reports (AIR301)
   without a fix, and the replacement Airflow's upgrade guide gives;
2. ruff's Airflow 3 rules with every fix it offers (``AIR3``: removals, moves to providers, suggested updates;
   ``--unsafe-fixes --preview`` because most of them are marked unsafe or preview);
3. ruff's unused-import fix (``F401``, safe fixes only): AIR3 adds the new import beside the old one, which no
   longer exists in Airflow 3 (``airflow.operators.dummy``), so the file would still fail to import.

Nothing else is changed by hand.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from meta_airflow.import_report import dag_folders

RUFF_PORT = ["check", "--select", "AIR3", "--fix", "--unsafe-fixes", "--preview", "--exit-zero", "--isolated"]
RUFF_UNUSED_IMPORTS = ["check", "--select", "F401", "--fix", "--exit-zero", "--isolated"]
_DAYS_AGO_CALL = re.compile(r"\b(?:[A-Za-z_]\w*\.)*days_ago\(([^()]*)\)")  # dates.days_ago, date_utils.days_ago, ...
_DAYS_AGO_IMPORT = re.compile(r"^from airflow\.utils\.dates import days_ago\s*$", re.MULTILINE)


def ruff() -> str:
    """The ruff next to this interpreter (the project's .venv), else the one on PATH."""
    beside = Path(sys.executable).parent / "ruff"
    return str(beside) if beside.exists() else "ruff"


def replace_days_ago(text: str) -> str:
    """Step 1: ``days_ago(N)`` calls rewritten, ``import pendulum`` added before the first import."""
    if "days_ago(" not in text:
        return text
    text = _DAYS_AGO_IMPORT.sub("", _DAYS_AGO_CALL.sub(r'pendulum.today("UTC").add(days=-(\1))', text))
    lines = text.splitlines(keepends=True)
    first = next((i for i, line in enumerate(lines) if line.startswith(("import ", "from "))), 0)
    while first < len(lines) and lines[first].startswith("from __future__"):
        first += 1
    lines.insert(first, "import pendulum\n")
    return "".join(lines)


def run_ruff(args: list[str], dest: Path) -> str:
    done = subprocess.run([ruff(), *args, "--output-format", "concise", str(dest)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ruff failed on {dest}: {done.stderr[-2000:]}")
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return lines[-1] if lines else "nothing found"


def prepare(src: Path, dest: Path) -> str:
    """Copy ``src`` to ``dest`` (replacing it) and port the copy to Airflow 3; returns what each step did."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest, symlinks=True, ignore=shutil.ignore_patterns(".git"))
    rewritten = 0
    for file in (f for f in dest.rglob("*.py") if f.is_file()):
        text = file.read_text(encoding="utf-8", errors="surrogateescape")
        ported = replace_days_ago(text)
        if ported != text:
            file.write_text(ported, encoding="utf-8", errors="surrogateescape")
            rewritten += 1
    air3 = run_ruff(RUFF_PORT, dest)
    unused = run_ruff(RUFF_UNUSED_IMPORTS, dest)
    return f"days_ago rewritten in {rewritten} files; AIR3: {air3}; F401: {unused}"


# What the corpus' DAG files import beyond the project's .venv (the production repository's GKE pods, Kubernetes
# secrets and Slack alerts; pandas for the book and the demos). Installed in a side venv, never in the .venv.
SIDE_PACKAGES = [
    "apache-airflow==3.3.2",  # already in the .venv: pins the resolver to it
    "apache-airflow-providers-cncf-kubernetes",
    "apache-airflow-providers-google",
    "apache-airflow-providers-slack",
    "pandas",
]


def export(git_dir: Path, dest: Path, branches: bool) -> list[str]:
    """``git archive`` of HEAD into ``dest`` (or of every branch into ``dest/<branch>``); returns "ref commit"."""

    def git(*args: str) -> str:
        return subprocess.run(["git", "--git-dir", str(git_dir), *args], capture_output=True, text=True,
                              check=True).stdout  # fmt: skip

    refs = ["HEAD"]
    if branches:
        listed = git("for-each-ref", "--format=%(refname:short)", "refs/heads", "refs/remotes").split()
        refs = [r for r in listed if not r.startswith("pull/") and r != "main"]
    out = []
    for ref in refs:
        target = dest if ref == "HEAD" else dest / ref
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.Popen(["git", "--git-dir", str(git_dir), "archive", ref], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(target)], stdin=archive.stdout, check=True)
        archive.wait()
        out.append(f"{ref} {git('rev-parse', ref).strip()}")
    return out


def side_env(dest: Path) -> None:
    """A venv that sees the project's .venv (a .pth adding its site-packages) and has ``SIDE_PACKAGES`` on top."""
    venv_site = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    subprocess.run([sys._base_executable, "-m", "venv", str(dest)], check=True)  # type: ignore[attr-defined]
    site = dest / "lib" / venv_site.parent.name / "site-packages"
    (site / "zz_project_venv.pth").write_text(f"import site; site.addsitedir({str(venv_site)!r})\n")
    subprocess.run([str(dest / "bin" / "pip"), "install", "-q", *SIDE_PACKAGES], check=True)


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[0] == "export":
        for line in export(Path(argv[1]), Path(argv[2]), "--branches" in argv):
            print(line)
        return 0
    if len(argv) == 2 and argv[0] == "env":
        side_env(Path(argv[1]))
        return 0
    if len(argv) == 3 and argv[0] == "prepare":
        print(prepare(Path(argv[1]), Path(argv[2])))
        return 0
    if len(argv) >= 2 and argv[0] == "folders":
        for root in argv[1:]:
            for folder in dag_folders(Path(root)):
                print(folder)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
