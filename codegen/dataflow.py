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

from .ir import Graph, MatVec, pad_code


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


def window_params(layer: MatVec) -> tuple[tuple[str, int], ...]:
    """Parameters of the sliding-window unit (lb_swu / lbgen::swu) in front of a convolution."""
    g = layer.conv
    params = [("C", g.in_ch), ("IN_H", g.in_h), ("IN_W", g.in_w), ("K_H", g.k_h), ("K_W", g.k_w),
              ("S_H", g.s_h), ("S_W", g.s_w), ("P_H", g.p_h), ("P_W", g.p_w), ("SIMD", layer.simd),
              ("E", layer.itype.bits)]
    if pad_code(layer):          # the zero level of a signed input; absent: 0, designs unchanged
        params.append(("PAD", pad_code(layer)))
    return tuple(params)


def pool_params(layer: MatVec) -> tuple[tuple[str, int], ...]:
    """Parameters of the max-pool unit (lb_maxpool / lbgen::maxpool) after a layer."""
    q = layer.pool
    return (("C", q.ch), ("IN_H", q.in_h), ("IN_W", q.in_w), ("K", q.k), ("S", q.s),
            ("PE", layer.pe), ("E", layer.out_dtype.bits))


def plan(graph: Graph, idents: list[str]) -> Plan:
    """The units and streams of ``graph``, its layers named by ``idents``."""
    p = Plan()
    layers = graph.layers
    src = "in"
    for i, layer in enumerate(layers):
        ident = idents[i]
        last = i == len(layers) - 1
        dst = "out" if last and graph.topk is None else f"{ident}_out"
        if dst != "out":
            p.streams.append(Stream(dst, i, "out"))
        if layer.conv is not None:
            win = f"{ident}_win"
            p.streams.append(Stream(win, i, "in"))
            p.units.append(Unit("window", i, src, win, window_params(layer)))
            src = win
        mv_dst = f"{ident}_mv" if layer.pool is not None else dst
        if layer.pool is not None:
            p.streams.append(Stream(mv_dst, i, "out"))
        p.units.append(Unit("mvau", i, src, mv_dst))
        if layer.pool is not None:
            p.units.append(Unit("pool", i, mv_dst, dst, pool_params(layer)))
        src = dst
        if not last and layer.pe != layers[i + 1].simd:
            conv = f"{idents[i + 1]}_in"
            p.streams.append(Stream(conv, i + 1, "in"))
            p.units.append(Unit("convert", i, src, conv,
                                convert=(layer.pe, layers[i + 1].simd, layer.out_dtype.bits, layer.out_len)))
            src = conv
    if graph.topk is not None:
        p.units.append(Unit("topk", len(layers) - 1, src, "out"))
    return p
