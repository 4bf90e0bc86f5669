"""ROM images of two tiny layers, every expected word written out by hand.

The other emitter tests compare the `.mem` files and `lbgen_params.h` with
`lbgen.packing.weight_words` / `threshold_words` / `threshold_search_words`,
the very functions the emitters write them with, so a slip in packing.py
(PE and SIMD swapped, elements in the wrong order, a sign not in two's
complement, an invert flag at the wrong bit) would pass them. Here every
expected `.mem` line and every HLS ROM initialiser is derived by hand from the
rules of docs/emit-contract.md ("Numbers" and "Folding and order"), quoted
where they are used:

  (E) Element i of any word sits at bits [i*W +: W].
  (W) Weight ROM: depth NF*SF, address nf*SF + sf, element p*SIMD + s = code of
      W[nf*PE+p][sf*SIMD+s].
  (P) Threshold ROM (RTL, parallel unit, 1-bit outputs): depth NF, element p*T + j
      (acc_bits wide) = thresholds[nf*PE+p][j]; bit PE*T*acc_bits + p =
      threshold_invert[nf*PE+p].
  (S) Threshold ROMs (RTL, binary search, B >= 2 output bits): file
      <layer>_thr<k>_<p>.mem, depth NF*2^k; address nf*2^k + q holds
      thresholds[nf*PE+p][q*2^(B-k) + 2^(B-k-1) - 1], acc_bits wide; stage 0
      words carry threshold_invert[nf*PE+p] at bit acc_bits.
  (H) HLS thresholds: array [PE][NF], word [p][nf] holds channel nf*PE+p,
      threshold j at bits [j*acc_bits +: acc_bits], the invert flag at bit T*acc_bits.
  (N) bipolar: -1/+1 as bit (v+1)/2; int k: two's complement.
  (M) every .mem line is exactly ceil(bits/4) hex digits.

The HLS weight ROM holds the RTL's words (its comment: "word nf*SF+sf, element
p*SIMD+s"); its literals are 0x<ceil(bits/4) hex digits>ULL.
"""

from __future__ import annotations

import numpy as np
import pytest

from lbgen.emitters.hls import emit_hls
from lbgen.emitters.rtl import emit_rtl
from lbgen.ir import DType, Graph, InputQuant, MatVec
from lbgen.passes.pe import choose_pe

from lbgen_testing.params_text import c_initialiser, compact

I2, U2, B = DType("int", 2), DType("uint", 2), DType("bipolar", 1)

# fc1, the output layer of both graphs: 4 inputs -> 2 outputs, PE 1, SIMD 4, int2 weights
FC1_W = [[1, -1, 1, 0],
         [-2, 1, 0, 1]]
# NF = 2, SF = 1; int2 codes (N): 1 -> 01, -1 -> 11, 0 -> 00, -2 -> 10; 8-bit words.
# (W)+(E) address nf: element s = W[nf][s], element 0 lowest:
#   addr 0: e3..e0 = 0 (00), 1 (01), -1 (11), 1 (01) -> 00 01 11 01 = 0x1d
#   addr 1: e3..e0 = 1 (01), 0 (00), 1 (01), -2 (10) -> 01 00 01 10 = 0x46
FC1_WEIGHTS_MEM = "1d\n46\n"
FC1_WEIGHTS_HLS = "{0x1dULL, 0x46ULL}"


def _graph(fc0: MatVec, fc1_itype: DType, fc1_acc_bits: int) -> Graph:
    fc0.pe_kind = choose_pe(fc0)
    fc1 = MatVec(name="fc1", mw=4, mh=2, weights=np.array(FC1_W), wtype=I2, itype=fc1_itype, pe=1, simd=4,
                 acc_bits=fc1_acc_bits, out_scale=np.ones(2), out_bias=np.zeros(2))
    fc1.pe_kind = choose_pe(fc1)
    return Graph("tiny", InputQuant(U2, 1 / 3), [fc0, fc1]).validate()


