"""HLS C++ emitter and g++ C-simulation: bit-exact against the golden model.

Every graph is emitted once and built twice (session fixture): with the
native-integer C-simulation model of the MAC datapath (the default of
run_csim) and with the pure ap_int code that synthesis sees.
"""

from __future__ import annotations

import importlib.resources
import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from lbgen import golden
from lbgen.csim import CsimError, ap_types_include, build_csim, run_csim
from lbgen.emit.hls import GENERATED, HLSEmitError, emit_hls, hls_context, library_files
from lbgen.ir import DType, Graph
from lbgen.testing import random_graph, random_inputs

B = DType("bipolar", 1)


def U(bits: int) -> DType:
    return DType("uint", bits)


def I(bits: int) -> DType:  # noqa: E743
    return DType("int", bits)


pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")

# name: (dims, weight types, activation types (input first), folding (pe, simd) per layer, acc_bits)
GRAPHS = {
    # XNOR-popcount throughout; PE 5 -> SIMD 3 and PE 6 -> SIMD 4 divide neither way; tight accumulators
    "bnn": ([64, 30, 24, 10], [B, B, B], [B, B, B], [(5, 8), (6, 3), (2, 4)], None),
    # add/subtract throughout; down-sizing converters (PE 8 -> SIMD 4, PE 16 -> SIMD 8); 32-bit accumulators
    "addsub": ([48, 32, 16, 8], [B, B, B], [U(2), U(2), U(2)], [(8, 12), (16, 4), (4, 8)], 32),
    # multiply-add, signed inputs; PE 9 -> SIMD 4 (general), PE 5 -> SIMD 5 (no converter)
    "mac": ([40, 36, 20, 6], [I(4), I(3), I(2)], [I(4), U(3), U(2)], [(9, 8), (5, 4), (3, 5)], None),
    # all three PE kinds in one pipeline, unsigned weights too, up-sizing 4 -> 6
    "mixed": ([30, 24, 20, 18, 10], [I(2), B, B, U(2)], [I(3), B, U(2), U(4)],
              [(4, 5), (10, 6), (6, 4), (5, 9)], 32),
    # words wider than 64 (and than ap_int's default 1024) bits: 2048-bit weight words,
    # 7696-bit threshold words, 128-bit input beats, 160-bit output beats
    "wide": ([128, 64, 10], [I(4), I(4)], [U(4), U(4)], [(16, 32), (5, 16)], 32),
    # 63-bit accumulators (64 trips DType.encode in ir.py, see test_acc64_packing) and 8-bit operands
    "acc63": ([16, 12, 4], [I(8), I(8)], [U(8), U(2)], [(3, 4), (2, 6)], 63),
}

N_FRAMES = 300

# layer names that are not C identifiers or clash with the generated code's names
ODD_NAMES = {"mixed": ["features.0", "features.2", "2nd", "lbgen_top"]}


@dataclass
class Built:
    graph: Graph
    out: Path
    inputs: np.ndarray
    build_seconds: dict


def edge_inputs(graph: Graph) -> np.ndarray:
    """All-min, all-max and alternating frames: the ends of every accumulator range."""
    it, mw = graph.layers[0].itype, graph.layers[0].mw
    alt = np.where(np.arange(mw) % 2 == 0, it.max, it.min)
    return np.stack([np.full(mw, it.min), np.full(mw, it.max), alt, alt[::-1]]).astype(np.int64)


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> dict[str, Built]:
    root = tmp_path_factory.mktemp("hls")
    result = {}
    for seed, (name, (dims, wts, ats, fold, acc)) in enumerate(GRAPHS.items()):
        g = random_graph(100 + seed, dims, wts, ats, fold, acc_bits=acc)
        for layer, new in zip(g.layers, ODD_NAMES.get(name, [])):
            layer.name = new
        out = root / name
        g.save(out)
        emit_hls(g, out / "hls")
        x = np.concatenate([edge_inputs(g), random_inputs(g, N_FRAMES, seed=seed)])
        result[name] = Built(g, out, x, {})

    def build(job):
        b, native = job
        t0 = time.perf_counter()
        build_csim(b.out / "hls", b.out / "build" / "csim", native=native)
        b.build_seconds[native] = time.perf_counter() - t0

    # two builds at a time; the native one of a design first (the ap_int one reuses its testbench object)
    with ThreadPoolExecutor(max_workers=2) as pool:
        for native in (True, False):
            list(pool.map(build, [(b, native) for b in result.values()]))
    return result


