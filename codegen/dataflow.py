"""The dataflow of a graph: its units in stream order and the streams between
them, planned once from the IR for the emitters to render.

A layer is up to three units: a sliding-window unit (a convolution's input),
its matrix-vector unit, and a max-pool after it. Between two layers whose
beats differ (PE of the first != SIMD of the next) a width converter sits; a
top-K unit may follow the last layer. The graph's input stream is ``in`` and
its output ``out``; every other stream is named after the layer that owns it:
``<id>_win`` (windows into the engine), ``<id>_mv`` (engine into its pool),
``<id>_out`` (the layer's output), ``<id>_in`` (a converter into layer id).
A stream's ``side`` says whether it carries the owner's input beats
(``SIMD`` elements of its input format) or its output beats (``PE`` elements).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .ir import ConvGeom, Graph, MatVec, PoolGeom, SlidingWindow, pad_code


@dataclass(frozen=True)
class Stream:
    name: str
    owner: int            # index of the layer whose beats it carries
    side: str             # "in": the owner's input beats, "out": its output beats


@dataclass(frozen=True)
class Unit:
    """One unit of the dataflow, reading ``src`` and writing ``dst``."""

    kind: str                          # "window" | "mvau" | "pool" | "convert" | "topk"
    layer: int                         # index of the layer it belongs to (topk: the last layer)
    src: str
    dst: str
    params: tuple[tuple[str, int], ...] = ()   # the core's parameters (window, pool)
    #: a converter's sizes: elements per beat in and out, bits per element, elements per frame
    convert: Optional[tuple[int, int, int, int]] = None


@dataclass
class Plan:
    units: list[Unit] = field(default_factory=list)
    streams: list[Stream] = field(default_factory=list)     # the internal ones (not ``in``/``out``)


def window_params(layer: MatVec, conv: ConvGeom) -> tuple[tuple[str, int], ...]:
    """Parameters of the sliding-window unit (lb_swu / lbgen::swu) in front of a convolution."""
    params = [("C", conv.in_ch), ("IN_H", conv.in_h), ("IN_W", conv.in_w), ("K_H", conv.k_h), ("K_W", conv.k_w),
              ("S_H", conv.s_h), ("S_W", conv.s_w), ("P_H", conv.p_h), ("P_W", conv.p_w), ("SIMD", layer.simd),
              ("E", layer.itype.bits)]
    if pad_code(layer, conv):    # the zero level of a signed input; absent: 0, designs unchanged
        params.append(("PAD", pad_code(layer, conv)))
    return tuple(params)


def pool_params(layer: MatVec, pool: PoolGeom) -> tuple[tuple[str, int], ...]:
    """Parameters of the max-pool unit (lb_maxpool / lbgen::maxpool) after a layer."""
    return (("C", pool.ch), ("IN_H", pool.in_h), ("IN_W", pool.in_w), ("K", pool.k), ("S", pool.s),
            ("PE", layer.pe), ("E", layer.out_dtype.bits))


def plan(graph: Graph, idents: list[str]) -> Plan:
    """The units and streams of ``graph``, node by node, its layers named by ``idents``."""
    p = Plan()
    layers = graph.layers
    index = {id(layer): i for i, layer in enumerate(layers)}
    src, i = "in", -1
    for n, node in enumerate(graph.nodes):
        if isinstance(node, SlidingWindow):
            consumer = graph.nodes[n + 1]
            win = f"{idents[index[id(consumer)]]}_win"
            p.streams.append(Stream(win, index[id(consumer)], "in"))
            p.units.append(Unit("window", index[id(consumer)], src, win, window_params(consumer, node.geom)))
            src = win
            continue
        ends_layer = not isinstance(node, MatVec) or graph.pool(node) is None      # a pool ends its layer
        if isinstance(node, MatVec):
            i = index[id(node)]
        dst = _layer_out(graph, i, idents) if ends_layer else f"{idents[i]}_mv"
        if dst != "out":
            p.streams.append(Stream(dst, i, "out"))
        p.units.append(Unit("mvau", i, src, dst) if isinstance(node, MatVec) else
                       Unit("pool", i, src, dst, pool_params(layers[i], node.geom)))
        src = dst
        if not ends_layer or i == len(layers) - 1 or layers[i].pe == layers[i + 1].simd:
            continue
        conv = f"{idents[i + 1]}_in"
        p.streams.append(Stream(conv, i + 1, "in"))
        p.units.append(Unit("convert", i, src, conv, convert=(layers[i].pe, layers[i + 1].simd,
                                                              layers[i].out_dtype.bits,
                                                              graph.layer_out_len(layers[i]))))
        src = conv
    if graph.topk is not None:
        p.units.append(Unit("topk", len(layers) - 1, src, "out"))
    return p


def _layer_out(graph: Graph, i: int, idents: list[str]) -> str:
    """The output stream of layer i: the graph's ``out`` for the last layer without a top-K unit."""
    return "out" if i == len(graph.layers) - 1 and graph.topk is None else f"{idents[i]}_out"
