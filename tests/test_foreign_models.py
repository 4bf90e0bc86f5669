"""Models other tools write, taken as they are (issue 18).

* A QKeras-style QONNX graph (float input straight into MatMul, Quant'd weights
  and Quant'd biases, Relu + Quant, trailing Softmax): refused without
  ``--input-format`` naming the option; with ``--input-format fixed<16,6>``
  golden equals qonnx's executor on inputs on that grid, C-sim and Verilator
  bit-exact.
* ``--input-format`` rounding and overflow checked against the ``ap_fixed`` /
  ``ap_int`` headers themselves (hls4ml's ap_types, compiled with g++).
* Graph inputs whose format is a ``finn_datatype`` annotation, with and
  without preprocessing behind them.
* Preprocessing: per-channel mean/std normalisation on a feature map, ``c - x``,
  a ``Shape``/``Gather``/``Concat``-computed batch reshape; torch.fx functional
  forms with buffers and literals.
* ``Gemm`` alpha, beta, transB and a Quant'd bias.
* NaN/Inf initializers named.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn

import lbgen
from lbgen import golden
from lbgen.csim import ap_types_include, run_csim
from lbgen.errors import UsageError
from lbgen.flow import load_output
from lbgen.frontend.input_format import parse_input_format
from lbgen.native_tb import run_native

from lbgen_testing.common import assert_usage_error, run_cli
from qonnx_graphs import GraphBuilder, qkeras_style_mlp

pytest.importorskip("qonnx")


def _qonnx_outputs(model, x: np.ndarray) -> np.ndarray:
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model

    from qonnx.core.modelwrapper import ModelWrapper

    model = ModelWrapper(model.model.__deepcopy__({}))
    for vi in list(model.graph.input) + list(model.graph.output):    # qonnx executes a static batch of 1
        vi.type.tensor_type.shape.dim[0].dim_value = 1
    model = cleanup_model(model)        # shape inference, as qonnx-cleanup does before execution
    name_in, name_out = model.graph.input[0].name, model.graph.output[0].name
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in model.get_tensor_shape(name_in)]
    shape[0] = 1
    return np.concatenate([np.asarray(execute_onnx(model, {name_in: xi.reshape(shape)})[name_out]).reshape(1, -1)
                           for xi in x])


def _on_grid(n: int, width: int, integer: int, seed: int = 0) -> np.ndarray:
    """Values of fixed<width,integer> spanning its range, both ends included."""
    rng = np.random.default_rng(seed)
    step = 2.0 ** (integer - width)
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    q = rng.integers(lo, hi + 1, size=(n, 16))
    q[0], q[1] = lo, hi
    return (q * step).astype(np.float32)


# -- a QKeras-style graph --------------------------------------------------------------------

@pytest.fixture(scope="module")
def qkeras(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("qkeras")
    model = qkeras_style_mlp()
    model.save(str(tmp / "qk.onnx"))
    x = _on_grid(32, 16, 6)
    np.save(tmp / "x.npy", x)
    return tmp, model, x


def test_float_input_without_format_names_the_option(qkeras):
    tmp, _, _ = qkeras
    out = tmp / "refused"
    assert_usage_error(run_cli("emit", tmp / "qk.onnx", "-o", out), "--input-format", "fixed<16,6>",
                       "without a quantizer", out=out)


def test_qkeras_graph_with_input_format_is_exact(qkeras):
    tmp, model, x = qkeras
    out = tmp / "out"
    proc = run_cli("emit", tmp / "qk.onnx", "--input-format", "fixed<16,6>", "--inputs", tmp / "x.npy", "-o", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = " ".join(proc.stdout.split())
    assert "qonnx executor vs lbgen on 8 vectors: every quantized tensor equal, Softmax within float32" in text
    assert "applies the model's trailing Softmax" in text
    graph = load_output(out)
    assert graph.layers[0].itype.bits == 16 and graph.meta["host_output"] == "Softmax"
    # on the grid the input quantizer changes nothing: golden = qonnx's executor on all 32 vectors
    trace = golden.run(graph, lbgen.host_stream(graph, x))
    np.testing.assert_array_equal(trace.inputs - 32768, np.round(x * 1024).astype(np.int64))
    theirs = _qonnx_outputs(model, x)
    np.testing.assert_array_equal(np.argmax(theirs, 1), np.argmax(trace.output, 1))
    assert np.max(np.abs(theirs - trace.output)) < 1e-5
    values = np.load(out / "sim" / "inputs.npy")
    np.testing.assert_array_equal(run_csim(out, values, native=False).result, trace.result)
    res = run_native(out, values, simulator="verilator", seed=2, backpressure=0.3, gaps=0.3)
    assert res.passed and res.mismatches == []
    np.testing.assert_array_equal(res.result, trace.result)


# -- --input-format against the ap_types headers ---------------------------------------------

_AP_FORMATS = ["fixed<8,3>", "fixed<8,3,RND,SAT>", "fixed<8,3,RND_CONV,SAT>", "fixed<10,2,TRN_ZERO,WRAP>",
               "ufixed<6,2>", "ufixed<6,2,RND_CONV,SAT>", "int<8>", "uint<4>", "int<5,RND_CONV,SAT>"]


def _ap_type(fmt: str) -> str:
    """The C++ type an --input-format spelling stands for (hls4ml writes fixed<..> as ap_fixed<..>).

    ``int<W>`` is compared with ``ap_fixed<W, W, AP_TRN_ZERO, AP_WRAP>``, the integer grid with C++'s
    float-to-integer truncation: ``ap_int``'s own conversion from a float turns every value in
    (-0.5, 0) into +1 (seen in these headers: ``ap_int<8> q = -0.27f`` is 1), which no
    quantizer means."""
    name, args = fmt.split("<", 1)
    args = args.rstrip(">").split(",")
    modes = [f"AP_{m}" for m in args[2 if "fixed" in name else 1:]]
    if "fixed" in name:
        return f"ap_{name}<{', '.join(args[:2] + modes)}>"
    modes = modes or ["AP_TRN_ZERO", "AP_WRAP"]
    return f"ap_{'u' if name.startswith('u') else ''}fixed<{args[0]}, {args[0]}, {', '.join(modes)}>"


def test_input_format_rounds_and_overflows_as_ap_fixed(tmp_path):
    """Every spelling's quantizer against g++ running the ap_types headers on the same floats."""
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(-300, 300, 400), rng.uniform(-9, 9, 400), np.arange(-40, 40) / 8 + 1 / 16,
                        [0.0, -0.0, 3.5, -3.5, 2.5, -2.5, 127.4, -128.6]]).astype(np.float32)
    src = ["#include <cstdio>", "#include <ap_int.h>", "#include <ap_fixed.h>", "int main() {", "  float v;",
           "  while (std::scanf(\"%f\", &v) == 1) {"]
    for fmt in _AP_FORMATS:
        src += [f"    {{ {_ap_type(fmt)} q = v; std::printf(\"%lld \", (long long)(q.range().to_int64())); }}"]
    src += ["    std::printf(\"\\n\");", "  }", "}"]
    (tmp_path / "ap.cpp").write_text("\n".join(src) + "\n")
    subprocess.run(["g++", "-std=c++14", "-O0", f"-I{ap_types_include()}", "ap.cpp", "-o", "ap"], cwd=tmp_path,
                   check=True, capture_output=True, timeout=300)
    run = subprocess.run([str(tmp_path / "ap")], input="\n".join(repr(float(v)) for v in x), capture_output=True,
                         text=True, check=True, timeout=120)
    theirs = np.array([[int(t) for t in line.split()] for line in run.stdout.splitlines()])
    for k, fmt in enumerate(_AP_FORMATS):
        f = parse_input_format(fmt)
        q = f.quantizer()
        with torch.no_grad():
            levels = q.levels(torch.from_numpy(x)).numpy().astype(np.int64) - q.offset
        raw = theirs[:, k]
        if f.signed:     # range() is the bit pattern: sign-extend
            raw = np.where(raw >= 1 << (f.bits - 1), raw - (1 << f.bits), raw)
        np.testing.assert_array_equal(levels, raw, err_msg=fmt)


