"""The code Vitis HLS synthesises (``#ifdef __SYNTHESIS__`` in hls/lbgen_*.hpp), run with g++.

``lbgen sim --simulator csim`` compiles only the ``#ifndef __SYNTHESIS__``
side of lbgen's headers (limb-wise unpacking and popcount, ROM rows cut once,
narrow lane products, plain-integer Huffman ROM words), so without this file
the synthesised branches would never run in any test. Here each design is
emitted once, built as the normal ap_int C-simulation and again from a copy
whose lbgen headers have ``__SYNTHESIS__`` renamed to a project macro
(``lbgen_testing.synthesis_paths``; ``-D__SYNTHESIS__`` itself stops the
open-source ap_types headers with an ``#error``). Both builds must give the
golden model's outputs and every layer's trace bit for bit.

:data:`BRANCHES` names every ``__SYNTHESIS__`` conditional of the library and
the design that reaches it; a header that gains, loses or moves one fails
:func:`test_every_synthesis_branch_is_listed_and_renamed` until the table (and,
for a new datapath branch, a design here) is updated.
"""

from __future__ import annotations

import importlib.resources
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from lbgen import golden
from lbgen.csim import CXX_FLAGS, CXX_STD, CsimResult, ap_types_include, run_csim
from lbgen.emitters.hls import emit_hls
from lbgen.ir import DType, Graph
from lbgen.passes.compress import compress_weights

from lbgen_testing.graphs import ConvSpec, random_cnn, random_graph, random_inputs
from lbgen_testing.synthesis_paths import (MACRO, TESTBENCH_ONLY, library_headers, rewrite_header,
                                           rewrite_library, synthesis_conditionals, synthesis_copy)

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")

HLS_DIR = Path(str(importlib.resources.files("lbgen.hls")))

B, T = DType("bipolar", 1), DType("ternary", 2)


def U(bits: int) -> DType:
    return DType("uint", bits)


def I(bits: int) -> DType:  # noqa: E743
    return DType("int", bits)


def L2(bits: int) -> DType:
    return DType("log2", bits)


def H(*scales: int) -> DType:
    return DType("hetero", 2 * len(scales) - 1, tuple(scales))


#: every __SYNTHESIS__ conditional of the library, (header, line) -> what it guards and the
#: designs below whose synthesis build compiles (declarations) or runs (code) its branch
BRANCHES = {
    ("lbgen_common.hpp", 31): ("native model off in synthesis (LBGEN_NATIVE_MODEL)", "all"),
    ("lbgen_common.hpp", 34): ("#include <vector> for C-sim only", "all"),
    ("lbgen_common.hpp", 230): ("to_limbs / limb_field / from_limb_field, C-sim only", "all"),
    ("lbgen_common.hpp", 280): ("unpack: 64-bit chunks and range()", "mlp cnn huffman"),
    ("lbgen_common.hpp", 302): ("popcount: a bit-serial sum", "mlp cnn huffman"),
    ("lbgen_conv.hpp", 100): ("loop counter, C-sim tests only", "cnn"),
    ("lbgen_huffman.hpp", 43): ("<cstdint>/<cstdio> for C-sim only", "huffman"),
    ("lbgen_huffman.hpp", 55): ("Huffman ROM words as ap_uint<FW>", "huffman"),
    ("lbgen_huffman.hpp", 101): ("stream errors: no report in synthesis", "huffman"),
    ("lbgen_mvau.hpp", 96): ("mac_stage::accumulate: the ROM word's rows by range()", "mlp cnn"),
    ("lbgen_mvau.hpp", 112): ("rom_rows, C-sim only", "mlp cnn"),
    ("lbgen_mvau.hpp", 134): ("accumulate_word: limbs, C-sim only", "mlp cnn huffman"),
    ("lbgen_mvau.hpp", 142): ("accumulate_word: a row by range()", "mlp cnn huffman"),
    ("lbgen_mvau.hpp", 236): ("act_stage: MultiThreshold::activate on the ROM word", "mlp cnn huffman"),
    ("lbgen_mvau.hpp", 244): ("csim_rom threshold tables, C-sim only", "mlp cnn huffman"),
    ("lbgen_pe.hpp", 49): ("lane_product: the product in ap_int<type>", "mlp cnn huffman"),
}


