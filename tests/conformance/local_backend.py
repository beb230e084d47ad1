"""Conformance results on the embedded local runner."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from meta.plugins.manager import get_target
from meta.semantics.request import RunRequest
from meta.spec.results import RunResult
from tests.conformance.cases import CASES


@pytest.fixture(scope="session")
def local_conformance_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, RunResult]:
    os.environ["META_HOME"] = str(tmp_path_factory.mktemp("meta_home"))
    target = get_target("local")
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {
            c.id: pool.submit(target.run, c.pipeline, RunRequest.build(c.pipeline, params=c.params)) for c in CASES
        }
        return {case_id: f.result() for case_id, f in futures.items()}
