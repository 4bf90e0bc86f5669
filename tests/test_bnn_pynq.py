"""FINN's reference networks, unmodified: brevitas_examples.bnn_pynq's TFC, SFC, LFC and CNV.

Each network is built by ``model_with_cfg(name, pretrained=False)`` exactly as
Brevitas ships it (its forward flattens with ``x.view(x.shape[0], -1)`` and
maps the input with ``2.0 * x - torch.tensor([1.0])``, its last layer ends in
a ``TensorNorm``), given random, non-trivial batch-norm and TensorNorm
statistics, and compiled two ways: in memory (``lbgen.emit(model, ...)``) and
through Brevitas' ``export_qonnx`` + ``lbgen emit model.onnx``. Both routes must
build the same IR and the same ROM images; the in-memory emit checks Brevitas'
own forward against golden on every activation level and argmax, the ONNX emit
checks qonnx's executor against golden (every quantized tensor, logits within
float32 rounding); the emitted C++ and Verilog must equal golden bit for bit.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

import lbgen
from lbgen import golden
from lbgen.csim import run_csim
from lbgen.flow import load_output
from lbgen.native_tb import run_native

from bnn_models import bnn_model, input_shape, raw_inputs

from lbgen_testing.common import ir_arrays

pytest.importorskip("brevitas_examples")
pytest.importorskip("qonnx")

LBGEN = [sys.executable, "-m", "lbgen.cli"]
#: every configuration brevitas_examples.bnn_pynq has for its MLPs and the CNN
MLPS = ["tfc_1w1a", "tfc_1w2a", "tfc_2w2a", "sfc_1w1a", "sfc_1w2a", "sfc_2w2a", "lfc_1w1a", "lfc_1w2a"]
CNNS = ["cnv_1w1a", "cnv_1w2a", "cnv_2w2a"]
#: what the default run compiles (the rest run with `make test-all`): TFC-1w1a through every check, and
#: CNV through both routes and the Brevitas / qonnx comparisons (its C-sim build takes over a minute)
DEFAULT = {"tfc_1w1a", "cnv_1w1a"}
DEFAULT_CSIM = {"tfc_1w1a"}
FRAMES = 32  # bnn_models.raw_inputs' default


def export(model, name: str, path):
    from brevitas.export import export_qonnx

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx(model, torch.rand(1, *input_shape(name)), str(path))
    return path


def _networks(default: set[str]) -> list:
    """Every network as a parameter of the ``zoo`` fixture, slow unless in ``default``."""
    return [pytest.param(n, marks=[] if n in default else [pytest.mark.slow], id=n) for n in MLPS + CNNS]


@pytest.fixture(scope="module")
def zoo(request, tmp_path_factory):
    """(name, model, {"memory": out, "qonnx": out}, raw inputs, emit outputs)."""
    name = request.param
    tmp = tmp_path_factory.mktemp(name)
    model = bnn_model(name)
    x = raw_inputs(name)
    np.save(tmp / "x.npy", x)
    outs = {"memory": tmp / "memory", "qonnx": tmp / "qonnx"}
    shape = input_shape(name) if name.startswith("cnv") else None
    result = lbgen.emit(model, outs["memory"], inputs=tmp / "x.npy", input_shape=shape, name=name)
    onnx_path = export(model, name, tmp / f"{name}.onnx")
    proc = subprocess.run([*LBGEN, "emit", str(onnx_path), "--inputs", str(tmp / "x.npy"), "-o", str(outs["qonnx"])],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return name, model, outs, x, result.checks, " ".join(proc.stdout.split())


@pytest.mark.parametrize("zoo", _networks(DEFAULT), indirect=True)
def test_both_routes_build_the_same_hardware(zoo):
    name, model, outs, x, _, _ = zoo
    graphs = {route: load_output(out) for route, out in outs.items()}
    mem, onnx = graphs["memory"], graphs["qonnx"]
    # the logits' float affine (host side, not hardware) is compared to float32 rounding: the export
    # constant-folds TensorNorm's (var + eps) ** 0.5 itself, one float32 ulp off torch's pow at run time
    for g in graphs.values():
        assert g.output.out_scale is not None and g.output.out_bias is not None
    np.testing.assert_allclose(onnx.output.out_scale, mem.output.out_scale, rtol=2.0 ** -21, atol=0)
    np.testing.assert_allclose(onnx.output.out_bias, mem.output.out_bias, rtol=2.0 ** -21,
                               atol=2.0 ** -21 * float(np.abs(mem.output.out_bias).max()))
    for g in graphs.values():
        g.output.out_scale = g.output.out_bias = None
    assert ir_arrays(onnx) == ir_arrays(mem)
    mems = sorted((outs["memory"] / "rtl").glob("*.mem"))
    assert mems
    for mem in mems:
        assert (outs["qonnx"] / "rtl" / mem.name).read_bytes() == mem.read_bytes(), mem.name
    # the host replays FINN's 2x - 1 in front of the input quantizer
    assert [(op.op, op.const) for op in graphs["memory"].input.pre] == [("Mul", (2.0,)), ("Sub", (1.0,))]


@pytest.mark.parametrize("zoo", _networks(DEFAULT), indirect=True)
def test_golden_equals_brevitas_and_qonnx(zoo):
    name, model, outs, x, checks, cli_out = zoo
    assert any(line.startswith(f"Brevitas forward vs lbgen on {FRAMES} vectors: all") for line in checks), checks
    assert any(line.startswith(f"torch vs golden on {FRAMES} vectors: every hidden level equal") for line in checks)
    assert "qonnx executor vs lbgen on" in cli_out and "every quantized tensor equal" in cli_out, cli_out
    # and directly: Brevitas' logits and argmax against golden's on the raw inputs
    graph = load_output(outs["memory"])
    trace = golden.run(graph, lbgen.host_stream(graph, x))
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).double().numpy()
    assert np.max(np.abs(ref - trace.logits)) < 1e-4 * max(1.0, np.abs(ref).max())
    np.testing.assert_array_equal(np.argmax(ref, 1), np.argmax(trace.logits, 1))


@pytest.mark.parametrize("zoo", _networks(DEFAULT_CSIM), indirect=True)
def test_csim_bit_exact(zoo):
    name, model, outs, x, _, _ = zoo
    out = outs["qonnx"]
    values = np.load(out / "sim" / "inputs.npy")[: 8 if name.startswith("cnv") else FRAMES]
    graph = load_output(out)
    trace = golden.run(graph, values)
    res = run_csim(out, values, native=False)
    np.testing.assert_array_equal(res.result, trace.result)
    for layer in graph.layers[:-1]:
        np.testing.assert_array_equal(res.layers[layer.name], trace.outputs[layer.name], err_msg=layer.name)


RTL_CASES = [pytest.param(n, sim, marks=([] if n == "tfc_1w1a" and sim == "verilator" else [pytest.mark.slow]))
             for n in ("tfc_1w1a", "tfc_2w2a", "sfc_1w1a", "sfc_1w2a", "sfc_2w2a") for sim in ("icarus", "verilator")]


@pytest.mark.parametrize("name,simulator", RTL_CASES)
def test_rtl_bit_exact(name, simulator, tmp_path):
    model = bnn_model(name)
    x = raw_inputs(name)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out"
    lbgen.emit(model, out, inputs=tmp_path / "x.npy", name=name)
    values = np.load(out / "sim" / "inputs.npy")
    res = run_native(out, values, simulator=simulator, seed=5, backpressure=0.3, gaps=0.3, throughput_frames=4)
    assert res.mismatches == [] and res.passed
    np.testing.assert_array_equal(res.result, golden.run(load_output(out), values).result)


@pytest.mark.slow
@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_cnv_rtl_bit_exact(simulator, tmp_path):
    model = bnn_model("cnv_1w1a")
    x = raw_inputs("cnv_1w1a", n=4)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out"
    lbgen.emit(model, out, inputs=tmp_path / "x.npy", input_shape=(3, 32, 32), name="cnv_1w1a")
    values = np.load(out / "sim" / "inputs.npy")[:2]
    res = run_native(out, values, simulator=simulator, seed=5, backpressure=0.2, gaps=0.2, throughput_frames=3)
    assert res.mismatches == [] and res.passed
    np.testing.assert_array_equal(res.result, golden.run(load_output(out), values).result)