def _int2_weights_bipolar_out() -> Graph:
    """fc0: 4 -> 4, PE 2, SIMD 2, int2 weights x uint2 inputs, one threshold per channel
    (bipolar output: the parallel threshold unit), channels 1 and 3 inverted."""
    fc0 = MatVec(name="fc0", mw=4, mh=4, wtype=I2, itype=U2, pe=2, simd=2, acc_bits=6,
                 weights=np.array([[1, -2, 0, -1],      # channel 0
                                   [-1, 1, -2, 0],      # channel 1
                                   [0, 1, 1, -2],       # channel 2
                                   [-2, 0, 1, -1]]),    # channel 3
                 thresholds=np.array([[3], [-5], [2], [-1]]),
                 threshold_invert=np.array([False, True, False, True]), odtype=B)
    return _graph(fc0, B, 5)


def _bipolar_weights_uint2_out() -> Graph:
    """fc0: 4 -> 4, PE 2, SIMD 2, bipolar weights x uint2 inputs, three thresholds per
    channel (uint2 output: the binary-search threshold unit), channel 2 inverted."""
    fc0 = MatVec(name="fc0", mw=4, mh=4, wtype=B, itype=U2, pe=2, simd=2, acc_bits=5,
                 weights=np.array([[1, -1, -1, 1],      # channel 0
                                   [-1, -1, 1, 1],      # channel 1
                                   [1, 1, 1, -1],       # channel 2
                                   [-1, 1, 1, -1]]),    # channel 3
                 thresholds=np.array([[-3, 0, 2], [-1, 1, 4], [-12, -2, 5], [0, 0, 6]]),
                 threshold_invert=np.array([False, False, True, False]), odtype=U2)
    return _graph(fc0, U2, 6)


def _emit(graph: Graph, tmp_path):
    emit_rtl(graph, tmp_path / "rtl")
    emit_hls(graph, tmp_path / "hls")
    return tmp_path / "rtl", (tmp_path / "hls" / "lbgen_params.h").read_text()


def _mem_files(rtl) -> set[str]:
    return {p.name for p in rtl.glob("*.mem")}


def test_int2_weights_and_parallel_thresholds_by_hand(tmp_path):
    """Signed 2-bit weights with PE/SIMD interleaving and the parallel unit's threshold
    word (two's complement thresholds, invert flags above them), RTL and HLS, by hand."""
    rtl, params = _emit(_int2_weights_bipolar_out(), tmp_path)
    assert _mem_files(rtl) == {"fc0_weights.mem", "fc0_thresholds.mem", "fc1_weights.mem"}

    # Weights, (W)+(E)+(N): NF = SF = 2, 4 elements of 2 bits per word (8 bits, 2 hex digits (M));
    # element p*SIMD + s = W[nf*2 + p][sf*2 + s]; written e3 e2 e1 e0 = (p1 s1)(p1 s0)(p0 s1)(p0 s0).
    #   addr 0 (nf 0, sf 0): W[1][1]=1 01, W[1][0]=-1 11, W[0][1]=-2 10, W[0][0]=1 01  -> 0111 1001 = 0x79
    #   addr 1 (nf 0, sf 1): W[1][3]=0 00, W[1][2]=-2 10, W[0][3]=-1 11, W[0][2]=0 00  -> 0010 1100 = 0x2c
    #   addr 2 (nf 1, sf 0): W[3][1]=0 00, W[3][0]=-2 10, W[2][1]=1 01, W[2][0]=0 00   -> 0010 0100 = 0x24
    #   addr 3 (nf 1, sf 1): W[3][3]=-1 11, W[3][2]=1 01, W[2][3]=-2 10, W[2][2]=1 01  -> 1101 1001 = 0xd9
    assert (rtl / "fc0_weights.mem").read_text() == "79\n2c\n24\nd9\n"
    assert c_initialiser(params, "fc0_weights") == compact("{0x79ULL, 0x2cULL, 0x24ULL, 0xd9ULL}")

    # Thresholds, (P)+(E)+(N): acc_bits 6, T = 1, PE = 2: elements at bits [0,6) (p 0) and [6,12)
    # (p 1), invert flags at bits 12 + p; 14 bits, 4 hex digits (M).
    #   nf 0: ch 0: 3 = 000011; ch 1: -5 = 64-5 = 59 = 111011 -> 59<<6 = 0xec0; inv ch 1 -> bit 13 = 0x2000
    #         0x2000 + 0xec0 + 0x3 = 0x2ec3
    #   nf 1: ch 2: 2 = 000010; ch 3: -1 = 63 -> 63<<6 = 0xfc0; inv ch 3 -> bit 13 = 0x2000
    #         0x2000 + 0xfc0 + 0x2 = 0x2fc2
    assert (rtl / "fc0_thresholds.mem").read_text() == "2ec3\n2fc2\n"

    # HLS thresholds, (H): [PE][NF], word [p][nf] = channel nf*2 + p, 6-bit threshold at bits [0,6),
    # invert flag at bit 6: 7 bits, 2 hex digits.
    #   [0][0] ch 0: 3 -> 0x03;  [0][1] ch 2: 2 -> 0x02
    #   [1][0] ch 1: 59 | 1<<6 = 123 = 0x7b;  [1][1] ch 3: 63 | 1<<6 = 127 = 0x7f
    assert c_initialiser(params, "fc0_thresholds") == compact("""{
        {0x03ULL, 0x02ULL},
        {0x7bULL, 0x7fULL}
    }""")

    assert (rtl / "fc1_weights.mem").read_text() == FC1_WEIGHTS_MEM
    assert c_initialiser(params, "fc1_weights") == compact(FC1_WEIGHTS_HLS)


