"""xnor: bipolar weights x bipolar inputs, XNOR-popcount (Hubara et al.; XNOR-Net).

sum = 2 * popcount(xnor(w, x)) - K: the RTL heap counts the agreeing lanes,
folds the count times 2 and starts the accumulator at -MW.
"""

from __future__ import annotations

import numpy as np

from . import ProcessingElement, register


@register
class Xnor(ProcessingElement):
    name = "xnor"
    code = 0
    rtl_core = "lb_pe_xnor"
    hls_functor = "XnorPopcount"
    summary = "bipolar x bipolar: XNOR-popcount"
    rtl_input_kinds = ("bipolar",)

    def fits(self, wtype, itype) -> bool:
        return wtype.kind == "bipolar" and itype.kind == "bipolar"

    def heap_offsets(self, layer) -> np.ndarray:
        return np.full(layer.mh, -layer.mw, dtype=np.int64)
