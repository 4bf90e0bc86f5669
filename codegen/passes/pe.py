"""Choose the processing element of every layer from its number formats."""

from __future__ import annotations

import dataclasses

from ..ir import Graph, MatVec

#: xnor: bipolar x bipolar, XNOR-popcount (sum = 2*popcount(~(x^w)) - K).
#: addsub: bipolar weight x k-bit activation, add or subtract the activation.
#: mac: k-bit integer weight x any activation, multiply-add.
PE_KINDS = ("xnor", "addsub", "mac")


def choose_pe(layer: MatVec) -> str:
    if layer.wtype.kind == "bipolar":
        return "xnor" if layer.itype.kind == "bipolar" else "addsub"
    return "mac"


def assign_pe(graph: Graph) -> Graph:
    return graph.replace(layers=[dataclasses.replace(l, pe_kind=choose_pe(l)) for l in graph.layers])
