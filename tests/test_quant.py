"""Tests for lbgen.quant: exact integer semantics of the QAT modules."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from lbgen.ir import DType
from lbgen.quant import (
    ALL_MODULES,
    HETERO_MAX_PLANES,
    SAFE_GLOBALS,
    BinaryAct,
    BinaryLinear,
    HeteroBinaryLinear,
    IntLinear,
    Log2Linear,
    QuantAct,
    QuantLinearBase,
    TernaryLinear,
    default_hetero_dist,
    snap_step,
)


def _sig_bits(v: float) -> int:
    """Number of significant bits of a positive finite float."""
    m, _ = math.frexp(v)
    n = int(m * 2**53)
    assert n > 0
    while n % 2 == 0:
        n //= 2
    return n.bit_length()


def _ref_step(clip: float, bits: int) -> float:
    s = float(np.float32(clip) / np.float32(2**bits - 1))  # float32 division
    m, e = math.frexp(s)
    return math.ldexp(round(m * 2**16), e - 16)  # Python round: half-to-even


def _np_levels(x: np.ndarray, step: float, bits: int) -> np.ndarray:
    x = x.astype(np.float32)
    st = np.float32(step)
    upper = np.float32(2**bits - 1) * st
    return np.round(np.clip(x, np.float32(0), upper) / st)


# --------------------------------------------------------------------------
# QuantAct
# --------------------------------------------------------------------------


@pytest.mark.parametrize("bits", range(1, 9))
@pytest.mark.parametrize("clip", [1.0, 2.0, 0.7, 3.3, 1 / 3, 6.0, 0.011])
def test_step_snapped(bits, clip):
    q = QuantAct(bits, clip)
    st = q.step()
    assert st.dtype == torch.float32 and st.dim() == 0
    v = st.item()
    assert v == _ref_step(clip, bits)
    assert _sig_bits(v) <= 16
    # relative snapping error at most 2**-16
    assert abs(v - clip / (2**bits - 1)) <= 2**-16 * clip / (2**bits - 1) * 1.0001
    # every level * step is exact in float32
    levels = torch.arange(0, 2**bits, dtype=torch.float32)
    prod32 = (levels * st).double()
    prod64 = levels.double() * st.double()
    assert torch.equal(prod32, prod64)


def test_snap_step_matches_python_reference():
    rng = np.random.default_rng(1)
    vals = np.concatenate(
        [rng.uniform(1e-4, 50, 4000), 10.0 ** rng.uniform(-20, 20, 4000)]
    ).astype(np.float32)
    out = snap_step(torch.from_numpy(vals)).tolist()
    for v, s in zip(vals.tolist(), out):
        m, e = math.frexp(v)
        assert s == math.ldexp(round(m * 2**16), e - 16)


def test_step_power_of_two_unchanged():
    # clip/L exactly a power of two: snapping is the identity
    assert QuantAct(2, clip=3.0).step().item() == 1.0
    assert QuantAct(1, clip=0.25).step().item() == 0.25
    assert QuantAct(4, clip=15 / 8).step().item() == 0.125


def test_levels_hand_computed_ties():
    # clip=3, bits=2 -> L=3, step=1.0 exactly: ties at k+0.5 round half-to-even
    q = QuantAct(2, clip=3.0)
    x = torch.tensor([-5.0, -0.5, -0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 2.75, 3.0, 3.5, 100.0])
    expect = [0, 0, 0, 0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 3]
    assert q.levels(x).tolist() == expect
    # and with step 0.5 (clip=7.5, bits=4): x = 0.25 -> 0.5 tie -> 0; 0.75 -> 1.5 -> 2
    q = QuantAct(4, clip=7.5)
    assert q.step().item() == 0.5
    x = torch.tensor([0.25, 0.75, 1.25, 1.75, 7.25, 7.5, 7.75])
    assert q.levels(x).tolist() == [0, 2, 2, 4, 14, 15, 15]


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("clip", [1.0, 2.0, 0.7])
def test_levels_match_numpy_reference(bits, clip):
    q = QuantAct(bits, clip)
    step = q.step().item()
    L = 2**bits - 1
    rng = np.random.default_rng(bits * 100 + int(clip * 10))
    x = rng.normal(clip / 2, clip, 5000).astype(np.float32)
    # add exact ties and values at/around the clamp bounds
    k = np.arange(0, L + 1, dtype=np.float64)
    ties = ((k + 0.5) * step).astype(np.float32)
    x = np.concatenate([x, ties, np.float32([0.0, -1e-30, L * step, clip, 2 * clip])])
    lv = q.levels(torch.from_numpy(x))
    assert lv.dtype == torch.float32
    ref = _np_levels(x, step, bits)
    np.testing.assert_array_equal(lv.numpy(), ref)
    assert lv.min() >= 0 and lv.max() <= L
    assert torch.equal(lv, torch.round(lv))


@pytest.mark.parametrize("learn_clip", [False, True])
@pytest.mark.parametrize("training", [False, True])
def test_forward_is_levels_times_step(learn_clip, training):
    q = QuantAct(3, clip=1.7, learn_clip=learn_clip).train(training)
    x = torch.randn(4096) * 1.5 + 0.5
    if training:
        x.requires_grad_(True)
    y = q(x)
    assert y.dtype == torch.float32
    with torch.no_grad():
        lv = q.levels(x)
        st = q.step()
    assert torch.equal(y.detach(), lv * st)
    # exact: the float32 product equals the float64 product
    assert torch.equal(y.detach().double(), lv.double() * st.double())


def test_quant_act_bits_validation():
    for bad in [0, 9, -1, 2.0, True]:
        with pytest.raises(ValueError, match="bits"):
            QuantAct(bad)
    with pytest.raises(ValueError, match=r"\b9\b"):
        QuantAct(9)
    with pytest.raises(ValueError, match="clip"):
        QuantAct(2, clip=0.0)


def test_quant_act_attributes():
    q = QuantAct(3)
    assert q.bits == 3 and q.signed is False and q.kind == "uint"
    assert isinstance(q.bits, int)


def test_quant_act_ste_gradient():
    q = QuantAct(2, clip=3.0).train()
    x = torch.tensor([-1.0, 0.0, 0.4, 1.6, 3.0, 3.1, 10.0], requires_grad=True)
    q(x).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]


def test_quant_act_pact_gradient():
    q = QuantAct(2, clip=3.0, learn_clip=True).train()
    assert isinstance(q.clip, nn.Parameter)
    x = torch.tensor([-1.0, 0.5, 2.9, 3.5, 10.0], requires_grad=True)
    g = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    (q(x) * g).sum().backward()
    assert x.grad.tolist() == [0.0, 2.0, 3.0, 0.0, 0.0]
    # PACT: d out / d clip = 1 for x above the clip
    assert q.clip.grad.item() == pytest.approx(9.0)


def test_quant_act_eval_no_grad_leak():
    q = QuantAct(2, learn_clip=True).eval()
    x = torch.randn(10)
    y = q(x)
    assert not y.requires_grad
    assert y.dtype == torch.float32
    assert torch.equal(y, q.levels(x) * q.step().detach())


# --------------------------------------------------------------------------
# BinaryAct
# --------------------------------------------------------------------------


def test_binary_act_zero_maps_to_plus_one():
    a = BinaryAct()
    x = torch.tensor([-2.0, -1e-30, -0.0, 0.0, 1e-30, 3.0])
    assert a(x).tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0, 1.0]
    assert a.levels(x).tolist() == [0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    assert torch.equal(a.levels(x), (a(x) + 1) / 2)
    assert a.step().item() == 1.0
    assert a.bits == 1 and a.kind == "bipolar"


def test_binary_act_ste():
    a = BinaryAct().train()
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5], requires_grad=True)
    y = a(x)
    assert y.tolist() == [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0]
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]


# --------------------------------------------------------------------------
# Linear layers
# --------------------------------------------------------------------------


def _layers():
    torch.manual_seed(0)
    return [
        IntLinear(40, 24, bits=8),
        IntLinear(40, 24, bits=2, bias=False),
        IntLinear(40, 24, bits=5),
        BinaryLinear(40, 24),
        BinaryLinear(40, 24, bias=False),
    ]


@pytest.mark.parametrize("idx", range(5))
def test_quant_weight_contract(idx):
    lin = _layers()[idx]
    w_int, w_scale = lin.quant_weight()
    assert w_int.shape == (24, 40) and w_int.dtype == torch.float32
    assert w_scale.shape == (24,) and w_scale.dtype == torch.float32
    assert bool((w_scale > 0).all())
    assert torch.equal(w_int, torch.round(w_int))
    if isinstance(lin, BinaryLinear):
        assert lin.weight_kind == "bipolar" and lin.weight_bits == 1
        assert set(w_int.unique().tolist()) <= {-1.0, 1.0}
        w = lin.weight.detach()
        assert torch.equal(w_int, torch.where(w >= 0, 1.0, -1.0))
        assert torch.allclose(w_scale, w.abs().mean(dim=1))
    else:
        Q = 2 ** (lin.weight_bits - 1) - 1
        assert lin.weight_kind == "int"
        assert w_int.abs().max() <= Q
        # the row maximum hits the narrow-range bound
        assert torch.equal(w_int.abs().amax(dim=1), torch.full((24,), float(Q)))
        w = lin.weight.detach()
        w_scale = w_scale.detach()
        assert torch.allclose(w_int * w_scale[:, None], w, atol=float(w_scale.max()) / 2 + 1e-7)


def test_zero_weight_row_scale_positive():
    for lin in (IntLinear(8, 3, bits=4), BinaryLinear(8, 3)):
        with torch.no_grad():
            lin.weight[1].zero_()
        w_int, w_scale = lin.quant_weight()
        assert bool((w_scale > 0).all())
        assert torch.isfinite(w_int).all()


def test_int_linear_bits_validation():
    for bad in [1, 9, 0, 16, 4.0]:
        with pytest.raises(ValueError, match="bits"):
            IntLinear(4, 4, bits=bad)
    with pytest.raises(ValueError, match=r"\b1\b"):
        IntLinear(4, 4, bits=1)
    assert IntLinear(4, 4, bits=2).weight_bits == 2


@pytest.mark.parametrize("idx", range(5))
@pytest.mark.parametrize("act_bits", [1, 2, 4, 8])
def test_linear_sum_exact(idx, act_bits):
    """Before the epilogue the layer computes in_step * (levels @ w_int.T) exactly."""
    lin = _layers()[idx].eval()
    act = QuantAct(act_bits, clip=1.3)
    gen = torch.Generator().manual_seed(idx * 10 + act_bits)
    x = torch.rand(64, 40, generator=gen) * 1.6 - 0.1
    xq = act(x)
    lv = act.levels(x)
    in_step = act.step().double()
    w_int, w_scale = lin.quant_weight()
    w_int = w_int.detach()
    # integer reference in int64
    acc = lv.long() @ w_int.long().T
    s_ref = in_step * acc.double()
    s = torch.nn.functional.linear(xq.double(), w_int.double())
    assert torch.equal(s, s_ref)
    # bitwise through the epilogue, and independent of batch order
    with torch.no_grad():
        y = lin(xq)
        assert torch.equal(y, lin.epilogue(s_ref))
        perm = torch.randperm(64, generator=gen)
        assert torch.equal(lin(xq[perm]), y[perm])
        # and of the order of the input features
        fperm = torch.randperm(40, generator=gen)
        s2 = torch.nn.functional.linear(xq[:, fperm].double(), w_int[:, fperm].double())
        assert torch.equal(s2, s_ref)
    # epilogue op order
    expect = s_ref * w_scale.detach().double()
    if lin.bias is not None:
        expect = expect + lin.bias.detach().double()
    assert torch.equal(y, expect.float())


def test_linear_sum_exact_bipolar_input():
    lin = _layers()[0].eval()
    a = BinaryAct()
    x = torch.randn(33, 40)
    xb = a(x)
    w_int, _ = lin.quant_weight()
    acc = (2 * a.levels(x).long() - 1) @ w_int.detach().long().T
    with torch.no_grad():
        assert torch.equal(lin(xb), lin.epilogue(acc.double()))


@pytest.mark.parametrize("idx", [0, 3])
def test_linear_ste_gradients(idx):
    lin = _layers()[idx].train()
    x = QuantAct(2)(torch.rand(16, 40))
    x.requires_grad_(True)
    lin(x).pow(2).sum().backward()
    assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0
    assert lin.bias.grad is not None and lin.bias.grad.abs().sum() > 0
    assert x.grad is not None and x.grad.abs().sum() > 0
    # training-mode value equals eval-mode value
    with torch.no_grad():
        y_train = lin(x)
        y_eval = lin.eval()(x)
    assert torch.equal(y_train, y_eval)


def test_binary_linear_weight_ste_mask():
    lin = BinaryLinear(3, 1, bias=False).train()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[-2.0, 0.5, 1.5]]))
    # gradient of the bipolar weights: straight through where |w| <= 1
    w_b, _ = lin.quant_weight()
    w_b.sum().backward()
    assert lin.weight.grad.tolist() == [[0.0, 1.0, 0.0]]


# --------------------------------------------------------------------------
# Exactness helper: forward == integer model x scales, bit for bit
# --------------------------------------------------------------------------


def _assert_exact(lin: QuantLinearBase, bits: int = 4, n: int = 300, seed: int = 0, clip: float = 1.3):
    """Feed ``levels * step`` of a QuantAct; the forward must equal
    ``((acc_int * step) * w_scale + bias).float()`` with acc_int computed in int64."""
    q = QuantAct(bits, clip=clip)
    step = q.step()
    rng = np.random.default_rng(seed)
    levels = rng.integers(0, 2**bits, size=(n, lin.in_features))
    levels[0] = 2**bits - 1  # the largest input
    x = torch.from_numpy(levels).float() * step
    assert torch.equal(x.double(), torch.from_numpy(levels).double() * step.double())  # exact input
    with torch.no_grad():
        y = lin(x)
        w_int, w_scale = lin.quant_weight()
    wi = w_int.double().numpy()
    assert np.array_equal(wi, np.rint(wi))
    acc = levels.astype(np.int64) @ wi.astype(np.int64).T
    expect = torch.from_numpy(acc).double() * step.double() * w_scale.double()
    if lin.bias is not None:
        expect = expect + lin.bias.detach().double()
    assert y.dtype == torch.float32
    assert torch.equal(y, expect.float())
    return acc


# --------------------------------------------------------------------------
# Log2Linear
# --------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6])
def test_log2_quant_weight_contract(bits):
    torch.manual_seed(bits)
    lin = Log2Linear(50, 20, bits=bits)
    assert lin.weight_kind == "log2" and lin.weight_bits == bits
    e_max = 2 ** (bits - 1) - 2  # the IR's largest exponent
    assert lin.max_exp == e_max == DType("log2", bits).log2_max_exp
    w_int, w_scale = lin.quant_weight()
    assert w_int.shape == (20, 50) and w_int.dtype == torch.float32
    assert w_scale.shape == (20,) and bool((w_scale > 0).all())
    mag = w_int.detach().abs()
    nz = mag > 0
    assert torch.equal(mag, torch.round(mag))
    assert torch.equal(torch.exp2(torch.round(torch.log2(mag[nz]))), mag[nz])  # powers of two
    assert mag.max() <= 2**e_max
    # the row maximum maps to the largest exponent; the scale is max|w| / 2^e_max
    w = lin.weight.detach()
    assert torch.equal(mag.amax(dim=1), torch.full((20,), float(2**e_max)))
    assert torch.equal(w_scale.detach(), w.abs().amax(dim=1) / 2**e_max)
    # signs follow the latent weights; the IR encodes every value
    assert bool((torch.sign(w_int.detach())[nz] == torch.sign(w)[nz]).all())
    codes = DType("log2", bits).encode(w_int.detach().numpy().astype(np.int64))
    assert np.array_equal(DType("log2", bits).decode(codes), w_int.detach().numpy().astype(np.int64))


def test_log2_rounding_is_in_the_log_domain():
    lin = Log2Linear(12, 1, bits=4, bias=False)  # exponents 0..6: integer weights 1..64
    b = 2.0**-0.5  # the boundary between 2^0 and 2^-1 (relative to the row maximum)
    z = 2.0**-6.5  # the boundary between the smallest exponent and zero
    row = [1.0, -0.72, 0.70, float(np.nextafter(np.float32(b), np.float32(1))),
           float(np.nextafter(np.float32(b), np.float32(0))), 0.36, -0.35, 0.1,
           float(np.nextafter(np.float32(z), np.float32(1))), float(np.nextafter(np.float32(z), np.float32(0))),
           0.0, -1e-9]
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([row]))
    w_int, w_scale = lin.quant_weight()
    # linear rounding would put 0.72 at 0.5 (the midpoint of 0.5 and 1 is 0.75); the log domain puts it at 1
    assert w_int[0].tolist() == [64, -64, 32, 64, 32, 32, -16, 8, 1, 0, 0, 0]
    assert w_scale.item() == 1.0 / 64


@pytest.mark.parametrize("bits", [2, 3, 4, 5])
def test_log2_matches_numpy_reference(bits):
    torch.manual_seed(10 + bits)
    lin = Log2Linear(200, 16, bits=bits)
    with torch.no_grad():
        lin.weight.mul_(torch.exp(torch.randn(16, 200) * 2))  # a wide dynamic range
    w = lin.weight.detach().numpy().astype(np.float64)
    u = np.abs(w) / np.abs(w).max(axis=1, keepdims=True)
    e_max = 2 ** (bits - 1) - 2
    with np.errstate(divide="ignore"):
        e = np.round(np.log2(u))
    ref = np.where(e >= -e_max, np.sign(w) * 2.0 ** (e + e_max), 0.0)
    # skip values within 1e-6 (relative, in log2) of a rounding boundary
    frac = np.log2(np.where(u > 0, u, 1.0)) % 1.0
    safe = np.abs(frac - 0.5) > 1e-6
    got = lin.quant_weight()[0].detach().numpy()
    assert safe.mean() > 0.99
    np.testing.assert_array_equal(got[safe], ref[safe])


@pytest.mark.parametrize("bits", [2, 3, 4, 5])
@pytest.mark.parametrize("abits", [1, 4, 8])
def test_log2_forward_is_exact(bits, abits):
    torch.manual_seed(bits * 10 + abits)
    lin = Log2Linear(64, 24, bits=bits).eval()
    _assert_exact(lin, bits=abits, seed=bits)


def test_log2_6bit_forward_is_exact_within_the_bound():
    torch.manual_seed(3)
    lin = Log2Linear(40, 8, bits=6, bias=False).eval()
    acc = _assert_exact(lin, bits=1)  # 0/1 inputs: |acc| <= 40 * 2^30 < 2^37
    assert np.abs(acc).max() > 2**31


def test_log2_ste_and_training_forward_value():
    torch.manual_seed(0)
    lin = Log2Linear(16, 8, bits=4).train()
    x = torch.rand(32, 16)
    y = lin(x)
    lin.eval()
    with torch.no_grad():
        y_eval = lin(x)
    assert torch.equal(y.detach(), y_eval)  # the STE adds exactly zero
    lin.train()
    y.sum().backward()
    assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0
    assert lin.bias.grad is not None
    # STE in the integer domain: d w_int / d w = 1 / w_scale
    lin.zero_grad()
    w_int, w_scale = lin.quant_weight()
    w_int.sum().backward()
    expect = (1.0 / w_scale.detach())[:, None].expand(8, 16).clone()
    # plus the scale's own gradient on each row's maximum
    g = lin.weight.grad
    mask = lin.weight.detach().abs() < lin.weight.detach().abs().amax(dim=1, keepdim=True)
    assert torch.allclose(g[mask], expect[mask])


def test_log2_bits_validation():
    for bad in [1, 7, 0, 8, 4.0, True, "4"]:
        with pytest.raises(ValueError, match=r"bits .* 2\.\.6"):
            Log2Linear(4, 4, bits=bad)


def test_log2_zero_row():
    lin = Log2Linear(8, 3, bits=3)
    with torch.no_grad():
        lin.weight[1].zero_()
    w_int, w_scale = lin.quant_weight()
    assert bool((w_scale > 0).all()) and torch.isfinite(w_int).all()
    assert w_int[1].abs().sum() == 0


# --------------------------------------------------------------------------
# HeteroBinaryLinear
# --------------------------------------------------------------------------


def _hetero(out=48, inp=64, seed=0, **kw) -> HeteroBinaryLinear:
    torch.manual_seed(seed)
    lin = HeteroBinaryLinear(inp, out, **kw)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(out, inp) * torch.rand(out, 1))  # rows of different scale
    return lin


def _plane_histogram(count: torch.Tensor, planes: int) -> list[int]:
    return [int((count == j).sum()) for j in range(1, planes + 1)]


@pytest.mark.parametrize("b,dist", [(1.4, None), (1.4, (0.6, 0.4)), (1.2, None), (1.8, None), (2.0, None),
                                    (2.5, None), (3.0, None), (1.5, (0.6, 0.3, 0.1)), (1.4, (0.65, 0.3, 0.05))])
@pytest.mark.parametrize("shape", [(48, 64), (7, 13), (10, 3)])
def test_hetero_mask_fractions_match_p(b, dist, shape):
    lin = _hetero(*shape, avg_bits=b, dist=dist)
    p = lin.dist
    assert len(p) == lin.planes <= HETERO_MAX_PLANES
    n = shape[0] * shape[1]
    for mode in ("train", "eval"):
        lin.train(mode == "train")
        codes, scales, _ = lin.quant_codes()
        used = DType("hetero", 2 * lin.planes - 1, scales).plane_mask(codes.numpy())
        count = torch.from_numpy(used.sum(axis=-1))
        hist = _plane_histogram(count, lin.planes)
        for j, (got, frac) in enumerate(zip(hist, p)):
            assert abs(got - frac * n) <= 1.0, (j, hist, p)  # one weight per layer
        assert abs(count.double().mean().item() - b) <= 1.0 / n + 1e-9


@pytest.mark.parametrize("b,dist,frac_bits", [(1.4, None, 3), (1.4, (0.6, 0.4), 3), (2.5, None, 4), (1.3, None, 0)])
def test_hetero_codes_decode_to_the_integer_weights(b, dist, frac_bits):
    lin = _hetero(avg_bits=b, dist=dist, frac_bits=frac_bits).eval()
    w_int, w_scale = lin.quant_weight()
    codes, scales, w_scale2 = lin.quant_codes()
    n = lin.planes
    assert len(scales) == n and scales[0] == 2**frac_bits and all(k >= 1 for k in scales)
    assert torch.equal(w_scale, w_scale2)
    dt = DType("hetero", 2 * n - 1, scales)
    c = codes.numpy()
    dt.check_codes(c)  # thermometer masks, no sign bits on unused planes
    assert np.array_equal(dt.decode(c), w_int.numpy().astype(np.int64))
    # w_scale = mean|w_c| * a_0 / 2^F
    expect = lin.weight.detach().abs().mean(dim=1) * (float(lin.plane_a0) / 2**frac_bits)
    assert torch.equal(w_scale, expect)


def test_hetero_residual_binarization_values():
    lin = _hetero(avg_bits=1.4).eval()
    w_int, _ = lin.quant_weight()
    k0, k1, k2 = lin.plane_scales.tolist()
    count = lin.plane_count
    w = lin.weight.detach()
    one = w_int[count == 1]
    assert set(one.abs().unique().tolist()) == {float(k0)}
    assert bool((torch.sign(one) == torch.sign(w[count == 1]) + (w[count == 1] == 0)).all())
    two = w_int[count == 2].abs().unique().tolist()
    assert set(two) <= {float(k0 + k1), float(abs(k0 - k1))}
    three = set(w_int[count == 3].abs().unique().tolist())
    assert three <= {float(abs(k0 + s1 * k1 + s2 * k2)) for s1 in (-1, 1) for s2 in (-1, 1)}


def test_hetero_middle_out_gives_more_planes_to_larger_residuals():
    lin = _hetero(96, 80, seed=4, avg_bits=1.4).eval()
    count = lin.plane_count.reshape(-1)
    w = lin.weight.detach().double()
    v = (w / w.abs().mean(dim=1, keepdim=True)).reshape(-1)
    a0 = float(lin.plane_a0)
    assert a0 == pytest.approx(float(v.abs().mean()), rel=1e-6)
    r1 = (v.abs() - a0).abs()  # |v - a0 sign(v)|
    assert r1[count >= 2].min() >= r1[count == 1].max()
    # and plane 2 among the plane-1 weights by the next residual
    k = lin.plane_scales.tolist()
    r = v - a0 * torch.where(v >= 0, 1.0, -1.0)
    r2 = (r.abs() - k[1] * a0 / 2**lin.frac_bits).abs()
    assert r2[count == 3].min() >= r2[count == 2].max()


@pytest.mark.parametrize("abits", [1, 2, 4, 8])
@pytest.mark.parametrize("b", [1.4, 2.2])
def test_hetero_forward_is_exact(abits, b):
    lin = _hetero(32, 96, seed=abits, avg_bits=b).eval()
    _assert_exact(lin, bits=abits, seed=abits)
    lin.train()
    _assert_exact(lin, bits=abits, seed=abits + 1)  # training forward (fresh masks) too


def test_hetero_masks_recomputed_in_training_fixed_in_eval():
    lin = _hetero(avg_bits=1.4).train()
    c1 = lin.quant_codes()[0]
    with torch.no_grad():
        lin.weight.mul_(torch.exp(torch.randn_like(lin.weight)))  # reshuffle the magnitudes
    c2 = lin.quant_codes()[0]
    n = lin.planes
    assert not torch.equal(c1 >> n, c2 >> n)  # training: new masks
    lin.eval()  # fixes them
    frozen = lin.plane_count.clone()
    scales = lin.plane_scales.clone()
    assert torch.equal(frozen.long() - 1, ((c2 >> n) & 1) + ((c2 >> (n + 1)) & 1))
    with torch.no_grad():
        lin.weight.mul_(torch.exp(torch.randn_like(lin.weight)))
    c3 = lin.quant_codes()[0]
    assert torch.equal(lin.plane_count, frozen) and torch.equal(lin.plane_scales, scales)
    assert torch.equal(c3 >> n, c2 >> n)  # eval: masks fixed
    lin.eval()  # already in eval: nothing changes
    assert torch.equal(lin.plane_count, frozen)
    lin.freeze()  # explicitly: recomputed
    assert not torch.equal(lin.plane_count, frozen)


def test_hetero_ste_gradients():
    lin = _hetero(16, 24, avg_bits=1.4).train()
    x = torch.rand(40, 24)
    y = lin(x)
    with torch.no_grad():
        y_eval = lin.eval()(x)
    lin.train()
    assert torch.equal(y.detach(), y_eval)  # the masks the eval switch froze are the training ones
    y.square().sum().backward()
    assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0
    assert lin.bias.grad is not None
    lin.zero_grad()
    w_int, w_scale = lin.quant_weight()
    (w_int * 1.0).sum().backward()
    g = lin.weight.grad
    assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_hetero_trains():
    torch.manual_seed(0)
    net = nn.Sequential(QuantAct(4), IntLinear(20, 32), nn.BatchNorm1d(32), BinaryAct(),
                        HeteroBinaryLinear(32, 32, avg_bits=1.4), nn.BatchNorm1d(32), QuantAct(2, learn_clip=True),
                        Log2Linear(32, 32, bits=4), nn.BatchNorm1d(32), QuantAct(2), IntLinear(32, 5))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x, y = torch.rand(128, 20), torch.randint(0, 5, (128,))
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        losses.append(loss.item())
        opt.step()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
    assert losses[-1] < losses[0] * 0.8


def test_hetero_default_distribution():
    lin = HeteroBinaryLinear(8, 8)
    assert lin.avg_bits == 1.4 and lin.weight_bits == 1.4 and lin.dist == (0.7, 0.2, 0.1)
    assert lin.weight_kind == "hetero" and lin.planes == 3 and lin.frac_bits == 3
    assert HeteroBinaryLinear(8, 8, avg_bits=1.4, dist=[0.6, 0.4]).planes == 2
    assert HeteroBinaryLinear(8, 8, avg_bits=1.4, dist=[0.6, 0.4, 0.0]).dist == (0.6, 0.4)
    assert HeteroBinaryLinear(8, 8, avg_bits=2.5).dist == default_hetero_dist(2.5)


def test_hetero_bad_arguments():
    with pytest.raises(ValueError, match=r"P=\[0\.5, 0\.3, 0\.2\] averages 1\.7 bits .* target B=1\.4"):
        HeteroBinaryLinear(8, 8, avg_bits=1.4, dist=(0.5, 0.3, 0.2))
    with pytest.raises(ValueError, match=r"P=\[0\.4, 0\.3, 0\.2, 0\.1\] has 4 entries, .* 1\.\.3 planes"):
        HeteroBinaryLinear(8, 8, avg_bits=2.0, dist=(0.4, 0.3, 0.2, 0.1))
    with pytest.raises(ValueError, match="sums to 0.9"):
        HeteroBinaryLinear(8, 8, avg_bits=1.4, dist=(0.6, 0.2, 0.1))
    with pytest.raises(ValueError, match="negative"):
        HeteroBinaryLinear(8, 8, avg_bits=1.4, dist=(0.8, -0.2, 0.4))
    for bad in (1.0, 0.5, 3.5, float("nan"), True, "1.4", None):
        with pytest.raises(ValueError, match=r"avg_bits .*\(1, 3\]"):
            HeteroBinaryLinear(8, 8, avg_bits=bad)
    for bad in (-1, 13, 2.0, True):
        with pytest.raises(ValueError, match="frac_bits"):
            HeteroBinaryLinear(8, 8, frac_bits=bad)


def test_hetero_zero_row_and_tiny_layer():
    lin = _hetero(3, 8)
    with torch.no_grad():
        lin.weight[1].zero_()
    for mode in (True, False):
        lin.train(mode)
        w_int, w_scale = lin.quant_weight()
        assert bool((w_scale > 0).all()) and torch.isfinite(w_int).all()
    lin = _hetero(1, 2).eval()  # 2 weights: round(0.3 * 2) = 1 two-plane weight, round(0.2) = 0 three-plane
    assert _plane_histogram(lin.plane_count, 3) == [1, 1, 0]
    assert lin.plane_scales[2] >= 1
    codes, scales, _ = lin.quant_codes()
    DType("hetero", 5, scales).check_codes(codes.numpy())


# --------------------------------------------------------------------------
# Whole network, serialization
# --------------------------------------------------------------------------


def _net():
    torch.manual_seed(0)
    return nn.Sequential(
        QuantAct(4, clip=1.0),
        IntLinear(64, 32, bits=8),
        nn.BatchNorm1d(32),
        QuantAct(2, learn_clip=True),
        BinaryLinear(32, 32),
        nn.BatchNorm1d(32),
        BinaryAct(),
        BinaryLinear(32, 32, bias=False),
        nn.BatchNorm1d(32),
        QuantAct(3, clip=2.0),
        IntLinear(32, 10, bits=8),
    )


def test_network_trains():
    net = _net().train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(128, 64, generator=gen)
    y = torch.randint(0, 10, (128,), generator=gen)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        losses.append(loss.item())
        opt.step()
    for n, p in net.named_parameters():
        assert p.grad is not None, n
    assert losses[-1] < losses[0] * 0.8
    assert net[3].clip.grad is not None


def test_weights_only_round_trip(tmp_path):
    net = _net().train()
    net(torch.rand(64, 64))  # update BN running stats
    net.eval()
    x = torch.rand(50, 64)
    with torch.no_grad():
        y = net(x)
    path = tmp_path / "net.pt"
    torch.save(net, path)
    allowed = [*SAFE_GLOBALS, nn.Sequential, nn.BatchNorm1d]
    with torch.serialization.safe_globals(allowed):
        net2 = torch.load(path, weights_only=True)
    assert not net2.training
    with torch.no_grad():
        y2 = net2(x)
    assert torch.equal(y, y2)
    for m1, m2 in zip(net.modules(), net2.modules()):
        assert type(m1) is type(m2)
        if isinstance(m1, QuantAct):
            assert (m2.bits, m2.kind, m2.learn_clip) == (m1.bits, m1.kind, m1.learn_clip)
            assert torch.equal(m2.step(), m1.step())
        if isinstance(m1, QuantLinearBase):
            assert (m2.weight_kind, m2.weight_bits) == (m1.weight_kind, m1.weight_bits)
            assert all(torch.equal(a, b) for a, b in zip(m1.quant_weight(), m2.quant_weight()))


def test_weights_only_round_trip_log2_and_hetero(tmp_path):
    torch.manual_seed(1)
    net = nn.Sequential(QuantAct(4), IntLinear(16, 24), nn.BatchNorm1d(24), QuantAct(2),
                        HeteroBinaryLinear(24, 24, avg_bits=1.4), nn.BatchNorm1d(24), BinaryAct(),
                        HeteroBinaryLinear(24, 24, avg_bits=1.6, dist=(0.6, 0.2, 0.2), frac_bits=4),
                        nn.BatchNorm1d(24), QuantAct(4), Log2Linear(24, 24, bits=5), nn.BatchNorm1d(24),
                        QuantAct(3), IntLinear(24, 4)).train()
    net(torch.rand(64, 16))
    net.eval()
    x = torch.rand(50, 16)
    with torch.no_grad():
        y = net(x)
    path = tmp_path / "net.pt"
    torch.save(net, path)
    with torch.serialization.safe_globals([*SAFE_GLOBALS, nn.Sequential, nn.BatchNorm1d]):
        net2 = torch.load(path, weights_only=True)
    assert not net2.training
    with torch.no_grad():
        assert torch.equal(net2(x), y)
    for m1, m2 in zip(net.modules(), net2.modules()):
        assert type(m1) is type(m2)
        if isinstance(m1, QuantLinearBase):
            assert (m2.weight_kind, m2.weight_bits) == (m1.weight_kind, m1.weight_bits)
            assert all(torch.equal(a, b) for a, b in zip(m1.quant_weight(), m2.quant_weight()))
        if isinstance(m1, HeteroBinaryLinear):
            assert (m2.avg_bits, m2.dist, m2.planes, m2.frac_bits) == (m1.avg_bits, m1.dist, m1.planes, m1.frac_bits)
            assert torch.equal(m2.plane_count, m1.plane_count) and torch.equal(m2.plane_scales, m1.plane_scales)
            (c1, k1, _), (c2, k2, _) = m1.quant_codes(), m2.quant_codes()
            assert torch.equal(c1, c2) and k1 == k2
        if isinstance(m1, Log2Linear):
            assert (m2.max_exp, m2.n_exponents) == (m1.max_exp, m1.n_exponents)
    # the state dict carries the fixed masks
    assert {"4.plane_count", "4.plane_scales", "4.plane_a0"} <= set(net2.state_dict())


# --------------------------------------------------------------------------
# TernaryLinear
# --------------------------------------------------------------------------


def test_ternary_quant_weight_is_twn():
    """w_int = sign(w) where |w| > 0.7 mean|w_c|, else 0; the scale is the mean |w| kept."""
    torch.manual_seed(4)
    lin = TernaryLinear(60, 12).eval()
    assert (lin.weight_kind, lin.weight_bits) == ("ternary", 2)
    with torch.no_grad():
        w_int, w_scale = lin.quant_weight()
    assert w_int.dtype == torch.float32 and w_scale.shape == (12,)
    w = lin.weight.detach().double().numpy()
    delta = 0.7 * np.abs(w).mean(axis=1, keepdims=True)
    keep = np.abs(w) > delta
    want = np.where(keep, np.sign(w), 0.0)
    safe = np.abs(np.abs(w) - delta) > 1e-6           # float32 vs float64 rounding at the threshold
    assert safe.mean() > 0.99
    np.testing.assert_array_equal(w_int.numpy()[safe], want[safe])
    keep = w_int.numpy() != 0
    assert set(np.unique(w_int.numpy())) == {-1.0, 0.0, 1.0}
    alpha = (np.abs(w) * keep).sum(axis=1) / keep.sum(axis=1)
    np.testing.assert_allclose(w_scale.numpy(), alpha, rtol=1e-6)
    # the IR's format takes the integer weights as they are
    codes = DType("ternary", 2).encode(w_int.numpy())
    assert set(np.unique(codes)) == {0, 1, 3}


@pytest.mark.parametrize("abits", [1, 2, 4, 8])
def test_ternary_forward_is_exact(abits):
    torch.manual_seed(abits)
    lin = TernaryLinear(64, 16, bias=abits != 4).eval()
    _assert_exact(lin, bits=abits, seed=abits)


def test_ternary_ste_and_zero_row():
    torch.manual_seed(2)
    lin = TernaryLinear(16, 8).train()
    x = torch.rand(32, 16)
    y = lin(x)
    with torch.no_grad():
        assert torch.equal(y, lin.eval()(x))     # the STE adds exactly zero
    lin.train()
    y.sum().backward()
    assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0
    with torch.no_grad():
        lin.weight[3].zero_()
    w_int, w_scale = lin.eval().quant_weight()
    assert bool((w_scale > 0).all()) and not w_int[3].any()


def test_weights_only_rejects_without_allowlist(tmp_path):
    path = tmp_path / "q.pt"
    torch.save(QuantAct(2), path)
    with pytest.raises(Exception):
        torch.load(path, weights_only=True)


def test_exports():
    assert set(SAFE_GLOBALS) >= {QuantAct, BinaryAct, BinaryLinear, IntLinear, Log2Linear, HeteroBinaryLinear,
                                 TernaryLinear}
    assert set(ALL_MODULES) >= {QuantAct, BinaryAct, BinaryLinear, IntLinear, QuantLinearBase, Log2Linear,
                                HeteroBinaryLinear}
    for cls in SAFE_GLOBALS:
        assert cls.__module__.startswith("lbgen.quant")


# --------------------------------------------------------------------------
# Shipped example models (examples/digits)
# --------------------------------------------------------------------------

_DIGITS = __import__("pathlib").Path(__file__).resolve().parents[1] / "examples" / "digits"


def _shipped():
    import json

    results = json.loads((_DIGITS / "results.json").read_text())
    return [n for n, e in results["models"].items() if "file" in e]


@pytest.mark.parametrize("name", _shipped())
def test_shipped_digits_model(name):
    import json

    path = _DIGITS / f"digits_{name}.pt"
    if not path.exists():
        pytest.skip(f"{path} not built (run examples/digits/train.py)")
    with torch.serialization.safe_globals([*SAFE_GLOBALS, nn.Sequential, nn.BatchNorm1d]):
        model = torch.load(path, weights_only=True)
    assert isinstance(model, nn.Sequential) and not model.training
    data = np.load(_DIGITS / "digits_test.npz")
    x, y = data["x"], data["y"]
    assert x.shape == (360, 64) and x.dtype == np.float32
    assert y.shape == (360,) and y.dtype == np.int64
    with torch.no_grad():
        h = torch.from_numpy(x)
        for m in model:
            if isinstance(m, (QuantAct, BinaryAct)):
                # every quantizer output is exactly levels * step
                out = m(h)
                lv = m.levels(h)
                if isinstance(m, QuantAct):
                    assert torch.equal(out, lv * m.step())
                else:
                    assert torch.equal(out, 2 * lv - 1)
                h = out
            else:
                h = m(h)
    acc = float((h.argmax(1).numpy() == y).mean())
    results = json.loads((_DIGITS / "results.json").read_text())
    assert acc == pytest.approx(results["models"][name]["test_accuracy"], abs=1e-6)
    assert acc >= 0.9
