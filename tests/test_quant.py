"""Tests for lbgen.quant: exact integer semantics of the QAT modules."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from lbgen.quant import (
    ALL_MODULES,
    SAFE_GLOBALS,
    BinaryAct,
    BinaryLinear,
    IntLinear,
    QuantAct,
    QuantLinearBase,
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


def test_weights_only_rejects_without_allowlist(tmp_path):
    path = tmp_path / "q.pt"
    torch.save(QuantAct(2), path)
    with pytest.raises(Exception):
        torch.load(path, weights_only=True)


def test_exports():
    assert set(SAFE_GLOBALS) >= {QuantAct, BinaryAct, BinaryLinear, IntLinear}
    assert set(ALL_MODULES) >= {QuantAct, BinaryAct, BinaryLinear, IntLinear, QuantLinearBase}
    for cls in SAFE_GLOBALS:
        assert cls.__module__.startswith("lbgen.quant")


# --------------------------------------------------------------------------
# Shipped example models (examples/digits)
# --------------------------------------------------------------------------

_DIGITS = __import__("pathlib").Path(__file__).resolve().parents[1] / "examples" / "digits"


@pytest.mark.parametrize("name", ["w1a2", "w1a1"])
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
