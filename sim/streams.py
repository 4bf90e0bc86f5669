"""Stream descriptions shared by the runner (codegen/simulate.py) and the cocotb testbench.

A *stream spec* says how a layer's output (or the top's input) is cut into
AXI-Stream beats, per docs/emit-contract.md: ``per_beat`` elements of one
number format each, element i at bits [i*W +: W], ``beats`` beats per frame.
Specs travel between the two processes as plain JSON, so the testbench needs
neither the IR nor the golden model, only lbgen.ir.DType and lbgen.packing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from lbgen.dataflow import layer_idents
from lbgen.ir import DType, Graph
from lbgen.packing import pack_stream


@dataclass(frozen=True)
class StreamSpec:
    """One AXI-Stream: ``beats`` beats of ``per_beat`` elements of ``kind``/``bits`` per frame."""

    name: str          # layer name, or "s_axis" for the top's input
    kind: str
    bits: int
    per_beat: int
    beats: int         # beats per frame
    prefix: str = ""   # the layer's Verilog name: wires <prefix>_out_tdata/_tvalid/_tready
    stage: str = "layer"   # "layer", or "topk": the top-K unit (elements are positions, not channels)

    @property
    def label(self) -> str:
        """How messages name the stream."""
        return "topk stage" if self.stage == "topk" else f"layer {self.name!r}"

    @property
    def element_word(self) -> str:
        return "position" if self.stage == "topk" else "channel"

    @property
    def dtype(self) -> DType:
        return DType(self.kind, self.bits)

    @property
    def width(self) -> int:
        """tdata width in bits."""
        return self.per_beat * self.bits

    @property
    def elements(self) -> int:
        """Elements per frame."""
        return self.per_beat * self.beats

    def to_json(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_json(d: dict) -> "StreamSpec":
        return StreamSpec(str(d["name"]), str(d["kind"]), int(d["bits"]), int(d["per_beat"]), int(d["beats"]),
                          str(d.get("prefix") or d["name"]), str(d.get("stage", "layer")))


def input_spec(graph: Graph) -> StreamSpec:
    first = graph.layers[0]
    return StreamSpec("s_axis", first.itype.kind, first.itype.bits, first.simd, graph.in_len // first.simd, "s_axis")


#: name and wire prefix of the top-K unit's stream (lbgen.emitters.rtl.TOPK_ID)
TOPK_STAGE = "topk"


def layer_specs(graph: Graph) -> list[StreamSpec]:
    """The output stream of every layer, input first, then the top-K unit's if the graph
    has one; the last one is also m_axis."""
    idents = layer_idents(graph)
    specs = [StreamSpec(l.name, l.out_dtype.kind, l.out_dtype.bits, l.pe, graph.layer_out_len(l) // l.pe, ident)
             for l, ident in zip(graph.layers, idents)]
    if graph.topk is not None:
        dt, per_beat, beats = graph.output_stream()
        specs.append(StreamSpec(TOPK_STAGE, dt.kind, dt.bits, per_beat, beats, TOPK_STAGE, "topk"))
    return specs


def pack_frames(values: np.ndarray, spec: StreamSpec) -> list[list[int]]:
    """(N, elements) values -> N frames of beat integers (lbgen.packing.pack_stream)."""
    values = np.asarray(values, dtype=np.int64)
    if values.ndim != 2 or values.shape[1] != spec.elements:
        raise ValueError(f"stream {spec.name!r}: values of shape {values.shape}, expected (N, {spec.elements})")
    return pack_stream(values, spec.dtype, spec.per_beat)


def beat_codes(beat: int | str, spec: StreamSpec) -> list[int | None]:
    """Element codes of one observed beat, element 0 first; None for an element with X/Z bits.

    A beat is an int, or the simulator's binary string when it holds X/Z bits.
    """
    w = spec.bits
    mask = (1 << w) - 1
    if isinstance(beat, int):
        return [(beat >> (i * w)) & mask for i in range(spec.per_beat)]
    s = beat[-spec.width:].rjust(spec.width, "0")  # the simulator's binary string, MSB first
    out: list[int | None] = []
    for i in range(spec.per_beat):
        lo = len(s) - (i + 1) * w
        field = s[lo:lo + w]
        out.append(int(field, 2) if set(field) <= {"0", "1"} else None)
    return out


def decode_beats(beats: Sequence[int | str], spec: StreamSpec) -> tuple[np.ndarray, np.ndarray]:
    """Observed beats -> (values, known): values (B, per_beat) int64, known False where X/Z.

    Unknown elements decode as 0 in ``values``.
    """
    n = len(beats)
    codes = np.zeros((n, spec.per_beat), dtype=np.uint64)
    known = np.ones((n, spec.per_beat), dtype=bool)
    for b, beat in enumerate(beats):
        for i, c in enumerate(beat_codes(beat, spec)):
            if c is None:
                known[b, i] = False
            else:
                codes[b, i] = c
    values = spec.dtype.decode(codes) if n else np.zeros((0, spec.per_beat), dtype=np.int64)
    return np.where(known, values, 0).astype(np.int64), known
