"""The IR's typed nodes: each checks, computes and serialises itself; old files still load.

``tests/data/ir_v1_cnn`` was written by lbgen before the typed nodes (IR
format 1: layers with ``conv``/``pool`` fields), with the golden results that
version computed on six frames (``expected.npz``); it must load as nodes and
give the same results.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lbgen import golden
from lbgen.ir import (IR_VERSION, NODE_TYPES, ConvGeom, Graph, IRError, MatVec, MaxPool, PoolGeom, SlidingWindow)

V1 = Path(__file__).parent / "data" / "ir_v1_cnn"


def test_format_1_loads_as_nodes_and_computes_what_it_computed():
    graph = Graph.load(V1)
    assert [type(n).__name__ for n in graph.nodes] == ["SlidingWindow", "MatVec", "MaxPool", "SlidingWindow",
                                                      "MatVec", "MatVec"]
    assert [n.name for n in graph.nodes] == ["conv0/window", "conv0", "conv0/pool", "conv1/window", "conv1", "fc2"]
    assert graph.conv(graph.layers[0]) == ConvGeom(2, 6, 6, 3, 3, 1, 1, 1, 1)
    assert graph.pool(graph.layers[0]) == PoolGeom(4, 6, 6, 2, 2)
    assert graph.pool(graph.layers[1]) is None and graph.conv(graph.layers[2]) is None
    assert [l.pixels for l in graph.layers] == [36, 9, 1]
    old = np.load(V1 / "expected.npz")
    trace = golden.run(graph, old["inputs"])
    np.testing.assert_array_equal(trace.result, old["result"])
    for layer in graph.layers:
        np.testing.assert_array_equal(trace.outputs[layer.name], old[f"out_{layer.name}"])


def test_saved_again_it_is_format_2_and_round_trips(tmp_path):
    graph = Graph.load(V1)
    graph.save(tmp_path)
    doc = json.loads((tmp_path / "lbgen.json").read_text())
    assert doc["lbgen_ir"] == IR_VERSION == 2 and "layers" not in doc
    assert [d["op"] for d in doc["nodes"]] == ["sliding_window", "matvec", "max_pool", "sliding_window",
                                               "matvec", "matvec"]
    back = Graph.load(tmp_path)
    assert [n.name for n in back.nodes] == [n.name for n in graph.nodes]
    x = np.load(V1 / "expected.npz")["inputs"]
    np.testing.assert_array_equal(golden.run(back, x).result, golden.run(graph, x).result)


@pytest.mark.parametrize("version", [0, 3, "2", None])
def test_other_versions_are_refused_with_the_way_out(tmp_path, version):
    out = shutil.copytree(V1, tmp_path / "out")
    doc = json.loads((out / "lbgen.json").read_text())
    doc["lbgen_ir"] = version
    (out / "lbgen.json").write_text(json.dumps(doc))
    with pytest.raises(IRError, match=rf"IR version {version!r}, expected 2; emit the model again"):
        Graph.load(out)


def test_an_unknown_node_op_is_named(tmp_path):
    graph = Graph.load(V1)
    graph.save(tmp_path)
    doc = json.loads((tmp_path / "lbgen.json").read_text())
    doc["nodes"][2]["op"] = "avg_pool"
    (tmp_path / "lbgen.json").write_text(json.dumps(doc))
    with pytest.raises(IRError, match="unknown node op 'avg_pool' \\(known: "):
        Graph.load(tmp_path)


def test_every_node_kind_is_registered_by_its_op():
    assert {NODE_TYPES[op] for op in ("matvec", "sliding_window", "max_pool")} == {MatVec, SlidingWindow, MaxPool}
    assert all(cls.op == op for op, cls in NODE_TYPES.items())


def test_window_and_pool_nodes_compute_what_torch_computes():
    """Each node's own golden function against torch: the window's vectors times
    a kernel are conv2d (zero padding in value), the pool is max_pool2d."""
    rng = np.random.default_rng(2)
    g = ConvGeom(3, 7, 6, 3, 2, 2, 1, 1, 1)
    x = rng.integers(-4, 5, size=(4, g.in_len))
    win = SlidingWindow("w", g).golden(x)
    assert win.shape == (4, g.pixels * g.window)
    kernel = rng.integers(-3, 4, size=(5, g.k_h, g.k_w, g.in_ch))
    ours = win.reshape(4, g.pixels, g.window) @ kernel.reshape(5, -1).T
    nchw = torch.from_numpy(x.reshape(4, g.in_h, g.in_w, g.in_ch).transpose(0, 3, 1, 2).astype(np.float64))
    ref = F.conv2d(nchw, torch.from_numpy(kernel.transpose(0, 3, 1, 2).astype(np.float64)), stride=(2, 1),
                   padding=(1, 1))
    np.testing.assert_array_equal(ours.reshape(4, -1), ref.permute(0, 2, 3, 1).reshape(4, -1).numpy())
    q = PoolGeom(5, g.out_h, g.out_w, 2, 2)
    y = rng.integers(0, 8, size=(4, q.in_h * q.in_w * q.ch))
    ref = F.max_pool2d(torch.from_numpy(y.reshape(4, q.in_h, q.in_w, 5).transpose(0, 3, 1, 2).astype(np.float64)), 2)
    np.testing.assert_array_equal(MaxPool("p", q).golden(y), ref.permute(0, 2, 3, 1).reshape(4, -1).numpy())


def test_nodes_out_of_place_are_named():
    graph = Graph.load(V1)
    window = graph.nodes[3]
    graph.nodes.remove(window)
    graph.nodes.insert(2, window)            # the window before the pool, two nodes from its layer
    with pytest.raises(IRError, match="sliding_window node 'conv1/window' is not next to the matrix-vector layer"):
        graph.validate()
    graph = Graph.load(V1)
    graph.nodes.append(MaxPool("fc2/pool", PoolGeom(3, 1, 1, 1, 1)))          # a pool after the output layer
    with pytest.raises(IRError, match="output layer must be fully connected"):
        graph.validate()
    graph = Graph.load(V1)
    graph.nodes[1].name = "conv1"
    with pytest.raises(IRError, match="two nodes are named 'conv1'"):
        graph.validate()
