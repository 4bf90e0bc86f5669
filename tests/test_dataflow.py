"""One dataflow plan, rendered by both emitters; one identifier per layer for both languages."""

from __future__ import annotations

import re

import numpy as np
import pytest

from lbgen import dataflow
from lbgen.emitters.hls import hls_context, render_generated, trace_names
from lbgen.emitters.rtl import render_top, rtl_plan
from lbgen.ir import DType, IRError, TopK
from lbgen_testing.graphs import ConvSpec, random_cnn, random_graph

B, U2, U4, I3, I4 = DType("bipolar", 1), DType("uint", 2), DType("uint", 4), DType("int", 3), DType("int", 4)


def _cnn(topk: bool = True):
    g = random_cnn(11, (2, 6, 6), U4, [ConvSpec(4, 3, 1, 1, 2, I3, B, (2, 2)), ConvSpec(3, 3, 1, 1, 0, B, U2, (3, 4))],
                   3, I4, (3, 1))
    return g.replace(topk=TopK(2)) if topk else g


def test_the_plan_walks_the_nodes_with_converters_and_fifos():
    flow = dataflow.plan(_cnn())
    assert [(u.kind, u.src, u.dst) for u in flow.units] == [
        ("window", "conv0_in", "conv0_win"), ("mvau", "conv0_win", "conv0_mv"), ("pool", "conv0_mv", "conv0_out"),
        ("convert", "conv0_out", "conv0_dwc"), ("fifo", "conv0_dwc", "conv1_in"),
        ("window", "conv1_in", "conv1_win"), ("mvau", "conv1_win", "conv1_out"),
        ("convert", "conv1_out", "conv1_dwc"), ("fifo", "conv1_dwc", "fc2_in"), ("mvau", "fc2_in", "fc2_out"),
        ("fifo", "fc2_out", "topk_in"), ("topk", "topk_in", "topk_out")]
    assert (flow.input, flow.output) == ("conv0_in", "topk_out")
    # a FIFO in front of a convolution holds one input row; in front of a FC layer one input frame
    fifos = {u.dst: u.depth for u in flow.units if u.kind == "fifo"}
    assert fifos == {"conv1_in": max(36 // 4, 3 * 4 // 4) + 2, "fc2_in": 27 + 2, "topk_in": 1 + 2}
    # widths: SIMD x input bits into a layer, PE x output bits out of it
    widths = {s.name: s.width for s in flow.streams}
    assert widths["conv0_in"] == 2 * 4 and widths["conv0_mv"] == 2 * 1 and widths["conv0_dwc"] == 4 * 1
    assert widths["conv1_out"] == 3 * 2 and widths["fc2_in"] == 1 * 2 and widths["topk_out"] == 2 * 2


def test_both_emitters_render_the_same_units_in_the_same_order():
    graph = _cnn()
    flow = dataflow.plan(graph)
    top = render_top(rtl_plan(graph))
    instances = re.findall(r"^  (lb_\w+) #\(", top, flags=re.M)
    core = {"window": "lb_swu", "mvau": "lb_mvau", "pool": "lb_maxpool", "convert": "lb_axis_dwc",
            "fifo": "lb_axis_fifo", "topk": "lb_topk"}
    assert instances == [core[u.kind] for u in flow.units]
    for s in flow.streams:
        assert f"wire [{s.width}-1:0] {s.name}_tdata;" in top
        assert (f"wire {s.name}_tlast;" in top) == s.tlast
    cpp = render_generated("lbgen_top.cpp", hls_context(graph))
    calls = re.findall(r"^    lbgen::(\w+)<", cpp, flags=re.M)
    call = {"window": "sliding_window", "mvau": "mvau", "pool": "maxpool", "convert": "width_convert", "topk": "topk"}
    assert calls == [call[u.kind] for u in flow.units if u.kind != "fifo"]
    # a FIFO is the depth of the stream it reads
    for u in flow.units:
        if u.kind == "fifo":
            assert re.search(rf"STREAM variable={u.src} depth={u.depth}\n", cpp), u


@pytest.mark.parametrize("names,idents", [
    (["fc.0", "1x", "_y"], ["fc_0", "l_1x", "l__y"]),
    (["wire", "class", "in", "out", "topk"], ["wire_", "class_", "in_", "out_", "topk_"]),
    (["lb_mvau", "lbgen_x", "unused_a"], ["l_lb_mvau", "l_lbgen_x", "l_unused_a"]),
])
def test_one_identifier_per_layer_for_both_languages(names, idents):
    graph = random_graph(3, [4] * (len(names) + 1), [I3] * len(names), [U2] * len(names), [(1, 1)] * len(names))
    for layer, name in zip(graph.layers, names):
        layer.name = name
    assert dataflow.layer_idents(graph) == idents
    assert list(trace_names(graph).values()) == idents
    plan = rtl_plan(graph)
    assert [lp["id"] for lp in plan["layers"]] == idents
    assert [d["ident"] for d in hls_context(graph)["layers"]] == idents


def test_two_layers_with_one_identifier_are_refused_naming_both():
    graph = random_graph(3, [4, 4, 4], [I3, I3], [U2, U2], [(1, 1), (1, 1)])
    graph.layers[0].name, graph.layers[1].name = "a.b", "a_b"
    with pytest.raises(IRError, match="layer 'a_b': its identifier 'a_b' collides with layer 'a.b'"):
        dataflow.layer_idents(graph)


def test_a_plan_without_top_k_ends_in_the_last_layer():
    flow = dataflow.plan(_cnn(topk=False))
    assert flow.output == "fc2_out" and flow.units[-1].kind == "mvau"
    assert np.all([u.kind != "topk" for u in flow.units])