def test_input_format_spellings_and_errors():
    assert parse_input_format("fixed<16,6>").step == 2.0 ** -10
    assert parse_input_format("ufixed<8,0>").int_range() == (0, 255)
    assert parse_input_format("INT8").int_range() == (-128, 127)
    assert parse_input_format("BIPOLAR").bipolar
    for bad, needle in [("fixed<16>", "integer bits"), ("float", "expected"), ("fixed<40,6>", "40 bits"),
                        ("fixed<8,3,RND_INF,SAT>", "quantization mode"), ("int<1>", "1 bits")]:
        with pytest.raises(UsageError, match=needle):
            parse_input_format(bad)


# -- finn_datatype annotations ---------------------------------------------------------------------

def _annotated_mlp(datatype: str, preprocess: bool, seed: int = 3):
    """An MLP whose input format is only the graph input's finn_datatype annotation."""
    b = GraphBuilder(seed)
    x = "x"
    if preprocess:     # FINN's cybersecurity MLP: a bipolar input mapped to {0, 1}
        x = b.node("Div", [b.node("Add", ["x", b.const(1.0)], "xp"), b.const(2.0)], "xpp")
    w0 = b.rng.normal(size=(20, 8)).astype(np.float32)
    b.quant(b.const(w0), 0.5, 2, True, "w0q", narrow=True)
    b.node("MatMul", [x, "w0q"], "h0")
    b.node("Relu", ["h0"], "h0r")
    b.quant("h0r", 0.5, 2, False, "a0")
    b.quant(b.const(b.rng.normal(size=(8, 3))), 0.25, 4, True, "w1q", narrow=True)
    b.node("MatMul", ["a0", "w1q"], "y")
    return b.model((1, 20), (1, 3), in_datatype=datatype)


