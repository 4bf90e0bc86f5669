"""Post-training quantization of a float MLP (lbgen.passes.model.ptq), then the usual flow.

A float digits MLP (Linear, BatchNorm1d, ReLU; trained here in a few
seconds) is quantized from a calibration batch and emitted: torch equals
golden on every level, the accuracy stays close to the float model's, ACIQ
clipping is at least as accurate as min-max at 2 bits, and bias correction
removes each channel's expected output shift. Models the quantizer cannot
take are refused by module name.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
import torch.nn as nn

from lbgen import golden
from lbgen.flow import EmitOptions, build_graph, emit
from lbgen.passes.model.ptq import PTQError, quantize_float_model

from lbgen_testing.common import DIGITS
from lbgen_testing.executors import check_executors

sys.path.insert(0, str(DIGITS))
import train as digits_train  # noqa: E402  (examples/digits/train.py: data and the training loop)

TEST_SET = DIGITS / "digits_test.npz"


@pytest.fixture(scope="module")
def float_mlp():
    x_tr, x_te, y_tr, y_te = digits_train.load_data()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 64),
                          nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 10))
    t = {k: torch.from_numpy(v) for k, v in dict(x_tr=x_tr, y_tr=y_tr, x_te=x_te, y_te=y_te).items()}
    model, _ = digits_train.fit(model, "float", 40, t["x_tr"], t["y_tr"], t["x_te"], t["y_te"],
                                log=lambda *a: None)
    return model, x_tr[:256], x_te, y_te


def _accuracy(model, x, y, w, a) -> float:
    graph = build_graph(model, EmitOptions(w=w, a=a))
    return float(np.mean(np.argmax(golden.run(graph, graph.input.quantize(x)).logits, 1) == y))


def test_ptq_model_emits_bit_exact_and_keeps_the_accuracy(float_mlp, tmp_path):
    model, calib, x_te, y_te = float_mlp
    float_acc = float(np.mean(model(torch.from_numpy(x_te)).argmax(1).numpy() == y_te))
    q = quantize_float_model(model, calib, w_bits=4, a_bits=4)
    result = emit(q, tmp_path / "out", EmitOptions(w=4, a=4, pe=2, simd=2), inputs=TEST_SET)
    assert "every hidden level equal" in result.checks[0]
    acc = float(np.mean(np.argmax(golden.run(result.graph, result.vectors.values).logits, 1) == y_te))
    assert acc >= float_acc - 0.02 and acc > 0.95
    widths = [l.wtype.bits for l in result.graph.layers]
    assert widths == [8, 4, 8] and result.graph.input.dtype.bits == 8
    # the hardware computes the PTQ model bit for bit: golden = C-sim = Icarus = Verilator, every layer
    check_executors(tmp_path / "out", result.graph, result.vectors.values[:24], seed=4, gaps=0.3,
                    backpressure=0.3)


def test_aciq_at_least_as_accurate_as_minmax_at_two_bits(float_mlp):
    model, calib, x_te, y_te = float_mlp
    acc = {clip: _accuracy(quantize_float_model(model, calib, 2, 2, clip=clip), x_te, y_te, 2, 2)
           for clip in ("minmax", "aciq")}
    assert acc["aciq"] >= acc["minmax"], acc


def test_bias_correction_removes_the_expected_output_shift(float_mlp):
    model, calib, _, _ = float_mlp
    q = quantize_float_model(model, calib, w_bits=3, a_bits=3, clip="minmax", bias_correction=True)
    plain = quantize_float_model(model, calib, w_bits=3, a_bits=3, clip="minmax", bias_correction=False)
    with torch.no_grad():
        x_in = q[0](torch.from_numpy(calib)).double()                    # the first layer's quantized input
        lin, ref = q[1], model[0]
        w_int, scale = lin.quant_weight()
        got = (x_in @ (w_int.double() * scale.double()[:, None]).T + lin.bias.double()).mean(0)
        want = (x_in @ ref.weight.double().T + ref.bias.double()).mean(0)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
        assert not torch.allclose(plain[1].bias, lin.bias)


def test_ptq_refuses_what_it_cannot_take(float_mlp):
    model, calib, _, _ = float_mlp
    with pytest.raises(PTQError, match="needs a ReLU"):
        quantize_float_model(nn.Sequential(nn.Linear(64, 8), nn.Linear(8, 2)), calib)
    with pytest.raises(PTQError, match=r"1 \(Conv2d with groups=2"):
        quantize_float_model(nn.Sequential(nn.Linear(64, 8), nn.Conv2d(2, 2, 1, groups=2), nn.ReLU(),
                                           nn.Linear(8, 2)), calib)
    with pytest.raises(PTQError, match=r"1 \(LSTM\)"):
        quantize_float_model(nn.Sequential(nn.Linear(64, 8), nn.LSTM(8, 8), nn.ReLU(), nn.Linear(8, 2)), calib)
    with pytest.raises(PTQError, match="leading nn.Unflatten"):
        quantize_float_model(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(72, 2)), calib)
    with pytest.raises(PTQError, match="negative values"):
        quantize_float_model(model, calib - 0.5)
    with pytest.raises(PTQError, match="calibration data of shape"):
        quantize_float_model(model, calib[:, :10])
    with pytest.raises(PTQError, match="w_bits 1"):
        quantize_float_model(model, calib, w_bits=1)
    with pytest.raises(PTQError, match="clip 'mean'"):
        quantize_float_model(model, calib, clip="mean")
    with pytest.raises(PTQError, match="nn.Sequential"):
        quantize_float_model(nn.Linear(64, 2), calib)


def float_cnn(seed: int = 0) -> nn.Sequential:
    """A float digits CNN (flat input through Unflatten) with trained-looking batch-norm statistics."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 16, 3), nn.BatchNorm2d(16), nn.ReLU(), nn.Flatten(),
        nn.Linear(64, 10))
    model.train()
    x, _ = _digits()
    with torch.no_grad():
        for _ in range(5):            # batch-norm statistics of the real data
            model(torch.from_numpy(x))
    return model.eval()


def _digits():
    with np.load(DIGITS / "digits_test.npz") as z:
        return z["x"].astype(np.float32), z["y"]


@pytest.mark.parametrize("bits,clip", [(4, "aciq"), (3, "minmax")])
def test_ptq_of_a_float_cnn_through_the_flow(tmp_path, bits, clip):
    from lbgen.quant import IntConv2d

    model = float_cnn()
    x, _ = _digits()
    np.save(tmp_path / "calib.npy", x[:128])
    q = quantize_float_model(model, x[:128], w_bits=bits, a_bits=bits, clip=clip)
    convs = [m for m in q if isinstance(m, IntConv2d)]
    assert [m.weight_bits for m in convs] == [8, bits, bits]
    # the max-pool sits behind its quantizer
    kinds = [type(m).__name__ for m in q]
    assert kinds[kinds.index("MaxPool2d") - 1] == "QuantAct"
    with torch.no_grad():
        agree = (q(torch.from_numpy(x)).argmax(1) == model(torch.from_numpy(x)).argmax(1)).double().mean()
    assert agree > 0.8, float(agree)
    result = emit(model, tmp_path / "out", EmitOptions(w=str(bits), a=bits, calib=tmp_path / "calib.npy", clip=clip),
                  inputs=DIGITS / "digits_test.npz")
    assert result.checks[0].startswith("torch vs golden on 360 vectors: every hidden level equal"), result.checks
    assert [result.graph.conv(l) is not None for l in result.graph.layers] == [True, True, True, False]
