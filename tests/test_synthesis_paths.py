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
the designs that reach it; a header that gains a branch, loses one or changes
the first line of one fails :func:`test_every_synthesis_branch_is_listed_and_renamed`
until the table (and, for a new datapath branch, a design here) is updated.
"""

from __future__ import annotations

import importlib.resources
import re
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


#: every __SYNTHESIS__ conditional of the library, keyed by its header and the first line of its
#: branch (not the line number, which moves with any edit above it): what it guards and the designs
#: below whose synthesis build compiles (declarations, C-sim-only code it drops) or runs it
BRANCHES = {
    ("lbgen_common.hpp", "#define LBGEN_NATIVE_MODEL 1"): ("no native model in synthesis", "all"),
    ("lbgen_common.hpp", "#include <vector>"): ("C-sim only include", "all"),
    ("lbgen_common.hpp", "template <int N, bool WIDE = (N > 64)>"): ("to_limbs and limb fields, C-sim only", "all"),
    ("lbgen_common.hpp", "const unsigned PER = 64 / EB;  // elements per chunk"):
        ("unpack: 64-bit chunks cut by range()", "mlp cnn huffman"),
    ("lbgen_common.hpp", "ap_uint<bits_for(N)> count = 0;"): ("popcount: a sum of the bits", "mlp cnn huffman"),
    ("lbgen_conv.hpp", "namespace lbgen {"): ("the loop counter of C-sim tests", "cnn"),
    ("lbgen_huffman.hpp", "#include <cstdint>"): ("C-sim only includes", "huffman"),
    ("lbgen_huffman.hpp", "typedef ap_uint<FW> type;"): ("Huffman ROM words as ap_uint<FW>", "huffman"),
    ("lbgen_huffman.hpp", "static bool reported = false;"): ("stream errors printed in C-sim only", "huffman"),
    ("lbgen_mvau.hpp", "accumulate_word(acc, weights[i], x, first);"):
        ("mac_stage::accumulate: the ROM word itself", "mlp cnn"),
    ("lbgen_mvau.hpp", "static const ap_uint<ROW_BITS> *rom_rows(const typename CFG::weight_word_t rom[]) {"):
        ("ROM rows cut once, C-sim only", "mlp cnn"),
    ("lbgen_mvau.hpp", "// C-simulation: the word cut into its 64-bit limbs once, the rows taken from those"):
        ("accumulate_word's limbs, C-sim only", "mlp cnn huffman"),
    ("lbgen_mvau.hpp", "const ap_uint<ROW_BITS> row = w.range(p * ROW_BITS + ROW_BITS - 1, p * ROW_BITS);"):
        ("accumulate_word: a PE row by range()", "mlp cnn huffman"),
    ("lbgen_mvau.hpp", "return ACT::activate(acc, act_rom[p][nf]);"):
        ("act_stage: MultiThreshold::activate on the ROM word", "mlp cnn huffman"),
    ("lbgen_mvau.hpp", "// C-simulation: every threshold word of the layer's ROM unpacked once (the same bits"):
        ("threshold tables, C-sim only", "mlp cnn huffman"),
    ("lbgen_pe.hpp", "return type(WE::value(w)) * type(XE::value(x));"):
        ("lane_product: the product in ap_int<type>", "mlp cnn huffman"),
}


def branch_keys(hls_dir: Path) -> dict[tuple[str, str], int]:
    """(header, first line of the branch) -> line of the conditional, for every __SYNTHESIS__
    conditional of lbgen's library headers in ``hls_dir``."""
    keys = {}
    for header in library_headers(hls_dir):
        lines = header.read_text().splitlines()
        for line in synthesis_conditionals("\n".join(lines)):
            keys[(header.name, lines[line].strip())] = line
    return keys


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


