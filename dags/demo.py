"""``make demo``: the whole product in one command, on the embedded runner (no servers but its own).

A workspace in ``<state dir>/demo`` (``$META_HOME`` or ``./.meta``; started afresh each time) places the example
``marketing_roi`` and its dependent ``marketing_report`` on the local backend, with the control plane (``meta serve``)
on SQLite beside it. The demo then

1. starts ``meta serve`` and mints a viewer token for the dashboard;
2. runs ``marketing_roi`` for CH on the embedded runner: the control plane sees it succeed and starts
   ``marketing_report`` for the same logical date by itself; that report meets its SLA (its ``publish`` step has
   ``max_duration: 5s``);
3. runs ``marketing_roi`` for DE: that report's ``publish`` is held back on purpose (``MARKETING_REPORT_DELAY=DE:12``)
   and the control plane records the missed SLA;
4. prints ``meta status``, the SLA outcome and the dashboard's sign-in link, and keeps serving until Ctrl-C.

``make demo-stack`` (``--stack``) tells the same story on a real Airflow 3 and a real Prefect 3 it starts on loopback
ports (dags/stack.py): ``marketing_roi`` on Prefect, its report on Airflow, which pushes OpenLineage events to the
control plane. ``--once`` exits after printing; the exit code is 0 only if the story happened.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DAGS = Path(__file__).resolve().parent
REPO = DAGS.parent
UPSTREAM, DOWNSTREAM = "marketing_roi", "marketing_report"
SPECS = (DAGS / f"{UPSTREAM}.yaml", DAGS / f"{DOWNSTREAM}.yaml")
FAST, SLOW = "CH", "DE"  # the report for SLOW is held back past its max_duration
SLOW_SECONDS = 12
SLA_TASK = "publish"  # the report's task with a max_duration
SLA_KIND = f"tasks.{SLA_TASK}.max_duration"
DEFAULT_PORT = 8765


def say(line: str = "") -> None:
    print(line, flush=True)


def free_port(preferred: int = 0) -> int:
    """``preferred`` when it is free on loopback, else any free port."""
    for port in (preferred, 0) if preferred else (0,):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError("no free loopback port")


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:g}s waiting for {what}")
        time.sleep(every)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children, ...), whatever session they started."""
    try:
        listing = subprocess.run(["ps", "-A", "-o", "pid=", "-o", "ppid="], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return []
    children: dict[int, list[int]] = {}
    for line in listing.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
            children.setdefault(int(parts[1]), []).append(int(parts[0]))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(ChildProcessError):  # our own child: reap it if it has exited
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    return True


def stop_tree(pid: int, timeout: float = 20.0) -> None:
    """Stop a process this demo started (leading its own process group, ``start_new_session``) and everything it
    started in turn, also in sessions of their own (the runs ``meta serve`` starts, Prefect's flow-run processes,
    Airflow's task processes): SIGTERM, then SIGKILL whatever is left after ``timeout``."""
    below = descendants(pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    for child in below:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p) for p in (pid, *below)):
        time.sleep(0.2)
    for left in (p for p in (pid, *below) if _alive(p)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(left, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)  # anything still in its group


# ---------------------------------------------------------------------------------------------- the control plane


@dataclass
class ControlPlane:
    """``meta serve`` over the demo's workspace, as a subprocess in its own process group (log: serve.log)."""

    workspace: Path
    port: int
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    client: Any = None  # meta.service.client.ApiClient with the viewer token
    tokens: dict[str, str] = field(default_factory=dict)  # role -> token (never printed but in the sign-in link)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workspace.parent / "serve.log"

    def meta(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A ``meta`` command in the demo's workspace, as a user would type it."""
        done = subprocess.run(
            [sys.executable, "-m", "meta", *args],
            env=self.env,
            cwd=self.workspace.parent,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"meta {args[0]} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return done

    def mint(self, role: str, team: str | None = None) -> str:
        args = ["token", "create", "--workspace", str(self.workspace), "--name", f"demo-{role}", "--role", role]
        token = self.meta(*args, *(["--team", team] if team else [])).stdout.strip().splitlines()[-1]
        self.tokens[role] = token
        return token

    def start(self) -> None:
        from meta.service.client import ApiClient, is_serving

        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "meta", "serve", "--workspace", str(self.workspace)],
                env=self.env,
                cwd=self.workspace.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the demo only; the demo stops it by its group
            )
        proc = self.proc

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"meta serve exited with {proc.returncode}:\n{self.log()[-3000:]}")
            return is_serving(self.url)

        wait_for(ready, 60, f"meta serve to answer on {self.url}")
        self.client = ApiClient(self.url, self.tokens.get("viewer"))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.proc is None or self.proc.poll() is not None:
            return
        stop_tree(self.proc.pid)  # with the runs it started
        with contextlib.suppress(subprocess.TimeoutExpired, ChildProcessError):
            self.proc.wait(timeout=5)

    # -- what the API says ----------------------------------------------------------------------------------

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(path, **params)

    def runs(self, pipeline: str) -> list[dict[str, Any]]:
        return list(self.get("/runs", pipeline=pipeline, limit=50)["runs"])

    def waits(self) -> list[dict[str, Any]]:
        return list(self.get(f"/pipelines/{DOWNSTREAM}/dependencies", limit=20)["waits"])

    def slots(self) -> list[dict[str, Any]]:
        return list(self.get("/slas/history", pipeline=DOWNSTREAM, kind=SLA_KIND, limit=50)["slots"])


