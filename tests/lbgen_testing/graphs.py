"""Random, already-folded graphs for testing emitters and simulators.

They exercise what a trained model rarely does: thresholds at the ends of
the accumulator range, inverted channels, every PE kind, uneven foldings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lbgen.ir import ConvGeom, DType, Graph, InputQuant, MatVec, PoolGeom, layer_nodes, signed_bits_for
from lbgen.passes.pe import choose_pe


def random_layer(rng: np.random.Generator, name: str, mw: int, mh: int, wtype: DType, itype: DType,
                 odtype: DType | None, pe: int, simd: int, acc_bits: int | None = None,
                 extremes: float = 0.0) -> MatVec:
    """``extremes``: the share of thresholds put exactly at an end of the channel's
    reachable range (lo - 1, lo, lo + 1, hi - 1, hi, hi + 1) or of the accumulator
    type (its most negative and its largest value), where an off-by-one or a
    sign-extension slip shows."""
    codes = None
    if wtype.kind == "bipolar":
        w = rng.choice([-1, 1], size=(mh, mw))
    elif wtype.kind in ("log2", "hetero"):
        codes = random_codes(rng, wtype, (mh, mw))
        w = wtype.decode(codes)
        codes = codes if wtype.kind == "hetero" else None
    else:
        w = rng.integers(wtype.min, wtype.max + 1, size=(mh, mw))
    layer = MatVec(name=name, mw=mw, mh=mh, weights=w.astype(np.int64), wtype=wtype, itype=itype,
                   source=name, pe=pe, simd=simd, weight_codes=codes)
    lo, hi = layer.acc_range()
    layer.acc_bits = acc_bits or signed_bits_for(int(lo.min()), int(hi.max()) + 1)
    if odtype is not None:
        n = (1 << odtype.bits) - 1
        # thresholds mostly inside the reachable range, some at or beyond its ends
        span_lo, span_hi = lo[:, None] - 1, hi[:, None] + 1
        t = rng.integers(span_lo, span_hi + 1, size=(mh, n))
        amax = (1 << (layer.acc_bits - 1)) - 1
        if extremes:
            ends = np.concatenate([lo[:, None] + np.array([-1, 0, 1]), hi[:, None] + np.array([-1, 0, 1]),
                                   np.full((mh, 1), -amax - 1), np.full((mh, 1), amax)], axis=1)
            pick = rng.integers(0, ends.shape[1], size=(mh, n))
            t = np.where(rng.random((mh, n)) < extremes, np.take_along_axis(ends, pick, axis=1), t)
        layer.thresholds = np.sort(np.clip(t, -amax - 1, amax), axis=1).astype(np.int64)
        layer.threshold_invert = rng.random(mh) < 0.3
        layer.odtype = odtype
    else:
        layer.out_scale = rng.uniform(0.01, 0.1, size=mh)
        layer.out_bias = rng.uniform(-1, 1, size=mh)
    layer.pe_kind = choose_pe(layer)
    return layer


def random_codes(rng: np.random.Generator, wtype: DType, shape: tuple[int, ...]) -> np.ndarray:
    """Uniformly random canonical codes of a log2 or hetero format."""
    if wtype.kind == "log2":
        field = rng.integers(0, 1 << (wtype.bits - 1), size=shape).astype(np.uint64)
        sign = (rng.random(shape) < 0.5) & (field > 0)
        return field | (sign.astype(np.uint64) << np.uint64(wtype.bits - 1))
    assert wtype.kind == "hetero"
    n = wtype.planes
    count = rng.integers(1, n + 1, size=shape)              # planes used, 1..n
    used = np.arange(n)[None, :] < count.reshape(-1, 1)     # (size, n)
    signs = (rng.random(used.shape) < 0.5) & used
    bits = np.concatenate([signs, used[:, 1:]], axis=1).astype(np.uint64)
    return (bits << np.arange(2 * n - 1, dtype=np.uint64)).sum(axis=1).astype(np.uint64).reshape(shape)


def random_graph(seed: int, dims: list[int], wtypes: list[DType], atypes: list[DType],
                 folding: list[tuple[int, int]], acc_bits: int | None = None, extremes: float = 0.0) -> Graph:
    """dims: [in, h1, ..., out]; atypes: input type then one per hidden output."""
    rng = np.random.default_rng(seed)
    layers = []
    for i in range(len(dims) - 1):
        last = i == len(dims) - 2
        layers.append(random_layer(rng, f"fc{i}", dims[i], dims[i + 1], wtypes[i], atypes[i],
                                   None if last else atypes[i + 1], *folding[i], acc_bits=acc_bits,
                                   extremes=extremes))
    step = 1.0 / max(1, atypes[0].max)
    return Graph(name=f"random{seed}", input=InputQuant(atypes[0], step), nodes=layers).validate()


@dataclass(frozen=True)
class ConvSpec:
    """One convolution of ``random_cnn``: out channels, kernel, stride, padding,
    max-pool size (0: none), weight type, output type, (pe, simd); ``pad_level``:
    the input value of its padded positions (``ConvGeom.pad``: the zero level of
    a signed or zero-pointed input; 0 for bipolar inputs)."""

    out_ch: int
    k: int
    s: int = 1
    p: int = 0
    pool: int = 0
    wtype: DType = DType("bipolar", 1)
    otype: DType = DType("bipolar", 1)
    fold: tuple[int, int] = (1, 1)
    k_w: int = 0            # a non-square kernel: its width (0: square)
    pad_level: int = 0


def random_cnn(seed: int, in_chw: tuple[int, int, int], itype: DType, convs: list[ConvSpec],
               classes: int, fc_wtype: DType, fc_fold: tuple[int, int] = (1, 1),
               acc_bits: int | None = None, extremes: float = 0.0) -> Graph:
    """Convolutions (each optionally max-pooled) and a fully connected classifier."""
    rng = np.random.default_rng(seed)
    nodes = []
    c, h, w = in_chw
    t = itype
    for i, spec in enumerate(convs):
        kw = spec.k_w or spec.k
        geom = ConvGeom(c, h, w, spec.k, kw, spec.s, spec.s, spec.p, min(spec.p, kw - 1), pad=spec.pad_level)
        layer = random_layer(rng, f"conv{i}", geom.window, spec.out_ch, spec.wtype, t, spec.otype,
                             *spec.fold, acc_bits=acc_bits, extremes=extremes)
        c, h, w = spec.out_ch, geom.out_h, geom.out_w
        pool = PoolGeom(c, h, w, spec.pool, spec.pool) if spec.pool else None
        if pool is not None:
            h, w = pool.out_h, pool.out_w
        nodes += layer_nodes(layer, geom, pool)
        t = spec.otype
    nodes.append(random_layer(rng, f"fc{len(convs)}", c * h * w, classes, fc_wtype, t, None, *fc_fold,
                               acc_bits=acc_bits, extremes=extremes))
    step = 1.0 / max(1, itype.max)
    return Graph(name=f"random_cnn{seed}", input=InputQuant(itype, step), nodes=nodes).validate()


def random_inputs(graph: Graph, n: int, seed: int = 0, ends: float = 0.0) -> np.ndarray:
    """``n`` uniformly random input frames; ``ends``: the share of elements put at
    the input format's smallest or largest value, which a wide (9..16-bit) input
    would hardly ever draw, and where a sign or width slip shows."""
    rng = np.random.default_rng(seed)
    it = graph.layers[0].itype
    shape = (n, graph.in_len)
    if it.kind == "bipolar":
        return rng.choice([-1, 1], size=shape).astype(np.int64)
    x = rng.integers(it.min, it.max + 1, size=shape)
    if ends:
        x = np.where(rng.random(shape) < ends, rng.choice([it.min, it.max], size=shape), x)
    return x.astype(np.int64)
