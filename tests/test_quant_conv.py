"""Tests for the convolution modules of lbgen.quant (BinaryConv2d, IntConv2d,
Log2Conv2d, HeteroBinaryConv2d) and the activation quantizers on 4-d tensors."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import lbgen.quant as lq
from lbgen.quant import (
    ALL_MODULES,
    CONV_MODULES,
    SAFE_GLOBALS,
    BinaryAct,
    BinaryConv2d,
    BinaryLinear,
    HeteroBinaryConv2d,
    HeteroBinaryLinear,
    IntConv2d,
    IntLinear,
    Log2Conv2d,
    Log2Linear,
    QuantAct,
    QuantConv2dMixin,
    QuantLinearBase,
    TernaryConv2d,
    TernaryLinear,
)

# (name, factory(in, out, k, stride, padding), linear counterpart)
_CONVS = {
    "binary": (lambda i, o, k, s, p: BinaryConv2d(i, o, k, s, p), BinaryLinear),
    "int8": (lambda i, o, k, s, p: IntConv2d(i, o, k, s, p, bits=8), IntLinear),
    "int3": (lambda i, o, k, s, p: IntConv2d(i, o, k, stride=s, padding=p, bits=3), IntLinear),
    "log2_4": (lambda i, o, k, s, p: Log2Conv2d(i, o, k, s, p, bits=4), Log2Linear),
    "log2_5": (lambda i, o, k, s, p: Log2Conv2d(i, o, k, s, p, bias=False, bits=5), Log2Linear),
    "hetero14": (lambda i, o, k, s, p: HeteroBinaryConv2d(i, o, k, s, p, avg_bits=1.4), HeteroBinaryLinear),
    "hetero2": (lambda i, o, k, s, p: HeteroBinaryConv2d(i, o, k, s, p, avg_bits=2.0, dist=(0.3, 0.4, 0.3),
                                                          frac_bits=4), HeteroBinaryLinear),
    "ternary": (lambda i, o, k, s, p: TernaryConv2d(i, o, k, s, p), TernaryLinear),
}


def _ref_acc(values: torch.Tensor, w_int: torch.Tensor, k, stride, padding) -> torch.Tensor:
    """Independent integer reference: zero-pad, im2col with Tensor.unfold in
    (c, ky, kx) order, int64 matmul.  values: int64 (N, C, H, W); w_int: 2-d."""
    (kh, kw), (sh, sw), (ph, pw) = k, stride, padding
    n, c, h, w = values.shape
    xp = torch.zeros(n, c, h + 2 * ph, w + 2 * pw, dtype=torch.int64)
    xp[:, :, ph:ph + h, pw:pw + w] = values
    win = xp.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, OH, OW, kh, kw)
    oh, ow = win.shape[2], win.shape[3]
    patches = win.permute(0, 2, 3, 1, 4, 5).reshape(n, oh, ow, c * kh * kw)
    acc = patches @ w_int.long().T  # (N, OH, OW, out)
    return acc.permute(0, 3, 1, 2), patches


def _input(kind: str, shape, gen):
    """(quantized input, integer values it stands for, step)."""
    x = torch.randn(*shape, generator=gen) * 1.2 + 0.4
    if kind == "bipolar":
        a = BinaryAct()
        return a(x), (2 * a.levels(x) - 1).long(), 1.0
    bits = int(kind[1:])
    a = QuantAct(bits, clip=1.7)
    return a(x), a.levels(x).long(), a.step().double()


_CASES = list(itertools.product(sorted(_CONVS), [1, 3, 5], [1, 2], [0, 1, 2]))


@pytest.mark.parametrize("name,k,stride,padding", _CASES)
def test_conv_forward_exact(name, k, stride, padding):
    factory, _ = _CONVS[name]
    seed = _CASES.index((name, k, stride, padding))
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    cin, cout = 3, 5
    conv = factory(cin, cout, k, stride, padding)
    if conv.bias is not None:
        with torch.no_grad():
            conv.bias.uniform_(-2, 2, generator=gen)
    conv.eval()
    kind = ["a2", "a4", "bipolar", "a8"][seed % 4]
    x, values, step = _input(kind, (2, cin, 7, 10), gen)  # non-square input
    with torch.no_grad():
        y = conv(x)
        w_int, w_scale = conv.quant_weight()
    oh, ow = conv.output_size(7, 10)
    assert y.shape == (2, cout, oh, ow) and y.dtype == torch.float32
    assert (oh, ow) == ((7 + 2 * padding - k) // stride + 1, (10 + 2 * padding - k) // stride + 1)
    assert w_int.shape == (cout, cin * k * k)
    assert torch.equal(w_int, torch.round(w_int))
    acc, patches = _ref_acc(values, w_int, conv.kernel_size, conv.stride, conv.padding)
    s_ref = acc.double() * step
    y_ref = s_ref * w_scale.double()[None, :, None, None]
    if conv.bias is not None:
        y_ref = y_ref + conv.bias.detach().double()[None, :, None, None]
    assert torch.equal(y, y_ref.float())
    # the accumulator itself is exact: F.conv2d in float64 == step * integer sum
    with torch.no_grad():
        w4, _ = conv.conv_weight()
        s = F.conv2d(x.double(), w4.double(), None, conv.stride, conv.padding)
    assert torch.equal(s, s_ref)
    # the inherited (linear, channel-last) epilogue gives the same values
    with torch.no_grad():
        assert torch.equal(conv.epilogue(s_ref.movedim(1, -1)).movedim(-1, 1), y)
    # the conv is the linear layer on the im2col patches, bit for bit (what
    # lowering a conv to a matrix-vector engine relies on)
    with torch.no_grad():
        xs = patches.double() * step
        y_lin = QuantLinearBase.forward(conv, xs.float())
    assert torch.equal(y_lin.permute(0, 3, 1, 2), y)
    # and close to a float64 conv on the dequantized kernel (other op order)
    with torch.no_grad():
        wd = (w4.double() * w_scale.double()[:, None, None, None])
        b = None if conv.bias is None else conv.bias.double()
        y_f = F.conv2d(x.double(), wd, b, conv.stride, conv.padding)
    torch.testing.assert_close(y.double(), y_f, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted(_CONVS))
def test_conv_layout_matches_nn_conv2d(name):
    """Weight (out, in*kh*kw) in torch's (c, ky, kx) order and nn.Conv2d's
    initialisation (same distribution, same random stream)."""
    factory, linear = _CONVS[name]
    torch.manual_seed(7)
    conv = factory(4, 6, (3, 2), 1, (1, 0))
    torch.manual_seed(7)
    ref = nn.Conv2d(4, 6, (3, 2), 1, (1, 0), bias=conv.bias is not None)
    assert conv.weight.shape == (6, 4 * 3 * 2)
    assert torch.equal(conv.weight.detach(), ref.weight.detach().reshape(6, -1))
    if conv.bias is not None:
        assert torch.equal(conv.bias.detach(), ref.bias.detach())
    assert isinstance(conv, linear) and isinstance(conv, QuantLinearBase) and isinstance(conv, QuantConv2dMixin)
    assert (conv.in_channels, conv.out_channels) == (4, 6)
    assert (conv.in_features, conv.out_features) == (24, 6)
    assert (conv.kernel_size, conv.stride, conv.padding) == ((3, 2), (1, 1), (1, 0))
    assert (conv.dilation, conv.groups, conv.padding_mode) == ((1, 1), 1, "zeros")
    # with its weight set to our dequantized kernel, nn.Conv2d computes the same
    conv.eval()
    w4, w_scale = conv.conv_weight()
    with torch.no_grad():
        ref.weight.copy_(w4 * w_scale[:, None, None, None])
        x = QuantAct(4)(torch.rand(3, 4, 6, 5))
        torch.testing.assert_close(conv(x), ref(x), rtol=1e-5, atol=1e-5)
    assert str(conv).startswith(f"{type(conv).__name__}(4, 6, kernel_size=(3, 2), stride=(1, 1), padding=(1, 0)")


def test_conv_format_attributes():
    c = IntConv2d(2, 3, 3, bits=4)
    assert (c.weight_kind, c.weight_bits, c.q_max) == ("int", 4, 7)
    c = Log2Conv2d(2, 3, 3, bits=5)
    assert (c.weight_kind, c.weight_bits, c.max_exp) == ("log2", 5, 14)
    assert BinaryConv2d(2, 3, 1).weight_kind == "bipolar"
    h = HeteroBinaryConv2d(2, 3, 3, avg_bits=1.4).eval()
    assert (h.weight_kind, h.planes, h.frac_bits) == ("hetero", 3, 3)
    assert h.plane_count.shape == (3, 18)
    codes, scales, w_scale = h.quant_codes()
    assert codes.shape == (3, 18) and len(scales) == 3 and w_scale.shape == (3,)
    # default IntConv2d bits as IntLinear's, default Log2Conv2d bits as Log2Linear's
    assert IntConv2d(1, 1, 1).weight_bits == IntLinear(1, 1).weight_bits == 8
    assert Log2Conv2d(1, 1, 1).weight_bits == Log2Linear(1, 1).weight_bits == 4


@pytest.mark.parametrize("name", sorted(_CONVS))
def test_conv_ste_gradients(name):
    factory, _ = _CONVS[name]
    torch.manual_seed(3)
    conv = factory(3, 4, 3, 2, 1).train()
    x = QuantAct(2)(torch.rand(4, 3, 9, 6))
    x.requires_grad_(True)
    conv(x).pow(2).sum().backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
    if conv.bias is not None:
        assert conv.bias.grad is not None and conv.bias.grad.abs().sum() > 0
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert x.grad.dtype == torch.float32
    # training-mode value equals eval-mode value
    with torch.no_grad():
        y_train = conv(x)
        y_eval = conv.eval()(x)
    assert torch.equal(y_train, y_eval)


def test_conv_network_trains():
    torch.manual_seed(0)
    net = nn.Sequential(
        QuantAct(4), IntConv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), QuantAct(2, clip=2.0, learn_clip=True),
        nn.MaxPool2d(2), BinaryConv2d(6, 8, 3), nn.BatchNorm2d(8), BinaryAct(), nn.Flatten(),
        IntLinear(8 * 2 * 2, 10),
    ).train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(64, 1, 8, 8, generator=gen)
    y = torch.randint(0, 10, (64,), generator=gen)
    losses = []
    for _ in range(25):
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        losses.append(loss.item())
        opt.step()
    for n, p in net.named_parameters():
        assert p.grad is not None, n
    assert net[3].clip.grad is not None
    assert losses[-1] < losses[0] * 0.8


# --------------------------------------------------------------------------
# arguments
# --------------------------------------------------------------------------

_BAD = [
    (dict(kernel_size=0), "kernel_size"),
    (dict(kernel_size=(3,)), "kernel_size"),
    (dict(kernel_size=(3, 3, 3)), "kernel_size"),
    (dict(kernel_size="3"), "kernel_size"),
    (dict(kernel_size=True), "kernel_size"),
    (dict(kernel_size=3.0), "kernel_size"),
    (dict(stride=0), "stride"),
    (dict(stride=(1, -1)), "stride"),
    (dict(padding=-1), "padding"),
    (dict(padding="same"), "padding"),
    (dict(padding=(1, 1.5)), "padding"),
    (dict(dilation=2), "dilation"),
    (dict(dilation=(1, 2)), "dilation"),
    (dict(groups=2), "groups"),
    (dict(padding_mode="reflect"), "padding_mode"),
    (dict(padding_mode="circular"), "padding_mode"),
    (dict(in_channels=0), "in_channels"),
    (dict(out_channels=2.0), "out_channels"),
]


@pytest.mark.parametrize("cls", CONV_MODULES)
@pytest.mark.parametrize("bad,option", _BAD)
def test_conv_bad_arguments(cls, bad, option):
    kw = dict(in_channels=2, out_channels=3, kernel_size=3)
    kw.update(bad)
    with pytest.raises(ValueError, match=option) as exc:
        cls(**kw)
    assert cls.__name__ in str(exc.value)


@pytest.mark.parametrize("cls", CONV_MODULES)
def test_conv_default_options_accepted(cls):
    c = cls(2, 3, (3, 1), stride=(2, 1), padding=[1, 0], dilation=(1, 1), groups=1, padding_mode="zeros")
    assert (c.kernel_size, c.stride, c.padding) == ((3, 1), (2, 1), (1, 0))
    assert all(type(v) is int for v in (*c.kernel_size, *c.stride, *c.padding))


def test_conv_format_bad_arguments():
    for bad in [1, 9, 2.0, True]:
        with pytest.raises(ValueError, match="IntConv2d: bits"):
            IntConv2d(2, 3, 3, bits=bad)
    for bad in [1, 7]:
        with pytest.raises(ValueError, match="Log2Conv2d: bits"):
            Log2Conv2d(2, 3, 3, bits=bad)
    with pytest.raises(ValueError, match="HeteroBinaryConv2d: avg_bits"):
        HeteroBinaryConv2d(2, 3, 3, avg_bits=0.5)
    with pytest.raises(ValueError, match="HeteroBinaryConv2d: frac_bits"):
        HeteroBinaryConv2d(2, 3, 3, frac_bits=13)
    with pytest.raises(ValueError, match="HeteroBinaryConv2d"):
        HeteroBinaryConv2d(2, 3, 3, avg_bits=1.4, dist=(0.5, 0.5))
    # the linear classes keep their own names in the message
    with pytest.raises(ValueError, match="IntLinear: bits"):
        IntLinear(2, 3, bits=9)


def test_conv_rejects_non_4d_input():
    c = BinaryConv2d(2, 3, 3)
    with pytest.raises(ValueError, match="4-d"):
        c(torch.rand(2, 5, 5))


# --------------------------------------------------------------------------
# activation quantizers on (N, C, H, W)
# --------------------------------------------------------------------------


@pytest.mark.parametrize("training", [False, True])
def test_activations_on_4d(training):
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(3, 4, 5, 6, generator=gen) * 1.5
    for act in (QuantAct(3, clip=1.7, learn_clip=True), QuantAct(4), BinaryAct()):
        act.train(training)
        xi = x.clone().requires_grad_(training)
        y = act(xi)
        assert y.shape == x.shape and y.dtype == torch.float32
        with torch.no_grad():
            lv = act.levels(x)
            flat = act(x.reshape(-1)).reshape(x.shape)
        assert torch.equal(y.detach(), flat)
        if isinstance(act, QuantAct):
            assert torch.equal(y.detach(), lv * act.step())
        else:
            assert torch.equal(y.detach(), 2 * lv - 1)
        if training:
            y.sum().backward()
            assert xi.grad is not None and xi.grad.shape == x.shape and xi.grad.abs().sum() > 0


# --------------------------------------------------------------------------
# exports, tracing, saving
# --------------------------------------------------------------------------


def test_exports():
    assert CONV_MODULES == (BinaryConv2d, IntConv2d, Log2Conv2d, HeteroBinaryConv2d, lq.ChannelBitsConv2d,
                            TernaryConv2d)
    assert set(CONV_MODULES) <= set(ALL_MODULES) and set(CONV_MODULES) <= set(SAFE_GLOBALS)
    for cls in CONV_MODULES:
        assert issubclass(cls, QuantLinearBase) and issubclass(cls, QuantConv2dMixin)
        assert cls.__module__.startswith("lbgen.quant")
    for name in ("CONV_MODULES", "BinaryConv2d", "IntConv2d", "Log2Conv2d", "HeteroBinaryConv2d",
                 "ChannelBitsConv2d", "ChannelBitsLinear", "TernaryConv2d", "TernaryLinear", "QuantConv2dMixin"):
        assert name in lq.__all__ and hasattr(lq, name)
    # the linear tuple: the conv classes are not in it
    assert lq.LINEAR_MODULES == (BinaryLinear, IntLinear, Log2Linear, HeteroBinaryLinear, lq.ChannelBitsLinear,
                                 TernaryLinear)


def _cnn() -> nn.Sequential:
    torch.manual_seed(11)
    return nn.Sequential(
        QuantAct(4, clip=1.0),
        IntConv2d(1, 6, 3, padding=1, bits=8),
        nn.BatchNorm2d(6),
        BinaryAct(),
        BinaryConv2d(6, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        QuantAct(2, clip=2.0, learn_clip=True),
        nn.MaxPool2d(2),
        Log2Conv2d(8, 8, (3, 1), stride=(1, 2), padding=(1, 0), bits=4),
        nn.BatchNorm2d(8),
        QuantAct(3, clip=2.0),
        HeteroBinaryConv2d(8, 8, 3, padding=1, avg_bits=1.4),
        nn.BatchNorm2d(8),
        QuantAct(4, clip=2.0),
        nn.Flatten(),
        IntLinear(8 * 4 * 2, 10, bits=8),
    )


def test_cnn_fx_trace_with_leaf_modules():
    import torch.fx as fx

    class Tracer(fx.Tracer):
        def is_leaf_module(self, m, qualname):
            return isinstance(m, ALL_MODULES) or super().is_leaf_module(m, qualname)

    net = _cnn().eval()
    graph = Tracer().trace(net)
    targets = [n.target for n in graph.nodes if n.op == "call_module"]
    assert targets == [str(i) for i in range(len(net))]


def test_cnn_weights_only_round_trip(tmp_path):
    net = _cnn().train()
    net(torch.rand(16, 1, 8, 6))  # update BN running stats; 8x6 -> pool 4x3 -> log2 conv 4x2
    net.eval()
    x = torch.rand(20, 1, 8, 6)
    with torch.no_grad():
        y = net(x)
    assert y.shape == (20, 10)
    path = tmp_path / "cnn.pt"
    torch.save(net, path)
    allowed = [*SAFE_GLOBALS, nn.Sequential, nn.BatchNorm2d, nn.MaxPool2d, nn.Flatten]
    with torch.serialization.safe_globals(allowed):
        net2 = torch.load(path, weights_only=True)
    assert not net2.training
    with torch.no_grad():
        assert torch.equal(net2(x), y)
    for m1, m2 in zip(net.modules(), net2.modules()):
        assert type(m1) is type(m2)
        if isinstance(m1, QuantConv2dMixin):
            for attr in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "in_features",
                         "out_features", "weight_kind", "weight_bits"):
                assert getattr(m2, attr) == getattr(m1, attr), attr
            assert all(torch.equal(a, b) for a, b in zip(m1.quant_weight(), m2.quant_weight()))
        if isinstance(m1, HeteroBinaryConv2d):
            assert torch.equal(m2.plane_count, m1.plane_count)
            (c1, k1, _), (c2, k2, _) = m1.quant_codes(), m2.quant_codes()
            assert torch.equal(c1, c2) and k1 == k2
    # without the allow-list, loading refuses
    with pytest.raises(Exception):
        torch.load(path, weights_only=True)
