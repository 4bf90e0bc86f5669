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
from lbgen.emitters.hls import GENERATED, HLSEmitError, emit_hls, hls_context, library_files
from lbgen.ir import DType, Graph, MatVec, signed_bits_for

from lbgen_testing.graphs import random_graph, random_inputs

B = DType("bipolar", 1)


def L2(bits: int) -> DType:
    return DType("log2", bits)


T = DType("ternary", 2)


def H(*scales: int) -> DType:
    return DType("hetero", 2 * len(scales) - 1, tuple(scales))


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
    # shift-add: log2 weights of 2..6 bits x uint 1..8 / bipolar inputs; SIMD 1 / partial / full,
    # PE 1 / partial / full; converters down (4 -> 1), same, up (1 -> 10), general (5 -> 2)
    "log2": ([20, 12, 12, 10, 10, 6], [L2(6), L2(2), L2(3), L2(4), L2(5)], [U(8), U(1), U(3), B, U(2)],
             [(4, 5), (12, 1), (1, 12), (5, 10), (3, 2)], None),
    # masked planes: 1..4 planes, bipolar and uint inputs; layers 2 and 5 have large scales whose
    # planes cancel (see CANCEL), so K_0 * P_0 far exceeds their exact (tiny) accumulators
    "hetero": ([24, 16, 12, 10, 8, 8, 6],
               [H(7), H(3, 1), H(40000, 39999, 1), H(5, 3, 2, 1), H(4, 2, 1), H(65536, 40000, 25535, 1)],
               [B, U(2), B, U(3), B, U(4)], [(16, 24), (1, 1), (5, 4), (2, 5), (4, 2), (3, 8)], None),
    # both new kinds with 32-bit accumulators; signed inputs to the planes
    "lowbit32": ([18, 12, 9, 6, 4], [H(8, 4, 2), L2(3), H(2, 1), L2(4)], [I(4), U(2), B, U(5)],
                 [(3, 6), (9, 3), (3, 9), (1, 2)], 32),
    # ternary weights x signed, bipolar and unsigned inputs (masked add/subtract and masked
    # XNOR-popcount); converters same (4 -> 4), up (6 -> 12 -> ... 4 -> 8)
    "ternary": ([24, 16, 12, 8, 6], [T, T, T, T], [I(4), B, U(3), U(1)], [(4, 6), (6, 4), (4, 12), (3, 8)], None),
    # 8-bit activations at PE=16 with 32-bit accumulators: 255 thresholds per channel, so the
    # thresholds of one neuron fold (16 x 255 x 32 bits) exceed ap_int's 32768 bits; NF 2 and 1
    "thresh255": ([32, 32, 16, 6], [I(4), I(3), I(2)], [U(4), U(8), U(8)], [(16, 8), (16, 16), (2, 16)], 32),
}

#: layers (graph -> indices) whose hetero codes use every plane with signs that cancel
CANCEL = {"hetero": (2, 5)}

N_FRAMES = 300

# layer names that are not C identifiers or clash with the generated code's names
ODD_NAMES = {"mixed": ["features.0", "features.2", "2nd", "lbgen_top"]}


def cancelling_codes(rng: np.random.Generator, wtype: DType, shape: tuple[int, int]) -> np.ndarray:
    """hetero codes using all N planes with signs +-(+, -, ..., -, random): +-(K_0 - K_1 - ... +- K_{N-1}).

    With scales like (65536, 40000, 25535, 1) every value is 0 or +-2 while a plane sum times its
    scale reaches 65536 * SIMD * xmax: exact only if the planes are combined wide enough."""
    n = wtype.planes
    signs = np.zeros(shape + (n,), dtype=np.uint64)
    signs[..., 0] = 1
    if n > 1:
        signs[..., n - 1] = rng.random(shape) < 0.5
    flip = rng.random(shape) < 0.5
    signs[flip] = 1 - signs[flip]
    bits = np.concatenate([signs, np.ones(shape + (n - 1,), dtype=np.uint64)], axis=-1)
    return (bits << np.arange(2 * n - 1, dtype=np.uint64)).sum(axis=-1).astype(np.uint64)


def use_codes(layer: MatVec, codes: np.ndarray, rng: np.random.Generator, acc_bits: int | None) -> None:
    """Give a random layer other hetero codes; re-size its accumulator and thresholds as random_graph does."""
    layer.weight_codes = codes
    layer.weights = layer.wtype.decode(codes)
    lo, hi = layer.acc_range()
    layer.acc_bits = acc_bits or signed_bits_for(int(lo.min()), int(hi.max()) + 1)
    if layer.thresholds is not None:
        t = rng.integers(lo[:, None] - 1, hi[:, None] + 2, size=layer.thresholds.shape)
        amax = (1 << (layer.acc_bits - 1)) - 1
        layer.thresholds = np.sort(np.clip(t, -amax - 1, amax), axis=1).astype(np.int64)


