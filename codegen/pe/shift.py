"""shift: power-of-two weights x bipolar or unsigned inputs (Miyashita et al.).

A weight code is a sign bit on top of an exponent field f: 0 means the value
0, else (-1)^sign * 2^(f-1). The RTL shifts the input left by f-1 and
complements it where the sign is negative (~x = 2^b - 1 - x, the constant
goes to the accumulator's start): no multiplier.
"""

from __future__ import annotations

import numpy as np

from . import ProcessingElement, bipolar_input_correction, register, unsigned_input_bits


@register
class ShiftAdd(ProcessingElement):
    name = "shift"
    code = 3
    rtl_core = "lb_pe_shift"
    hls_functor = "ShiftAdd"
    summary = "log2 weight x bipolar/uint input: shift and conditional negate"
    rtl_input_kinds = ("bipolar", "uint")

    def fits(self, wtype, itype) -> bool:
        return wtype.kind == "log2"

    def heap_offsets(self, layer) -> np.ndarray:
        codes = layer.codes().astype(np.int64)
        bits = layer.wtype.bits
        sign = (codes >> (bits - 1)) & 1
        field = codes & ((1 << (bits - 1)) - 1)
        mag = np.where(field > 0, np.left_shift(1, np.maximum(field - 1, 0)), 0)
        xb = unsigned_input_bits(layer.itype)
        return bipolar_input_correction(layer, -((1 << xb) - 1) * (sign * mag).sum(axis=1))