@pytest.mark.parametrize("datatype,preprocess,low,high", [
    ("INT8", False, -128, 127), ("BIPOLAR", True, -1, 1),
    pytest.param("UINT4", False, 0, 15, marks=pytest.mark.slow),
    pytest.param("BIPOLAR", False, -1, 1, marks=pytest.mark.slow)])
def test_finn_datatype_annotation_is_the_input_format(tmp_path, datatype, preprocess, low, high):
    model = _annotated_mlp(datatype, preprocess)
    model.save(str(tmp_path / "m.onnx"))
    rng = np.random.default_rng(0)
    x = rng.integers(low, high + 1, size=(24, 20)).astype(np.float32)
    if datatype == "BIPOLAR":
        x = np.where(x >= 0, 1.0, -1.0).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out"
    proc = run_cli("emit", tmp_path / "m.onnx", "--inputs", tmp_path / "x.npy", "-o", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    graph = load_output(out)
    if preprocess:      # (x + 1) / 2 replayed by the host, then one-bit levels 0/1
        assert [op.op for op in graph.input.pre] == ["Add", "Div"]
        assert graph.layers[0].itype.bits == 1 and graph.layers[0].itype.kind == "uint"
    trace = golden.run(graph, np.load(out / "sim" / "inputs.npy"))
    theirs = _qonnx_outputs(model, x)
    assert np.max(np.abs(theirs - trace.logits)) < 1e-4
    np.testing.assert_array_equal(run_csim(out, trace.inputs, native=False).result, trace.result)


# -- preprocessing ---------------------------------------------------------------------------------

def _normalised_cnn(seed: int = 4, dynamic_batch: bool = True):
    """Per-channel (x - mean) / std and 1 - x on a (N, 3, 6, 6) input, a Quant, a conv, a
    flatten whose shape comes from Shape/Gather/Concat of the batch, a MatMul."""
    b = GraphBuilder(seed)
    mean = b.const(np.array([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1))
    std = b.const(np.array([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1))
    b.node("Div", [b.node("Sub", ["x", mean], "xm"), std], "xn")
    b.node("Sub", [b.const(1.0), "xn"], "xr")                  # c - x
    b.quant("xr", 2.0 ** -5, 8, True, "xq")
    b.quant(b.const(b.rng.normal(size=(4, 3, 3, 3))), 0.25, 3, True, "wcq", narrow=True)
    b.node("Conv", ["xq", "wcq"], "c0", kernel_shape=[3, 3], pads=[0, 0, 0, 0])
    b.node("Relu", ["c0"], "c0r")
    b.quant("c0r", 0.5, 2, False, "a0")
    if dynamic_batch:
        b.node("Shape", ["a0"], "shp")
        b.node("Gather", ["shp", b.const(0, dtype=np.int64)], "n", axis=0)
        b.node("Unsqueeze", ["n"], "n1", axes=[0])            # the graphs' opset 11 spelling
        b.node("Concat", ["n1", b.const([-1], dtype=np.int64)], "newshape", axis=0)
        b.node("Reshape", ["a0", "newshape"], "flat")
    else:
        b.node("Flatten", ["a0"], "flat", axis=1)
    b.quant(b.const(b.rng.normal(size=(64, 5))), 0.25, 4, True, "w1q", narrow=True)
    b.node("MatMul", ["flat", "w1q"], "y")
    return b.model(("N" if dynamic_batch else 1, 3, 6, 6), ("N" if dynamic_batch else 1, 5))


@pytest.mark.parametrize("dynamic_batch", [True, False], ids=["shape-gather-concat", "flatten"])
def test_onnx_preprocessing_is_replayed_exactly(tmp_path, dynamic_batch):
    model = _normalised_cnn(dynamic_batch=dynamic_batch)
    model.save(str(tmp_path / "m.onnx"))
    x = np.random.default_rng(0).uniform(-0.5, 1.5, size=(16, 3, 6, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out"
    proc = run_cli("emit", tmp_path / "m.onnx", "--inputs", tmp_path / "x.npy", "-o", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "qonnx executor vs lbgen on 8 vectors: every quantized tensor equal" in " ".join(proc.stdout.split())
    graph = load_output(out)
    assert [(op.op, op.repeat) for op in graph.input.pre] == [("Sub", 36), ("Div", 36), ("RSub", 1)]
    # out/host.json says what the host streams, as emit printed it
    import json
    host = json.loads((out / "host.json").read_text())
    assert host["stream"] in " ".join(proc.stdout.split()) and host["values_per_frame"] == 108
    assert host["stream"].startswith("x - c[3] -> x / c[3] -> 1 - x -> round(x / 0.03125)")
    trace = golden.run(graph, np.load(out / "sim" / "inputs.npy"))
    theirs = _qonnx_outputs(model, x)
    assert np.max(np.abs(theirs - trace.logits)) < 1e-4


class _FunctionalMLP(nn.Module):
    """A forward written with functional preprocessing, as people write them."""

    def __init__(self):
        super().__init__()
        from lbgen import quant

        self.register_buffer("mean", torch.linspace(0.2, 0.8, 12))
        self.inq = quant.QuantAct(4, clip=2.0)
        self.fc0 = quant.IntLinear(12, 8, bits=4)
        self.bn = nn.BatchNorm1d(8)
        self.act = quant.QuantAct(2, clip=1.0)
        self.fc1 = quant.IntLinear(8, 3, bits=4)

    def forward(self, x):
        x = torch.flatten(x, 1)
        x = (x - self.mean) / 0.5
        x = 1.5 - x
        x = x * torch.tensor([0.75])
        return self.fc1(self.act(self.bn(self.fc0(self.inq(x)))))


def test_fx_functional_preprocessing(tmp_path):
    torch.manual_seed(0)
    model = _FunctionalMLP().eval()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-1, 1)
        model.bn.running_var.uniform_(0.2, 2)
    x = np.random.default_rng(0).uniform(-1, 3, size=(64, 3, 2, 2)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    result = lbgen.emit(model, tmp_path / "out", inputs=tmp_path / "x.npy")
    assert result.checks[0].startswith("torch vs golden on 64 vectors: every hidden level equal")
    assert [op.op for op in result.graph.input.pre] == ["Sub", "Div", "RSub", "Mul"]
    # levels across the whole input range, both clip ends included
    levels = result.vectors.values
    assert levels.min() == 0 and levels.max() == 15


def test_fx_preprocessing_that_is_not_element_wise_is_named(tmp_path):
    class Bad(_FunctionalMLP):
        def forward(self, x):
            return self.fc1(self.act(self.bn(self.fc0(self.inq(x * x)))))

    with pytest.raises(UsageError, match="two tensors computed from the input"):
        lbgen.emit(Bad().eval(), tmp_path / "out")
    assert not (tmp_path / "out").exists()


# -- Gemm and quantized biases ---------------------------------------------------------------------

def test_gemm_alpha_beta_transb_and_quantized_bias(tmp_path):
    b = GraphBuilder(5)
    b.quant("x", 2.0 ** -4, 8, False, "xq")
    w = b.rng.normal(size=(6, 10)).astype(np.float32)        # (out, in): transB
    b.quant(b.const(w), 0.25, 4, True, "wq", narrow=True)
    b.quant(b.const(b.rng.normal(size=6)), 2.0 ** -6, 8, True, "bq")
    b.node("Gemm", ["xq", "wq", "bq"], "y", alpha=0.5, beta=2.0, transB=1)
    model = b.model((1, 10), (1, 6))
    model.save(str(tmp_path / "g.onnx"))
    x = np.random.default_rng(0).uniform(0, 16, size=(16, 10)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    proc = run_cli("emit", tmp_path / "g.onnx", "--inputs", tmp_path / "x.npy", "-o", tmp_path / "out")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "qonnx executor vs lbgen on 8 vectors" in proc.stdout
    graph = load_output(tmp_path / "out")
    trace = golden.run(graph, np.load(tmp_path / "out" / "sim" / "inputs.npy"))
    assert np.max(np.abs(_qonnx_outputs(model, x) - trace.logits)) < 1e-4


# -- hostile initializers ----------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_nan_or_inf_initializer_is_named(tmp_path, bad):
    b = GraphBuilder(6)
    b.quant("x", 2.0 ** -4, 8, False, "xq")
    w = b.rng.normal(size=(10, 4)).astype(np.float32)
    w[3, 1] = bad
    b.quant(b.const(w, "weights_fc0"), 0.25, 4, True, "wq", narrow=True)
    b.node("MatMul", ["xq", "wq"], "y")
    b.model((1, 10), (1, 4)).save(str(tmp_path / "m.onnx"))
    out = tmp_path / "out"
    assert_usage_error(run_cli("emit", tmp_path / "m.onnx", "-o", out), "initializer 'weights_fc0'", "wq_node (Quant)",
                       "NaN or Inf (1 of 40 values)", out=out)


# -- Brevitas bias_quant ---------------------------------------------------------------------------

def _brevitas_biased_net(conv: bool, seed: int = 7):
    import brevitas.nn as qnn
    from brevitas.quant import Int8ActPerTensorFloat, Int8Bias, Int16Bias, Int32Bias

    torch.manual_seed(seed)
    layers = [qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True)]
    if conv:
        layers += [qnn.QuantConv2d(2, 4, 3, padding=0, bias=True, weight_bit_width=4, bias_quant=Int16Bias,
                                   return_quant_tensor=False), nn.BatchNorm2d(4),
                   qnn.QuantReLU(bit_width=2, return_quant_tensor=True), nn.Flatten()]
        features = 4 * 4 * 4
    else:
        layers += [qnn.QuantLinear(12, 8, bias=True, weight_bit_width=4, bias_quant=Int8Bias,
                                   return_quant_tensor=False), nn.BatchNorm1d(8),
                   qnn.QuantReLU(bit_width=3, return_quant_tensor=True)]
        features = 8
    layers += [qnn.QuantLinear(features, 5, bias=True, weight_bit_width=4, bias_quant=Int32Bias,
                               return_quant_tensor=False)]
    model = nn.Sequential(*layers)
    model.train()
    with torch.no_grad():       # calibrate the activation scales
        for _ in range(4):
            model(torch.randn(64, *((2, 6, 6) if conv else (12,))))
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.3, 2)
            if getattr(m, "bias", None) is not None and isinstance(m, (qnn.QuantLinear, qnn.QuantConv2d)):
                m.bias.uniform_(-0.7, 0.7)
    return model.eval()


@pytest.mark.parametrize("conv", [False, True], ids=["mlp-int8-int32", "cnn-int16-int32"])
def test_brevitas_quantized_biases(tmp_path, conv):
    from brevitas.export import export_qonnx

    from lbgen_testing.common import ir_arrays

    model = _brevitas_biased_net(conv)
    shape = (2, 6, 6) if conv else (12,)
    x = np.random.default_rng(0).normal(size=(32, *shape)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    mem = lbgen.emit(model, tmp_path / "mem", inputs=tmp_path / "x.npy", input_shape=shape if conv else None)
    assert any(c.startswith("Brevitas forward vs lbgen on 32 vectors: all") for c in mem.checks), mem.checks
    # the quantized bias differs from the float one: lbgen must have used the quantized value
    last = model[-1]
    quant_input = None
    assert last.bias_quant.is_quant_enabled and quant_input is None
    export_qonnx(model, torch.randn(1, *shape), str(tmp_path / "m.onnx"))
    proc = run_cli("emit", tmp_path / "m.onnx", "--inputs", tmp_path / "x.npy", "-o", tmp_path / "onnx")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "qonnx executor vs lbgen on 8 vectors: every quantized tensor equal" in " ".join(proc.stdout.split())
    onnx_graph = load_output(tmp_path / "onnx")
    a, b = ir_arrays(mem.graph), ir_arrays(onnx_graph)
    for key in a:
        assert a[key][:-3] == b[key][:-3], key       # all but the logits' float affine
    np.testing.assert_allclose(onnx_graph.output.out_bias, mem.graph.output.out_bias, rtol=1e-6, atol=1e-7)


def test_argmax_disagreement_spares_exact_ties_only():
    """A float model may break golden's exact tie either way; any other different class is a bug."""
    from lbgen.golden import argmax_disagreements

    ours = np.array([[0.25, -0.5, 0.25], [0.25, -0.5, 0.25 - 1e-9], [1.0, 2.0, 3.0]])
    theirs = np.array([[0.2499, -0.5, 0.2501], [0.2499, -0.5, 0.2501], [1.0, 2.0, 3.0]])
    real, ties = argmax_disagreements(theirs, ours)
    assert real.tolist() == [False, True, False] and ties.tolist() == [True, False, False]
    real, ties = argmax_disagreements(np.array([2, 2, 1]), ours)         # class indices (an ArgMax output)
    assert real.tolist() == [False, True, True] and ties.tolist() == [True, False, False]


# -- the oracle itself -------------------------------------------------------------------------------

def test_qonnx_oracle_names_the_first_node_that_differs(tmp_path):
    """A wrong threshold in lbgen's IR is caught by qonnx's executor and pinned to its ONNX node;
    a wrong output scale is caught at the graph output."""
    from lbgen.flow import build_graph, EmitOptions, host_stream
    from lbgen.frontend.onnx_frontend import load_onnx
    from lbgen.frontend.qonnx_oracle import compare_with_qonnx

    model = _normalised_cnn(dynamic_batch=False)
    model.save(str(tmp_path / "m.onnx"))
    imported = load_onnx(tmp_path / "m.onnx")
    graph = build_graph(imported, EmitOptions())
    x = np.random.default_rng(0).uniform(-0.5, 1.5, size=(8, 3, 6, 6)).astype(np.float32)
    assert "every quantized tensor equal" in compare_with_qonnx(imported, graph, x, lambda v: host_stream(graph, v))
    hidden = graph.layers[0]
    levels = golden.run(graph, host_stream(graph, x)).outputs[hidden.name].reshape(-1, hidden.mh)
    c = int(np.argmax([len(np.unique(levels[:, k])) for k in range(hidden.mh)]))
    assert len(np.unique(levels[:, c])) > 1
    saved = hidden.thresholds.copy()
    hidden.thresholds[c] = 2 ** 20         # channel c never reaches a threshold now
    with pytest.raises(UsageError, match=r"at ONNX node 'a0_node'.*qonnx level"):
        compare_with_qonnx(imported, graph, x, lambda v: host_stream(graph, v))
    hidden.thresholds = saved
    graph.output.out_scale = graph.output.out_scale * (1 + 1e-3)
    with pytest.raises(UsageError, match="at the graph output"):
        compare_with_qonnx(imported, graph, x, lambda v: host_stream(graph, v))


def test_input_format_on_a_model_that_quantizes_itself_is_refused(tmp_path):
    out = tmp_path / "out"
    model = _annotated_mlp("INT8", False)
    b = GraphBuilder(1)
    b.quant("x", 0.5, 8, True, "xq")
    b.quant(b.const(b.rng.normal(size=(4, 3))), 0.5, 4, True, "wq", narrow=True)
    b.node("MatMul", ["xq", "wq"], "y")
    b.model((1, 4), (1, 3)).save(str(tmp_path / "q.onnx"))
    assert model is not None
    assert_usage_error(run_cli("emit", tmp_path / "q.onnx", "--input-format", "fixed<8,3>", "-o", out),
                       "--input-format fixed<8,3>", "quantizes its input itself", out=out)
    assert_usage_error(run_cli("emit", tmp_path / "q.onnx", "--input-format", "fixed<8>", "-o", out),
                       "--input-format 'fixed<8>'", "integer bits", out=out)


# -- FINN's cybersecurity MLP ------------------------------------------------------------------------

class CybSecMLP(nn.Module):
    """The shape of FINN's cybersecurity example (UNSW-NB15): 600 bipolar inputs mapped to {0, 1} by
    ``(x + 1) / 2``, three 2-bit layers with batch-norm and 2-bit ReLUs, one output thresholded to a
    bipolar verdict by a binary QuantIdentity."""

    def __init__(self, features: int = 600, hidden: int = 64, seed: int = 0):
        import brevitas.nn as qnn
        from brevitas.quant import SignedBinaryActPerTensorConst

        super().__init__()
        torch.manual_seed(seed)
        layers = []
        width = features
        for _ in range(3):
            layers += [qnn.QuantLinear(width, hidden, bias=True, weight_bit_width=2), nn.BatchNorm1d(hidden),
                       nn.Dropout(0.5), qnn.QuantReLU(bit_width=2, max_val=1.5, return_quant_tensor=False)]
            width = hidden
        layers += [qnn.QuantLinear(width, 1, bias=True, weight_bit_width=2)]
        self.pretrained = nn.Sequential(*layers)
        self.qnt_output = qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, nn.BatchNorm1d):
                    m.momentum = None            # running statistics: the plain average of the calibration
                    m.weight.copy_(torch.randn(m.num_features, generator=g) * 2)     # gains of both signs
                    m.bias.fill_(0.7)           # most units alive in the untrained network

    def calibrate(self, x: torch.Tensor) -> "CybSecMLP":
        """Batch-norm statistics from ``x`` (training-mode forwards), then the untrained output centred
        on it, so that both verdicts occur."""
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.train()
            for _ in range(3):
                self(x)
            self.eval()
            pre = self.pretrained((x + 1) / 2).reshape(-1)
            self.pretrained[-1].bias -= float(torch.quantile(pre, 0.5)) + 1e-3
        return self

    def forward(self, x):
        x = (x + torch.tensor([1.0], device=x.device)) / 2.0
        return self.qnt_output(self.pretrained(x))


@pytest.mark.parametrize("route", ["qonnx-annotated", pytest.param("memory", marks=pytest.mark.slow)])
def test_cybersecurity_mlp_output_levels_in_every_executor(tmp_path, route):
    from brevitas.export import export_qonnx
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper

    rng = np.random.default_rng(0)
    x = np.where(rng.random((32, 600)) < 0.3, 1.0, -1.0).astype(np.float32)
    model = CybSecMLP().calibrate(torch.from_numpy(x))
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out"
    if route == "memory":
        result = lbgen.emit(model, out, inputs=tmp_path / "x.npy", input_format="BIPOLAR")
        assert any(c.startswith("Brevitas forward vs lbgen on 32 vectors: all") for c in result.checks), result.checks
    else:
        export_qonnx(model, torch.from_numpy(x[:1]), str(tmp_path / "m.onnx"))
        onnx_model = ModelWrapper(str(tmp_path / "m.onnx"))
        onnx_model.set_tensor_datatype(onnx_model.graph.input[0].name, DataType["BIPOLAR"])
        onnx_model.save(str(tmp_path / "m.onnx"))
        proc = run_cli("emit", tmp_path / "m.onnx", "--inputs", tmp_path / "x.npy", "-o", out)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "qonnx executor vs lbgen on 8 vectors: every quantized tensor equal" in " ".join(proc.stdout.split())
    graph = load_output(out)
    assert graph.output.odtype is not None and graph.output.odtype.kind == "bipolar"   # thresholded in hardware
    values = np.load(out / "sim" / "inputs.npy")
    trace = golden.run(graph, values)
    with torch.no_grad():
        verdict = model(torch.from_numpy(x)).numpy().reshape(-1)
    np.testing.assert_array_equal(np.where(verdict > 0, 1, -1), trace.result.reshape(-1))
    assert len(np.unique(trace.result)) == 2, "the vectors should give both verdicts"
    np.testing.assert_array_equal(run_csim(out, values, native=False).result, trace.result)
    for simulator in ("icarus", "verilator"):
        res = run_native(out, values, simulator=simulator, seed=4, backpressure=0.3, gaps=0.3)
        assert res.passed and res.mismatches == [], simulator
        np.testing.assert_array_equal(res.result, trace.result)


# -- wide inputs on realistic layers: thresholds by bisection ---------------------------------------

def test_bisection_gives_the_exhaustive_thresholds(monkeypatch):
    """On layers small enough for both, folding by bisection equals the exhaustive fold, rising and
    falling channels alike (batch-norm gains of both signs)."""
    from lbgen.flow import EmitOptions, build_graph
    from lbgen.passes import thresholds as fold

    from lbgen_testing.common import small_mlp

    for seed in range(3):
        model = small_mlp(seed, dims=(12, 10, 8, 4), w_hidden=4, a_hidden=3)
        exhaustive = build_graph(model, EmitOptions())
        monkeypatch.setattr(fold, "EXHAUSTIVE_LIMIT", 0)
        bisected = build_graph(model, EmitOptions())
        monkeypatch.undo()
        for a, b in zip(exhaustive.layers[:-1], bisected.layers[:-1]):
            np.testing.assert_array_equal(a.threshold_invert, b.threshold_invert)
            np.testing.assert_array_equal(a.thresholds, b.thresholds, err_msg=f"seed {seed} {a.name}")


def test_qkeras_graph_of_realistic_width_compiles(tmp_path):
    """A 16-bit input into 256 x 64 weights: billions of accumulator values per channel."""
    model = qkeras_style_mlp(seed=2, dims=(256, 64, 10))
    model.save(str(tmp_path / "wide.onnx"))
    x = (np.random.default_rng(0).integers(-2 ** 15, 2 ** 15, size=(16, 256)) / 1024).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    proc = run_cli("emit", tmp_path / "wide.onnx", "--input-format", "fixed<16,6>", "--inputs", tmp_path / "x.npy",
                   "-o", tmp_path / "out", timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "qonnx executor vs lbgen on 8 vectors: every quantized tensor equal" in " ".join(proc.stdout.split())
