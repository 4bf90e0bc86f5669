"""Choose every layer's accumulator width.

``32`` (the default, like a DSP-friendly int32) or any fixed width, checked
against the exact bound; ``auto`` sizes each layer to the exact bound from K
and the operand ranges. A hidden layer's width also holds its thresholds,
which may sit one above the largest reachable accumulator ("never").
"""

from __future__ import annotations

import dataclasses

from ..errors import UsageError
from ..ir import Graph, MatVec, signed_bits_for


def needed_bits(layer: MatVec) -> int:
    lo, hi = layer.acc_range()
    lo_v, hi_v = int(lo.min()), int(hi.max())
    if layer.thresholds is not None:
        lo_v = min(lo_v, int(layer.thresholds.min()))
        hi_v = max(hi_v, int(layer.thresholds.max()))
    return signed_bits_for(lo_v, hi_v)


def size_accumulators(graph: Graph, acc: str | int = 32) -> Graph:
    layers = []
    for layer in graph.layers:
        need = needed_bits(layer)
        if acc == "auto":
            bits = need
        else:
            bits = int(acc)
            if need > bits:
                raise UsageError(f"layer {layer.source or layer.name}: the accumulator needs {need} bits, "
                                 f"more than --acc {bits}")
        layers.append(dataclasses.replace(layer, acc_bits=bits))
    return graph.replace(layers=layers)
