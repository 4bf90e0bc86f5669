"""Jobs for the pool tests: importable by a Dask worker that runs with tests/ on its path."""

from __future__ import annotations

import os
import time


def slow_square(x: int, seconds: float) -> tuple[int, int]:
    """x*x after ``seconds``, and the pid of the process that computed it."""
    time.sleep(seconds)
    return x * x, os.getpid()


def fails(x: int) -> int:
    raise ValueError(f"no square for {x}")
