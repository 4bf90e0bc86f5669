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

from lbgen_testing.common import DIGITS, load_script, random_bn, small_mlp


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


# -- log2, heterogeneous and mixed-precision layers ---------------------------------

import json  # noqa: E402
import re  # noqa: E402

from lbgen.precision import WeightSpec  # noqa: E402


def _init(lin, g: torch.Generator):
    with torch.no_grad():
        lin.weight.copy_(torch.randn(lin.weight.shape, generator=g))
        if lin.bias is not None:
            lin.bias.copy_(torch.randn(lin.bias.shape, generator=g) * 0.5)
    return lin


def _act(bits: int):
    return quant.BinaryAct() if bits == 1 else quant.QuantAct(bits, clip=1.5)


def stack(seed: int, hidden: list, acts: list[int], dims=(12, 16, 16, 4), in_bits: int = 4) -> nn.Sequential:
    """Input quantizer -> int8 -> [hidden layer factories (fan_in, fan_out) -> ...] -> int8;
    ``acts``: the bits of the activation after each but the last linear layer."""
    g = torch.Generator().manual_seed(seed)
    n = len(hidden) + 2
    assert len(dims) == n + 1 and len(acts) == n - 1
    layers: list[nn.Module] = [quant.QuantAct(in_bits, clip=1.0)]
    makers = [lambda i, o: quant.IntLinear(i, o, bits=8)] + list(hidden) + [lambda i, o: quant.IntLinear(i, o, bits=8)]
    for i, make in enumerate(makers):
        layers.append(_init(make(dims[i], dims[i + 1]), g))
        if i < n - 1:
            layers += [random_bn(dims[i + 1], g), _act(acts[i])]
    model = nn.Sequential(*layers)
    model.train()
    model.eval()  # fixes the heterogeneous masks from the weights set above
    return model


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("bits,abits", [(2, 2), (3, 1), (4, 4), (5, 3)])
def test_log2_lowers_to_shift_and_torch_equals_golden(seed, bits, abits, features):
    model = stack(seed, [lambda i, o: quant.Log2Linear(i, o, bits=bits)], [abits, abits])
    graph = build_graph(model, EmitOptions(w=f"log2:{bits}", a=abits, acc="auto"))
    layer = graph.layers[1]
    assert layer.wtype == DType("log2", bits) and layer.pe_kind == "shift" and layer.weight_codes is None
    assert layer.weight_bits_avg == bits
    w = layer.weights
    assert np.all((w == 0) | ((np.abs(w) & (np.abs(w) - 1)) == 0)) and np.abs(w).max() == 2 ** (2 ** (bits - 1) - 2)
    torch_vs_golden(model, graph, features(400, 12, seed))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("b,dist,abits", [(1.4, None, 1), (1.4, None, 2), (1.4, (0.6, 0.4), 3), (2.5, None, 2),
                                          (1.5, (0.6, 0.3, 0.1), 1)])
def test_hetero_lowers_to_planes_and_torch_equals_golden(seed, b, dist, abits, features):
    model = stack(seed, [lambda i, o: quant.HeteroBinaryLinear(i, o, avg_bits=b, dist=dist)], [abits, abits],
                  dims=(12, 40, 32, 4))
    graph = build_graph(model, EmitOptions(w=str(b), a=abits, acc="auto"))
    layer = graph.layers[1]
    lin = model[4]
    codes, scales, _ = lin.quant_codes()
    assert layer.wtype == DType("hetero", 2 * lin.planes - 1, scales) and layer.pe_kind == "planes"
    assert np.array_equal(layer.weight_codes, codes.numpy().astype(np.uint64))
    assert np.array_equal(layer.wtype.decode(layer.weight_codes), layer.weights)
    assert abs(layer.weight_bits_avg - b) <= 1.0 / layer.weights.size + 1e-9
    torch_vs_golden(model, graph, features(400, 12, seed))


