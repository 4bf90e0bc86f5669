"""Wide first-layer inputs (9..16-bit levels) and pad levels, IR-level, in every executor.

A float input quantized onto hls4ml's ``fixed<16,6>`` is a 16-bit signed value;
lbgen streams it as the unsigned level ``u = q + 2^15`` (the offset folds into
the first layer's thresholds, as for any affine input), so the first layer
multiplies 16-bit levels. Hidden activations stay 1..8 bits. These graphs
(``lbgen.testing``) run golden = C-sim (ap_int) = Icarus = Verilator on every
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
from lbgen.testing import ConvSpec, random_cnn, random_graph, random_inputs

from test_property import check_executors

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
    first = {name: build().layers[0] for name, build in GRAPHS.items()}
    assert {l.itype.bits for l in first.values()} >= {9, 12, 16}
    assert {l.pe_kind for l in first.values() if l.itype.bits > 8} == {"mac", "addsub"}
    assert {l.acc_bits for l in first.values()} >= {32} and any(l.acc_bits < 32 for l in first.values())
    assert first["u16_int4_cnn_pad_auto"].conv.pad == 1 << 15
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
    assert [l.conv for l in loaded.layers] == [l.conv for l in graph.layers]
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
    graph.layers[0].conv = dataclasses.replace(graph.layers[0].conv, pad=16)
    with pytest.raises(IRError, match=r"layer 'conv0': pad value 16 is outside the input format uint4 \[0, 15\]"):
        graph.validate()
    with pytest.raises(IRError, match="layer 'conv1': a bipolar input has no code for the pad value 9"):
        random_cnn(6, (1, 4, 4), U[4], [ConvSpec(2, 3, 1, 1, 0, I[3], B),
                                        ConvSpec(2, 3, 1, 1, 0, B, U[2], pad_level=9)], 2, I[4])
    g = random_cnn(6, (1, 4, 4), U[4], [ConvSpec(2, 3, 1, 1, 0, I[3], U[2])], 2, I[4])
    assert "pad" not in g.layers[0].conv.to_json()                 # older lbgen.json files load unchanged
    assert GRAPHS["u4_pad_levels_cnn"]().layers[0].conv.to_json()["pad"] == 9
