"""Fold everything between a layer's accumulator and its output quantizer
(bias, batch-norm, scales, clipping, rounding) into integer thresholds.

The frontend hands over the activation as a callable that evaluates the
model's own float expression on accumulators. Here it is evaluated on every
accumulator value each channel can reach, the thresholds are read off, and
then checked: the multi-threshold unit must give the same level as the float
expression on the whole reachable range, or the layer is refused. A layer
whose range is too wide for that (a 16-bit input into hundreds of weights) is
folded by bisection on the monotone expression and spot-checked instead
(:func:`_bisect`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import UsageError
from ..ir import Graph, MatVec

#: accumulator values x channels evaluated per call of the float expression
CHUNK_ELEMENTS = 1 << 22
#: above this many points (accumulator values x channels) a layer is folded by
#: bisection instead of exhaustively: a 16-bit input into a few hundred weights
#: reaches billions of accumulator values per channel
EXHAUSTIVE_LIMIT = 1 << 28
#: random accumulator values per channel the bisection result is checked on, besides every
#: threshold's two sides and the range ends
SPOT_CHECKS = 1 << 12


def _exhaustive_points(layer: MatVec) -> int:
    lo, hi = layer.acc_range()
    return (int(hi.max()) - int(lo.min()) + 1) * layer.mh


def _ranges(layer: MatVec):
    lo, hi = layer.acc_range()
    start, stop = int(lo.min()), int(hi.max())
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
    if _exhaustive_points(layer) > EXHAUSTIVE_LIMIT:
        thresholds = _bisect(layer, lo, hi, invert, top)
        _spot_check(layer, lo, hi, invert, top, thresholds)
        return dataclasses.replace(layer, activation=None, thresholds=thresholds,
                                   threshold_invert=invert, odtype=act.out_dtype)
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


def _g(layer: MatVec, acc_by_channel: np.ndarray, invert: np.ndarray, top: int) -> np.ndarray:
    """The rising level g of every channel at (mh, K) accumulator values (row c: channel c)."""
    lv = _evaluate(layer, np.ascontiguousarray(acc_by_channel.T)).T
    return np.where(invert[:, None], top - lv, lv)


def _bisect(layer: MatVec, lo: np.ndarray, hi: np.ndarray, invert: np.ndarray, top: int) -> np.ndarray:
    """Thresholds of a layer too wide to evaluate exhaustively: t[c, j-1] = the
    smallest accumulator in [lo_c, hi_c] whose rising level g_c reaches j
    (hi_c + 1: never), found for every channel and level at once by bisection.

    This relies on g being monotone, which the frontends guarantee by
    construction: between accumulator and quantizer there are only an affine
    map (scale, bias, batch-norm: its sign decides rising or falling), ReLU,
    ReLU6, Hardtanh and the quantizer's rounding and clipping, each a monotone
    function, and float rounding to nearest is monotone too, so their float
    composition is. :func:`_spot_check` then compares the result with the
    float expression at every threshold's two sides, the range ends and
    random points."""
    left = np.repeat(lo[:, None], top, axis=1).astype(np.int64)
    right = np.repeat((hi + 1)[:, None], top, axis=1).astype(np.int64)
    level = np.arange(1, top + 1, dtype=np.int64)[None, :]
    while np.any(left < right):
        mid = left + (right - left) // 2
        reached = _g(layer, np.minimum(mid, hi[:, None]), invert, top) >= level
        open_ = left < right
        right = np.where(open_ & reached, mid, right)
        left = np.where(open_ & ~reached, mid + 1, left)
    return left


def _spot_check(layer: MatVec, lo: np.ndarray, hi: np.ndarray, invert: np.ndarray, top: int,
                thresholds: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    span = (hi - lo + 1).astype(np.float64)
    points = [lo[:, None], hi[:, None], thresholds, thresholds - 1,
              lo[:, None] + np.floor(rng.random((layer.mh, SPOT_CHECKS)) * span[:, None]).astype(np.int64)]
    acc = np.clip(np.concatenate(points, axis=1), lo[:, None], hi[:, None])
    want = _g(layer, acc, invert, top)
    got = np.stack([np.searchsorted(t, a, side="right") for t, a in zip(thresholds, acc)])
    if np.any(want != got):
        c, k = (int(v) for v in np.argwhere(want != got)[0])
        raise UsageError(f"layer {layer.source or layer.name} channel {c}: the activation is not monotone in the "
                         f"accumulator (at acc={int(acc[c, k])} its level is {int(want[c, k])}, the thresholds "
                         f"found by bisection give {int(got[c, k])}); it cannot be folded into thresholds")


def fold_thresholds(graph: Graph) -> Graph:
    return graph.replace(layers=[fold_layer(l) if l.activation is not None else l for l in graph.layers])
