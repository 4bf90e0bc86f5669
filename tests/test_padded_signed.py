"""Padded convolutions behind signed and zero-pointed inputs (issue 18, item 5).

A signed activation streams as an unsigned level ``u = q + 2^(b-1)``, so torch's
zero padding is the level ``2^(b-1)``, not code 0. The sliding-window unit pads
with that level (``ConvGeom.pad``, the ``PAD`` code of ``lb_swu`` and of
``lbgen::sliding_window``), and the zero-level correction the thresholds already
carry cancels it exactly. A Brevitas CNN with a signed 8-bit input and a signed
``QuantHardTanh`` in front of padded convolutions goes through ``lbgen.emit``
(Brevitas' forward = golden on every level) and through ``export_qonnx`` (the
same IR), then golden = C-sim = Icarus = Verilator.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import lbgen
from lbgen import golden
from lbgen.csim import run_csim
from lbgen.frontend.brevitas_frontend import brevitas_levels
from lbgen.frontend.onnx_frontend import load_onnx
from lbgen.native_tb import run_native

from lbgen_testing.common import ir_arrays, random_bn2d_stats
from lbgen_testing.common import export_qonnx

pytest.importorskip("brevitas")
pytest.importorskip("qonnx")

#: a module-private build cache (conftest): these designs are built once and should not push out the user's
pytestmark = pytest.mark.usefixtures("sim_cache")

CHW = (2, 6, 6)
FRAMES = 24


def _signed_padded_cnn(seed: int = 0) -> torch.nn.Sequential:
    """Signed 8-bit input -> padded int3 conv, BN, ReLU -> padded binary conv, BN,
    signed HardTanh -> padded int2 conv, BN, ReLU, max-pool -> int8 classifier."""
    import brevitas.nn as qnn
    from brevitas.quant import SignedBinaryWeightPerTensorConst

    torch.manual_seed(seed)
    c = CHW[0]
    model = torch.nn.Sequential(
        qnn.QuantIdentity(return_quant_tensor=True),             # Int8ActPerTensorFloat: signed 8 bits
        qnn.QuantConv2d(c, 4, 3, padding=1, weight_bit_width=3, weight_scaling_per_output_channel=True),
        torch.nn.BatchNorm2d(4),
        qnn.QuantReLU(bit_width=3, return_quant_tensor=True),
        qnn.QuantConv2d(4, 4, 3, padding=1, weight_quant=SignedBinaryWeightPerTensorConst),
        torch.nn.BatchNorm2d(4),
        qnn.QuantHardTanh(bit_width=3, min_val=-1.0, max_val=1.0, return_quant_tensor=True),
        qnn.QuantConv2d(4, 6, 3, padding=1, weight_bit_width=2),
        torch.nn.BatchNorm2d(6),
        qnn.QuantReLU(bit_width=2, return_quant_tensor=True),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        qnn.QuantLinear(6 * 3 * 3, 5, bias=True, weight_bit_width=8))
    random_bn2d_stats(model)
    model.train()
    for m in model.modules():          # keep the random statistics while the activation scales calibrate
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(3):
            model(torch.from_numpy(_features(64, seed + 1)))
    return model.eval()


def _features(n: int, seed: int = 0) -> np.ndarray:
    """Features over the whole signed input range: a spread around 0 and a share far
    beyond both ends, which the input quantizer clamps to its levels 0 and 255."""
    rng = np.random.default_rng(seed)
    shape = (n, *CHW)
    x = rng.normal(0.0, 1.0, size=shape)
    ends = rng.random(shape) < 0.1
    return np.where(ends, rng.choice([-50.0, 50.0], size=shape), x).astype(np.float32)


@pytest.fixture(scope="module")
def emitted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("padded_signed")
    model = _signed_padded_cnn()
    np.save(tmp / "x.npy", _features(FRAMES))
    result = lbgen.emit(model, tmp / "mem", inputs=tmp / "x.npy", input_shape=CHW, acc="auto",
                        name="padded_signed")
    return tmp, model, result


def test_brevitas_forward_equals_golden_on_every_level(emitted):
    tmp, model, result = emitted
    assert any(line.startswith(f"Brevitas forward vs lbgen on {FRAMES} vectors: all") for line in result.checks), \
        result.checks
    graph = result.graph
    # the pad levels: the signed input's 128, 0 behind the ReLU, the signed 3-bit HardTanh's 4
    assert [graph.conv(l).pad for l in graph.layers[:3]] == [128, 0, 4]
    values = result.vectors.values
    assert values.min() == 0 and values.max() == 255          # both ends of the input range
    ref = brevitas_levels(model, _features(FRAMES))
    np.testing.assert_array_equal(ref["0"].transpose(0, 2, 3, 1).reshape(FRAMES, -1) + 128, values)
    trace = golden.run(graph, values)
    np.testing.assert_array_equal(np.argmax(ref["logits"], 1), np.argmax(trace.logits, 1))


def test_qonnx_route_gives_the_same_ir(emitted):
    tmp, model, result = emitted
    path = export_qonnx(model, tmp / "cnn.onnx", shape=(1, *CHW))
    onnx_result = lbgen.emit(load_onnx(path), tmp / "onnx", inputs=tmp / "x.npy", acc="auto")
    assert ir_arrays(onnx_result.graph) == ir_arrays(result.graph)
    assert [onnx_result.graph.conv(l) for l in onnx_result.graph.layers] == [result.graph.conv(l) for l in result.graph.layers]


def test_csim_equals_golden(emitted):
    tmp, model, result = emitted
    values = result.vectors.values
    trace = golden.run(result.graph, values)
    res = run_csim(tmp / "mem", values, native=False)
    assert res.mismatch(trace) is None
    np.testing.assert_array_equal(res.result, trace.result)


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_rtl_equals_golden(emitted, simulator):
    tmp, model, result = emitted
    values = result.vectors.values
    res = run_native(tmp / "mem", values, simulator=simulator, seed=7, backpressure=0.3, gaps=0.3)
    assert res.mismatches == [] and res.passed, res.summary()
    trace = golden.run(result.graph, values)
    for layer in result.graph.layers:
        np.testing.assert_array_equal(res.layer_outputs[layer.name], trace.outputs[layer.name], err_msg=layer.name)
