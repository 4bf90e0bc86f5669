"""Convolution and max-pool in the IR and the golden model.

The references here are torch's own conv2d / max_pool2d (NCHW), so the NHWC
window order, the zero padding and the floor-mode pooling of the golden model
are checked against an independent implementation.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lbgen import golden
from lbgen.ir import (ConvGeom, DType, Graph, InputQuant, IRError, MatVec, MaxPool, PoolGeom, SlidingWindow,
                      layer_nodes, padding_corrections)

B = DType("bipolar", 1)
U2 = DType("uint", 2)
I4 = DType("int", 4)

GEOMS = [
    # in_ch, in_h, in_w, k_h, k_w, s_h, s_w, p_h, p_w
    ConvGeom(3, 8, 8, 3, 3, 1, 1, 1, 1),
    ConvGeom(2, 5, 7, 3, 3, 2, 2, 1, 1),
    ConvGeom(4, 6, 6, 1, 1, 2, 2, 0, 0),
    ConvGeom(1, 9, 7, 5, 5, 1, 2, 2, 2),
    ConvGeom(2, 7, 9, 7, 5, 1, 1, 3, 0),
    ConvGeom(3, 6, 5, 2, 3, 2, 1, 1, 2),
]


def _nchw(x: np.ndarray, g: ConvGeom) -> torch.Tensor:
    return torch.from_numpy(x.reshape(-1, g.in_h, g.in_w, g.in_ch).transpose(0, 3, 1, 2).astype(np.float64))


def _conv_layer(rng, g: ConvGeom, mh: int, itype: DType, wtype: DType = I4) -> MatVec:
    """The matrix-vector layer of a convolution (its window: ``SlidingWindow(.., g)``)."""
    w = rng.integers(wtype.min, wtype.max + 1, size=(mh, g.window))
    if wtype.kind == "bipolar":
        w = rng.choice([-1, 1], size=(mh, g.window))
    return MatVec(name="conv", mw=g.window, mh=mh, weights=w.astype(np.int64), wtype=wtype, itype=itype,
                  pixels=g.pixels, acc_bits=24)


def _accumulate(layer: MatVec, g: ConvGeom, x: np.ndarray) -> np.ndarray:
    """golden's accumulators of a convolution: the window node, then the layer."""
    return golden.accumulate(layer, SlidingWindow("window", g).golden(x))


def _torch_weights(layer: MatVec, g: ConvGeom) -> torch.Tensor:
    # IR columns (ky, kx, c) -> torch's (out, c, ky, kx)
    return torch.from_numpy(layer.weights.reshape(layer.mh, g.k_h, g.k_w, g.in_ch).transpose(0, 3, 1, 2)
                            .astype(np.float64))


def _torch_conv(layer: MatVec, g: ConvGeom, x: np.ndarray) -> np.ndarray:
    y = F.conv2d(_nchw(x, g), _torch_weights(layer, g), stride=(g.s_h, g.s_w), padding=(g.p_h, g.p_w))
    return y.permute(0, 2, 3, 1).reshape(x.shape[0], -1).numpy().astype(np.int64)


@pytest.mark.parametrize("g", GEOMS, ids=str)
@pytest.mark.parametrize("itype", [B, U2, I4], ids=str)
def test_conv_accumulators_equal_torch_conv2d(g, itype):
    rng = np.random.default_rng(hash((g, itype.kind)) % 2**32)
    layer = _conv_layer(rng, g, 5, itype)
    if itype.kind == "bipolar":
        x = rng.choice([-1, 1], size=(6, g.in_len))
    else:
        x = rng.integers(itype.min, itype.max + 1, size=(6, g.in_len))
    acc = _accumulate(layer, g, x)
    assert acc.shape == (6, g.pixels * 5)
    assert np.array_equal(acc, _torch_conv(layer, g, x))


