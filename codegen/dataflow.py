"""The dataflow of a graph: its units in stream order and the streams between
them, planned once from the IR; the RTL and the HLS emitters both render it.

Each node of the graph becomes a unit: a sliding-window unit (``window``), a
matrix-vector unit (``mvau``), a max-pool (``pool``). Between two layers a
width converter (``convert``) sits where the beats differ (PE of the first !=
SIMD of the next), then a FIFO (``fifo``) sized so that the producer never
waits on the consumer's fold pattern (:func:`fifo_depth`); a FIFO and a top-K
unit (``topk``) may follow the last layer.

Every layer has one identifier, the same in Verilog and C++
(:func:`layer_idents`), and every stream is named after the layer that owns
it: ``<id>_in`` (into the layer), ``<id>_win`` (windows into the engine),
``<id>_mv`` (engine into its pool), ``<id>_out`` (the layer's output),
``<id>_dwc`` (a converter's output, into the FIFO of the next layer);
``topk_in``/``topk_out`` around the top-K unit. ``Plan.input`` and
``Plan.output`` name the streams that are the design's input and output
ports. A stream carries its owner's input beats (``side`` "in": SIMD elements
of its input format) or output beats ("out": PE elements of its output).

The RTL renders every stream as AXI-Stream wires and every unit as an
instance of its library core; the HLS renders streams as ``hls::stream`` and
units as calls, a FIFO as the depth of the stream it reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from .ir import ConvGeom, Graph, IRError, MatVec, PoolGeom, SlidingWindow, pad_code, topk_terms

#: the top-K unit's identifier (its streams ``topk_in``/``topk_out``, instance, C++ config)
TOPK_ID = "topk"

_VERILOG_KEYWORDS = frozenset("""
always and assign automatic begin buf bufif0 bufif1 case casex casez cell cmos config deassign
default defparam design disable edge else end endcase endconfig endfunction endgenerate endmodule
endprimitive endspecify endtable endtask event for force forever fork function generate genvar
highz0 highz1 if ifnone incdir include initial inout input instance integer join large liblist
library localparam macromodule medium module nand negedge nmos nor noshowcancelled not notif0
notif1 or output parameter pmos posedge primitive pull0 pull1 pulldown pullup
pulsestyle_onevent pulsestyle_ondetect rcmos real realtime reg release repeat rnmos rpmos rtran
rtranif0 rtranif1 scalared showcancelled signed small specify specparam strong0 strong1 supply0
supply1 table task time tran tranif0 tranif1 tri tri0 tri1 triand trior trireg unsigned use
uwire vectored wait wand weak0 weak1 while wire wor xnor xor
""".split())
_CPP_KEYWORDS = frozenset("""
alignas alignof asm auto bool break case catch char char16_t char32_t char8_t class concept const
consteval constexpr constinit const_cast continue co_await co_return co_yield decltype default delete
do double dynamic_cast else enum explicit export extern false float for friend goto if inline int long
mutable namespace new noexcept nullptr operator private protected public register reinterpret_cast
requires return short signed sizeof static static_assert static_cast struct switch template this
thread_local throw true try typedef typeid typename union unsigned using virtual void volatile
wchar_t while
""".split())
#: names the generated tops use themselves: ports, the top, the top-K unit, lint sinks, the
#: library's prefixes
_RESERVED = frozenset({"lbgen_top", "clk", "rst_n", "in", "out", "std", "hls", "ap_int", "ap_uint", TOPK_ID})


def layer_idents(graph: Graph) -> list[str]:
    """One identifier per layer, legal and unique in Verilog and C++ alike.

    Characters outside [A-Za-z0-9_] become ``_``; a name that does not start
    with a letter, or starts like the libraries' own names (``lb``,
    ``unused``), gets ``l_`` in front; a keyword of either language or a name
    the tops use gets ``_`` behind. Two layers whose names map to the same
    identifier are an error that names both (an identifier is also a file
    name: ``<id>_weights.mem``)."""
    ids: list[str] = []
    seen: dict[str, str] = {}
    for layer in graph.layers:
        ident = re.sub(r"[^A-Za-z0-9_]", "_", layer.name) or "layer"
        if not ident[0].isalpha() or ident.startswith(("lb", "unused")):
            ident = "l_" + ident
        if ident in _VERILOG_KEYWORDS or ident in _CPP_KEYWORDS or ident in _RESERVED:
            ident += "_"
        if ident in seen:
            raise IRError(f"layer {layer.name!r}: its identifier {ident!r} collides with layer {seen[ident]!r}; "
                          "rename one of them")
        seen[ident] = layer.name
        ids.append(ident)
    return ids


@dataclass(frozen=True)
class Stream:
    name: str
    owner: int            # index of the layer whose beats it carries
    side: str             # "in": the owner's input beats, "out": its output beats, "topk": the top-K unit's
    width: int            # bits of a beat
    tlast: bool           # its producer marks the last beat of a frame


@dataclass(frozen=True)
class Unit:
    """One unit of the dataflow, reading ``src`` and writing ``dst``."""

    kind: str                          # "window" | "mvau" | "pool" | "convert" | "fifo" | "topk"
    layer: int                         # the layer it belongs to (convert, fifo: the layer before it)
    src: str
    dst: str
    params: tuple[tuple[str, int], ...] = ()   # the core's parameters (window, pool)
    #: a converter's sizes: elements per beat in and out, bits per element, elements per frame
    convert: Optional[tuple[int, int, int, int]] = None
    depth: int = 0                     # a FIFO's beats


@dataclass
class Plan:
    idents: list[str]
    input: str                 # the stream that is the design's input port
    output: str                # the stream that is the design's output port
    units: list[Unit] = field(default_factory=list)
    streams: list[Stream] = field(default_factory=list)

    def stream(self, name: str) -> Stream:
        return next(s for s in self.streams if s.name == name)


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


def fifo_depth(layer: MatVec, conv: Optional[ConvGeom]) -> int:
    """Beats of the FIFO in front of a layer.

    The engine takes its whole input frame (SF beats) during neuron fold 0 and
    none during folds 1..NF-1. A FIFO holding one input frame lets the layer
    before keep producing meanwhile, so neither side waits on the other's
    fold pattern and the pipeline runs at the slowest layer's NF*SF; two
    more beats cover the handshake latency. A convolution's sliding-window
    unit takes its input row by row; one input row lets the producer run on
    while the unit still needs the rows it holds.
    """
    if conv is not None:
        return max(layer.sf, conv.in_w * conv.in_ch // layer.simd) + 2
    return layer.sf + 2


class _Planner:
    """Builds a Plan node by node; ``src`` is the stream the next unit reads."""

    def __init__(self, graph: Graph) -> None:
        self.graph, self.layers = graph, graph.layers
        ids = layer_idents(graph)
        self.plan = Plan(ids, input=f"{ids[0]}_in", output="")
        self.src = self.plan.input
        self.add_stream(self.src, 0, "in")

    def add_stream(self, name: str, owner: int, side: str, tlast: bool = False) -> str:
        layer = self.layers[owner]
        width = layer.simd * layer.itype.bits if side == "in" else layer.pe * layer.out_dtype.bits
        self.plan.streams.append(Stream(name, owner, side, width, tlast))
        return name

    def add(self, kind: str, layer: int, dst: str, **extra) -> None:
        self.plan.units.append(Unit(kind, layer, self.src, dst, **extra))
        self.src = dst

    def between(self, i: int) -> None:
        """Layer i's output into layer i + 1: a converter where the beats differ, then the FIFO."""
        here, nxt, ids = self.layers[i], self.layers[i + 1], self.plan.idents
        if here.pe != nxt.simd:
            self.add("convert", i, self.add_stream(f"{ids[i]}_dwc", i + 1, "in"),
                     convert=(here.pe, nxt.simd, here.out_dtype.bits, self.graph.layer_out_len(here)))
        self.add("fifo", i, self.add_stream(f"{ids[i + 1]}_in", i + 1, "in"),
                 depth=fifo_depth(nxt, self.graph.conv(nxt)))

    def topk(self) -> None:
        """The last layer's output through a FIFO of one frame into the top-K unit."""
        last, i = self.layers[-1], len(self.layers) - 1
        self.add("fifo", i, self.add_stream(f"{TOPK_ID}_in", i, "out"), depth=last.nf + 2)
        t = topk_terms(self.graph)
        self.plan.streams.append(Stream(f"{TOPK_ID}_out", i, "topk", t.k * t.idx_bits, True))
        self.add("topk", i, f"{TOPK_ID}_out")


def plan(graph: Graph) -> Plan:
    """The units and streams of ``graph``, node by node."""
    p = _Planner(graph)
    ids, layers = p.plan.idents, graph.layers
    index = {id(layer): i for i, layer in enumerate(layers)}
    i = -1
    for n, node in enumerate(graph.nodes):
        owner = node if isinstance(node, MatVec) else graph.nodes[n + 1 if isinstance(node, SlidingWindow) else n - 1]
        if index[id(owner)] != i:                    # the first node of a layer
            i = index[id(owner)]
            if i:
                p.between(i - 1)
        if isinstance(node, SlidingWindow):
            p.add("window", i, p.add_stream(f"{ids[i]}_win", i, "in", tlast=True),
                  params=window_params(layers[i], node.geom))
            continue
        ends_layer = not isinstance(node, MatVec) or graph.pool(node) is None      # a pool ends its layer
        dst = p.add_stream(f"{ids[i]}_out" if ends_layer else f"{ids[i]}_mv", i, "out", tlast=True)
        if isinstance(node, MatVec):
            p.add("mvau", i, dst)
        else:
            p.add("pool", i, dst, params=pool_params(layers[i], node.geom))
    if graph.topk is not None:
        p.topk()
    p.plan.output = p.src
    return p.plan