def test_designs_reach_every_datapath_kind(tmp_path):
    """The designs hold what BRANCHES says they reach: every PE kind, a convolution with border
    corrections and max-pool, Huffman-coded layers."""
    mlp, cnn, huff = (make() for make in DESIGNS.values())
    assert {layer.pe_kind for layer in mlp.layers} == {"xnor", "masked", "mac", "shift", "planes", "addsub"}
    assert max(layer.simd for layer in mlp.layers if layer.pe_kind == "xnor") > 64
    assert max(layer.simd * layer.wtype.bits for layer in mlp.layers if layer.pe_kind == "mac") > 64
    kinds = {type(node).__name__ for node in cnn.nodes}
    assert {"SlidingWindow", "MaxPool"} <= kinds, kinds
    emit_hls(cnn, tmp_path / "hls")
    classes = re.findall(r"N_CLASS = (\d+);", (tmp_path / "hls" / "lbgen_params.h").read_text())
    assert max(map(int, classes)) > 1, classes  # border corrections: the engine's N_CLASS > 1 path
    assert all(layer.huffman is not None for layer in huff.layers)
    assert {layer.pe_kind for layer in huff.layers} == {"mac", "shift", "xnor"}


def test_every_synthesis_branch_is_listed_and_renamed(tmp_path):
    """BRANCHES is exactly the set of __SYNTHESIS__ conditionals in the library, and the rewrite
    renames all of them (one more conditional per header: the guard that defines MACRO)."""
    found = branch_keys(HLS_DIR)
    assert len(found) == len(BRANCHES), "two branches of one header start with the same line"
    assert set(found) == set(BRANCHES), \
        f"unlisted: {sorted(set(found) - set(BRANCHES))}, gone: {sorted(set(BRANCHES) - set(found))}"
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
    """The shipped library headers (lbgen.hls) copied to ``dst``, for a build without a design."""
    dst.mkdir(parents=True)
    for header in HLS_DIR.glob("*.hpp"):
        shutil.copy(header, dst / header.name)
    return dst


# -- the functors on their own ------------------------------------------------------------

#: popcount / XnorPopcount widths: one bit, inside a limb, a whole limb, across limbs
POP_WIDTHS = (1, 7, 64, 65, 130)
#: unpack (element bits, elements): 1-bit lanes, elements straddling the 64-bit chunk edges,
#: one element per chunk, whole-limb elements
UNPACK_SHAPES = ((1, 72), (3, 30), (7, 19), (10, 13), (33, 3), (63, 2), (64, 2))
#: lane_product operand kinds (weight, input) and their values for every code
#: (the bipolar pairs are lane_product's conditional-negate specialisations)
PRODUCT_KINDS = (("int_k<4>", "uint_k<3>"), ("int_k<8>", "int_k<8>"), ("uint_k<5>", "int_k<6>"),
                 ("int_k<2>", "uint_k<8>"), ("int_k<4>", "bipolar"), ("uint_k<3>", "bipolar"),
                 ("bipolar", "int_k<3>"), ("bipolar", "uint_k<2>"), ("bipolar", "bipolar"))
N_WORDS = 24


def _kind_values(kind: str) -> np.ndarray:
    """value(code) for every code of ``int_k<B>`` / ``uint_k<B>`` / ``bipolar``, as lbgen_common.hpp defines them."""
    if kind == "bipolar":
        return np.array([-1, 1], dtype=np.int64)
    bits = int(kind.split("<")[1].rstrip(">"))
    codes = np.arange(1 << bits, dtype=np.int64)
    return np.where(codes >= 1 << (bits - 1), codes - (1 << bits), codes) if kind.startswith("int") else codes


