"""Shared fixtures. Helper functions and models live in ``lbgen_testing``
(tests/lbgen_testing/: ``common``, ``graphs``, ``mutation``, ``rtl``)."""

from __future__ import annotations

import numpy as np
import pytest


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
