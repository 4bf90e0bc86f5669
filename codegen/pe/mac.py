"""mac: k-bit integer weights x any input, multiply-add.

In RTL the product is a Baugh-Wooley bit heap: w_i & x_j at 2^(i+j), a pair
with exactly one negative-weight bit complemented (the constant -2^(i+j) goes
to the accumulator's start); a bipolar input selects w or ~w.
"""

from __future__ import annotations

import numpy as np

from . import ProcessingElement, register


@register
class MulAdd(ProcessingElement):
    name = "mac"
    code = 2
    rtl_core = "lb_pe_mac"
    hls_functor = "MulAdd"
    summary = "k-bit integer weight x any input: multiply-add"

    def fits(self, wtype, itype) -> bool:
        return wtype.kind in ("uint", "int")

    def heap_offsets(self, layer) -> np.ndarray:
        wt, it = layer.wtype, layer.itype
        wb, ib = wt.bits, it.bits
        if it.kind == "bipolar":             # x_b ? w : ~w, then ~x_b (+ x_b at 2^WB)
            top = (1 << (wb - 1)) if wt.kind == "int" else (1 << wb)
            return np.full(layer.mh, -top * layer.mw, dtype=np.int64)
        neg = 0                              # Baugh-Wooley: complemented pairs
        for i in range(wb):
            for j in range(ib):
                wneg = wt.kind == "int" and i == wb - 1
                xneg = it.kind == "int" and j == ib - 1
                if wneg != xneg:
                    neg += 1 << (i + j)
        return np.full(layer.mh, -neg * layer.mw, dtype=np.int64)
