"""Choose the processing element of every layer from its number formats."""

from __future__ import annotations

import dataclasses

from ..ir import Graph, MatVec

#: xnor:   bipolar x bipolar, XNOR-popcount (sum = 2*popcount(~(x^w)) - K).
#: addsub: bipolar weight x k-bit activation, add or subtract the activation
#:         (in RTL: bit-plane popcounts of the activation bits).
#: mac:    k-bit integer weight x any activation, multiply-add.
#: shift:  log2 weight (sign + exponent) x any activation: shift, conditional negate.
#: planes: heterogeneous-bitwidth weight (masked bipolar planes) x any activation:
#:         masked XNOR-popcount (bipolar input) or masked add/subtract per plane,
#:         planes combined by their integer scales.
PE_KINDS = ("xnor", "addsub", "mac", "shift", "planes")


def choose_pe(layer: MatVec) -> str:
    w = layer.wtype.kind
    if w == "bipolar":
        return "xnor" if layer.itype.kind == "bipolar" else "addsub"
    if w == "log2":
        return "shift"
    if w == "hetero":
        return "planes"
    return "mac"


def assign_pe(graph: Graph) -> Graph:
    return graph.replace(layers=[dataclasses.replace(l, pe_kind=choose_pe(l)) for l in graph.layers])
