"""Runs the dataset forwarder of a workspace in its own process, for the SIGKILL tests of
test_dataset_forwarding_real.py: poll every backend, tick, until every forward of ``--run`` is sent (exit 0) or
``--timeout`` (exit 3). ``--kill-at claimed|sent`` SIGKILLs this process at that point of the first forward of
``--run`` (after its claim is committed / after the target accepted it, before it is marked sent).

    python -m tests.integration.service.dataset_forward_driver --workspace meta.yaml --run RUN [--kill-at STAGE]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from sqlalchemy import select

from meta.authoring.workspace import declared_teams, load_workspace
from meta.service.connections import database_url, resolve_connections
from meta.service.datasets import DatasetForwarder, Forward
from meta.service.server import ControlPlane
from meta.service.store.orm import DatasetForwardRow


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--run", required=True, help="the source run whose forwards to see through")
    parser.add_argument("--kill-at", choices=["claimed", "sent"])
    parser.add_argument("--stale-after", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=180.0)
    args = parser.parse_args()

    loaded = load_workspace(args.workspace)
    pipelines = loaded.load_pipelines()
    plane = ControlPlane.open(
        loaded.workspace,
        resolve_connections(loaded, pipelines),
        database_url=database_url(loaded),
        declared_teams=declared_teams(loaded, pipelines.pipelines),
        pipelines=pipelines.pipelines,
    )

    def checkpoint(stage: str, forward: Forward) -> None:
        print(f"driver: {stage} {forward.key} ({forward.source_run} -> {forward.target_backend})", flush=True)
        if stage == args.kill_at and forward.source_run == args.run:
            os.kill(os.getpid(), signal.SIGKILL)

    forwarder = DatasetForwarder.of(plane, stale_after=args.stale_after, backoff=1.0, checkpoint=checkpoint)
    deadline = time.monotonic() + args.timeout
    try:
        while time.monotonic() < deadline:
            plane.refresh()
            forwarder.tick()
            with plane.store.reading() as session:
                states = list(
                    session.scalars(select(DatasetForwardRow.status).where(DatasetForwardRow.source_run == args.run))
                )
            if states and all(s == "sent" for s in states):
                print(f"driver: {len(states)} forward(s) of {args.run} sent", flush=True)
                return 0
            time.sleep(0.5)
        print(f"driver: timed out; forwards of {args.run}: {states}", flush=True)
        return 3
    finally:
        forwarder.close()
        plane.close()


if __name__ == "__main__":
    sys.exit(main())