def make_graph(seed: int, name: str) -> Graph:
    dims, wts, ats, fold, acc = GRAPHS[name]
    g = random_graph(seed, dims, wts, ats, fold, acc_bits=acc)
    rng = np.random.default_rng(seed)
    for i in CANCEL.get(name, ()):
        layer = g.layers[i]
        use_codes(layer, cancelling_codes(rng, layer.wtype, (layer.mh, layer.mw)), rng, acc)
    return g.validate()


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
    for seed, name in enumerate(GRAPHS):
        g = make_graph(100 + seed, name)
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
    assert kinds == {"xnor", "addsub", "mac", "shift", "planes", "masked"}
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
    """64-bit accumulators pack and unpack exactly (thresholds at the int64 ends too), in the RTL's
    threshold words and in the HLS per-channel ROM words [PE][NF]."""
    from lbgen.emitters.hls import channel_threshold_bits, threshold_rom
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
    # the two extremes by hand (two's complement, element j at bits [j*64 +: 64]): -2^63 is
    # threshold 0 of channel 0 (element 0 of RTL word 0, of HLS word [0][0]) = 0x8000..0;
    # 2^63-1 is the last threshold of the last channel (RTL: the last element of the last word)
    last = layer.pe * t - 1
    assert threshold_words(layer)[0] & ((1 << 64) - 1) == 0x8000_0000_0000_0000
    assert (threshold_words(layer)[-1] >> (last * 64)) & ((1 << 64) - 1) == 0x7fff_ffff_ffff_ffff
    rom = threshold_rom(layer)
    assert rom[0][0] & ((1 << 64) - 1) == 0x8000_0000_0000_0000
    assert (rom[-1][-1] >> ((t - 1) * 64)) & ((1 << 64) - 1) == 0x7fff_ffff_ffff_ffff
    assert channel_threshold_bits(layer) == t * 64 + 1
    assert (len(rom), len(rom[0])) == (layer.pe, layer.nf)
    for p in range(layer.pe):
        for nf in range(layer.nf):
            c, word = nf * layer.pe + p, rom[p][nf]
            assert word < 1 << (t * 64 + 1)
            np.testing.assert_array_equal(acc.decode(unpack_elements(word, 64, t)), layer.thresholds[c])
            assert word >> (t * 64) == int(layer.threshold_invert[c])


def test_thresholds_are_one_rom_per_pe(built):
    """255 thresholds x PE=16 x 32-bit accumulators: no ROM word holds more than one channel's thresholds."""
    from lbgen.emitters.hls import AP_INT_LIMIT
    b = built["thresh255"]
    layer = b.graph.layers[0]
    assert layer.thresholds.shape[1] == 255 and layer.pe == 16 and layer.acc_bits == 32
    assert layer.pe * (255 * 32 + 1) > AP_INT_LIMIT  # one word per neuron fold would not fit
    ctx = hls_context(b.graph)
    assert [d["thresh_word_bits"] for d in ctx["layers"]] == [255 * 32 + 1, 255 * 32 + 1, 0]
    assert ctx["max_width"] == 255 * 32 + 1
    params = (b.out / "hls" / "lbgen_params.h").read_text()
    assert "static const fc0_config::activation_t::word_t fc0_thresholds[16][2] = {" in params
    assert "static const fc1_config::activation_t::word_t fc1_thresholds[16][1] = {" in params
    top = (b.out / "hls" / "lbgen_top.cpp").read_text()
    for name in ("fc0", "fc1"):
        assert f"#pragma HLS ARRAY_PARTITION variable={name}_thresholds complete dim=1" in top
    assert "fc2_thresholds" not in top


def test_too_wide_words_name_the_layer():
    # weight word: PE 64 x SIMD 128 x 8 bits = 65536 bits
    g = random_graph(6, [128, 64, 4], [I(8), I(2)], [U(2), U(2)], [(64, 128), (4, 8)])
    with pytest.raises(HLSEmitError, match=r"layer 'fc0'.*weight word.*65536 bits.*--pe/--simd.*--folding"):
        hls_context(g)
    # PE 64 x SIMD 64 x 8 bits = 32768 bits is still one word
    g = random_graph(6, [64, 64, 4], [I(8), I(2)], [U(2), U(2)], [(64, 64), (4, 8)])
    assert hls_context(g)["max_width"] == 32768
    # one channel's thresholds: 1023 x 64 bits
    g = random_graph(6, [8, 4, 4, 2], [I(2), I(2), I(2)], [U(2), U(2), U(10)], [(1, 8), (2, 4), (1, 4)],
                     acc_bits=64)
    with pytest.raises(HLSEmitError, match=r"layer 'fc1'.*threshold word.*1023 thresholds.*65473 bits"):
        hls_context(g)
    # 1023 x 32 bits + 1 fits, at any PE
    g = random_graph(6, [8, 4, 4, 2], [I(2), I(2), I(2)], [U(2), U(2), U(10)], [(1, 8), (4, 4), (1, 4)],
                     acc_bits=32)
    assert hls_context(g)["max_width"] == 1023 * 32 + 1


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


