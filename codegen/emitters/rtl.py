"""Emit the Verilog design of a graph: static library + thin generated top.

``emit_rtl(graph, rtl_dir)`` writes into ``rtl_dir``:

* the static, hand-written library ``lb_*.v`` copied from ``templates/rtl``;
* ``lbgen_top.v`` rendered from ``templates/rtl/lbgen_top.v.j2``: one
  ``lb_mvau`` per layer, and between layers an ``lb_axis_dwc`` (when PE of
  one layer differs from SIMD of the next) and an ``lb_axis_fifo``;
* ``<layer>_weights.mem`` and the thresholds ($readmemh): one
  ``<layer>_thresholds.mem`` for the parallel threshold unit, or
  ``<layer>_thr<stage>_<pe:04d>.mem`` per stage and PE for the binary-search
  unit (``threshold_unit``); ``<layer>_init.mem`` when the initial
  accumulators differ per channel (``accumulator_offsets``);
* ``filelist.f``: the library files, then the top, one per line.

Every width, depth, file name and parameter is computed here (``rtl_plan``);
the template only formats.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import jinja2

import numpy as np

from ..huffman import HuffmanCode, LaneStream, huffman_lanes
from ..ir import (KINDS, ConvGeom, Graph, IRError, MatVec, PaddingCorrection, check_thresholds_shape,
                  padding_corrections, topk_terms)
from ..packing import (pack_elements, threshold_search_words, threshold_word_bits, threshold_words,
                       weight_words, write_mem)
from .. import dataflow
from .. import pe as processing_elements

TOP = "lbgen_top"
TOP_TEMPLATE = "lbgen_top.v.j2"
#: the top-K unit's instance prefix in the top (wires topk_in_*, topk_out_*) and its score ROM
TOPK_ID = dataflow.TOPK_ID
TOPK_MEM = "topk_scores.mem"

#: number kind -> W_KIND / IN_KIND parameter of lb_mvau: its index in lbgen.ir.KINDS
KIND_CODE = {kind: code for code, kind in enumerate(KINDS)}
#: PLANE_SCALES: 32 bits per plane, up to four planes
PLANE_SCALE_BITS, PLANE_SCALES_W = 32, 128


def rtl_library_dir():
    """The static RTL library as an importlib Traversable (editable install or wheel)."""
    return importlib.resources.files("lbgen.templates") / "rtl"


def library_files() -> list[str]:
    """Names of the static library files, in the order filelist.f lists them."""
    return sorted(p.name for p in rtl_library_dir().iterdir()
                  if p.name.startswith("lb_") and p.name.endswith(".v"))


def _comment(text: str) -> str:
    """Text safe inside a // comment."""
    return " ".join(str(text).split())


def accumulator_offsets(layer: MatVec) -> np.ndarray:
    """Initial accumulator of every channel, (mh,) int64.

    lb_mvau_core sums bit heaps that leave out a constant part of every
    product (see its header); the accumulator starts from minus that part,
    so that it ends at the exact dot product. This mirrors the RTL bit by bit.
    """
    return processing_elements.of(layer, rtl=True).heap_offsets(layer)


def _init_words(layer: MatVec, offsets: np.ndarray) -> list[int]:
    """Initial-accumulator ROM: offsets (classes, mh) at address {class, nf}
    (lb_mvau: NFW address bits for nf, unused addresses 0). The engine sums
    modulo 2^acc_bits and only its final sum must fit, so an initial value
    outside the range (a large border correction) is stored modulo 2^acc_bits."""
    nfw = max(1, (layer.nf - 1).bit_length())
    words = [0] * (len(offsets) << nfw)
    for cls, row in enumerate(offsets):
        codes = np.mod(row, 1 << layer.acc_bits).astype(np.uint64).reshape(layer.nf, layer.pe)
        for nf in range(layer.nf):
            words[(cls << nfw) + nf] = pack_elements(codes[nf], layer.acc_bits)
    return words if len(offsets) > 1 else words[:layer.nf]


def initial_accumulators(layer: MatVec, conv: Optional[ConvGeom]) -> tuple[np.ndarray, Optional[PaddingCorrection]]:
    """(classes, mh) initial accumulators: the bit heaps' constant
    (``accumulator_offsets``) plus, for a bipolar-input convolution (behind a
    window of geometry ``conv``) with padding, each border class's correction;
    one class otherwise."""
    base = accumulator_offsets(layer)
    corr = padding_corrections(layer, conv)
    if corr is None:
        return base[None, :], None
    return base[None, :] + corr.offsets.reshape(-1, layer.mh), corr


