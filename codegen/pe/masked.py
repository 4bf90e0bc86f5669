"""masked: ternary weights {-1, 0, +1} (Li & Liu, ternary weight networks) x
bipolar, unsigned or signed inputs: masked add/subtract, no multiplier.

A code's bit 0 says the weight is nonzero, bit 1 that it is negative. In RTL
a lane's heap value is nz & (x ^ neg) bit by bit: 0 for a zero weight, x for
+1 and ~x = 2^b - 1 - x for -1, whose constant goes to the accumulator's
start (as in addsub; a signed x has its top bit complemented, so a used lane
also leaves -2^(b-1) there). A bipolar x is its bit x_b = (x+1)/2, and
nz & (x_b ^ neg) is the masked xnor: w*x = nz ? 2*xnor(s, x_b) - 1 : 0.
"""

from __future__ import annotations

import numpy as np

from . import ProcessingElement, bipolar_input_correction, register, unsigned_input_bits


@register
class MaskedAddSub(ProcessingElement):
    name = "masked"
    code = 5
    rtl_core = "lb_pe_masked"
    hls_functor = "MaskedAddSub"
    summary = "ternary weight x any input: masked add/subtract (masked xnor for bipolar x)"

    def fits(self, wtype, itype) -> bool:
        return wtype.kind == "ternary"

    def lane_weight_bits(self, wtype) -> float:
        """1.5, not the code's 2 bits: a lane's heap has A bits like addsub's
        (1-bit weights), each a function of three operand bits instead of two;
        bench/lut_per_lane.py measures WTA2 midway between W1A2 and W2A2 (5.9
        against 4.3 and 7.5 LUTs per lane at PE 4 x SIMD 64)."""
        return 1.5

    def heap_offsets(self, layer) -> np.ndarray:
        w = layer.weights.astype(np.int64)
        n_neg = (w < 0).sum(axis=1)
        it = layer.itype
        if it.kind == "int":        # every used lane's complemented top bit counts +2^(b-1)
            return -(1 << (it.bits - 1)) * (w != 0).sum(axis=1) + n_neg
        return bipolar_input_correction(layer, -((1 << unsigned_input_bits(it)) - 1) * n_neg)
