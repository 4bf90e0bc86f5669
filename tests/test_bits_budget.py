"""Per-channel bit allocation (--bits-budget) and its mixed-precision layers.

The allocation (lbgen.quant.allocate_bits) is checked as a property: within
the widths and the budget, the whole budget spent when it can be, wider
channels never get fewer bits, and no other integer allocation has less
noise (brute force on small layers). A model whose hidden channels differ in
range, as after uneven batch-norm gains, is emitted with --bits-budget and
--compress huffman: its hidden layers get at least three widths, torch equals
golden on every level, and C-sim, Icarus and Verilator equal golden bit for
bit on the digits test set (C-sim in the default run, the RTL on the whole
set under ``make test-all``).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from lbgen import golden, quant
from lbgen.csim import run_csim
from lbgen.errors import UsageError
from lbgen.flow import EmitOptions, emit
from lbgen.ir import Graph, IRError
from lbgen.passes.model.allocation import channel_noise
from lbgen.native_tb import run_native

from lbgen_testing.common import DIGITS, random_bn

TEST_SET = DIGITS / "digits_test.npz"


# -- the allocation -----------------------------------------------------------------

alphas = st.lists(st.floats(0.0, 100.0, allow_nan=False), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(alpha=alphas, budget=st.floats(2.0, 8.0), hi=st.integers(2, 8))
def test_allocation_keeps_the_budget_and_favours_wide_channels(alpha, budget, hi):
    budget = min(budget, hi)
    bits = quant.allocate_bits(alpha, budget, lo=2, hi=hi)
    n = len(alpha)
    assert bits.shape == (n,) and bits.min() >= 2 and bits.max() <= hi
    assert bits.sum() == min(int(np.floor(budget * n + 1e-9)), hi * n)      # all of it, as far as it goes
    a = np.asarray(alpha)
    for i, j in itertools.combinations(range(n), 2):
        if a[i] > a[j]:
            assert bits[i] >= bits[j]
        elif a[j] > a[i]:
            assert bits[j] >= bits[i]


@settings(max_examples=60, deadline=None)
@given(alpha=st.lists(st.floats(0.01, 50.0), min_size=1, max_size=4), budget=st.floats(2.0, 5.0))
def test_allocation_is_the_integer_optimum(alpha, budget):
    hi = 5
    bits = quant.allocate_bits(alpha, budget, lo=2, hi=hi)
    total = int(np.floor(budget * len(alpha) + 1e-9))
    best = min(channel_noise(alpha, np.array(c)).sum()
               for c in itertools.product(range(2, hi + 1), repeat=len(alpha)) if sum(c) <= total)
    assert channel_noise(alpha, bits).sum() <= best * (1 + 1e-12)


def test_allocation_refuses_bad_arguments():
    for args in [([], 3), ([1.0, float("nan")], 3), ([1.0], 1.5), ([1.0], 9), ([-1.0], 3)]:
        with pytest.raises(ValueError):
            quant.allocate_bits(*args)


def test_channel_bits_linear_keeps_every_channel_in_its_range():
    lin = quant.ChannelBitsLinear(6, 4, bits=8, channel_bits=[2, 3, 5, 8])
    w_int, scale = lin.quant_weight()
    q = torch.tensor([1, 3, 15, 127], dtype=w_int.dtype)
    assert torch.all(w_int.abs() <= q[:, None]) and torch.all(w_int.abs().amax(1) == q)
    torch.testing.assert_close(scale, lin.weight.abs().amax(1) / q)
    with pytest.raises(ValueError):
        quant.ChannelBitsLinear(6, 4, bits=4, channel_bits=[2, 3, 5, 4])


# -- a model whose channels differ in range ----------------------------------------------

def uneven_mlp(seed: int = 0, dims=(64, 48, 32, 10), spread: float = 8.0) -> nn.Sequential:
    """digits-sized MLP with 8-bit weights; the hidden layers' rows are scaled by
    log-uniform factors in [1/spread, spread] (channels of very different range)."""
    g = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = [quant.QuantAct(8, clip=1.0)]
    n = len(dims) - 1
    for i in range(n):
        lin = quant.IntLinear(dims[i], dims[i + 1], bits=8)
        with torch.no_grad():
            w = torch.randn(dims[i + 1], dims[i], generator=g) / dims[i] ** 0.5
            if i < n - 1:
                w = w * spread ** (torch.rand(dims[i + 1], 1, generator=g) * 2 - 1)
            lin.weight.copy_(w)
            lin.bias.copy_(torch.randn(dims[i + 1], generator=g) * 0.1)
        layers.append(lin)
        if i < n - 1:
            layers.append(random_bn(dims[i + 1], g, negative=False))
            layers.append(quant.QuantAct(4, clip=2.0))
    return nn.Sequential(*layers).eval()


@pytest.fixture(scope="module")
def budget_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("budget") / "out"
    result = emit(uneven_mlp(), out, EmitOptions(bits_budget=4, compress="huffman"), inputs=TEST_SET,
                  name="uneven")
    return out, result


def test_budget_gives_three_or_more_widths_in_a_layer_and_torch_equals_golden(budget_out):
    out, result = budget_out
    assert "every hidden level equal" in result.checks[0]
    graph = Graph.load(out)
    first, hidden, last = graph.layers
    assert first.channel_bits is None and last.channel_bits is None      # edges keep their width
    cb = hidden.channel_bits
    assert cb is not None and len(np.unique(cb)) >= 3, np.unique(cb, return_counts=True)
    assert cb.sum() <= 4 * len(cb) and cb.min() >= 2 and cb.max() <= 8
    q = (1 << (cb - 1)) - 1
    assert np.all(np.abs(hidden.weights) <= q[:, None]) and np.all(np.abs(hidden.weights).max(1) == q)
    assert hidden.huffman is not None


def test_ir_refuses_a_weight_outside_its_channel(budget_out, tmp_path):
    import shutil

    out, _ = budget_out
    bad = tmp_path / "out"
    shutil.copytree(out, bad)
    path = bad / "ir" / "fc1.channel_bits.npy"
    cb = np.load(path)
    c = int(np.argmax(cb))
    cb[c] = 2
    np.save(path, cb)
    with pytest.raises(IRError, match=f"outside channel {c}'s 2 bits"):
        Graph.load(bad)


def test_budget_chain_csim(budget_out):
    out, result = budget_out
    trace = golden.run(result.graph, result.vectors.values)
    res = run_csim(out, result.vectors.values, native=False)
    assert res.mismatch(trace) is None
    np.testing.assert_array_equal(res.result, trace.result)


@pytest.mark.parametrize("simulator,frames", [
    ("icarus", 24),
    pytest.param("icarus", None, marks=pytest.mark.slow),
    pytest.param("verilator", None, marks=pytest.mark.slow),
])
def test_budget_chain_rtl(budget_out, simulator, frames):
    """The first 24 test images on Icarus by default; the whole test set on both under make test-all."""
    out, result = budget_out
    values = result.vectors.values[:frames]
    res = run_native(out, values, simulator=simulator, seed=3, backpressure=0.3)
    assert res.passed, res.summary()
    np.testing.assert_array_equal(res.result, golden.run(result.graph, values).result)


def test_budget_usage_errors(tmp_path):
    from lbgen.frontend.torch_frontend import load_module

    with pytest.raises(UsageError, match="--bits-budget 1.5"):
        emit(uneven_mlp(), tmp_path / "a", EmitOptions(bits_budget=1.5))
    with pytest.raises(UsageError, match="no hidden layer has k-bit integer weights"):
        emit(load_module(DIGITS / "digits_w1a2.pt"), tmp_path / "b", EmitOptions(bits_budget=3))
    with pytest.raises(UsageError, match="layer 4 has 4-bit weights"):
        emit(load_module(DIGITS / "digits_w4a4.pt"), tmp_path / "c", EmitOptions(bits_budget=5))
    assert not any(tmp_path.iterdir())