def _packed(values: np.ndarray, bits: int) -> str:
    return _vhex(bits * len(values), pack_elements(np.asarray(values, dtype=np.uint64), bits))


def _vhex(width: int, value: int) -> str:
    """A sized Verilog hex literal of the low ``width`` bits of value."""
    return f"{width}'h{value & ((1 << width) - 1):x}"


def _check(graph: Graph) -> None:
    graph.validate()
    for layer in graph.layers:
        if layer.activation is not None:
            raise IRError(f"layer {layer.name!r}: fold thresholds before emitting RTL")
    check_thresholds_shape(graph)
    for layer in graph.layers:
        if layer.thresholds is None:
            continue
        assert layer.odtype is not None
        if layer.odtype.kind == "int":
            # the threshold unit produces unsigned levels 0..2^bits-1
            raise IRError(f"layer {layer.name!r}: a hidden layer's output must be bipolar or uint, "
                          f"not {layer.odtype}")
    for layer in graph.layers:
        processing_elements.of(layer, rtl=True)


#: output bits from which a hidden layer gets the binary-search threshold unit
SEARCH_MIN_BITS = 2


def threshold_unit(layer: MatVec) -> str:
    """``"parallel"`` (lb_thresh: 2^B - 1 comparators per channel, one stage)
    or ``"search"`` (lb_thresh_search: B comparators, B pipeline stages, one
    small ROM per stage and PE).

    The parallel unit's comparators grow as 2^B; the search unit pays B - 1
    registered copies of the accumulator and a ROM read per stage, in
    flip-flops, of which a slice has two per LUT. Measured with
    ``bench/lut_per_lane.py --thresholds parallel|search`` (MW 256, MH 64): at
    B = 2 search takes 1-9 % fewer LUTs (W1A2: 8.50 vs 9.31 LUT/lane at SIMD 16,
    PE 1; 4.39 vs 4.66 at SIMD 64, PE 4), at B = 3 4-17 % fewer, at B = 4 up to
    42 % fewer. At B = 1 both are one comparator; the parallel unit keeps one ROM.
    """
    return "search" if layer.out_dtype.bits >= SEARCH_MIN_BITS else "parallel"


def threshold_files(layer: MatVec, ident: str) -> list[str]:
    """The threshold ROM files of a hidden layer, stage-major for "search"."""
    if threshold_unit(layer) == "parallel":
        return [f"{ident}_thresholds.mem"]
    return [f"{ident}_thr{k}_{p:04d}.mem" for k in range(layer.out_dtype.bits) for p in range(layer.pe)]


#: bits per lane in lb_huff_weights' LANE_META
HUFF_META_BITS = 96
#: file names carry a four-digit lane index
HUFF_MAX_LANES = 9999


def huffman_files(layer: MatVec, ident: str) -> list[str]:
    return [f"{ident}_huff_{i:04d}.mem" for i in range(layer.pe * layer.simd)]


def huffman_weights_params(code: HuffmanCode, lanes: Sequence[LaneStream], sym_bits: int,
                           pass_len: int) -> dict[str, Any]:
    """lb_huff_weights' parameters (all but INIT_FILE) for ``lanes`` coded with ``code``."""
    big_l = code.max_len
    order = code.order
    ixw = max(1, len(order).bit_length())                  # 2^IXW > NSYM
    entry = big_l + 1
    lj = sum((v << (big_l - ln)) << (entry * ln) for ln, v in enumerate(code.limit) if ln)
    first = sum(v << (entry * ln) for ln, v in enumerate(code.first) if ln)
    base = sum(v << (ixw * ln) for ln, v in enumerate(code.base) if ln)
    meta = sum(((s.last_bits << 80) | (s.checksum << 64) | (s.n_bits << 32) | s.depth) << (HUFF_META_BITS * i)
               for i, s in enumerate(lanes))
    return {
        "LANES": len(lanes), "L": big_l, "FW": lanes[0].fw, "WB": sym_bits, "NSYM": len(order), "IXW": ixw,
        "LJ": _vhex(entry * (big_l + 1), lj), "FIRST": _vhex(entry * (big_l + 1), first),
        "BASE": _vhex(ixw * (big_l + 1), base),
        "ORDER": _packed(np.array(order, dtype=np.uint64), sym_bits),
        "PASS_LEN": pass_len, "KW": max(1, (pass_len - 1).bit_length()),
        "LANE_META": _vhex(HUFF_META_BITS * len(lanes), meta),
    }


