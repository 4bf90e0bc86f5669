"""A LUT estimate of one layer's engine, for choosing foldings.

It does not replace synthesis (``bench/lut_per_lane.py`` measures the real
figures with Yosys); it ranks foldings of one layer against each other, so it
needs the right shape more than the right constants. The constants are fitted
to the bench's Yosys figures (xc7, no DSP, MW 256, MH 64):

* per PE x SIMD lane, ``1.75 * W * A + 0.25 * (W + A)`` LUTs (W weight bits,
  or the mean planes of heterogeneous weights; A input bits): the product or
  its bit-level heap share and the compressor tree (W1A1 2.3, W4A4 30 measured
  at PE 4 x SIMD 64, this gives 2.3 and 30.1);
* per PE, the accumulator (one LUT per bit) and the threshold unit: B
  comparators (binary search, B output bits >= 2) or one, each about
  2 LUTs per 3 accumulator bits;
* per layer, about 60 LUTs of control, input buffer and output skid, plus
  the input buffer's distributed RAM, SIMD * A bits per 64 words of depth.
"""

from __future__ import annotations

import math

from .. import pe as processing_elements
from ..ir import MatVec, signed_bits_for

LANE_PRODUCT = 1.75
LANE_OPERANDS = 0.25
LAYER_FIXED = 60


def weight_bits(layer: MatVec) -> float:
    """The weight width a lane is charged for: its PE says (planes: the planes)."""
    return processing_elements.choose(layer.wtype, layer.itype).lane_weight_bits(layer.wtype)


def estimate_luts(layer: MatVec, pe: int | None = None, simd: int | None = None) -> float:
    """Estimated LUTs of ``layer``'s engine at folding (pe, simd) (default: its own)."""
    pe = layer.pe if pe is None else pe
    simd = layer.simd if simd is None else simd
    w, a = weight_bits(layer), float(layer.itype.bits)
    lanes = pe * simd * (LANE_PRODUCT * w * a + LANE_OPERANDS * (w + a))
    lo, hi = layer.acc_range()
    acc = signed_bits_for(int(lo.min()), int(hi.max()) + 1)   # the exact width, folded or not
    if layer.activation is not None:
        out_bits = layer.activation.out_dtype.bits
    else:
        out_bits = 0 if layer.is_output else layer.out_dtype.bits
    comparators = (out_bits if out_bits >= 2 else 1) if out_bits else 0
    per_pe = pe * (acc + comparators * 2 * math.ceil(acc / 3))
    sf = layer.mw // simd
    in_buffer = simd * layer.itype.bits * math.ceil(sf / 64) if layer.mh // pe > 1 else 0
    return lanes + per_pe + LAYER_FIXED + in_buffer