@pytest.mark.parametrize("g", GEOMS, ids=str)
def test_bipolar_padding_is_zero_in_value_and_the_corrections_make_code_0_exact(g):
    """Hardware pads a bipolar input with code 0 (= -1); the border corrections
    turn that into torch's zero padding, pixel by pixel."""
    rng = np.random.default_rng(3)
    layer = _conv_layer(rng, g, 4, B, B)
    x = rng.choice([-1, 1], size=(5, g.in_len))
    exact = _accumulate(layer, g, x)
    hw = (g.windows(x, pad_value=-1) @ layer.weights.T).reshape(5, -1)
    corr = padding_corrections(layer, g)
    if g.p_h == 0 and g.p_w == 0:
        assert corr is None and np.array_equal(hw, exact)
        return
    assert corr.row_class.shape == (g.out_h,) and corr.col_class.shape == (g.out_w,)
    assert corr.offsets.shape[0] <= 2 * g.p_h + 1 and corr.offsets.shape[1] <= 2 * g.p_w + 1
    fixed = hw + np.tile(corr.per_pixel().reshape(1, -1), (5, 1))
    assert np.array_equal(fixed, exact)
    assert not np.array_equal(hw, exact)           # the padding does matter here


def test_no_correction_for_non_bipolar_inputs():
    rng = np.random.default_rng(0)
    assert padding_corrections(_conv_layer(rng, GEOMS[0], 3, U2), GEOMS[0]) is None
    assert padding_corrections(_conv_layer(rng, GEOMS[0], 3, I4), GEOMS[0]) is None


@pytest.mark.parametrize("k,h,w", [(2, 8, 8), (2, 5, 7), (3, 7, 8), (3, 3, 3), (1, 4, 5)])
def test_max_pool_equals_torch(k, h, w):
    rng = np.random.default_rng(k * 100 + h)
    pool = PoolGeom(ch=3, in_h=h, in_w=w, k=k, s=k)
    x = rng.integers(0, 4, size=(4, h * w * 3))
    ref = F.max_pool2d(torch.from_numpy(x.reshape(4, h, w, 3).transpose(0, 3, 1, 2).astype(np.float64)), k)
    ref = ref.permute(0, 2, 3, 1).reshape(4, -1).numpy().astype(np.int64)
    assert np.array_equal(pool.apply(x), ref)
    assert pool.out_len == ref.shape[1]


def _cnn(rng) -> Graph:
    g0 = ConvGeom(1, 6, 6, 3, 3, 1, 1, 1, 1)
    c0 = _conv_layer(rng, g0, 4, DType("uint", 4))
    c0 = dataclasses.replace(c0, name="c0", pe=2, simd=1, odtype=B,
                             thresholds=np.zeros((4, 1), dtype=np.int64),
                             threshold_invert=np.array([False, True, False, False]))
    g1 = ConvGeom(4, 3, 3, 3, 3, 1, 1, 1, 1)
    c1 = _conv_layer(rng, g1, 6, B, B)
    c1 = dataclasses.replace(c1, name="c1", pe=3, simd=4, odtype=U2,
                             thresholds=np.sort(rng.integers(-8, 8, size=(6, 3)), axis=1),
                             threshold_invert=np.zeros(6, dtype=bool))
    fc = MatVec(name="fc", mw=54, mh=3, weights=rng.integers(-7, 8, size=(3, 54)), wtype=I4, itype=U2,
                acc_bits=16, out_scale=np.ones(3), out_bias=np.zeros(3))
    return Graph("cnn", InputQuant(DType("uint", 4), 0.25),
                 layer_nodes(c0, g0, PoolGeom(4, 6, 6, 2, 2)) + layer_nodes(c1, g1) + [fc])


def _torch_levels(acc_nchw: torch.Tensor, thresholds: np.ndarray, invert: np.ndarray) -> torch.Tensor:
    """The multi-threshold rule of docs/emit-contract.md written out in torch, not golden's:
    level = number of thresholds t_j of the channel with acc >= t_j (reaching a threshold
    counts), T - that count on an inverted channel (T thresholds per channel)."""
    thr = torch.from_numpy(thresholds.astype(np.float64))                    # (C, T)
    reached = (acc_nchw[:, :, :, :, None] >= thr[None, :, None, None, :]).sum(dim=4)
    inv = torch.from_numpy(invert)[None, :, None, None]
    return torch.where(inv, thresholds.shape[1] - reached, reached)


def _nhwc_flat(t: torch.Tensor) -> np.ndarray:
    return t.permute(0, 2, 3, 1).reshape(t.shape[0], -1).numpy().astype(np.int64)


