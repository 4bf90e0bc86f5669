"""Automatic folding to a target rate (--target-cycles) and the LUT estimate behind it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lbgen.errors import UsageError
from lbgen.ir import ConvGeom, DType, layer_nodes
from lbgen.passes.cost import estimate_luts
from lbgen.passes.folding import apply_folding, cheapest_folding, divisors, simd_dim

from lbgen_testing.graphs import random_graph

B, U2, U4, I4 = DType("bipolar", 1), DType("uint", 2), DType("uint", 4), DType("int", 4)


def _graph():
    return random_graph(3, [64, 48, 32, 10], [I4, B, I4], [U4, U2, U2], [(1, 1)] * 3)


@pytest.mark.parametrize("target", [1, 16, 100, 384, 3072, 10**6])
def test_every_layer_meets_the_target_as_cheaply_as_the_estimate_allows(target):
    graph = _graph()
    fastest = max(dataclasses.replace(l, pe=l.mh, simd=l.mw).cycles for l in graph.layers)
    if target < fastest:
        with pytest.raises(UsageError, match=r"layer fc\d .*--target-cycles .* out of reach"):
            apply_folding(graph, target_cycles=target)
        return
    folded = apply_folding(graph, target_cycles=target)
    for layer in folded.layers:
        assert layer.cycles <= target
        meeting = [(estimate_luts(layer, p, s), p, s) for p in divisors(layer.mh) for s in divisors(layer.mw)
                   if dataclasses.replace(layer, pe=p, simd=s).cycles <= target]
        assert estimate_luts(layer) == min(m[0] for m in meeting)
    # a slower target never costs more
    if target * 4 >= fastest:
        slower = apply_folding(graph, target_cycles=target * 4)
        assert sum(map(estimate_luts, slower.layers)) <= sum(map(estimate_luts, folded.layers))


def test_estimate_grows_with_lanes_and_precision():
    graph = _graph()
    layer = graph.layers[0]
    assert estimate_luts(layer, 1, 1) < estimate_luts(layer, 4, 1) < estimate_luts(layer, 4, 16)
    wide = dataclasses.replace(layer, wtype=DType("int", 8))
    assert estimate_luts(wide, 4, 16) > estimate_luts(layer, 4, 16)


def test_folding_file_entries_override_the_target(tmp_path):
    graph = _graph()
    folded = apply_folding(graph, per_layer={"fc1": {"pe": 1, "simd": 1}}, target_cycles=512)
    assert (folded.layers[1].pe, folded.layers[1].simd) == (1, 1)
    assert all(l.cycles <= 512 for i, l in enumerate(folded.layers) if i != 1)
    with pytest.raises(UsageError, match="--target-cycles chooses PE and SIMD itself"):
        apply_folding(graph, pe=2, target_cycles=512)
    with pytest.raises(UsageError, match="--target-cycles 0"):
        apply_folding(graph, target_cycles=0)


def test_convolution_simd_divides_the_input_channels():
    graph = _graph()
    g = ConvGeom(6, 5, 5, 3, 3, 1, 1, 1, 1)
    rng = np.random.default_rng(0)
    layer = dataclasses.replace(graph.layers[0], mw=g.window, pixels=g.pixels,
                                weights=rng.integers(-7, 8, size=(48, g.window)))
    one = graph.replace(nodes=layer_nodes(layer, g))
    assert simd_dim(one, layer) == 6
    for target in (25 * 54 * 4, 25 * 54, 25 * 18, 25 * 9):
        pe, simd = cheapest_folding(one, layer, target)
        assert 6 % simd == 0 and 48 % pe == 0
        assert dataclasses.replace(layer, pe=pe, simd=simd).cycles <= target
    # SIMD stops at the 6 input channels: 25 pixels x 9 window beats at best
    with pytest.raises(UsageError, match="out of reach; fully parallel it takes 225 cycles"):
        cheapest_folding(one, layer, 224)
    with pytest.raises(UsageError, match="SIMD=4 from --simd does not divide the input channels=6"):
        apply_folding(one, simd=4)
