"""Coverage by construction: every layer combination runs in every executor by default.

``lbgen_testing.coverage`` derives from the product's own tables every
(weight kind, input kind, threshold unit, PE) combination the RTL builds and
chains them into a few MLPs, with an 8-bit hidden activation and int8
weights among them. Each runs golden = C-sim = Icarus = Verilator on every
layer's stream under back-pressure (the native testbench), with thresholds
drawn at the ends of the reachable range. The session prints the default
run's table (tests/conftest.py): what every test that runs all executors
covered, with and without this file.
"""

from __future__ import annotations

import pytest

from lbgen.emitters.hls import emit_hls
from lbgen.emitters.rtl import emit_rtl
from lbgen.ir import DType, Graph

from lbgen_testing.coverage import coverage_designs, graph_combinations, missing, required
from lbgen_testing.executors import check_executors
from lbgen_testing.graphs import random_inputs

DESIGNS = coverage_designs()


def test_the_designs_cover_every_combination_8_bit_activations_and_int8_weights():
    covered = set().union(*(graph_combinations(g) for g in DESIGNS))
    assert missing(covered) == []
    hidden, pes = required()
    assert len(hidden) >= 32 and len(pes) >= 6          # the registry and the kinds as of this test
    layers = [l for g in DESIGNS for l in g.layers]
    assert any(l.odtype == DType("uint", 8) for l in layers if l.thresholds is not None)
    assert any(l.wtype == DType("int", 8) for l in layers)
    assert len(DESIGNS) <= 10, "more designs: each is a Verilator build of the default run"


@pytest.mark.parametrize("index", range(len(DESIGNS)))
def test_coverage_design_in_every_executor(index, tmp_path, sim_cache):
    graph = DESIGNS[index]
    out = tmp_path / "out"
    graph.save(out)
    emit_rtl(graph, out / "rtl")
    emit_hls(graph, out / "hls")
    inputs = random_inputs(graph, 24, seed=index, ends=0.1)
    check_executors(out, Graph.load(out), inputs, seed=index, gaps=0.3, backpressure=0.3)