def test_bipolar_weights_and_search_thresholds_by_hand(tmp_path):
    """Bipolar weights (code (v+1)/2) and a uint2 output: the binary-search unit's per-stage,
    per-PE ROMs and the HLS words of three thresholds per channel, by hand."""
    rtl, params = _emit(_bipolar_weights_uint2_out(), tmp_path)
    assert _mem_files(rtl) == {"fc0_weights.mem", "fc0_thr0_0000.mem", "fc0_thr0_0001.mem", "fc0_thr1_0000.mem",
                               "fc0_thr1_0001.mem", "fc0_init.mem", "fc1_weights.mem"}

    # Weights, (W)+(E)+(N): codes +1 -> 1, -1 -> 0; 4 one-bit elements, 1 hex digit (M);
    # bits e3 e2 e1 e0 = (p1 s1)(p1 s0)(p0 s1)(p0 s0) of W[nf*2 + p][sf*2 + s].
    #   addr 0 (nf 0, sf 0): W[1][1]=-1 0, W[1][0]=-1 0, W[0][1]=-1 0, W[0][0]=+1 1 -> 0001 = 0x1
    #   addr 1 (nf 0, sf 1): W[1][3]=+1 1, W[1][2]=+1 1, W[0][3]=+1 1, W[0][2]=-1 0 -> 1110 = 0xe
    #   addr 2 (nf 1, sf 0): W[3][1]=+1 1, W[3][0]=-1 0, W[2][1]=+1 1, W[2][0]=+1 1 -> 1011 = 0xb
    #   addr 3 (nf 1, sf 1): W[3][3]=-1 0, W[3][2]=+1 1, W[2][3]=-1 0, W[2][2]=+1 1 -> 0101 = 0x5
    assert (rtl / "fc0_weights.mem").read_text() == "1\ne\nb\n5\n"
    assert c_initialiser(params, "fc0_weights") == compact("{0x1ULL, 0xeULL, 0xbULL, 0x5ULL}")

    # Search ROMs, (S): B = 2, acc_bits 5 (two's complement mod 32: -1 = 0x1f, -2 = 0x1e, -3 = 0x1d,
    # -12 = 0x14). Thresholds: ch 0 (-3, 0, 2), ch 1 (-1, 1, 4), ch 2 (-12, -2, 5) inverted, ch 3 (0, 0, 6).
    # Stage 0 (k = 0, q = 0): j = 0*4 + 2 - 1 = 1, the middle threshold, invert flag at bit 5:
    # 6 bits, 2 hex digits (M); depth NF = 2, address nf -> channel nf*2 + p.
    #   PE 0: ch 0: 0 -> 00;  ch 2: -2 = 0x1e | 1<<5 = 0x3e
    #   PE 1: ch 1: 1 -> 01;  ch 3: 0 -> 00
    assert (rtl / "fc0_thr0_0000.mem").read_text() == "00\n3e\n"
    assert (rtl / "fc0_thr0_0001.mem").read_text() == "01\n00\n"
    # Stage 1 (k = 1): address nf*2 + q holds j = q*2 + 1 - 1 = 2q: thresholds 0 and 2 of each
    # channel; 5 bits, 2 hex digits (M), depth NF*2 = 4.
    #   PE 0: ch 0: -3 = 1d, 2 = 02;  ch 2: -12 = 14, 5 = 05
    #   PE 1: ch 1: -1 = 1f, 4 = 04;  ch 3: 0 = 00, 6 = 06
    assert (rtl / "fc0_thr1_0000.mem").read_text() == "1d\n02\n14\n05\n"
    assert (rtl / "fc0_thr1_0001.mem").read_text() == "1f\n04\n00\n06\n"

    # HLS thresholds, (H): word [p][nf] = channel nf*2 + p, t0 at bits [0,5), t1 [5,10), t2 [10,15),
    # invert flag at bit 15: 16 bits, 4 hex digits.
    #   [0][0] ch 0: 0x1d + 0<<5 + 2<<10 (0x800)                            = 0x081d
    #   [0][1] ch 2: 0x14 + 0x1e<<5 (0x3c0) + 5<<10 (0x1400) + 1<<15 (0x8000) = 0x97d4
    #   [1][0] ch 1: 0x1f + 1<<5 (0x20) + 4<<10 (0x1000)                     = 0x103f
    #   [1][1] ch 3: 0 + 0 + 6<<10 (0x1800)                                  = 0x1800
    assert c_initialiser(params, "fc0_thresholds") == compact("""{
        {0x081dULL, 0x97d4ULL},
        {0x103fULL, 0x1800ULL}
    }""")

    assert (rtl / "fc1_weights.mem").read_text() == FC1_WEIGHTS_MEM
    assert c_initialiser(params, "fc1_weights") == compact(FC1_WEIGHTS_HLS)


