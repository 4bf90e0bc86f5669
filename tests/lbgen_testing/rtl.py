"""What a testbench needs to know of an emitted ``lbgen_top``: its port widths
and every layer's output stream format, from the RTL plan of the emitter."""

from __future__ import annotations

from typing import Any

from lbgen.emitters.rtl import TOP, rtl_plan
from lbgen.ir import Graph
from lbgen.passes.folding import folding_bound


def rtl_interface(graph: Graph) -> dict[str, Any]:
    """Port widths of the top and the format of every layer's output stream.

    IN_W = SIMD(first) * bits(input), OUT_W = PE(last) * acc_bits(last);
    ``layers`` lists, per layer, the prefix of its ``<prefix>_out_tdata/
    _tvalid/_tready`` wires in the top, elements per beat, element bits and
    dtype, beats per frame.
    """
    plan = rtl_plan(graph)
    first = graph.layers[0]
    out_dt, out_per_beat, out_beats = graph.output_stream()
    return {
        "top": TOP,
        "IN_W": plan["in_w"], "OUT_W": plan["out_w"],
        "in_per_beat": first.simd, "in_dtype": first.itype, "in_beats": first.sf,
        "out_per_beat": out_per_beat, "out_dtype": out_dt, "out_beats": out_beats,
        "cycles_per_frame": folding_bound(graph),
        "layers": [
            {"name": layer.name, "prefix": lp["id"], "tdata_w": lp["out_w"], "per_beat": layer.pe,
             "elem_bits": lp["out_elem_bits"], "dtype": layer.out_dtype, "beats": graph.layer_out_len(layer) // layer.pe,
             "cycles": graph.cycles(layer)}
            for layer, lp in zip(graph.layers, plan["layers"])
        ],
    }