# ---------------------------------------------------------------------------------------------- the story


@dataclass
class Chapter:
    """One upstream run and what the control plane did about it."""

    country: str
    backend: str
    upstream_run: str = ""
    upstream_state: str = ""
    wait: dict[str, Any] = field(default_factory=dict)  # the dependency wait that started the report
    report_state: str = ""
    sla: dict[str, Any] = field(default_factory=dict)  # the report's max_duration slot


def follow_report(plane: ControlPlane, chapter: Chapter, timeout: float = 120.0) -> None:
    """Wait for the control plane to start the report after ``chapter``'s upstream run, then for its end and SLA."""

    def started() -> dict[str, Any] | None:
        for wait in plane.waits():
            upstreams = {(u.get("pipeline"), u.get("run_id")) for u in wait.get("upstream_runs") or []}
            if (UPSTREAM, chapter.upstream_run) in upstreams and wait["state"] == "triggered" and wait["run_id"]:
                return wait
        return None

    chapter.wait = wait_for(started, timeout, f"the control plane to start {DOWNSTREAM} after {chapter.upstream_run}")
    run_id = chapter.wait["run_id"]
    say(
        f"  control plane started {DOWNSTREAM} run {run_id} on {chapter.wait['backend']} "
        f"(after {UPSTREAM} {chapter.upstream_run}, logical date {chapter.wait['logical_date']})"
    )
    seen_missed = False

    def ended() -> str | None:
        nonlocal seen_missed
        slot = next((s for s in plane.slots() if s["run_id"] == run_id), None)
        if slot and slot["state"] == "missed" and not seen_missed:
            seen_missed = True
            say(f"  SLA of {DOWNSTREAM} {run_id} MISSED: {slot['detail']}")
        run = next((r for r in plane.runs(DOWNSTREAM) if r["run_id"] == run_id), None)
        if run and run["state"] in ("success", "failed"):
            return str(run["state"])
        return None

    chapter.report_state = wait_for(ended, timeout, f"{DOWNSTREAM} {run_id} to end", every=0.5)
    say(f"  {DOWNSTREAM} {run_id}: {chapter.report_state}")

    def judged() -> dict[str, Any] | None:
        slot = next((s for s in plane.slots() if s["run_id"] == run_id), None)
        return slot if slot and slot["state"] in ("met", "missed") else None

    chapter.sla = wait_for(judged, 30, f"the SLA of {DOWNSTREAM} {run_id} to be judged")


