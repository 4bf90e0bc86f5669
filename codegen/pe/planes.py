"""planes: heterogeneous-bitwidth binarized weights (Fromm et al.) x bipolar or
unsigned inputs.

A weight is up to N bipolar planes: codes hold the plane signs s_i in bits
[0, N) and the masks u_1..u_{N-1} in bits [N, 2N-1) (u_0 = 1); its value is
sum_i u_i * k_i * (2 s_i - 1) with the integer plane scales k_i. The RTL
sums, per plane and per set bit of k_i, the masked xnor u_i & xnor(s_i, x_j);
a negative plane contributes ~x, whose constant goes to the accumulator.
"""

from __future__ import annotations

import numpy as np

from . import ProcessingElement, bipolar_input_correction, register, unsigned_input_bits


@register
class MaskedPlanes(ProcessingElement):
    name = "planes"
    code = 4
    rtl_core = "lb_pe_planes"
    hls_functor = "MaskedPlanes"
    summary = "hetero weight x bipolar/uint input: masked popcount or add/subtract per plane"
    rtl_input_kinds = ("bipolar", "uint")

    def fits(self, wtype, itype) -> bool:
        return wtype.kind == "hetero"

    def lane_weight_bits(self, wtype) -> float:
        return float(len(wtype.scales))

    def heap_offsets(self, layer) -> np.ndarray:
        codes = layer.codes().astype(np.int64)
        wt = layer.wtype
        n = wt.planes
        xmax = (1 << unsigned_input_bits(layer.itype)) - 1
        off = np.zeros(layer.mh, dtype=np.int64)
        for i in range(n):
            sign = (codes >> i) & 1
            used = np.ones_like(codes) if i == 0 else (codes >> (n + i - 1)) & 1
            off -= xmax * wt.scales[i] * (used * (1 - sign)).sum(axis=1)
        return bipolar_input_correction(layer, off)
