"""A last layer followed by a quantizer is thresholded in hardware and streams levels.

An lbgen.quant MLP ending ``IntLinear -> BatchNorm1d -> QuantAct(2)``, and a
Brevitas MLP ending ``QuantLinear -> BatchNorm1d -> QuantIdentity`` with a
binary quantizer (also through Brevitas' QONNX export, a BipolarQuant): emit
checks torch = golden on every level including the output levels; C-sim
(ap_int and native), Icarus and Verilator equal golden bit for bit. With
--topk the unit orders the classes by their levels, ties to the lowest index.
"""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn

import lbgen
from lbgen import golden, quant
from lbgen.csim import run_csim
from lbgen.flow import EmitOptions, build_graph
from lbgen.ir import topk_terms
from lbgen.native_tb import run_native

from lbgen_testing.common import random_bn, small_mlp

pytestmark = pytest.mark.usefixtures("sim_cache")


def quant_mlp() -> nn.Sequential:
    g = torch.Generator().manual_seed(5)
    model = small_mlp(3)
    model.append(random_bn(4, g))
    model.append(quant.QuantAct(2, clip=1.5))
    return model.eval()


def brevitas_mlp() -> nn.Sequential:
    qnn = pytest.importorskip("brevitas.nn")
    from brevitas.quant import SignedBinaryActPerTensorConst

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    model = nn.Sequential(
        qnn.QuantIdentity(bit_width=8, return_quant_tensor=True),
        qnn.QuantLinear(16, 12, bias=True, weight_bit_width=4),
        random_bn(12, g),
        qnn.QuantReLU(bit_width=2, return_quant_tensor=True),
        qnn.QuantLinear(12, 6, bias=True, weight_bit_width=4),
        random_bn(6, g),
        qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=False))
    model.train()                          # let the activation scales settle on data, as training would
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model(torch.from_numpy(_features(16)))
    return model.eval()


def _features(width: int, n: int = 24) -> np.ndarray:
    return np.random.default_rng(0).normal(0.5, 0.6, size=(n, width)).astype(np.float32)


def _emit(model, tmp_path, width: int, **options):
    np.save(tmp_path / "x.npy", _features(width))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lbgen.emit(model, tmp_path / "out", inputs=tmp_path / "x.npy", **options)


@pytest.mark.parametrize("which,topk", [("quant", None), ("brevitas", None),
                                        pytest.param("brevitas", 2, marks=pytest.mark.slow)])
def test_thresholded_output_layer_bit_exact(tmp_path, which, topk):
    model, width = (quant_mlp(), 12) if which == "quant" else (brevitas_mlp(), 16)
    res = _emit(model, tmp_path, width, topk=topk, pe=2, simd=2)   # small engines: quick Verilator builds
    assert res.checks[0].startswith("torch vs golden on 24 vectors: every level (output levels too) equal")
    if which == "brevitas":
        assert res.checks[1].startswith("Brevitas forward vs lbgen on 24 vectors: all"), res.checks
    graph, out = res.graph, tmp_path / "out"
    last = graph.output
    assert not last.is_output and last.thresholds is not None
    assert last.out_dtype.kind == ("uint" if which == "quant" else "bipolar")
    trace = golden.run(graph, res.vectors.values)
    levels = trace.outputs[last.name]
    # the logits are the model's dequantized output values
    with torch.no_grad():
        want = model(torch.from_numpy(_features(width))).double().numpy()
    np.testing.assert_allclose(trace.logits, want, rtol=1e-6, atol=1e-6)
    if topk:
        t = topk_terms(graph)
        assert not t.use_scale and not t.in_signed
        assert np.array_equal(trace.topk, np.argsort(-levels, axis=1, kind="stable")[:, :topk])
        assert (levels[:, :, None] == levels[:, None, :]).sum() > levels.size   # ties among the levels
    else:
        assert np.array_equal(trace.result, levels)
    for native in (False, True):
        cs = run_csim(out, res.vectors.values, graph=graph, native=native)
        assert cs.mismatch(trace) is None
        assert np.array_equal(cs.result, trace.result)
    for simulator in ("icarus", "verilator"):
        rtl = run_native(out, res.vectors.values, simulator=simulator, throughput_frames=6)
        assert rtl.passed, rtl.summary()
        assert np.array_equal(rtl.outputs, trace.result)


def test_brevitas_qonnx_export_ends_in_the_same_levels(tmp_path):
    pytest.importorskip("qonnx")
    from brevitas.export import export_qonnx

    from lbgen.frontend.onnx_frontend import load_onnx

    model = brevitas_mlp()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx(model, torch.rand(1, 16), str(tmp_path / "m.onnx"))
        direct = build_graph(model, EmitOptions())
    imported = build_graph(load_onnx(tmp_path / "m.onnx"), EmitOptions())
    values = np.random.default_rng(1).integers(0, 256, size=(32, 16))
    a, b = golden.run(direct, values), golden.run(imported, values)
    assert imported.output.out_dtype.kind == "bipolar" and imported.output.thresholds is not None
    assert np.array_equal(a.result, b.result)