def _mixed(seed: int = 0) -> nn.Sequential:
    """8-bit input -> int8 -> u2 -> binary -> u4 -> log2:4 -> u4 -> hetero 1.4 -> u2 -> int8."""
    return stack(seed, [lambda i, o: quant.BinaryLinear(i, o), lambda i, o: quant.Log2Linear(i, o, bits=4),
                        lambda i, o: quant.HeteroBinaryLinear(i, o, avg_bits=1.4)],
                 [2, 4, 4, 2], dims=(12, 16, 16, 20, 16, 4), in_bits=8)


@pytest.mark.parametrize("seed", range(3))
def test_mixed_precision_torch_equals_golden(seed, features):
    model = _mixed(seed)
    graph = build_graph(model, EmitOptions(acc="auto"))
    assert [l.pe_kind for l in graph.layers] == ["mac", "addsub", "shift", "planes", "mac"]
    assert [str(l.itype) for l in graph.layers] == ["uint8", "uint2", "uint4", "uint4", "uint2"]
    torch_vs_golden(model, graph, features(400, 12, seed))


def test_mixed_precision_refuses_a_single_w():
    model = _mixed()
    with pytest.raises(UsageError) as err:
        lower(model, w="log2:4")
    msg = str(err.value)
    assert "layer 4 has 1-bit weights, --w log2:4 asks for exactly 4-bit log2 weights" in msg
    assert "layer 10 has 1.4-bit heterogeneous weights, --w log2:4" in msg
    assert "layer 7" not in msg
    with pytest.raises(UsageError, match=r"activation 6 \(input of 7\) has 4 bits, --a 2"):
        lower(model, a=2)
    lower(model)  # the model's own precision


def test_weight_spec_forms_are_accepted():
    model = stack(0, [lambda i, o: quant.Log2Linear(i, o, bits=3)], [2, 2])
    for w in ("log2:3", WeightSpec("log2", 3), " LOG2:3 "):
        lower(model, w=w, a=2)
    with pytest.raises(UsageError, match=r"layer 4 has 3-bit log2 weights, --w 3 asks for exactly 3-bit integer"):
        lower(model, w=3)
    # first and last layers may be wider, whatever their kind
    lower(stack(0, [lambda i, o: quant.BinaryLinear(i, o)], [2, 2]), w="1", a=2)
    with pytest.raises(UsageError, match=r"layer 1 has 8-bit weights, --w log2:6 .*|layer 4 has 1-bit"):
        lower(stack(0, [lambda i, o: quant.BinaryLinear(i, o)], [2, 2]), w="log2:6")


def test_hetero_precision_checks_name_the_layer():
    model = stack(0, [lambda i, o: quant.HeteroBinaryLinear(i, o, avg_bits=1.4)], [1, 1])
    lower(model, w="1.4", a=1)
    lower(model, w=1.4, a=1, hetero_dist=(0.7, 0.2, 0.1))
    lower(model, hetero_dist=(0.7, 0.2, 0.1, 0.0)[:3])
    with pytest.raises(UsageError, match=r"layer 4 has 1.4-bit heterogeneous weights, --w 1.5 asks for exactly "
                                         r"1.5-bit heterogeneous binarized weights"):
        lower(model, w="1.5")
    # a P that cannot give B
    with pytest.raises(UsageError, match=r"layer 4 has 1.4-bit heterogeneous weights, which --hetero-dist "
                                         r"0.5,0.3,0.2 \(averaging 1.7 bits\) cannot give"):
        lower(model, w="1.4", hetero_dist=(0.5, 0.3, 0.2))
    with pytest.raises(UsageError, match=r"layer 4 has 1.4-bit heterogeneous weights, which --hetero-dist"):
        lower(model, hetero_dist=(0.5, 0.3, 0.2))
    # the right B but another P
    with pytest.raises(UsageError, match=r"layer 4 has the bit distribution 0.7,0.2,0.1, --hetero-dist asks for 0.6,0.4"):
        lower(model, w="1.4", hetero_dist=(0.6, 0.4))
    with pytest.raises(UsageError, match=r"--hetero-dist .* --w 1 asks for 1-bit binary"):
        lower(model, w=1, hetero_dist=(0.7, 0.2, 0.1))
    with pytest.raises(UsageError, match=r"--hetero-dist .*sums to 0.9"):
        lower(model, hetero_dist=(0.7, 0.2))
    # a tampered layer whose own P cannot give its B
    model[4].dist = (0.5, 0.3, 0.2)
    with pytest.raises(UsageError, match=r"layer 4 \(HeteroBinaryLinear\): not a valid weight format .*"
                                         r"averages 1.7 bits .* B=1.4"):
        lower(model)


