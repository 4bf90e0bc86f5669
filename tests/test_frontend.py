"""Frontend and passes: torch == golden on every integer level, errors name the culprit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from lbgen import golden, quant
from lbgen.errors import UsageError
from lbgen.flow import EmitOptions, Vectors, build_graph
from lbgen.frontend.torch_frontend import load_module, lower, reference_levels
from lbgen.ir import Activation, DType, MatVec
from lbgen.passes.accumulators import size_accumulators
from lbgen.passes.thresholds import fold_layer

from conftest import DIGITS, small_mlp


def torch_vs_golden(model, graph, x):
    """Assert every hidden level and every argmax equal; return the golden trace."""
    vec = Vectors(values=graph.input.quantize(x), features=x)
    ref = reference_levels(model, x)
    trace = golden.run(graph, vec.values)
    for layer in graph.layers[:-1]:
        got = trace.outputs[layer.name]
        got = (got + 1) // 2 if layer.odtype.kind == "bipolar" else got
        np.testing.assert_array_equal(ref[layer.name], got, err_msg=layer.name)
    np.testing.assert_array_equal(np.argmax(ref["logits"], 1), np.argmax(trace.logits, 1))
    np.testing.assert_allclose(ref["logits"], trace.logits, rtol=1e-5, atol=1e-5)
    return trace


@pytest.mark.parametrize("name,a", [("w1a2", 2), ("w1a1", 1)])
def test_digits_torch_equals_golden_on_whole_test_set(name, a):
    model = load_module(DIGITS / f"digits_{name}.pt")
    graph = build_graph(model, EmitOptions(w=1, a=a))
    with np.load(DIGITS / "digits_test.npz") as z:
        x, y = z["x"], z["y"]
    assert x.shape == (360, 64)
    trace = torch_vs_golden(model, graph, x)
    accuracy = np.mean(np.argmax(trace.logits, 1) == y)
    assert accuracy > 0.9
    assert [l.pe_kind for l in graph.layers] == ["mac", "xnor" if a == 1 else "addsub", "mac"]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("w_hidden,a_hidden", [(1, 1), (1, 2), (1, 3), (4, 2), (2, 1)])
def test_random_models_torch_equals_golden(seed, w_hidden, a_hidden, features):
    """Random batch-norms (gains of both signs) exercise inverted and constant channels."""
    model = small_mlp(seed, w_hidden=w_hidden, a_hidden=a_hidden)
    graph = build_graph(model, EmitOptions(w=w_hidden, a=a_hidden, acc="auto"))
    torch_vs_golden(model, graph, features(400, 12, seed))


def test_negative_gain_channels_are_inverted(features):
    model = small_mlp(3)
    graph = build_graph(model, EmitOptions())
    assert graph.layers[0].threshold_invert.any() and not graph.layers[0].threshold_invert.all()
    torch_vs_golden(model, graph, features(300, 12, 1))


def test_fx_traced_module_with_relu_and_flatten(features):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.q0 = quant.QuantAct(3)
            self.fc1 = quant.IntLinear(12, 8, bits=4)
            self.bn = nn.BatchNorm1d(8)
            self.q1 = quant.QuantAct(2)
            self.fc2 = quant.IntLinear(8, 3, bits=4)

        def forward(self, x):
            x = torch.flatten(x, 1)
            return self.fc2(self.q1(torch.relu(self.bn(self.fc1(self.q0(x))))))

    model = Net().eval()
    with pytest.raises(UsageError, match="relu"):
        lower(model)  # a functional relu is not a module lbgen knows

    class Net2(Net):
        def __init__(self):
            super().__init__()
            self.act = nn.ReLU()

        def forward(self, x):
            x = torch.flatten(x, 1)
            return self.fc2(self.q1(self.act(self.bn(self.fc1(self.q0(x))))))

    model2 = Net2().eval()
    graph = build_graph(model2, EmitOptions(w=4, a=2))
    assert [l.source for l in graph.layers] == ["fc1", "fc2"]
    torch_vs_golden(model2, graph, features(200, 12))


def test_unsupported_layers_all_named_in_one_error():
    model = nn.Sequential(quant.QuantAct(2), nn.LSTM(4, 4), quant.BinaryLinear(4, 4), nn.Sigmoid())
    with pytest.raises(UsageError) as err:
        lower(model)
    msg = str(err.value)
    assert "1 (torch.nn.modules.rnn.LSTM)" in msg and "3 (torch.nn.modules.activation.Sigmoid)" in msg


def test_wrong_precision_names_the_layer():
    model = small_mlp(0, w_hidden=1, a_hidden=2)
    with pytest.raises(UsageError, match=r"layer 4 has 1-bit weights, --w 2"):
        lower(model, w=2, a=2)
    with pytest.raises(UsageError, match=r"activation 6 .* has 2 bits, --a 1"):
        lower(model, w=1, a=1)
    lower(model, w=1, a=2)  # first and last layer are wider: fine


def test_unquantized_input_is_refused():
    model = nn.Sequential(quant.IntLinear(4, 4, bits=4), nn.BatchNorm1d(4), quant.QuantAct(2),
                          quant.IntLinear(4, 2, bits=4))
    with pytest.raises(UsageError, match="layer 0: its input is not quantized"):
        lower(model)


def test_nan_weights_are_refused():
    model = small_mlp(0)
    with torch.no_grad():
        model[1].weight[0, 0] = float("nan")
    with pytest.raises(UsageError, match="layer 1: weights are NaN or Inf"):
        lower(model)


def test_threshold_check_refuses_a_non_monotone_activation():
    w = np.array([[1, 1, 1]])
    layer = MatVec(name="fc0", mw=3, mh=1, weights=w, wtype=DType("int", 2), itype=DType("uint", 2))
    # level rises then falls: no threshold set can express it
    layer.activation = Activation(DType("uint", 2), lambda acc: np.clip(3 - np.abs(acc - 4), 0, 3))
    with pytest.raises(UsageError, match="fc0 channel 0: the activation is not monotone"):
        fold_layer(layer)


def test_thresholds_reproduce_a_monotone_activation_exactly():
    rng = np.random.default_rng(0)
    w = rng.integers(-7, 8, size=(5, 9))
    layer = MatVec(name="fc0", mw=9, mh=5, weights=w, wtype=DType("int", 4), itype=DType("uint", 3))
    gain = np.array([0.3, -0.2, 0.0, 1e-3, -5.0])
    layer.activation = Activation(DType("uint", 2), lambda acc: np.clip(np.rint(acc * gain + 1.2), 0, 3).astype(np.int64))
    folded = fold_layer(layer)
    lo, hi = layer.acc_range()
    acc = np.arange(lo.min(), hi.max() + 1)[:, None].repeat(5, 1)
    want = layer.activation.levels(acc)
    count = (acc[:, :, None] >= folded.thresholds[None]).sum(2)
    got = np.where(folded.threshold_invert[None], 3 - count, count)
    inside = (acc >= lo) & (acc <= hi)
    assert np.array_equal(got[inside], want[inside])
    assert list(folded.threshold_invert) == [False, True, False, False, True]


def test_acc_auto_is_the_exact_bound_and_32_is_checked():
    model = small_mlp(1)
    g32 = build_graph(model, EmitOptions())
    assert all(l.acc_bits == 32 for l in g32.layers)
    gauto = build_graph(model, EmitOptions(acc="auto"))
    for layer in gauto.layers:
        lo, hi = layer.acc_range()
        top = max(int(hi.max()), int(layer.thresholds.max()) if layer.thresholds is not None else 0)
        assert -(1 << (layer.acc_bits - 1)) <= lo.min() and top <= (1 << (layer.acc_bits - 1)) - 1
        assert not (-(1 << (layer.acc_bits - 2)) <= lo.min() and top <= (1 << (layer.acc_bits - 2)) - 1)
    with pytest.raises(UsageError, match=r"layer 1: the accumulator needs \d+ bits, more than --acc 8"):
        size_accumulators(gauto, 8)


def test_folding_errors_name_the_layer(tmp_path):
    model = small_mlp(0)
    with pytest.raises(UsageError, match=r"layer fc2 \(7\): PE=4 from --pe does not divide MH \(outputs\)=4|"
                                         r"layer fc1 \(4\): PE=4 from --pe does not divide"):
        build_graph(model, EmitOptions(pe=4, simd=1))
    with pytest.raises(UsageError, match=r"layer fc1 \(4\): PE=4 from --pe does not divide MH \(outputs\)=6"):
        build_graph(model, EmitOptions(pe=4))
    bad = tmp_path / "folding.json"
    bad.write_text('{"fc9": {"pe": 1}, "fc0": {"pe": 2}}')
    with pytest.raises(UsageError, match="--folding names unknown layers: fc9"):
        build_graph(model, EmitOptions(folding=bad))
    good = tmp_path / "good.json"
    good.write_text('{"fc0": {"pe": 2, "simd": 3}, "4": {"pe": 3}}')
    graph = build_graph(model, EmitOptions(folding=good))
    assert [(l.pe, l.simd) for l in graph.layers] == [(2, 3), (3, 8), (4, 6)]


def test_input_quantizer_matches_torch(features):
    model = small_mlp(2)
    graph = build_graph(model, EmitOptions())
    x = features(500, 12)
    x[:5] = np.float32(0.5)  # near a rounding tie
    ref = reference_levels(model, x)
    assert np.array_equal(ref["input"], graph.input.quantize(x))