def huffman_params(layer: MatVec, ident: str) -> list[tuple[str, Any]]:
    """lb_mvau's HUFF_* parameters (lb_huff_weights, lb_huff_lane) of a Huffman-coded layer."""
    assert layer.huffman is not None
    lanes = huffman_lanes(layer)
    if len(lanes) > HUFF_MAX_LANES:
        raise IRError(f"layer {layer.name!r}: {len(lanes)} Huffman lanes (PE x SIMD); the lane files are "
                      f"numbered with four digits, so at most {HUFF_MAX_LANES}")
    p = huffman_weights_params(layer.huffman, lanes, layer.wtype.bits, layer.nf * layer.sf)
    # LANES, WB and PASS_LEN follow from lb_mvau's own PE, SIMD, WEIGHT_BITS and folding
    return [("WEIGHT_HUFF", 1)] + [(f"HUFF_{k}" if k != "LANE_META" else "HUFF_META", v) for k, v in p.items()
                                   if k not in ("LANES", "WB", "PASS_LEN")]


def _layer_plan(graph: Graph, layer: MatVec, ident: str) -> dict[str, Any]:
    """One layer's lb_mvau parameters, ROM files and summary for the top template."""
    pe = processing_elements.of(layer, rtl=True)
    hidden = not layer.is_output
    out_bits = layer.out_dtype.bits
    n_thresh = layer.thresholds.shape[1] if hidden else 1
    search = hidden and threshold_unit(layer) == "search"
    thr_files = threshold_files(layer, ident) if hidden else []
    conv, pool = graph.conv(layer), graph.pool(layer)
    offsets, corr = initial_accumulators(layer, conv)
    per_channel = bool(np.any(offsets != offsets[0, 0]))
    scales = layer.wtype.scales or (1,)
    packed_scales = sum(k << (PLANE_SCALE_BITS * i) for i, k in enumerate(scales))
    params = [
        ("MW", layer.mw), ("MH", layer.mh), ("PE", layer.pe), ("SIMD", layer.simd),
        ("WEIGHT_BITS", layer.wtype.bits), ("W_KIND", KIND_CODE[layer.wtype.kind]),
        ("IN_BITS", layer.itype.bits), ("IN_KIND", KIND_CODE[layer.itype.kind]),
        ("ACC_BITS", layer.acc_bits), ("PE_KIND", pe.code),
        ("N_PLANES", len(scales)), ("PLANE_SCALES", _vhex(PLANE_SCALES_W, packed_scales)),
        ("ACC_INIT", _vhex(64, 0 if per_channel else int(offsets[0, 0]))),
        ("USE_THRESH", int(hidden)), ("N_THRESH", n_thresh), ("THRESH_SEARCH", int(search)),
        ("OUT_BITS", out_bits if hidden else 1),
        ("WEIGHT_FILE", f'"{huffman_files(layer, ident)[0]}"' if layer.huffman else f'"{ident}_weights.mem"'),
        ("THRESH_FILE", f'"{thr_files[0]}"' if hidden else '""'),
        ("INIT_FILE", f'"{ident}_init.mem"' if per_channel else '""'),
    ]
    if conv is not None:
        params += [("PIXELS", layer.pixels), ("OUT_W", conv.out_w)]
    if layer.huffman is not None:
        params += huffman_params(layer, ident)
    if corr is not None and len(offsets) > 1:
        class_bits = max(1, (max(corr.offsets.shape[:2]) - 1).bit_length())
        params += [("N_CLASS", len(offsets)), ("N_COL_CLASS", corr.offsets.shape[1]),
                   ("CLASS_BITS", class_bits), ("ROW_CLASS", _packed(corr.row_class, class_bits)),
                   ("COL_CLASS", _packed(corr.col_class, class_bits))]
    swu = dataflow.window_params(layer, conv) if conv is not None else None
    maxpool = dataflow.pool_params(layer, pool) if pool is not None else None
    return {
        "name": _comment(layer.name), "source": _comment(layer.source), "id": ident,
        "mw": layer.mw, "mh": layer.mh, "pe": layer.pe, "simd": layer.simd,
        "nf": layer.nf, "sf": layer.sf, "cycles": graph.cycles(layer),
        "itype": str(layer.itype), "wtype": str(layer.wtype), "otype": str(layer.out_dtype),
        "pe_kind": pe.name, "acc_bits": layer.acc_bits,
        "in_w": layer.simd * layer.itype.bits, "out_w": layer.pe * out_bits,
        "out_elem_bits": out_bits, "hidden": hidden,
        "params": [(k, str(v)) for k, v in params],
        "weights_mem": None if layer.huffman else f"{ident}_weights.mem",
        "huffman_mem": huffman_files(layer, ident) if layer.huffman else [],
        "weights_w": layer.pe * layer.simd * layer.wtype.bits,
        "threshold_unit": ("search" if search else "parallel") if hidden else None,
        "thresholds_mem": thr_files,
        "init_mem": f"{ident}_init.mem" if per_channel else None,
        "init_words": _init_words(layer, offsets) if per_channel else None,
        "swu": [(k, str(v)) for k, v in swu] if swu else None,
        "maxpool": [(k, str(v)) for k, v in maxpool] if maxpool else None,
        "pixels": layer.pixels,
        "init_w": layer.pe * layer.acc_bits,
    }