# ---------------------------------------------------------------------------
# log2 and hetero weights (shift and planes PEs)
# ---------------------------------------------------------------------------

TRAITS_TB = r"""
#include "lbgen_pe.hpp"
#include <cstdio>
// every code of a kind: "<code> <value()> <native value>"
template <class K>
void dump(const char *name) {
    std::printf("%s\n", name);
    for (unsigned c = 0; c < (1u << K::BITS); c++)
        std::printf("%u %lld %lld\n", c, (long long)K::value(ap_uint<K::BITS>(c)).to_int64(),
                    (long long)lbgen::native::value<K>::get(c));
}
int main() {
%CASES%
    return 0;
}
"""

TRAIT_KINDS = [L2(b) for b in range(2, 7)] + [H(7), H(3, 1), H(8, 4, 2), H(5, 3, 2, 1), H(65536, 65536, 65536, 65536),
               DType("ternary", 2)]


def test_weight_traits_decode_like_the_ir(tmp_path):
    """log2_k<B>, hetero<N, K...> and ternary_k<2>: value(code) and the native model equal DType.decode
    for every code."""
    from lbgen.emitters.hls import elem_type
    cases = [f'    dump<{elem_type(dt)} >("{dt}");' for dt in TRAIT_KINDS]
    src = tmp_path / "tb_traits.cpp"
    src.write_text(TRAITS_TB.replace("%CASES%", "\n".join(cases)))
    hls = Path(str(importlib.resources.files("lbgen.hls")))
    exe = tmp_path / "tb_traits"
    proc = subprocess.run(["g++", "-std=c++14", "-O1", "-w", "-DLBGEN_CSIM_NATIVE", f"-I{ap_types_include()}",
                           f"-I{hls}", str(src), "-o", str(exe)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split("\n")
    for dt in TRAIT_KINDS:
        i = out.index(str(dt))
        rows = np.array([[int(v) for v in line.split()] for line in out[i + 1:i + 1 + (1 << dt.bits)]])
        codes = rows[:, 0].astype(np.uint64)
        want = dt.decode(codes)
        if dt.kind == "hetero":  # non-canonical codes (sign bit of an unused plane) have no IR value
            canonical = ~np.any((((codes[:, None] >> np.arange(dt.planes, dtype=np.uint64)) & np.uint64(1))
                                 .astype(bool)) & ~dt.plane_mask(codes), axis=1)
            rows, want = rows[canonical], want[canonical]
        np.testing.assert_array_equal(rows[:, 1], want, err_msg=str(dt))
        np.testing.assert_array_equal(rows[:, 2], want, err_msg=str(dt))


def test_cancelling_planes_exceed_the_accumulator(built):
    """The large-scale layers really test the wide plane sums: K_0 * (a fold's plane-0 sum) can
    reach far beyond what the layer's exact accumulator holds."""
    g = built["hetero"].graph
    for i in CANCEL["hetero"]:
        layer = g.layers[i]
        xmax = max(abs(layer.itype.min), layer.itype.max)
        assert layer.wtype.scales[0] * layer.simd * xmax > 1000 * (1 << (layer.acc_bits - 1)), layer.name
        assert set(np.unique(layer.weights)) <= {-2, 0, 2}


def test_emit_log2_and_hetero_types(built):
    ctx = hls_context(built["hetero"].graph)
    assert ctx["layers"][2]["weight_elem"] == "lbgen::hetero<3, 40000, 39999, 1>"
    assert ctx["layers"][2]["product"] == "lbgen::MaskedPlanes<lbgen::hetero<3, 40000, 39999, 1>, lbgen::bipolar>"
    ctx = hls_context(built["log2"].graph)
    assert ctx["layers"][0]["product"] == "lbgen::ShiftAdd<lbgen::log2_k<6>, lbgen::uint_k<8>>"
    params = (built["hetero"].out / "hls" / "lbgen_params.h").read_text()
    assert "hetero 4 planes, scales (5, 3, 2, 1), 7-bit codes" in params
    assert "planes (bits) used per weight on average" in params
    params = (built["log2"].out / "hls" / "lbgen_params.h").read_text()
    assert "log2 6-bit (sign bit + 5-bit exponent field; 0, +-2^0..+-2^30) weights x uint8 inputs" in params


def test_emit_ternary_types(built):
    ctx = hls_context(built["ternary"].graph)
    assert [l["product"] for l in ctx["layers"][:2]] == ["lbgen::MaskedAddSub<lbgen::ternary_k<2>, lbgen::int_k<4>>",
                                                         "lbgen::MaskedAddSub<lbgen::ternary_k<2>, lbgen::bipolar>"]
    assert ctx["layers"][0]["wtype"] == "ternary"


def test_emit_rejects_mismatched_log2_and_hetero(built):
    g = Graph.load(built["log2"].out)
    g.layers[1].pe_kind = "mac"
    with pytest.raises(HLSEmitError, match=r"fc1.*'mac' does not fit log2"):
        hls_context(g)
    g = Graph.load(built["hetero"].out)
    g.layers[3].pe_kind = "shift"
    with pytest.raises(HLSEmitError, match=r"fc3.*'shift' does not fit hetero"):
        hls_context(g)
    g = Graph.load(built["log2"].out)
    layer = g.layers[0]
    layer.itype = L2(3)  # a weight format as input elements
    with pytest.raises(HLSEmitError, match="fc0.*weight format"):
        from lbgen.emitters.hls import product_type
        product_type(layer)


def sweep_graph(seed: int, pairs: list[tuple[DType, DType]]) -> Graph:
    """One chain with a layer per (weight type, input type), random sizes and foldings."""
    rng = np.random.default_rng(seed)
    dims = [int(rng.choice([6, 8, 12])) for _ in range(len(pairs) + 1)]
    fold = []
    for i, (wt, it) in enumerate(pairs):
        mw, mh = dims[i], dims[i + 1]
        out_wide = i + 1 < len(pairs) and pairs[i + 1][1].bits > 6  # 127/255 thresholds per channel
        pes = [d for d in range(1, mh + 1) if mh % d == 0 and (d <= 2 or not out_wide)]
        fold.append((int(rng.choice(pes)), int(rng.choice([d for d in range(1, mw + 1) if mw % d == 0]))))
    return random_graph(seed, dims, [wt for wt, _ in pairs], [it for _, it in pairs], fold)


SWEEP_INPUTS = [B] + [U(b) for b in range(1, 9)]
SWEEP_HETERO = [H(3), H(1, 1), H(6, 3), H(4, 2, 1), H(9, 5, 3), H(8, 4, 2, 1), H(7, 5, 3, 1), H(1000, 999, 3, 1)]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["log2", "hetero"])
def test_lowbit_sweep(tmp_path, kind):
    """Every log2 width 2..6 (every hetero plane count 1..4, several scales) x bipolar and uint 1..8 inputs,
    one chain per kind, exact accumulators, both C-simulation modes."""
    weights = [L2(b) for b in range(2, 7)] if kind == "log2" else SWEEP_HETERO
    pairs = [(wt, it) for wt in weights for it in SWEEP_INPUTS]
    np.random.default_rng(3).shuffle(pairs)
    g = sweep_graph(11 if kind == "log2" else 12, pairs)
    g.save(tmp_path)
    emit_hls(g, tmp_path / "hls")
    x = np.concatenate([edge_inputs(g), random_inputs(g, 300)])
    trace = golden.run(g, x)
    for native in (True, False):
        r = run_csim(tmp_path, x, native=native)
        problem = r.mismatch(trace)
        assert problem is None, problem
        print(f"{kind} sweep ({len(pairs)} layers) {'native' if native else 'ap_int'}: "
              f"build {r.build_seconds:.1f}s, {r.frames_per_second:.0f} frames/s")


@pytest.mark.slow
@pytest.mark.parametrize("wtype", [H(4, 2, 1), L2(4)], ids=["hetero", "log2"])
def test_digits_sized_throughput(tmp_path, wtype):
    """A 64-256-256-10 MLP of hetero or log2 weights, uint2 activations: C-sim frames/s, native vs ap_int."""
    g = random_graph(8, [64, 256, 256, 10], [wtype] * 3, [U(2)] * 3, [(16, 16), (16, 16), (2, 16)])
    g.save(tmp_path)
    emit_hls(g, tmp_path / "hls")
    x = random_inputs(g, 1000)
    trace = golden.run(g, x)
    fps = {}
    for native in (True, False):
        r = run_csim(tmp_path, x, native=native)
        assert r.mismatch(trace) is None
        fps[native] = r.frames_per_second
        print(f"digits-sized {wtype}: {'native' if native else 'ap_int'} build {r.build_seconds:.1f}s, "
              f"{r.frames_per_second:.0f} frames/s")
    assert fps[True] > 500