def test_bits_outside_1_to_8_are_refused():
    model = small_mlp(0, w_hidden=1, a_hidden=2)
    for w in (0, 9, "9", "log2:7", "0.5"):
        with pytest.raises(UsageError, match=f"--w {w}"):
            lower(model, w=w)
    for a in (0, 9):
        with pytest.raises(UsageError, match=rf"--a {a}: activation bits must be 1\.\.8"):
            lower(model, a=a)
    model[1].weight_bits = 12  # a tampered saved model
    with pytest.raises(UsageError, match=r"layer 1 \(IntLinear\): not a valid weight format .*weight_bits=12"):
        lower(model)
    model = small_mlp(0, w_hidden=1, a_hidden=2)
    model[3].bits = 9
    with pytest.raises(UsageError, match=r"activation 3 \(QuantAct\): 9 bits, expected 1\.\.8"):
        lower(model)


def test_log2_weights_that_are_not_powers_of_two_are_refused(monkeypatch):
    model = stack(0, [lambda i, o: quant.Log2Linear(i, o, bits=4)], [4, 4])
    real = quant.Log2Linear.quant_weight

    def bad(self):
        w, s = real(self)
        return torch.where(w == 4, torch.full_like(w, 3.0), w), s

    monkeypatch.setattr(quant.Log2Linear, "quant_weight", bad)
    with pytest.raises(UsageError, match=r"layer 4 \(Log2Linear\): weight \[\d+, \d+\] = -?3 is not 0 or \+-2\^e "
                                         r"with e in 0\.\.6 \(" + re.escape(str(DType("log2", 4))) + r"\)"):
        lower(model)


def test_tampered_log2_model_is_refused(tmp_path):
    model = stack(0, [lambda i, o: quant.Log2Linear(i, o, bits=4)], [4, 4])
    model[4].max_exp = 8  # the saved state now yields weights up to 2^8, beyond a 4-bit log2 code
    path = tmp_path / "tampered.pt"
    torch.save(model, path)
    loaded = load_module(path)
    with pytest.raises(UsageError, match=r"layer 4 \(Log2Linear\): weight -?(128|256) is outside the "
                                         + re.escape(str(DType("log2", 4))) + r" range \[-64, 64\]"):
        lower(loaded)
    loaded[4].max_exp = 6  # and a fractional one
    loaded[4].weight_bits = 4
    with torch.no_grad():
        loaded[4].bias.zero_()
    real = loaded[4].quant_weight
    loaded[4].quant_weight = lambda: (real()[0] * 1.5, real()[1])
    with pytest.raises(UsageError, match=r"layer 4 \(Log2Linear\): weight \[\d+, \d+\] = -?1\.5 is not an integer"):
        lower(loaded)