def _unit_plan(unit: dataflow.Unit, flow: dataflow.Plan, graph: Graph,
               layers: list[dict[str, Any]], topk: Optional[dict[str, Any]]) -> dict[str, Any]:
    """One unit of the dataflow plan as the top template instantiates it: its
    core's parameters and a comment; streams by name (``<name>_tdata`` ...)."""
    lp = layers[unit.layer]
    d: dict[str, Any] = {"kind": unit.kind, "id": lp["id"], "src": unit.src, "dst": unit.dst,
                         "dst_tlast": flow.stream(unit.dst).tlast, "params": [(k, str(v)) for k, v in unit.params]}
    if unit.kind == "window":
        d["comment"] = f"layer {lp['name']}: sliding window, {lp['pixels']} windows of {lp['sf']} beats"
    elif unit.kind == "mvau":
        d["comment"] = f"layer {lp['name']}" + (f" ({lp['source']})" if lp["source"] and lp["source"] != lp["name"]
                                                else "")
        d["params"] = lp["params"]
    elif unit.kind == "pool":
        d["comment"] = f"layer {lp['name']}: max-pool"
    elif unit.kind == "convert":
        in_n, out_n, w, frame = unit.convert
        d["comment"] = f"{lp['id']} -> next layer: {in_n} -> {out_n} elements of {w} bits per beat"
        d["params"] = [("W", str(w)), ("IN_N", str(in_n)), ("OUT_N", str(out_n)), ("FRAME", str(frame))]
    elif unit.kind == "fifo":
        width = flow.stream(unit.dst).width
        d["comment"] = f"{unit.src} -> {unit.dst}: FIFO of {unit.depth} beats"
        d["params"] = [("WIDTH", str(width)), ("DEPTH", str(unit.depth))]
    else:
        d["comment"] = f"top-K unit: the {topk['k']} largest of {topk['classes']} classes"
        d["params"], d["id"] = topk["params"], TOPK_ID
    return d


def rtl_plan(graph: Graph) -> dict[str, Any]:
    """Everything the top template renders: the dataflow plan (lbgen.dataflow)
    with every layer's and unit's parameters."""
    _check(graph)
    flow = dataflow.plan(graph)
    ids = flow.idents
    layers = [_layer_plan(graph, layer, ident) for layer, ident in zip(graph.layers, ids)]
    first, last = graph.layers[0], graph.layers[-1]
    out_dt, out_per_beat, _ = graph.output_stream()
    topk = topk_plan(graph, ids[-1])
    return {
        "top": TOP, "graph_name": _comment(graph.name),
        "in_w": first.simd * first.itype.bits, "out_w": out_per_beat * out_dt.bits,
        "in_per_beat": first.simd, "in_dtype": str(first.itype),
        "out_per_beat": out_per_beat, "out_elem_bits": out_dt.bits,
        "out_note": ("class indices, largest first" if topk else
                     "raw accumulators" if last.is_output else "levels"),
        "out_dtype": str(out_dt) if not last.is_output or topk else f"int{last.acc_bits}",
        "layers": layers, "topk": topk,
        "units": [_unit_plan(u, flow, graph, layers, topk) for u in flow.units],
        "streams": [{"name": s.name, "width": s.width, "tlast": s.tlast} for s in flow.streams],
        "input": flow.input, "output": flow.output,
        # tlast nobody reads: every stream's but the output's (engines and the top-K unit count beats)
        "unused_tlast": [s.name for s in flow.streams if s.tlast and s.name != flow.output],
    }


