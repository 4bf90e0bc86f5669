"""Every executor on one emitted design: golden = C-sim (ap_int) = Icarus =
Verilator on every layer's output stream, and the RTL at its folding bound.

The RTL runs in the native testbench (lbgen.native_tb): bulk bit-exactness is
not what the cocotb testbench is for; tests/test_rtl_stress.py, test_sim.py
and test_native_tb.py keep cocotb for resets, bursts and the protocol."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import numpy as np

from lbgen import golden
from lbgen.csim import run_csim
from lbgen.ir import Graph
from lbgen.native_tb import run_native
from lbgen.simulate import SIMULATORS

from .coverage import record

THROUGHPUT = 6


def check_executors(out: Path, graph: Graph, inputs: np.ndarray, seed: int, gaps: float, backpressure: float) -> None:
    """golden = C-sim (ap_int) = Icarus = Verilator on every layer's output; the RTL meets the folding bound."""
    trace = golden.run(graph, inputs)
    record(graph, os.environ.get("PYTEST_CURRENT_TEST", ""))
    problems = []
    # the C-sim builds and runs in a forked process beside the RTL simulations: CI's second core
    # would idle otherwise
    with multiprocessing.get_context("fork").Pool(1) as pool:
        csim_job = pool.apply_async(run_csim, (out, inputs), {"native": False})
        for sim in SIMULATORS:
            problems += _rtl_problems(sim, out, graph, inputs, trace, seed, gaps, backpressure)
        first = csim_job.get().mismatch(trace)
    if first:
        problems.append(f"C-sim: {first}")
    assert not problems, "\n".join(problems)


def _rtl_problems(sim: str, out: Path, graph: Graph, inputs: np.ndarray, trace, seed: int, gaps: float,
                  backpressure: float) -> list[str]:
    res = run_native(out, inputs, simulator=sim, seed=seed, backpressure=backpressure, gaps=gaps,
                      throughput_frames=THROUGHPUT)
    if not res.passed:
        return [res.summary() + "\n" + res.log_tail]
    problems = [f"{sim}: layer {layer.name!r} differs from golden but the testbench passed it"
                for layer in graph.layers
                if not np.array_equal(res.layer_outputs[layer.name], trace.outputs[layer.name])]
    if not res.throughput_ok():
        problems.append(f"{sim}: {res.cycles_per_frame} cycles/frame measured, folding bound "
                        f"{res.expected_cycles_per_frame}")
    return problems