def test_cnn_golden_and_save_load(tmp_path):
    """golden.run of a small CNN against torch alone (conv2d, the threshold rule spelled out
    with >=, max_pool2d, the bipolar mapping 2*level-1): no golden or IR helper builds the
    expectation, and the data has accumulators exactly on thresholds, where >= and > differ."""
    rng = np.random.default_rng(9)
    graph = _cnn(rng).validate()
    x = rng.integers(0, 16, size=(3, 36))
    trace = golden.run(graph, x)
    c0, c1, fc = graph.layers
    # c0: conv (torch), thresholds (>= written out), 2x2 max-pool (torch), bipolar value 2*level-1
    a0 = F.conv2d(_nchw(x, graph.conv(c0)), _torch_weights(c0, graph.conv(c0)), padding=1)
    l0 = _torch_levels(a0, c0.thresholds, c0.threshold_invert)
    v0 = _nhwc_flat(2 * F.max_pool2d(l0.double(), 2) - 1)
    assert np.any(a0.numpy() == c0.thresholds[None, :, 0, None, None])    # ties: >= vs > matters here
    assert np.array_equal(trace.outputs["c0"], v0)
    # c1: conv of c0's bipolar values, 3 thresholds -> uint2 levels, no pool
    a1 = F.conv2d(_nchw(v0, graph.conv(c1)), _torch_weights(c1, graph.conv(c1)), padding=1)
    assert np.array_equal(trace.acc["c1"], _nhwc_flat(a1))
    l1 = _torch_levels(a1, c1.thresholds, c1.threshold_invert)
    assert np.any(a1.numpy()[:, :, :, :, None] == c1.thresholds[None, :, None, None, :])
    assert np.array_equal(trace.outputs["c1"], _nhwc_flat(l1))
    # fc: a plain matrix product of c1's levels (NHWC order) gives the output accumulators
    assert np.array_equal(trace.result, _nhwc_flat(l1) @ fc.weights.T)
    graph.save(tmp_path)
    back = Graph.load(tmp_path)
    assert back.conv(back.layers[0]) == graph.conv(graph.layers[0])
    assert back.pool(back.layers[0]) == graph.pool(graph.layers[0])
    assert back.conv(back.layers[2]) is None
    assert np.array_equal(golden.run(back, x).result, trace.result)
    assert [l.cycles for l in back.layers] == [36 * 2 * 9, 9 * 2 * 9, 3 * 54]


@pytest.mark.parametrize("change,match", [
    (lambda g: g.layers[1].__setattr__("simd", 3), "SIMD=3 must divide the input channels"),
    (lambda g: g.window(g.layers[1]).__setattr__("geom", ConvGeom(4, 4, 3, 3, 3, 1, 1, 1, 1)), "expects a 4x4x3"),
    (lambda g: g.nodes[2].__setattr__("geom", PoolGeom(4, 6, 6, 3, 2)), "stride 2 != kernel 3"),
    (lambda g: g.nodes[2].__setattr__("geom", PoolGeom(5, 6, 6, 2, 2)), "max-pool over 5x6x6"),
    (lambda g: g.window(g.layers[1]).__setattr__("geom", ConvGeom(4, 3, 3, 3, 3, 1, 1, 3, 1)), "padding"),
    (lambda g: g.nodes.insert(5, SlidingWindow("fc/window", ConvGeom(6, 3, 3, 1, 1))),
     "output layer must be fully connected"),
])
def test_bad_geometry_names_the_layer(change, match):
    graph = _cnn(np.random.default_rng(9))
    change(graph)
    with pytest.raises(IRError, match=match):
        graph.validate()


@pytest.mark.parametrize("g", GEOMS, ids=str)
@pytest.mark.parametrize("bits", [3, 8, 16])
def test_pad_level_is_torchs_zero_padding_of_the_signed_value(g, bits):
    """A signed input streamed as u = q + 2^(b-1), padded with the level z = 2^(b-1): the
    accumulator minus z*sum(w) (what the thresholds subtract) is torch's zero-padded conv2d of q."""
    rng = np.random.default_rng(bits)
    itype = DType("uint", bits)
    zero = 1 << (bits - 1)
    layer = _conv_layer(rng, dataclasses.replace(g, pad=zero), 5, itype)
    layer.acc_bits = 40
    u = rng.integers(itype.min, itype.max + 1, size=(6, g.in_len))
    u[0], u[1] = itype.min, itype.max
    acc = _accumulate(layer, dataclasses.replace(g, pad=zero), u).reshape(6, g.pixels, 5) \
        - zero * layer.weights.sum(axis=1)
    assert np.array_equal(acc.reshape(6, -1), _torch_conv(layer, g, u - zero))
