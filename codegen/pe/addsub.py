"""addsub: bipolar weights x k-bit inputs, add or subtract the input.

In RTL every input bit j is a bit-plane: xnor(w, x_j) at 2^j, i.e. x where
w = +1 and ~x = -x-1 where w = -1; the -1s (and a signed input's complemented
top bit) are the constant the accumulator starts from.
"""

from __future__ import annotations

import numpy as np

from . import ProcessingElement, register


@register
class AddSub(ProcessingElement):
    name = "addsub"
    code = 1
    rtl_core = "lb_pe_addsub"
    hls_functor = "AddSub"
    summary = "bipolar weight x k-bit input: add or subtract"
    rtl_input_kinds = ("uint", "int")

    def fits(self, wtype, itype) -> bool:
        return wtype.kind == "bipolar" and itype.kind != "bipolar"

    def heap_offsets(self, layer) -> np.ndarray:
        n_neg = (layer.weights.astype(np.int64) < 0).sum(axis=1)
        ib = layer.itype.bits
        if layer.itype.kind == "uint":
            return -((1 << ib) - 1) * n_neg
        return -(1 << (ib - 1)) * layer.mw + n_neg      # signed x: its top bit complemented