def mlp_graph() -> Graph:
    """Every PE kind behind one synthesis branch or another, words wider than 64 bits.

    fc0 XNOR-popcount over 72 lanes (popcount beyond one 64-bit limb); fc1 ternary x
    bipolar (masked popcount); fc2 int4 x uint2, 80-bit rows (unpack across two 64-bit
    chunks, the generic lane_product); fc3 log2 x uint3 (shift lanes); fc4 hetero x bipolar
    (masked popcounts per plane); fc5 bipolar x uint2 (add/subtract).
    Tight accumulators and up to 7 thresholds per word make threshold words of several
    chunks with elements straddling the chunk edges."""
    return random_graph(211, [72, 24, 20, 16, 12, 10, 8],
                        [B, T, I(4), L2(4), H(4, 2, 1), B],
                        [B, B, U(2), U(3), B, U(2)],
                        [(4, 72), (5, 24), (4, 20), (2, 8), (5, 12), (4, 5)], extremes=0.2)


def cnn_graph() -> Graph:
    """Sliding windows and max-pool in front of the MVAU, a bipolar input with padding (border
    corrections, N_CLASS > 1) and a multi-bit convolution, PIXELS > 1 frames through the engine."""
    convs = [ConvSpec(4, 3, p=1, pool=2, wtype=B, otype=B, fold=(2, 2)),
             ConvSpec(6, 2, wtype=I(3), otype=U(2), fold=(3, 4))]
    return random_cnn(212, (2, 6, 6), B, convs, classes=4, fc_wtype=I(2), fc_fold=(2, 8), extremes=0.2)


def huffman_graph() -> Graph:
    """Huffman-coded weights of three kinds: the ROM words are ap_uint<FW> in synthesis
    (uint32_t in C-sim) and every weight word reaches accumulate_word; int4 skewed to 0 as
    trained weights are, log2 x uint2 and XNOR-popcount."""
    g = random_graph(213, [16, 12, 8, 6], [I(4), L2(4), B], [U(2), U(2), B], [(4, 4), (2, 6), (3, 8)])
    rng = np.random.default_rng(213)
    w = g.layers[0].weights
    g.layers[0].weights = np.where(rng.random(w.shape) < 0.7, 0, w)
    return compress_weights(g, "huffman", 8).validate()


DESIGNS = {"mlp": mlp_graph, "cnn": cnn_graph, "huffman": huffman_graph}
N_FRAMES = 40


@dataclass
class Runs:
    """One design run three ways on the same frames: golden, the ap_int C-sim, the synthesis paths."""
    graph: Graph
    synthesis_hls: Path
    golden: golden.Trace
    csim: CsimResult
    synthesis: CsimResult


@pytest.fixture(scope="module", params=list(DESIGNS))
def runs(request, tmp_path_factory) -> Runs:
    """Emit the design, copy it with the synthesis branches on, build and run both (one build each)."""
    graph = DESIGNS[request.param]()
    root = tmp_path_factory.mktemp(f"synth_{request.param}")
    out = root / "out"
    graph.save(out)
    emit_hls(graph, out / "hls")
    synth = synthesis_copy(out, root / "synth")
    x = random_inputs(graph, N_FRAMES, seed=7, ends=0.2)
    return Runs(graph, synth / "hls", golden.run(graph, x),
                run_csim(out, x, native=False, graph=graph),
                run_csim(synth, x, native=False, graph=graph))