@pytest.mark.parametrize("array", ["fc0_weights", "fc0_thresholds_limbs"])
def test_c_initialiser_reads_the_first_definition(tmp_path, array):
    """The helper finds the named array itself (not a prefix-named neighbour) and
    drops the PE comments, so the assertions above compare the words alone."""
    _, params = _emit(_int2_weights_bipolar_out(), tmp_path)
    text = c_initialiser(params, array)
    assert "//" not in text and text.startswith("{") and text.endswith("}")
    if array == "fc0_thresholds_limbs":
        assert text == compact("{{{0x3ULL}, {0x2ULL}}, {{0x7bULL}, {0x7fULL}}}")


def test_stream_beats_by_hand():
    """Stream beats (pack_stream, which the testbenches and tb_in.hex / tb_expected.hex use,
    and unpack_stream, which reads them back), by hand: "Input stream of a layer: MW/SIMD
    beats per frame, SIMD elements each (inputs in order)" with (E) and (N)."""
    from lbgen.packing import pack_stream, unpack_stream

    # int2, 2 elements a beat, 2 frames of 4:
    #   frame 0 (1, -2 | 0, -1): beat 0 = e1 e0 = 10 01 = 0x9, beat 1 = 11 00 = 0xc
    #   frame 1 (-1, 1 | -2, -2): beat 0 = 01 11 = 0x7, beat 1 = 10 10 = 0xa
    values = np.array([[1, -2, 0, -1], [-1, 1, -2, -2]])
    assert pack_stream(values, I2, 2) == [[0x9, 0xc], [0x7, 0xa]]
    assert np.array_equal(unpack_stream([[0x9, 0xc], [0x7, 0xa]], I2, 2), values)
    # bipolar, 4 elements a beat: +1 -1 -1 +1 | -1 -1 -1 +1 -> bits e3..e0 1001 = 0x9, 1000 = 0x8
    values = np.array([[1, -1, -1, 1, -1, -1, -1, 1]])
    assert pack_stream(values, B, 4) == [[0x9, 0x8]]
    assert np.array_equal(unpack_stream([[0x9, 0x8]], B, 4), values)
    # signed accumulators, int5, 3 a beat: -1 (11111), 2 (00010), -16 (10000)
    #   -> 10000 00010 11111 = 0b100000001011111 = 0x405f
    assert pack_stream(np.array([[-1, 2, -16]]), DType("int", 5), 3) == [[0x405f]]
