"""Random, already-folded graphs for testing emitters and simulators.

They exercise what a trained model rarely does: thresholds at the ends of
the accumulator range, inverted channels, every PE kind, uneven foldings.
"""

from __future__ import annotations

import numpy as np

from .ir import DType, Graph, InputQuant, MatVec, signed_bits_for
from .passes.pe import choose_pe


def random_layer(rng: np.random.Generator, name: str, mw: int, mh: int, wtype: DType, itype: DType,
                 odtype: DType | None, pe: int, simd: int, acc_bits: int | None = None) -> MatVec:
    if wtype.kind == "bipolar":
        w = rng.choice([-1, 1], size=(mh, mw))
    else:
        w = rng.integers(wtype.min, wtype.max + 1, size=(mh, mw))
    layer = MatVec(name=name, mw=mw, mh=mh, weights=w.astype(np.int64), wtype=wtype, itype=itype,
                   source=name, pe=pe, simd=simd)
    lo, hi = layer.acc_range()
    layer.acc_bits = acc_bits or signed_bits_for(int(lo.min()), int(hi.max()) + 1)
    if odtype is not None:
        n = (1 << odtype.bits) - 1
        # thresholds mostly inside the reachable range, some at or beyond its ends
        span_lo, span_hi = lo[:, None] - 1, hi[:, None] + 1
        t = rng.integers(span_lo, span_hi + 1, size=(mh, n))
        amax = (1 << (layer.acc_bits - 1)) - 1
        layer.thresholds = np.sort(np.clip(t, -amax - 1, amax), axis=1).astype(np.int64)
        layer.threshold_invert = rng.random(mh) < 0.3
        layer.odtype = odtype
    else:
        layer.out_scale = rng.uniform(0.01, 0.1, size=mh)
        layer.out_bias = rng.uniform(-1, 1, size=mh)
    layer.pe_kind = choose_pe(layer)
    return layer


def random_graph(seed: int, dims: list[int], wtypes: list[DType], atypes: list[DType],
                 folding: list[tuple[int, int]], acc_bits: int | None = None) -> Graph:
    """dims: [in, h1, ..., out]; atypes: input type then one per hidden output."""
    rng = np.random.default_rng(seed)
    layers = []
    for i in range(len(dims) - 1):
        last = i == len(dims) - 2
        layers.append(random_layer(rng, f"fc{i}", dims[i], dims[i + 1], wtypes[i], atypes[i],
                                   None if last else atypes[i + 1], *folding[i], acc_bits=acc_bits))
    step = 1.0 / max(1, atypes[0].max)
    return Graph(name=f"random{seed}", input=InputQuant(atypes[0], step), layers=layers).validate()


def random_inputs(graph: Graph, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    it = graph.layers[0].itype
    if it.kind == "bipolar":
        return rng.choice([-1, 1], size=(n, graph.layers[0].mw)).astype(np.int64)
    return rng.integers(it.min, it.max + 1, size=(n, graph.layers[0].mw)).astype(np.int64)