def run_local_upstream(home: Path, country: str) -> tuple[str, str]:
    """``marketing_roi`` on the embedded runner, in this process, with progress lines: (run id, state)."""
    if str(DAGS) not in sys.path:  # like Airflow's dags folder: the pipeline's callables import from here
        sys.path.insert(0, str(DAGS))
    from meta import LocalRunner, RunRequest, load_file, run_table

    (pipeline,) = load_file(SPECS[0])
    request = RunRequest.build(
        pipeline, params={"country": country, "data_dir": str(home / "data")}, logical_date=datetime.now(UTC)
    )
    outcome = LocalRunner(home=home).run(pipeline, request, progress=lambda line: say(f"    {line}"))
    say(textwrap.indent(run_table(outcome), "    "))
    return request.run_id, str(outcome.result.state)


def write_workspace(home: Path, port: int, backends: str, placements: str, extra: str = "") -> Path:
    specs = ", ".join(str(s) for s in SPECS)
    text = f"""\
# Written by `python -m dags.demo` (docs/workspace.md); started afresh by every demo.
name: meta-demo
specs: [{specs}]
backends:
{textwrap.indent(backends.strip(), "  ")}
placements:
{textwrap.indent(placements.strip(), "  ")}
control_plane:
  database: sqlite:///{home / "control-plane.db"}
  listen: 127.0.0.1:{port}
  poll_interval: 1s
{extra}"""
    path = home / "meta.yaml"
    path.write_text(text)
    return path


def demo_home(name: str) -> Path:
    from meta import state_dir

    home = (state_dir() / name).resolve()
    if home.exists():  # every demo starts over: a logical date starts its dependent once, ever
        import shutil

        shutil.rmtree(home)
    home.mkdir(parents=True)
    return home


def base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("META_API_", "AIRFLOW", "PREFECT"))}
    env.update(
        {
            "META_HOME": str(home),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")])),
            "MARKETING_REPORT_DELAY": f"{SLOW}:{SLOW_SECONDS}",
        }
    )
    return env


def max_duration() -> str:
    from meta import load_file

    (pipeline,) = load_file(SPECS[1])
    limit = next(t.max_duration for t in pipeline.tasks if t.id == SLA_TASK)
    return f"{limit.total_seconds():g}s" if limit else "none"


def _when(value: Any) -> str:
    return datetime.fromisoformat(str(value)).astimezone(UTC).strftime("%H:%M:%S UTC") if value else "-"


def report(plane: ControlPlane, chapters: list[Chapter]) -> bool:
    """Print the status table, the SLA outcome and the dashboard's link; True when the story happened."""
    say("\n" + "=" * 100)
    status = plane.meta(
        "status", "--workspace", str(plane.workspace), "--api", plane.url, "--token", plane.tokens["viewer"]
    )
    say(status.stdout.rstrip())
    say(f"\nSLA of {DOWNSTREAM}: each try of {SLA_TASK} ends within {max_duration()} (judged by the control plane)")
    for c in chapters:
        slot = c.sla
        state = str(slot.get("state", "?")).upper()
        recorded = f"; recorded missed at {_when(slot['missed_at'])}" if slot.get("missed_at") else ""
        detail = f"{slot.get('detail', '')}{recorded}"
        say(f"  after {UPSTREAM} for {c.country}: {state:<6} run {slot.get('run_id')}  ({detail})")
    others = [
        (cell["pipeline"], slot)
        for cell in plane.get("/slas", window_hours=48)["cells"]
        for slot in cell["missed"]
        if (cell["pipeline"], slot["kind"]) != (DOWNSTREAM, SLA_KIND)
    ]
    if others:
        say("also on the SLA board (`meta sla`): the example's own schedule, which the demo runs off")
        for pipeline, slot in others:
            say(f"  {pipeline} {slot['kind']} slot {slot['slot']}: missed ({slot['detail']})")
    started_by_plane = all(c.wait.get("state") == "triggered" and c.wait.get("trigger_key") for c in chapters)
    states = sorted(str(c.sla.get("state")) for c in chapters)
    happened = started_by_plane and states == ["met", "missed"] and all(c.report_state == "success" for c in chapters)
    token = plane.tokens["viewer"]
    say(f"\ndashboard:  {plane.url}/login#token={token}")
    say("            (a viewer token of team growth, minted just now; the #fragment never reaches a server log)")
    say(f"            pages: {plane.url}/pipelines/{DOWNSTREAM}  {plane.url}/graph  {plane.url}/backends")
    say(f"API:        {plane.url}/api/v1/docs   (Authorization: Bearer <the token above>)")
    say(f"workspace:  {plane.workspace}    meta serve's log: {plane.log_path}")
    say(f"try, while it serves:  export META_API_URL={plane.url} META_API_TOKEN=<the token above>")
    say(f"            .venv/bin/meta status   .venv/bin/meta sla   .venv/bin/meta why {DOWNSTREAM}")
    say(f"story: {'dependent started by the control plane, one SLA met, one missed' if happened else 'INCOMPLETE'}")
    return happened