@pytest.mark.parametrize("native", [True, False], ids=["native", "ap_int"])
@pytest.mark.parametrize("name", list(GRAPHS))
def test_csim_bit_exact(built, name, native):
    b = built[name]
    trace = golden.run(b.graph, b.inputs)
    r = run_csim(b.out, b.inputs, native=native)
    assert r.build_seconds == 0.0  # the session fixture built it
    assert r.frames == len(b.inputs)
    assert r.result.shape == trace.result.shape
    problem = r.mismatch(trace)
    assert problem is None, problem
    assert np.array_equal(r.result, trace.result)
    assert list(r.layers) == [layer.name for layer in b.graph.layers]
    for layer in b.graph.layers:
        assert np.array_equal(r.layers[layer.name], trace.outputs[layer.name]), layer.name
    print(f"{name} {'native' if native else 'ap_int'}: build {b.build_seconds[native]:.1f}s, "
          f"{r.frames_per_second:.0f} frames/s")


def test_pe_kinds_and_converters_covered(built):
    kinds = {layer.pe_kind for b in built.values() for layer in b.graph.layers}
    assert kinds == {"xnor", "addsub", "mac"}
    modes = set()
    for b in built.values():
        for a, n in zip(b.graph.layers, b.graph.layers[1:]):
            modes.add("same" if a.pe == n.simd else "down" if a.pe % n.simd == 0
                      else "up" if n.simd % a.pe == 0 else "general")
    assert modes == {"same", "down", "up", "general"}
    ctx = hls_context(built["wide"].graph)
    assert ctx["max_width"] > 1024 and ctx["ap_int_max_w"] >= ctx["max_width"]


def test_without_trace(built):
    b = built["mac"]
    r = run_csim(b.out, b.inputs[:20], trace=False)
    assert r.layers == {}
    assert np.array_equal(r.result, golden.run(b.graph, b.inputs[:20]).result)


def test_zero_frames(built):
    b = built["bnn"]
    r = run_csim(b.out, b.inputs[:0])
    assert r.result.shape == (0, b.graph.output.mh)


def test_mismatch_names_layer_and_channel(built):
    b = built["mixed"]
    x = b.inputs[:50]
    r = run_csim(b.out, x)
    # the golden model of a graph with one weight changed differs from this design
    other = Graph.load(b.out)
    layer = other.layers[1]  # "features.2"
    layer.weights = layer.weights.copy()
    layer.weights[7] = -layer.weights[7]
    problem = r.mismatch(golden.run(other, x))
    assert problem is not None
    assert problem.startswith(f"layer {layer.name!r}") and "channel 7" in problem, problem


def test_emitted_files(built):
    b = built["bnn"]
    hls = b.out / "hls"
    names = {p.name for p in hls.iterdir() if p.is_file()}
    assert set(GENERATED) <= names
    assert {f.name for f in library_files()} <= names
    top = (hls / "lbgen_top.cpp").read_text()
    assert "#pragma HLS DATAFLOW" in top and "#pragma HLS INTERFACE axis port=in" in top
    params = (hls / "lbgen_params.h").read_text()
    assert "struct fc0_config" in params and "typedef ap_int<" in params
    hdr = (hls / "lbgen_top.h").read_text()
    assert "void lbgen_top(hls::stream<ap_uint<LBGEN_IN_W> > &in, hls::stream<ap_uint<LBGEN_OUT_W> > &out);" in hdr


def test_broken_config_fails_static_assert(built, tmp_path):
    """A config whose PE does not divide MH must not compile."""
    b = built["mac"]
    hls = tmp_path / "hls"
    shutil.copytree(b.out / "hls", hls)
    params = (hls / "lbgen_params.h").read_text()
    broken, n = re.subn(r"(struct fc0_config \{.*?static const unsigned PE = )9;", r"\g<1>7;", params,
                        count=1, flags=re.S)
    assert n == 1
    (hls / "lbgen_params.h").write_text(broken)
    with pytest.raises(CsimError, match="PE must divide MH"):
        build_csim(hls, tmp_path / "build")


def test_stale_design_is_detected(built):
    b = built["mac"]
    with pytest.raises(CsimError, match="another graph"):
        other = built["addsub"].graph
        run_csim(b.out, random_inputs(other, 2), graph=other)


