"""Wide first-layer inputs (9..16-bit levels) and pad levels, IR-level, in every executor.

A float input quantized onto hls4ml's ``fixed<16,6>`` is a 16-bit signed value;
lbgen streams it as the unsigned level ``u = q + 2^15`` (the offset folds into
the first layer's thresholds, as for any affine input), so the first layer
multiplies 16-bit levels. Hidden activations stay 1..8 bits. These graphs
(``lbgen_testing.graphs``) run golden = C-sim (ap_int) = Icarus = Verilator on every
layer's output stream, with inputs at both ends of the range; a padded first
convolution pads with the level of the value 0 (2^15, 2^8, ...).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lbgen import golden
from lbgen.emitters.hls import emit_hls
from lbgen.emitters.rtl import emit_rtl
from lbgen.errors import UsageError
from lbgen.ir import DType, Graph, IRError, signed_bits_for
from lbgen.passes.accumulators import size_accumulators

from lbgen_testing.graphs import ConvSpec, random_cnn, random_graph, random_inputs

from lbgen_testing.executors import check_executors

#: a module-private build cache (conftest): these designs are built once and should not push out the user's
pytestmark = pytest.mark.usefixtures("sim_cache")

B = DType("bipolar", 1)
U = {k: DType("uint", k) for k in (2, 3, 4, 9, 12, 16)}
I = {k: DType("int", k) for k in (2, 3, 4, 8)}

#: name -> (graph builder, acc): MLPs and CNNs whose first layer takes 9..16-bit levels, int and
#: binary weights, 32-bit and exact accumulators, and a CNN of narrow levels padded with nonzero levels
GRAPHS = {
    "u16_int8_mlp_acc32": lambda: random_graph(1, [24, 8, 4], [I[8], I[3]], [U[16], U[2]], [(4, 6), (2, 4)],
                                               acc_bits=32, extremes=0.3),
    "u12_bin_mlp_auto": lambda: random_graph(2, [12, 6, 3], [B, I[4]], [U[12], U[3]], [(3, 4), (1, 3)],
                                             extremes=0.3),
    "u16_int4_cnn_pad_auto": lambda: random_cnn(3, (2, 5, 6), U[16], [
        ConvSpec(4, 3, 1, 1, 2, I[4], U[2], (2, 2), pad_level=1 << 15),
        ConvSpec(6, 3, 1, 1, 0, B, B, (3, 2))], 4, I[4], (2, 6), extremes=0.3),
    "u9_bin_cnn_pad_acc32": lambda: random_cnn(4, (3, 5, 5), U[9], [
        ConvSpec(4, 3, 2, 1, 0, B, U[3], (4, 3), pad_level=1 << 8),
        ConvSpec(4, 3, 1, 1, 0, I[2], U[2], (2, 4), pad_level=4)], 3, I[8], (1, 4), acc_bits=32),
    "u4_pad_levels_cnn": lambda: random_cnn(5, (2, 5, 5), U[4], [
        ConvSpec(4, 3, 1, 1, 0, I[3], U[3], (2, 1), pad_level=9),
        ConvSpec(4, 3, 1, 1, 2, B, U[2], (1, 2), pad_level=5)], 3, I[4]),
}


#: simulated in the default run (the others in make test-all; tests/test_property.py's pinned
#: examples also run a wide input and a pad level in every executor by default)
DEFAULT_RUN = ("u16_int4_cnn_pad_auto",)
CASES = [n if n in DEFAULT_RUN else pytest.param(n, marks=pytest.mark.slow) for n in GRAPHS]


def test_cases_are_what_they_claim():
    graphs = {name: build() for name, build in GRAPHS.items()}
    first = {name: graph.layers[0] for name, graph in graphs.items()}
    assert {l.itype.bits for l in first.values()} >= {9, 12, 16}
    assert {l.pe_kind for l in first.values() if l.itype.bits > 8} == {"mac", "addsub"}
    assert {l.acc_bits for l in first.values()} >= {32} and any(l.acc_bits < 32 for l in first.values())
    assert graphs["u16_int4_cnn_pad_auto"].conv(first["u16_int4_cnn_pad_auto"]).pad == 1 << 15
    for name, build in GRAPHS.items():
        for layer in build().layers[1:]:
            assert layer.itype.bits <= 8, name


@pytest.mark.parametrize("name", CASES)
def test_every_executor(name, tmp_path):
    graph = GRAPHS[name]().validate()
    out = tmp_path / "out"
    graph.save(out)
    emit_rtl(graph, out / "rtl")
    emit_hls(graph, out / "hls")
    loaded = Graph.load(out)
    assert [loaded.conv(l) for l in loaded.layers] == [graph.conv(l) for l in graph.layers]
    x = random_inputs(loaded, 8, seed=3, ends=0.2)
    it = loaded.layers[0].itype
    assert x.min() == it.min and x.max() == it.max
    check_executors(out, loaded, x, seed=4, gaps=0.3, backpressure=0.3)


def test_acc32_overflow_is_named():
    """A 16-bit input times int8 weights over 1024 columns needs 35 accumulator bits: --acc 32
    names the layer, --acc auto takes 35, and golden refuses to run it in 32."""
    graph = random_graph(7, [1024, 4, 2], [I[8], I[3]], [U[16], U[2]], [(1, 64), (1, 4)])
    layer = graph.layers[0]
    lo, hi = layer.acc_range()
    need = signed_bits_for(int(lo.min()), int(hi.max()))
    assert need > 32
    with pytest.raises(UsageError, match=f"layer fc0: the accumulator needs {need} bits, more than --acc 32"):
        size_accumulators(graph, 32)
    assert size_accumulators(graph, "auto").layers[0].acc_bits == need
    narrow = graph.replace(layers=[dataclasses.replace(layer, acc_bits=32), graph.layers[1]])
    x = np.full((1, 1024), 0, dtype=np.int64)
    x[0, layer.weights[0] > 0] = U[16].max                 # the largest sum channel 0 can reach
    with pytest.raises(golden.OverflowError_, match="layer 'fc0'"):
        golden.run(narrow, x)


def test_pad_level_is_checked_and_serialised_only_when_set():
    graph = GRAPHS["u4_pad_levels_cnn"]()
    window = graph.window(graph.layers[0])
    window.geom = dataclasses.replace(window.geom, pad=16)
    with pytest.raises(IRError, match=r"layer 'conv0': pad value 16 is outside the input format uint4 \[0, 15\]"):
        graph.validate()
    with pytest.raises(IRError, match="layer 'conv1': a bipolar input has no code for the pad value 9"):
        random_cnn(6, (1, 4, 4), U[4], [ConvSpec(2, 3, 1, 1, 0, I[3], B),
                                        ConvSpec(2, 3, 1, 1, 0, B, U[2], pad_level=9)], 2, I[4])
    g = random_cnn(6, (1, 4, 4), U[4], [ConvSpec(2, 3, 1, 1, 0, I[3], U[2])], 2, I[4])
    assert "pad" not in g.conv(g.layers[0]).to_json()                 # older lbgen.json files load unchanged
    padded = GRAPHS["u4_pad_levels_cnn"]()
    assert padded.conv(padded.layers[0]).to_json()["pad"] == 9


def _brevitas_wide_input_cnn(bits: int):
    """A signed ``bits``-bit input (Brevitas' Int8ActPerTensorFloat at that bit_width) into a
    padded int4 convolution, batch-norm, ReLU, and an int8 classifier."""
    import warnings

    import brevitas.nn as qnn
    import torch

    from lbgen_testing.common import random_bn2d_stats

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        qnn.QuantIdentity(bit_width=bits, return_quant_tensor=True),
        qnn.QuantConv2d(1, 4, 3, padding=1, weight_bit_width=4),
        torch.nn.BatchNorm2d(4),
        qnn.QuantReLU(bit_width=2, return_quant_tensor=True),
        torch.nn.Flatten(),
        qnn.QuantLinear(4 * 5 * 5, 3, bias=True, weight_bit_width=8))
    random_bn2d_stats(model)
    model.train()
    model[2].eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(3):
            model(torch.from_numpy(_wide_features(64, 1)))
    return model.eval()


def _wide_features(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, size=(n, 1, 5, 5))
    return np.where(rng.random(x.shape) < 0.1, rng.choice([-100.0, 100.0], size=x.shape), x).astype(np.float32)


@pytest.mark.parametrize("bits", [16, pytest.param(12, marks=pytest.mark.slow)])
def test_brevitas_wide_input_through_both_frontends(tmp_path, bits):
    """The frontends take a 9..16-bit input quantizer (hidden activations stay 1..8 bits):
    Brevitas' forward = golden on every level, the QONNX export gives the same IR, C-sim = golden.
    (Folding the first layer's thresholds checks every reachable accumulator value: 3.9 million
    per channel at 16 bits here, about 3 s.)"""
    pytest.importorskip("brevitas")
    pytest.importorskip("qonnx")
    import lbgen
    from lbgen.csim import run_csim
    from lbgen.frontend.onnx_frontend import load_onnx

    from lbgen_testing.common import ir_arrays
    from lbgen_testing.common import export_qonnx

    model = _brevitas_wide_input_cnn(bits)
    wide = DType("uint", bits)
    np.save(tmp_path / "x.npy", _wide_features(16))
    mem = lbgen.emit(model, tmp_path / "mem", inputs=tmp_path / "x.npy", input_shape=(1, 5, 5), acc="32")
    assert any(line.startswith("Brevitas forward vs lbgen on 16 vectors: all") for line in mem.checks), mem.checks
    first = mem.graph.layers[0]
    zero = 1 << (bits - 1)
    assert first.itype == wide and mem.graph.conv(first).pad == zero and mem.graph.input.offset == zero
    values = mem.vectors.values
    assert values.min() == 0 and values.max() == wide.max
    onnx_result = lbgen.emit(load_onnx(export_qonnx(model, tmp_path / "m.onnx", shape=(1, 1, 5, 5))),
                             tmp_path / "onnx", inputs=tmp_path / "x.npy", acc="32")
    assert ir_arrays(onnx_result.graph) == ir_arrays(mem.graph)
    trace = golden.run(mem.graph, values)
    np.testing.assert_array_equal(run_csim(tmp_path / "mem", values, native=False).result, trace.result)


def test_frontends_refuse_wider_inputs_and_wide_hidden_activations():
    """17-bit inputs and 9-bit hidden activations stay refused, by module."""
    pytest.importorskip("brevitas")
    import brevitas.nn as qnn
    import torch

    from lbgen.flow import EmitOptions, build_graph

    for in_bits, hidden_bits, fragment in (
            (17, 2, "0 (ActQuantProxyFromInjector): 17-bit activations (lbgen takes 1..8 bits; the model's input "
                    "quantizer 1..16)"),
            (16, 9, "2 (ActQuantProxyFromInjector): 9-bit activations (lbgen takes 1..8 bits)")):
        model = torch.nn.Sequential(qnn.QuantIdentity(bit_width=in_bits, return_quant_tensor=True),
                                    qnn.QuantLinear(4, 4, bias=True, weight_bit_width=4),
                                    qnn.QuantReLU(bit_width=hidden_bits, return_quant_tensor=True),
                                    qnn.QuantLinear(4, 2, bias=True, weight_bit_width=4))
        with pytest.raises(UsageError) as err:
            build_graph(model.eval(), EmitOptions())
        assert fragment in str(err.value), str(err.value)
