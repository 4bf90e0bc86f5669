"""Shared fixtures. Helper functions and models live in ``lbgen_testing``
(tests/lbgen_testing/: ``common``, ``graphs``, ``mutation``, ``rtl``)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest


def pytest_configure(config):
    """The controller (not an xdist worker) names the log every worker appends the
    combinations it ran in every executor to (lbgen_testing.coverage.record)."""
    if not hasattr(config, "workerinput") and "LBGEN_COVERAGE_LOG" not in os.environ:
        fd, path = tempfile.mkstemp(prefix="lbgen-coverage-", suffix=".jsonl")
        os.close(fd)
        os.environ["LBGEN_COVERAGE_LOG"] = path
        config._lbgen_coverage_log = path


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """The default run's per-combination coverage table: what ran in C-sim, Icarus and Verilator."""
    path = getattr(config, "_lbgen_coverage_log", None)
    if not path:
        return
    lines = [ln for ln in Path(path).read_text().splitlines() if ln.strip()]
    os.unlink(path)
    if not lines:
        return
    from lbgen_testing.coverage import table

    rows, _, _ = table(lines)
    terminalreporter.section("layer combinations run in every executor (lbgen_testing.coverage)")
    for row in rows:
        terminalreporter.write_line(row)


@pytest.fixture
def features():
    def make(n: int, width: int, seed: int = 0) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return rng.uniform(-0.1, 1.1, size=(n, width)).astype(np.float32)
    return make


@pytest.fixture(scope="module")
def sim_cache(tmp_path_factory):
    """A module-private build cache, so every build here is shared and nothing leaks out."""
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("simcache")
        mp.setenv("LBGEN_SIM_CACHE", str(path))
        yield path