def test_hetero_codes_that_do_not_decode_are_refused(monkeypatch):
    model = stack(0, [lambda i, o: quant.HeteroBinaryLinear(i, o, avg_bits=1.4)], [2, 2])
    real = quant.HeteroBinaryLinear.quant_codes

    def flipped(self):
        codes, scales, s = real(self)
        codes = codes.clone()
        codes[0, 0] ^= 1  # plane 0's sign
        return codes, scales, s

    monkeypatch.setattr(quant.HeteroBinaryLinear, "quant_codes", flipped)
    with pytest.raises(UsageError, match=r"layer 4 \(HeteroBinaryLinear\): weight \[0, 0\] is -?\d+ but its code "
                                         r"\d+ decodes to -?\d+"):
        lower(model)

    def unused_sign(self):
        codes, scales, s = real(self)
        codes = codes.clone()
        codes[0, 0] = 1 << 2  # a sign bit on plane 2, which the mask does not use
        return codes, scales, s

    monkeypatch.setattr(quant.HeteroBinaryLinear, "quant_codes", unused_sign)
    with pytest.raises(UsageError, match=r"layer 4 \(HeteroBinaryLinear\): bad hetero weight codes: .*unused plane"):
        lower(model)


def test_float64_exactness_bound_is_enforced():
    model = stack(0, [lambda i, o: quant.Log2Linear(i, o, bits=6)], [8, 8], dims=(12, 64, 16, 4))
    with pytest.raises(UsageError, match=r"layer 4 \(Log2Linear\): \|accumulator\| can reach \d+ >= 2\^37"):
        lower(model)
    lower(stack(0, [lambda i, o: quant.Log2Linear(i, o, bits=6)], [1, 1], dims=(12, 64, 16, 4)))  # +-1 inputs: fine


# -- every shipped digits model ------------------------------------------------------

def _results() -> dict:
    return json.loads((DIGITS / "results.json").read_text())


SHIPPED = {  # name: (--w, --a, PE kinds)
    "w1a3": ("1", 3, ["mac", "addsub", "mac"]),
    "w1a4": ("1", 4, ["mac", "addsub", "mac"]),
    "w2a2": ("2", 2, ["mac", "mac", "mac"]),
    "wta2": ("ternary", 2, ["mac", "masked", "mac"]),
    "w4a4": ("4", 4, ["mac", "mac", "mac"]),
    "w8a8": ("8", 8, ["mac", "mac", "mac"]),
    "wlog4a4": ("log2:4", 4, ["mac", "shift", "mac"]),
    "wh14a1": ("1.4", 1, ["mac", "planes", "mac"]),
    "wh14a2": ("1.4", 2, ["mac", "planes", "mac"]),
    "mixed": (None, None, ["mac", "addsub", "shift", "mac"]),
}


def test_every_shipped_model_is_listed():
    shipped = {n for n, e in _results()["models"].items() if "file" in e}
    assert shipped == set(SHIPPED) | {"w1a2", "w1a1"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "w8a8" else n for n in SHIPPED])
def test_shipped_models_torch_equals_golden_on_whole_test_set(name):
    w, a, kinds = SHIPPED[name]
    model = load_module(DIGITS / f"digits_{name}.pt")
    graph = build_graph(model, EmitOptions(w=w, a=a))
    with np.load(DIGITS / "digits_test.npz") as z:
        x, y = z["x"], z["y"]
    trace = torch_vs_golden(model, graph, x)
    assert [l.pe_kind for l in graph.layers] == kinds
    entry = _results()["models"][name]
    accuracy = float(np.mean(np.argmax(trace.logits, 1) == y))
    assert accuracy == pytest.approx(entry["test_accuracy"], abs=1e-6) and accuracy > 0.95
    assert [l.weight_bits_avg for l in graph.layers] == [l["bits_avg"] for l in entry["layers"]] or \
        np.allclose([l.weight_bits_avg for l in graph.layers], [l["bits_avg"] for l in entry["layers"]], atol=1e-6)
    if w is not None and "." in w:
        hidden = graph.layers[1]
        assert abs(hidden.weight_bits_avg - float(w)) < 1e-4


def test_readme_accuracy_table_is_current():
    table = load_script(DIGITS / "table.py", "digits_table")
    text = table.README.read_text()
    assert table.BEGIN in text and table.END in text, "README.md has no digits accuracy table"
    assert table.update_readme(text, table.render(table.rows())) == text, \
        "README.md's accuracy table is stale: run examples/digits/table.py"
