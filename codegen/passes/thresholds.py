"""Fold everything between a layer's accumulator and its output quantizer
(bias, batch-norm, scales, clipping, rounding) into integer thresholds.

The frontend hands over the activation as a callable that evaluates the
model's own float expression on accumulators. Here it is evaluated on every
accumulator value each channel can reach, the thresholds are read off, and
then checked: the multi-threshold unit must give the same level as the float
expression on the whole reachable range, or the layer is refused.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import UsageError
from ..ir import Graph, MatVec

#: accumulator values x channels evaluated per call of the float expression
CHUNK_ELEMENTS = 1 << 22
#: refuse layers whose exhaustive check would evaluate more than this many points
MAX_EVALUATIONS = 1 << 33


def _ranges(layer: MatVec):
    lo, hi = layer.acc_range()
    start, stop = int(lo.min()), int(hi.max())
    total = (stop - start + 1) * layer.mh
    if total > MAX_EVALUATIONS:
        raise UsageError(f"layer {layer.source or layer.name}: reachable accumulator range "
                         f"[{start}, {stop}] x {layer.mh} channels is too large to check exhaustively")
    rows = max(1, CHUNK_ELEMENTS // layer.mh)
    for first in range(start, stop + 1, rows):
        acc = np.arange(first, min(stop + 1, first + rows), dtype=np.int64)
        inside = (acc[:, None] >= lo[None, :]) & (acc[:, None] <= hi[None, :])
        yield np.broadcast_to(acc[:, None], (acc.size, layer.mh)), inside


def _evaluate(layer: MatVec, acc: np.ndarray) -> np.ndarray:
    levels = np.asarray(layer.activation.levels(np.ascontiguousarray(acc)))
    top = (1 << layer.activation.out_dtype.bits) - 1
    if levels.shape != acc.shape or (levels.size and (levels.min() < 0 or levels.max() > top)):
        raise UsageError(f"layer {layer.source or layer.name}: activation gave levels outside [0, {top}]")
    return levels


def fold_layer(layer: MatVec) -> MatVec:
    """Replace ``layer.activation`` by checked thresholds.

    One pass over every reachable accumulator value of every channel does
    both jobs: it counts, per channel, how many values give each level (the
    thresholds are t_j = lo + #{acc : g(acc) < j}), and it checks that g (the
    level, or top - level on a falling channel) never decreases as the
    accumulator grows. A non-decreasing integer g on [lo, hi] is exactly
    count(acc >= t_j), so the check proves the threshold unit equal to the
    float expression on the whole reachable range.
    """
    act = layer.activation
    assert act is not None
    top = (1 << act.out_dtype.bits) - 1
    lo, hi = layer.acc_range()
    ends = _evaluate(layer, np.stack([lo, hi]))
    invert = ends[1] < ends[0]  # a falling channel (e.g. negative batch-norm gain)
    hist = np.zeros((layer.mh, top + 1), dtype=np.int64)
    channel = np.arange(layer.mh, dtype=np.int64)[None, :]
    prev_row = np.zeros(layer.mh, dtype=np.int64)  # g at the last value of the chunk before
    for acc, inside in _ranges(layer):
        lv = _evaluate(layer, acc)
        g = np.where(invert[None, :], top - lv, lv)
        hist += np.bincount((channel * (top + 1) + g)[inside], minlength=layer.mh * (top + 1)
                            ).reshape(layer.mh, top + 1)
        # outside a channel's range: 0 below it, top above it, so the column is
        # non-decreasing exactly when g is on the range
        col = np.where(inside, g, np.where(acc < lo[None, :], 0, top))
        steps = np.diff(np.concatenate([prev_row[None, :], col]), axis=0)
        if np.any(steps < 0):
            r, c = np.argwhere(steps < 0)[0]
            at = acc[r, c]
            raise UsageError(
                f"layer {layer.source or layer.name} channel {c}: the activation is not monotone in the "
                f"accumulator (its level at acc={acc[r, c]} goes back against the level at acc={acc[r, c] - 1}); "
                "it cannot be folded into thresholds")
        prev_row = col[-1]
    below = np.cumsum(hist, axis=1)[:, :top]
    thresholds = lo[:, None] + below
    return dataclasses.replace(layer, activation=None, thresholds=thresholds,
                               threshold_invert=invert, odtype=act.out_dtype)


def fold_thresholds(graph: Graph) -> Graph:
    return graph.replace(layers=[fold_layer(l) if l.activation is not None else l for l in graph.layers])