def topk_words(graph: Graph) -> list[int]:
    """The top-K unit's score ROM: word c = {B_c, S_c} (two's complement, S_c in the low
    SCALE_BITS), lbgen.ir.topk_terms; empty when the unit compares the elements directly."""
    t = topk_terms(graph)
    if not t.use_scale:
        return []
    words = []
    for c in range(t.classes):
        sc = t.scale[c] & ((1 << t.scale_bits) - 1)
        bc = t.bias[c] & ((1 << t.bias_bits) - 1)
        words.append(sc | (bc << t.scale_bits))
    return words


def topk_plan(graph: Graph, last_id: str) -> Optional[dict[str, Any]]:
    """lb_topk's parameters and the FIFO in front of it (one frame of the last layer's beats)."""
    if graph.topk is None:
        return None
    t = topk_terms(graph)
    last = graph.layers[-1]
    params = [("PE", last.pe), ("NF", last.nf), ("IN_BITS", t.in_bits), ("IN_SIGNED", int(t.in_signed)),
              ("K", t.k), ("IDX_BITS", t.idx_bits), ("USE_SCALE", int(t.use_scale)),
              ("SCALE_BITS", t.scale_bits), ("BIAS_BITS", t.bias_bits), ("SCORE_BITS", t.score_bits),
              ("SCORE_FILE", f'"{TOPK_MEM}"' if t.use_scale else '""')]
    return {
        "id": TOPK_ID, "src": last_id, "k": t.k, "classes": t.classes, "use_scale": t.use_scale,
        "in_w": last.pe * t.in_bits, "out_w": t.k * t.idx_bits, "depth": last.nf + 2,
        "score_bits": t.score_bits, "params": [(k, str(v)) for k, v in params],
        "mem": TOPK_MEM if t.use_scale else None, "mem_w": t.scale_bits + t.bias_bits,
    }


def render_top(plan: dict[str, Any]) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True, autoescape=False)
    template = env.from_string((rtl_library_dir() / TOP_TEMPLATE).read_text())
    return template.render(**plan)


def rom_images(graph: Graph, plan: Optional[dict[str, Any]] = None) -> Iterator[tuple[str, list[int], int]]:
    """Every ROM image ``lbgen_top.v`` reads with ``$readmemh``: (file name, words, bits per
    word), in the order ``emit_rtl`` writes them (``lbgen.integrity`` checks them against this)."""
    plan = plan if plan is not None else rtl_plan(graph)
    for layer, lp in zip(graph.layers, plan["layers"]):
        if lp["huffman_mem"]:
            for name, lane in zip(lp["huffman_mem"], huffman_lanes(layer)):
                yield name, lane.words, lane.fw
        else:
            yield lp["weights_mem"], weight_words(layer), lp["weights_w"]
        if lp["threshold_unit"] == "parallel":
            yield lp["thresholds_mem"][0], threshold_words(layer), threshold_word_bits(layer)
        elif lp["threshold_unit"] == "search":
            files = iter(lp["thresholds_mem"])
            for k, roms in enumerate(threshold_search_words(layer)):
                for words in roms:
                    yield next(files), words, layer.acc_bits + (k == 0)
        if lp["init_mem"]:
            yield lp["init_mem"], lp["init_words"], lp["init_w"]
    if plan["topk"] and plan["topk"]["mem"]:
        yield plan["topk"]["mem"], topk_words(graph), plan["topk"]["mem_w"]


def emit_rtl(graph: Graph, rtl_dir: Path) -> None:
    """Write the library, lbgen_top.v, the .mem files and filelist.f into rtl_dir."""
    plan = rtl_plan(graph)
    rtl_dir = Path(rtl_dir)
    rtl_dir.mkdir(parents=True, exist_ok=True)
    lib = library_files()
    if not lib:
        raise FileNotFoundError("the static RTL library (templates/rtl/lb_*.v) is missing from the install")
    src = rtl_library_dir()
    for name in lib:
        (rtl_dir / name).write_text((src / name).read_text())
    (rtl_dir / f"{TOP}.v").write_text(render_top(plan))
    for name, words, bits in rom_images(graph, plan):
        write_mem(rtl_dir / name, words, bits)
    (rtl_dir / "filelist.f").write_text("".join(f"{name}\n" for name in lib + [f"{TOP}.v"]))
