"""Huffman-coded weight streams (lbgen.huffman, --compress huffman).

Codes: property tests of the length-limited canonical code (round trips,
optimality against the unconstrained Huffman code and the entropy, the limit
honoured). Lanes: the decoder's cycle model never stalls and catches a flipped
bit. Hardware: random graphs emitted with Huffman-coded weights are bit-exact
with the golden model in C-sim (native and ap_int), Icarus and Verilator at
the folding bound; a flipped stream bit raises weight_err in RTL and an error
in C-sim that names the layer; a tampered IR stream is refused on load.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lbgen import golden
from lbgen.huffman import (HuffmanCode, HuffmanError, LaneStream, encode_lanes, entropy_bits, huffman_lengths,
                           lane_sequences, limited_lengths, simulate_lane, word_bits)
from lbgen.ir import DType, Graph, IRError
from lbgen.passes.compress import compress_weights, layer_stats

from lbgen_testing.graphs import random_graph, random_inputs

# -- codes ------------------------------------------------------------------------

counts_st = st.lists(st.integers(0, 10_000), min_size=2, max_size=64).filter(lambda c: any(c))


def _pad(counts: list[int]) -> tuple[list[int], int]:
    bits = max(1, math.ceil(math.log2(len(counts))))
    return counts + [0] * ((1 << bits) - len(counts)), bits


@settings(max_examples=200, deadline=None)
@given(counts=counts_st, seed=st.integers(0, 2**31 - 1))
def test_encode_decode_round_trip(counts, seed):
    counts, bits = _pad(counts)
    code = HuffmanCode.from_counts(counts, bits, max_len=16)
    used = [s for s, c in enumerate(counts) if c]
    seq = np.random.default_rng(seed).choice(used, size=200)
    stream = code.encode(seq)
    assert len(stream) == sum(code.lengths[s] for s in seq)
    back, n = code.decode(stream, len(seq))
    assert n == len(stream) and np.array_equal(back, seq)
    # a canonical code survives its own serialisation
    assert HuffmanCode.from_json(code.to_json()) == code


@settings(max_examples=200, deadline=None)
@given(counts=counts_st, limit=st.integers(1, 16))
def test_length_limit_is_honoured_and_optimal(counts, limit):
    counts, bits = _pad(counts)
    used = sum(1 for c in counts if c)
    if (1 << limit) < used:
        with pytest.raises(HuffmanError):
            HuffmanCode.from_counts(counts, bits, max_len=limit)
        return
    code = HuffmanCode.from_counts(counts, bits, max_len=limit)
    assert code.max_len <= max(1, limit)
    assert sum(2.0 ** -x for x in code.lengths if x) <= 1.0
    assert set(s for s, x in enumerate(code.lengths) if x) == set(s for s, c in enumerate(counts) if c)
    opt = huffman_lengths(counts)
    total = sum(counts)
    mean, opt_mean = code.mean_length(counts), sum(c * x for c, x in zip(counts, opt)) / total
    assert mean >= opt_mean - 1e-12                       # nothing beats Huffman
    assert mean >= entropy_bits(counts) - 1e-9            # nor the entropy
    if limit >= max(opt):
        assert abs(mean - opt_mean) < 1e-12               # the limit does not bind: optimal


def test_one_symbol_all_equal_and_a_binding_limit():
    # one symbol: one bit, and the other prefix is no code
    code = HuffmanCode.from_counts([0, 5, 0, 0], 2)
    assert code.lengths == (0, 1, 0, 0) and not code.complete
    with pytest.raises(HuffmanError, match="no code"):
        code.decode([1], 1)
    # all equally likely: a fixed-length code
    code = HuffmanCode.from_counts([7] * 16, 4)
    assert set(code.lengths) == {4} and code.complete
    # Fibonacci counts need lengths up to n-1 unconstrained; a limit of 4 binds
    fib = [1, 1, 2, 3, 5, 8, 13, 21]
    assert max(huffman_lengths(fib)) == 7
    lim = limited_lengths(fib, 4)
    assert max(lim) == 4 and sum(2.0 ** -x for x in lim) <= 1.0
    code = HuffmanCode.from_counts(fib, 3, max_len=4)
    seq = np.repeat(np.arange(8), fib)
    assert np.array_equal(code.decode(code.encode(seq), len(seq))[0], seq)


# -- lanes and the decoder's cycle model --------------------------------------------

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), sym_bits=st.integers(1, 8), pass_len=st.integers(1, 40),
       limit=st.integers(8, 14), skew=st.sampled_from([0.05, 0.5, 5.0]))
def test_lane_decoder_keeps_up_and_is_exact(seed, sym_bits, pass_len, limit, skew):
    rng = np.random.default_rng(seed)
    n = 1 << sym_bits
    seq = rng.choice(n, size=pass_len, p=rng.dirichlet(np.full(n, skew)))
    code = HuffmanCode.for_symbols(seq, sym_bits, min(limit, 14))
    lane = encode_lanes(code, seq[None, :], word_bits(code.max_len))[0]
    trace = simulate_lane(code, lane, 3 * pass_len, pass_len)
    assert np.array_equal(trace.symbols, np.tile(seq, 3))
    assert trace.cycles == 3 * pass_len + 3 and not trace.error


def test_lane_decoder_flags_every_single_flipped_bit():
    rng = np.random.default_rng(4)
    seq = rng.choice(16, size=48, p=rng.dirichlet(np.full(16, 0.4)))
    code = HuffmanCode.for_symbols(seq, 4)
    lane = encode_lanes(code, seq[None, :], word_bits(code.max_len))[0]
    for bit in range(lane.n_bits):
        words = list(lane.words)
        k, j = divmod(bit, lane.fw)
        words[k] ^= 1 << (lane.fw - 1 - j)
        trace = simulate_lane(code, lane, 2 * len(seq), len(seq), words=words)
        assert trace.error, f"flipping stream bit {bit} went unnoticed"


def test_lane_order_matches_the_weight_rom():
    """Lane i = p*SIMD + s carries W[nf*PE + p][sf*SIMD + s] at position nf*SF + sf
    (docs/emit-contract.md), checked element by element with that rule written out here,
    and equal to the weight ROM's element p*SIMD + s of word nf*SF + sf (whose packing
    tests/test_packing_by_hand.py anchors by hand)."""
    from lbgen.packing import unpack_elements, weight_words

    g = random_graph(2, [12, 8, 4], [DType("int", 4), DType("int", 3)], [DType("uint", 2), DType("uint", 2)],
                     [(4, 3), (2, 4)])
    layer = g.layers[0]
    seqs = lane_sequences(layer.codes(), layer.pe, layer.simd)
    codes = layer.codes()
    for nf in range(layer.nf):
        for p in range(layer.pe):
            for sf in range(layer.sf):
                for s in range(layer.simd):
                    assert seqs[p * layer.simd + s, nf * layer.sf + sf] == codes[nf * layer.pe + p, sf * layer.simd + s]
    for addr, word in enumerate(weight_words(layer)):
        lanes = unpack_elements(word, layer.wtype.bits, layer.pe * layer.simd)
        assert np.array_equal(lanes, seqs[:, addr].astype(np.uint64))


# -- IR -----------------------------------------------------------------------------------

def _huffman_graph(seed: int = 7) -> Graph:
    """Every weight kind Huffman-coded: int4 skewed, log2, hetero, bipolar, int3."""
    g = random_graph(seed, [16, 12, 8, 8, 6, 5],
                     [DType("int", 4), DType("log2", 4), DType("hetero", 5, (8, 4, 2)), DType("bipolar", 1),
                      DType("int", 3)],
                     [DType("uint", 2), DType("uint", 2), DType("uint", 3), DType("uint", 2), DType("bipolar", 1)],
                     [(4, 4), (2, 6), (4, 2), (2, 8), (5, 3)])
    rng = np.random.default_rng(seed)
    w = g.layers[0].weights
    g.layers[0].weights = np.where(rng.random(w.shape) < 0.7, 0, w)   # skewed, as trained weights are
    return compress_weights(g, "huffman", 12).validate()


def test_ir_saves_the_code_and_streams_and_refuses_a_tampered_stream(tmp_path):
    g = _huffman_graph()
    g.save(tmp_path)
    back = Graph.load(tmp_path)
    for a, b in zip(g.layers, back.layers):
        assert a.huffman == b.huffman and np.array_equal(a.huffman_stream, b.huffman_stream)
    stream = np.load(tmp_path / "ir" / "fc1.huffman_stream.npy")
    stream[5] ^= 1
    np.save(tmp_path / "ir" / "fc1.huffman_stream.npy", stream)
    with pytest.raises(IRError, match=r"layer 'fc1'.*lane 0 does not encode its weights"):
        Graph.load(tmp_path)


def test_stats_bound_the_mean_code_length():
    for layer in _huffman_graph().layers:
        s = layer_stats(layer)
        assert s.entropy_bits <= s.huffman_bits + 1e-6
        assert s.mean_len <= 1.01 * s.optimal_mean_len
        assert s.huffman_bits == int(layer.huffman_lane_bits.sum()) <= s.stored_bits


# -- hardware ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def huff_design(tmp_path_factory):
    from lbgen.emitters.hls import emit_hls
    from lbgen.emitters.rtl import emit_rtl

    g = _huffman_graph()
    out = tmp_path_factory.mktemp("huff") / "out"
    g.save(out)
    emit_rtl(g, out / "rtl")
    emit_hls(g, out / "hls")
    x = random_inputs(g, 20, seed=3)
    return out, g, x, golden.run(g, x)


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_rtl_huffman_bit_exact_at_the_bound(huff_design, simulator):
    from lbgen.native_tb import run_native

    out, g, x, trace = huff_design
    res = run_native(out, x, simulator=simulator, seed=2, backpressure=0.3)
    assert res.passed, res.summary()
    assert np.array_equal(res.result, trace.result)
    bound = max(layer.cycles for layer in g.layers)
    assert res.throughput_ok(), res.summary()


@pytest.mark.parametrize("native", [True, False])
def test_csim_huffman_bit_exact(huff_design, native):
    from lbgen.csim import run_csim

    out, g, x, trace = huff_design
    res = run_csim(out, x, native=native, build_dir=out / f"build_{native}")
    assert res.mismatch(trace) is None and np.array_equal(res.result, trace.result)


def _corrupt(src: Path, dst: Path, layer: str, lane: int) -> Path:
    shutil.copytree(src, dst)
    mem = dst / "rtl" / f"{layer}_huff_{lane:04d}.mem"
    words = mem.read_text().split()
    width = len(words[0])
    words[0] = f"{int(words[0], 16) ^ (1 << (4 * width - 2)):0{width}x}"     # the stream's second bit
    mem.write_text("".join(w + "\n" for w in words))
    return dst


@pytest.mark.parametrize("simulator", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_rtl_flipped_stream_bit_raises_weight_err(huff_design, tmp_path, simulator):
    from lbgen.native_tb import run_native

    out, g, x, _ = huff_design
    bad = _corrupt(out, tmp_path / "bad", "fc1", 3)
    res = run_native(bad, x[:6], simulator=simulator, seed=1)
    assert not res.passed
    assert any("layer 'fc1': weight_err" in m for m in res.mismatches), res.mismatches


def test_native_testbench_huffman_exact_and_flipped_bit_raises_weight_err(huff_design, tmp_path):
    """The native testbench (lbgen.native_tb) reads every layer's weight_err like cocotb's."""
    from lbgen.native_tb import run_native

    out, g, x, trace = huff_design
    res = run_native(out, x, simulator="icarus", seed=2, throughput_frames=5)
    assert res.passed and np.array_equal(res.result, trace.result), res.summary()
    assert res.cycles_per_frame == max(layer.cycles for layer in g.layers)
    bad = _corrupt(out, tmp_path / "bad", "fc1", 3)
    res = run_native(bad, x[:6], simulator="icarus", seed=1, throughput_frames=0)
    assert not res.passed and res.build_reused
    assert any(m.startswith("layer 'fc1': weight_err") for m in res.mismatches), res.mismatches


def test_csim_flipped_stream_bit_is_an_error_naming_the_layer(huff_design, tmp_path):
    import re

    from lbgen.csim import CsimError, run_csim

    out, g, x, _ = huff_design
    bad = tmp_path / "bad"
    shutil.copytree(out, bad, ignore=shutil.ignore_patterns("build*"))
    params = bad / "hls" / "lbgen_params.h"
    text = params.read_text()
    at = text.index("fc1_weights = {")
    rows = text.index("// stream words, lane by lane", at)
    m = re.compile(r"\{ (0x[0-9a-f]+)").search(text, rows)           # lane 0, word 0
    word = int(m.group(1), 16) ^ (1 << (layer_fw := _fw(g.layers[1])) - 2)  # its second stream bit
    params.write_text(text[:m.start(1)] + hex(word) + text[m.end(1):])
    with pytest.raises(CsimError, match=r"layer fc1: Huffman weight stream of lane 0"):
        run_csim(bad, x[:4], graph=g, native=True)
    assert layer_fw >= 4


def _fw(layer) -> int:
    return word_bits(layer.huffman.max_len)


def test_huffman_rtl_is_lint_clean(huff_design):
    import subprocess

    from lbgen.simulate import toolchain_env

    out, _, _, _ = huff_design
    res = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", "lbgen_top", "-f", "filelist.f"],
                         cwd=out / "rtl", env=toolchain_env("verilator"), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "%Warning" not in res.stderr, res.stderr