def test_synthesis_paths_give_the_csim_and_golden_bits(runs):
    """The synthesised datapath, the C-sim datapath and golden agree on every output and every layer."""
    trace, csim, synth = runs.golden, runs.csim, runs.synthesis
    assert csim.mismatch(trace) is None, csim.mismatch(trace)
    assert synth.mismatch(trace) is None, synth.mismatch(trace)
    assert synth.result.shape == trace.result.shape == (N_FRAMES, runs.graph.layers[-1].mh)
    assert np.array_equal(synth.result, csim.result) and np.array_equal(synth.result, trace.result)
    assert list(synth.layers) == list(csim.layers) == [layer.name for layer in runs.graph.layers]
    for layer in runs.graph.layers:
        assert np.array_equal(synth.layers[layer.name], csim.layers[layer.name]), layer.name
        assert np.array_equal(synth.layers[layer.name], trace.outputs[layer.name]), layer.name


def test_the_synthesis_build_compiled_the_renamed_headers(runs):
    """The copy that was built has no __SYNTHESIS__ left in lbgen's headers and turns MACRO on,
    and it was a build of its own (not the C-sim binary reused)."""
    assert runs.synthesis.binary != runs.csim.binary
    for header in library_headers(runs.synthesis_hls):
        text = header.read_text()
        assert "__SYNTHESIS__" not in text, header.name
        if synthesis_conditionals((HLS_DIR / header.name).read_text()):
            assert text.startswith(f"#ifndef {MACRO}\n#define {MACRO} 1"), header.name


def test_designs_reach_every_datapath_kind():
    """The designs hold what BRANCHES says they reach: every PE kind, a convolution with border
    corrections and max-pool, Huffman-coded layers."""
    mlp, cnn, huff = (make() for make in DESIGNS.values())
    assert {layer.pe_kind for layer in mlp.layers} == {"xnor", "masked", "mac", "shift", "planes", "addsub"}
    assert max(layer.simd for layer in mlp.layers if layer.pe_kind == "xnor") > 64
    assert max(layer.simd * layer.wtype.bits for layer in mlp.layers if layer.pe_kind == "mac") > 64
    kinds = {type(node).__name__ for node in cnn.nodes}
    assert {"SlidingWindow", "MaxPool"} <= kinds, kinds
    assert all(layer.huffman is not None for layer in huff.layers)
    assert {layer.pe_kind for layer in huff.layers} == {"mac", "shift", "xnor"}


def test_every_synthesis_branch_is_listed_and_renamed(tmp_path):
    """BRANCHES is exactly the set of __SYNTHESIS__ conditionals in the library, and the rewrite
    renames all of them (one more conditional per header: the guard that defines MACRO)."""
    found = {(h.name, line) for h in library_headers(HLS_DIR) for line in synthesis_conditionals(h.read_text())}
    assert found == set(BRANCHES), f"unlisted: {sorted(found - set(BRANCHES))}, gone: {sorted(set(BRANCHES) - found)}"
    for name in TESTBENCH_ONLY:  # never synthesised, never rewritten: the testbench needs it whole
        assert synthesis_conditionals((HLS_DIR / name).read_text())
    rewritten = rewrite_library(_library_copy(tmp_path / "hls"))
    for header in library_headers(rewritten):
        original = (HLS_DIR / header.name).read_text()
        text = header.read_text()
        n = len(synthesis_conditionals(original))
        assert synthesis_conditionals(text) == [], header.name
        assert len(synthesis_conditionals(text, MACRO)) == (n + 1 if n else 0), header.name
        assert text == rewrite_header(original) and (n == 0) == (text == original), header.name
    assert (rewritten / "lbgen_csim.hpp").read_text() == (HLS_DIR / "lbgen_csim.hpp").read_text()


def _library_copy(dst: Path) -> Path:
    dst.mkdir(parents=True)
    for header in HLS_DIR.glob("*.hpp"):
        shutil.copy(header, dst / header.name)
    return dst