def local_story(home: Path, port: int, cleanup: contextlib.ExitStack) -> tuple[ControlPlane, list[Chapter]]:
    workspace = write_workspace(
        home,
        port,
        backends=f"local: {{kind: local, state_dir: {home}, description: the embedded runner}}",
        placements=f"- {{backend: local, pipelines: [{UPSTREAM}, {DOWNSTREAM}]}}",
    )
    plane = ControlPlane(workspace, port, base_env(home))
    cleanup.callback(plane.stop)
    os.environ["META_HOME"] = str(home)  # the embedded runner below writes where the local backend reads
    say(f"state directory: {home}")
    plane.mint("viewer", team="growth")
    say(f"starting the control plane: meta serve --workspace {workspace}")
    plane.start()
    say(f"  serving on {plane.url}")
    chapters = []
    for country in (FAST, SLOW):
        chapter = Chapter(country, "local")
        say(f"\nrunning {UPSTREAM} for {country} on the embedded runner")
        chapter.upstream_run, chapter.upstream_state = run_local_upstream(home, country)
        say(f"  {UPSTREAM} {chapter.upstream_run}: {chapter.upstream_state}")
        if chapter.upstream_state != "success":
            raise RuntimeError(f"{UPSTREAM} {chapter.upstream_run} ended {chapter.upstream_state}")
        say(
            f"  waiting for the control plane to start {DOWNSTREAM} ({country})"
            + (f", slowed down by {SLOW_SECONDS}s on purpose" if country == SLOW else "")
        )
        follow_report(plane, chapter)
        chapters.append(chapter)
    return plane, chapters


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dags.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--once", action="store_true", help="exit after printing (exit code 0: the story happened)")
    parser.add_argument("--stack", action="store_true", help="on a real Airflow 3 and Prefect 3 (make demo-stack)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="the control plane's port (busy: any free one)")
    args = parser.parse_args(argv)
    _interrupt_on(signal.SIGINT, signal.SIGTERM)
    started = time.monotonic()
    home = demo_home("demo-stack" if args.stack else "demo")
    # everything the demo starts registers its stop here, the moment it is started
    cleanup = contextlib.ExitStack()
    try:
        try:
            if args.stack:
                from dags.stack import stack_story

                plane, chapters = stack_story(home, free_port(args.port), cleanup)
            else:
                plane, chapters = local_story(home, free_port(args.port), cleanup)
            happened = report(plane, chapters)
            say(f"(the demo took {time.monotonic() - started:.0f}s)")
            if args.once:
                return 0 if happened else 1
            say("\nserving until Ctrl-C ...")
            while plane.proc is not None and plane.proc.poll() is None:
                time.sleep(0.5)
            say(f"meta serve exited with {plane.proc.returncode if plane.proc else '?'}; see {plane.log_path}")
            return 1
        except KeyboardInterrupt:
            say("\nstopping everything the demo started ...")
            return 130 if args.once else 0
        except (RuntimeError, TimeoutError, OSError) as exc:
            say(f"\ndemo failed: {exc}\nlogs: {home}")
            return 1
    finally:
        # a second Ctrl-C while stopping must not cut the stops short and leave processes behind
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        cleanup.close()


def _interrupt_on(*signals: signal.Signals) -> None:
    """Ctrl-C and SIGTERM stop the demo (and everything it started) the same way, even where SIGINT was ignored
    (a shell's background job)."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    for sig in signals:
        signal.signal(sig, interrupt)


if __name__ == "__main__":
    sys.exit(main())