def test_missing_hls4ml_is_a_clear_error(monkeypatch):
    import lbgen.csim as csim
    monkeypatch.setattr(csim.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(CsimError, match="hls4ml"):
        csim.ap_types_include()


def test_emit_rejects_wrong_pe_kind(built):
    g = Graph.load(built["bnn"].out)
    g.layers[0].pe_kind = "mac"  # does not fit bipolar x bipolar
    with pytest.raises(HLSEmitError, match="fc0"):
        hls_context(g)


def test_acc64_packing():
    """64-bit accumulators pack and unpack exactly (thresholds at the int64 ends too)."""
    from lbgen.packing import threshold_words, unpack_elements
    from lbgen.ir import DType
    g = random_graph(5, [16, 12, 4], [I(8), I(8)], [U(8), U(2)], [(3, 4), (2, 6)], acc_bits=64)
    layer = g.layers[0]
    layer.thresholds[0, 0] = -(1 << 63)
    layer.thresholds[-1, -1] = (1 << 63) - 1
    hls_context(g)
    acc = DType("int", 64)
    t = layer.thresholds.shape[1]
    for nf, word in enumerate(threshold_words(layer)):
        got = acc.decode(unpack_elements(word, 64, layer.pe * t)).reshape(layer.pe, t)
        np.testing.assert_array_equal(got, layer.thresholds[nf * layer.pe:(nf + 1) * layer.pe])


WIDTH_CONVERT_TB = r"""
#include "lbgen_stream.hpp"
#include <cstdio>
// element e of the frame has value (e * 7 + 3) mod 2^EB
static unsigned long long val(unsigned e, unsigned eb) {
    unsigned long long v = (unsigned long long)e * 7 + 3;
    return eb >= 64 ? v : v & ((1ull << eb) - 1);
}
template <unsigned IN, unsigned OUT, unsigned EB, unsigned FRAME>
int check() {
    hls::stream<ap_uint<IN * EB> > in;
    hls::stream<ap_uint<OUT * EB> > out;
    int bad = 0;
    for (int rep = 0; rep < 2; rep++) {
        for (unsigned b = 0; b < FRAME / IN; b++) {
            ap_uint<IN * EB> beat = 0;
            for (unsigned k = 0; k < IN; k++) beat.range(k * EB + EB - 1, k * EB) = val(b * IN + k, EB);
            in.write(beat);
        }
        lbgen::width_convert<IN, OUT, EB, FRAME>(in, out);
        if (!in.empty() || out.size() != FRAME / OUT) { std::printf("%u %u %u %u: beats\n", IN, OUT, EB, FRAME); return 1; }
        for (unsigned b = 0; b < FRAME / OUT; b++) {
            ap_uint<OUT * EB> beat = out.read();
            for (unsigned k = 0; k < OUT; k++)
                if (beat.range(k * EB + EB - 1, k * EB) != val(b * OUT + k, EB)) bad = 1;
        }
    }
    if (bad) std::printf("%u %u %u %u: order\n", IN, OUT, EB, FRAME);
    return bad;
}
int main() {
    int bad = 0;
%CASES%
    std::printf("bad=%d\n", bad);
    return bad != 0;
}
"""


def test_width_convert_grid(tmp_path):
    cases = []
    for i in range(1, 9):
        for o in range(1, 9):
            for eb in ((1, 3, 32) if i * o <= 12 else (3,)):
                frame = 2 * i * o // np.gcd(i, o)
                cases.append(f"    bad |= check<{i}, {o}, {eb}, {frame}>();")
    cases.append("    bad |= check<24, 40, 20, 120>();")  # multi-word beats and buffer
    cases.append("    bad |= check<5, 3, 64, 15>();")
    src = tmp_path / "tb_wc.cpp"
    src.write_text(WIDTH_CONVERT_TB.replace("%CASES%", "\n".join(cases)))
    hls = Path(str(importlib.resources.files("lbgen.hls")))
    exe = tmp_path / "tb_wc"
    proc = subprocess.run(["g++", "-std=c++14", "-O1", "-w", "-DAP_INT_MAX_W=2048", f"-I{ap_types_include()}", f"-I{hls}",
                           str(src), "-o", str(exe)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = subprocess.run([str(exe)], capture_output=True, text=True)
    assert run.returncode == 0 and "bad=0" in run.stdout, run.stdout


@pytest.mark.slow
def test_mnist_sized_throughput(tmp_path):
    """A 784-256-256-10 w2a2 MLP, 1000 frames; reports build time and frames/s."""
    g = random_graph(7, [784, 256, 256, 10], [I(2)] * 3, [U(2)] * 3, [(16, 49), (16, 16), (2, 16)])
    g.save(tmp_path)
    emit_hls(g, tmp_path / "hls")
    x = random_inputs(g, 1000)
    r = run_csim(tmp_path, x)
    assert r.mismatch(golden.run(g, x)) is None
    print(f"mnist w2a2: build {r.build_seconds:.1f}s, {r.frames_per_second:.0f} frames/s")
    assert r.frames_per_second > 500