def _random_words(rng: np.random.Generator, bits: int, n: int) -> list[int]:
    """All-zero, all-one and n - 2 random words of ``bits`` bits."""
    return [0, (1 << bits) - 1] + [int.from_bytes(rng.bytes((bits + 7) // 8), "little") % (1 << bits)
                                   for _ in range(n - 2)]


def _word(word: int, bits: int) -> str:
    """A C++ expression for the ap_uint<bits> ``word``: its 64-bit limbs, most significant first."""
    limbs = [(word >> (64 * k)) & ((1 << 64) - 1) for k in reversed(range((bits + 63) // 64))]
    return f"word<{bits}>({{{', '.join(f'{limb}ull' for limb in limbs)}}})"


FUNCTOR_MAIN = """#include <cstdio>
#include <initializer_list>
#include "lbgen.hpp"

template <int N>
ap_uint<N> word(std::initializer_list<unsigned long long> msb_first) {
    ap_uint<N> w = 0;
    for (unsigned long long limb : msb_first) w = N > 64 ? ap_uint<N>((w << 64) | ap_uint<N>(limb)) : ap_uint<N>(limb);
    return w;
}

template <class WE, class XE>
void products(const char *name) {
    std::printf("product %s", name);
    for (unsigned w = 0; w < (1u << WE::BITS); w++)
        for (unsigned x = 0; x < (1u << XE::BITS); x++)
            std::printf(" %lld", (long long)lbgen::detail::lane_product<WE, XE>::apply(w, x).to_int64());
    std::printf("\\n");
}

int main() {
BODY
    return 0;
}
"""


def functor_program(rng: np.random.Generator) -> tuple[str, list[str]]:
    """The C++ of a program that prints popcount, XnorPopcount::dot, unpack and lane_product
    on random operands (one line each), and the lines numpy expects."""
    body, want = [], []
    for bits in POP_WIDTHS:
        ws, xs = _random_words(rng, bits, N_WORDS), _random_words(rng, bits, N_WORDS)[::-1]
        for w, x in zip(ws, xs):
            body.append(f'    std::printf("pop {bits} %u\\n", (unsigned)lbgen::popcount({_word(w, bits)}));')
            want.append(f"pop {bits} {bin(w).count('1')}")
            body.append(f'    std::printf("xnor {bits} %lld\\n", (long long)lbgen::XnorPopcount<lbgen::bipolar, '
                        f'lbgen::bipolar>::dot<{bits}, ap_int<16> >({_word(w, bits)}, {_word(x, bits)}).to_int64());')
            want.append(f"xnor {bits} {2 * (bits - bin(w ^ x).count('1')) - bits}")
    for eb, count in UNPACK_SHAPES:
        bits = eb * count + 3  # bits above the last element must be ignored
        for w in _random_words(rng, bits, N_WORDS):
            body.append(f"    {{ ap_uint<{eb}> e[{count}]; lbgen::unpack<{eb}, {count}>({_word(w, bits)}, e);\n"
                        f'      std::printf("unpack {eb}x{count}"); for (int i = 0; i < {count}; i++) '
                        f'std::printf(" %llu", (unsigned long long)e[i].to_uint64()); std::printf("\\n"); }}')
            want.append(f"unpack {eb}x{count} " + " ".join(str((w >> (i * eb)) & ((1 << eb) - 1))
                                                         for i in range(count)))
    for wk, xk in PRODUCT_KINDS:
        name = f"{wk},{xk}"
        body.append(f'    products<lbgen::{wk}, lbgen::{xk} >("{name}");')
        want.append(f"product {name} " + " ".join(map(str, np.outer(_kind_values(wk), _kind_values(xk)).ravel())))
    return FUNCTOR_MAIN.replace("BODY", "\n".join(body)), want


@pytest.fixture(scope="module")
def functor_outputs(tmp_path_factory) -> tuple[dict[str, list[str]], list[str]]:
    """The functor program built against the library as C-sim sees it and with the synthesis
    branches on (the two compiles run side by side); each one's output lines, and numpy's."""
    root = tmp_path_factory.mktemp("functors")
    source, want = functor_program(np.random.default_rng(2026))
    (root / "functors.cpp").write_text(source)
    libraries = {"csim": HLS_DIR, "synthesis": rewrite_library(_library_copy(root / "hls"))}
    builds = {name: subprocess.Popen(["g++", CXX_STD, *CXX_FLAGS, f"-I{ap_types_include()}", f"-I{lib}",
                                      str(root / "functors.cpp"), "-o", str(root / name)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
              for name, lib in libraries.items()}
    outputs = {}
    for name, proc in builds.items():
        log = proc.communicate()[0]
        assert proc.returncode == 0, f"{name} build failed:\n{log}"
        outputs[name] = subprocess.run([str(root / name)], capture_output=True, text=True, check=True).stdout.splitlines()
    return outputs, want


@pytest.mark.parametrize("what", ["pop", "xnor", "unpack", "product"])
@pytest.mark.parametrize("library", ["synthesis", "csim"])
def test_functors_match_numpy(functor_outputs, library, what):
    """popcount, XnorPopcount::dot, unpack and lane_product, each side of their __SYNTHESIS__
    branch, equal numpy on random words of several widths (and every operand pair for products)."""
    outputs, want = functor_outputs
    got = [line for line in outputs[library] if line.split()[0] == what]
    expected = [line for line in want if line.split()[0] == what]
    assert expected and len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g == e, f"{library}: got {g[:200]!r}, numpy {e[:200]!r}"
