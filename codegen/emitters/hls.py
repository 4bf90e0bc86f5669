"""Emit HLS C++ (Vitis HLS style) for a folded, threshold-folded graph.

``emit_hls(graph, hls_dir)`` writes into ``hls_dir``:

* the hand-written header library (``lbgen*.hpp`` from the ``lbgen.hls``
  package, i.e. the repository's ``hls/``), copied verbatim;
* ``lbgen_top.h``    the top's declaration, beat widths and beats per frame;
* ``lbgen_params.h`` one traits struct per layer plus its weight ROM, packed
  by ``lbgen.packing`` exactly as for the RTL, and its threshold ROMs: one
  per PE lane (``[PE][NF]``, finn-hlslib style), a word per channel
  (``threshold_rom``), so no word grows with PE;
* ``lbgen_top.cpp``  the DATAFLOW top: streams between layers, an MVAU per
  layer, a width converter wherever PE of a layer != SIMD of the next;
* ``tb_csim.cpp``    the C-simulation testbench (``lbgen.csim`` builds and runs it).

Templates render; every width, loop bound and constant is computed here.
"""

from __future__ import annotations

import importlib.resources
import math
import re
import shutil
from pathlib import Path
from typing import Any

import jinja2

import numpy as np

from ..huffman import huffman_lanes
from ..ir import (KINDS, STREAM_KINDS, DType, Graph, IRError, MatVec, check_thresholds_shape, padding_corrections,
                  topk_terms)
from ..packing import pack_elements, weight_words
from .. import dataflow
from .. import pe as processing_elements

#: the files a generated design consists of besides the library headers
GENERATED = ("lbgen_top.h", "lbgen_params.h", "lbgen_top.cpp", "tb_csim.cpp")

#: ap_types allow words up to 32768 bits (AP_INT_MAX_W); Vitis HLS as well
AP_INT_LIMIT = 32768

#: ROMs with at most this many words are put in LUTRAM, larger ones in BRAM
LUTRAM_MAX_DEPTH = 64

#: FIFO depth of the streams between layers
STREAM_DEPTH = 2


class HLSEmitError(IRError):
    """A graph the HLS emitter cannot express (names the layer)."""


def library_files() -> list[Any]:
    """The header library shipped as package data of ``lbgen.hls``."""
    root = importlib.resources.files("lbgen.hls")
    files = sorted((f for f in root.iterdir() if f.name.endswith((".hpp", ".h"))), key=lambda f: f.name)
    if not files:
        raise HLSEmitError(f"no HLS library headers found in the lbgen.hls package ({root})")
    return files


def _template(name: str) -> jinja2.Template:
    text = (importlib.resources.files("lbgen.templates") / "hls" / name).read_text()
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True, autoescape=False)
    return env.from_string(text)


#: number kinds that only weights have (the library has no stream element of them)
WEIGHT_ONLY_KINDS = tuple(kind for kind in KINDS if kind not in STREAM_KINDS)



def elem_type(dt: DType) -> str:
    """The lbgen number-kind trait of a DType (hls/lbgen_common.hpp)."""
    if dt.kind == "bipolar":
        return "lbgen::bipolar"
    if dt.kind == "hetero":
        # lbgen::hetero<N, K0, ...>: the plane scales are template parameters (unsigned)
        if any(not 1 <= k < (1 << 32) for k in dt.scales):
            raise HLSEmitError(f"{dt}: hetero plane scales must be in 1..2^32-1 for lbgen::hetero")
        return f"lbgen::hetero<{dt.planes}, {', '.join(str(k) for k in dt.scales)}>"
    return f"lbgen::{dt.kind}_k<{dt.bits}>"


def format_note(dt: DType) -> str:
    """A human-readable description of a number format for the generated comments."""
    if dt.kind == "log2":
        return (f"log2 {dt.bits}-bit (sign bit + {dt.bits - 1}-bit exponent field; "
                f"0, +-2^0..+-2^{dt.log2_max_exp})")
    if dt.kind == "hetero":
        return (f"hetero {dt.planes} plane{'s' if dt.planes > 1 else ''}, scales "
                f"({', '.join(str(k) for k in dt.scales)}), {dt.bits}-bit codes "
                f"(signs [0,{dt.planes}), mask [{dt.planes},{dt.bits}))")
    return str(dt)                      # bipolar, ternary, int4, uint2


def product_type(layer: MatVec) -> str:
    """The product functor of the layer's PE (lbgen.pe), over its element types."""
    where = f"layer {layer.name!r}"
    if layer.itype.kind in WEIGHT_ONLY_KINDS:
        raise HLSEmitError(f"{where}: {layer.itype} is a weight format; the HLS library has no {layer.itype.kind} "
                           f"input elements (inputs are bipolar, uint or int)")
    try:
        functor = processing_elements.of(layer).hls_functor
    except IRError as exc:
        raise HLSEmitError(str(exc)) from None
    return f"lbgen::{functor}<{elem_type(layer.wtype)}, {elem_type(layer.itype)}>"


def word_literal(word: int, bits: int) -> str:
    """An exact C++ initializer for an ap_uint<bits> ROM word."""
    assert 0 <= word < (1 << bits), (word, bits)
    digits = max(1, (bits + 3) // 4)
    if bits <= 64:
        return f"0x{word:0{digits}x}ULL"
    return f'ap_uint<{bits}>("0x{word:0{digits}x}", 16)'


def limbs_literal(word: int, bits: int) -> str:
    """The same word as a C initializer of ceil(bits/64) 64-bit limbs, least significant first."""
    n = (bits + 63) // 64
    return "{" + ", ".join(f"0x{(word >> (64 * k)) & ((1 << 64) - 1):x}ULL" for k in range(n)) + "}"


def channel_threshold_bits(layer: MatVec) -> int:
    """Width of one channel's threshold word: T thresholds of acc_bits plus the invert flag."""
    assert layer.thresholds is not None
    return int(layer.thresholds.shape[1]) * layer.acc_bits + 1


def threshold_rom(layer: MatVec) -> list[list[int]]:
    """The HLS threshold ROMs of a hidden layer, ``[PE][NF]`` words (lbgen_activation.hpp).

    Word [p][nf] belongs to channel nf*PE + p: element j (acc_bits, two's
    complement) is its threshold j, bit T*acc_bits its invert flag.
    """
    assert layer.thresholds is not None and layer.threshold_invert is not None
    t = int(layer.thresholds.shape[1])
    codes = DType("int", layer.acc_bits).encode(layer.thresholds)  # (mh, T)
    inv = np.asarray(layer.threshold_invert, dtype=bool).reshape(-1)
    words = [pack_elements(codes[c], layer.acc_bits) | (int(inv[c]) << (t * layer.acc_bits))
             for c in range(layer.mh)]
    return [[words[nf * layer.pe + p] for nf in range(layer.nf)] for p in range(layer.pe)]


def _c_string(text: str) -> str:
    """Text safe inside a C string literal."""
    return "".join(c if c.isalnum() or c in " _-.:/()[]" else "?" for c in str(text))


def huffman_context(layer: MatVec) -> dict[str, Any]:
    """The tables and streams of lbgen::HuffmanStreams for a Huffman-coded layer."""
    code = layer.huffman
    assert code is not None
    lanes = huffman_lanes(layer)
    depth = max(s.depth for s in lanes)
    return {
        "L": code.max_len, "FW": lanes[0].fw, "WB": layer.wtype.bits, "nsym": len(code.order),
        "lanes": len(lanes), "pass_len": layer.nf * layer.sf, "depth": depth,
        "limit": code.limit, "first": code.first, "base": code.base, "order": code.order,
        "lane_depth": [s.depth for s in lanes], "last_bits": [s.last_bits for s in lanes],
        "n_bits": [s.n_bits for s in lanes], "checksum": [s.checksum for s in lanes],
        "rom": [[f"0x{w:x}" for w in s.words + [0] * (depth - s.depth)] for s in lanes],
        "bits": sum(s.n_bits for s in lanes), "stored_bits": sum(s.depth * s.fw for s in lanes),
        "raw_bits": layer.mh * layer.mw * layer.wtype.bits,
    }


def _rom_impl(depth: int) -> str:
    return "lutram" if depth <= LUTRAM_MAX_DEPTH else "bram"


def converter_bits(in_elems: int, out_elems: int, elem_bits: int) -> int:
    """Widest word inside lbgen::width_convert (lbgen_stream.hpp) for these sizes."""
    if in_elems % out_elems == 0 or out_elems % in_elems == 0:
        return max(in_elems, out_elems) * elem_bits
    return (in_elems + out_elems - 1) * elem_bits


def _layer_context(graph: Graph, layer: MatVec, ident: str) -> tuple[dict[str, Any], list[tuple[int, str]]]:
    """One layer's traits and ROMs for the templates, and the words (bits, what)
    it adds to the ap_int width check."""
    if layer.activation is not None:
        raise HLSEmitError(f"layer {layer.name!r}: fold thresholds before emitting HLS")
    widths: list[tuple[int, str]] = []
    product = product_type(layer)          # refuses a PE that does not fit, naming the layer
    hidden = not layer.is_output
    out_dt = layer.out_dtype
    wwords = [] if layer.huffman else weight_words(layer)
    wbits = layer.pe * layer.simd * layer.wtype.bits
    d: dict[str, Any] = {
        "name": layer.name, "ident": ident, "cfg": f"{ident}_config", "source": layer.source,
        "mw": layer.mw, "mh": layer.mh, "pe": layer.pe, "simd": layer.simd,
        "nf": layer.nf, "sf": layer.sf, "cycles": graph.cycles(layer),
        "acc_bits": layer.acc_bits, "out_bits": out_dt.bits,
        "wtype": format_note(layer.wtype), "itype": format_note(layer.itype),
        "weight_note": (f"{layer.weight_bits_avg:.3f} planes (bits) used per weight on average"
                        if layer.wtype.kind == "hetero" else ""),
        "otype": str(out_dt) if hidden else f"raw int{layer.acc_bits} accumulators",
        "out_kind": out_dt.kind,
        "pe_kind": layer.pe_kind or processing_elements.choose(layer.wtype, layer.itype).name,
        "in_elem": elem_type(layer.itype), "weight_elem": elem_type(layer.wtype),
        "product": product,
        "in_beat_bits": layer.simd * layer.itype.bits,
        "weight_word_bits": wbits,
        "out_beat_bits": layer.pe * out_dt.bits,
        "weights": [word_literal(w, wbits) for w in wwords], "weight_depth": len(wwords),
        "weight_limbs": [limbs_literal(w, wbits) for w in wwords], "weight_limb_count": (wbits + 63) // 64,
        "weight_impl": _rom_impl(len(wwords)),
        "thresholds": None, "thresh_limbs": None, "thresh_limb_count": 0,
        "thresh_word_bits": 0, "n_thresholds": 0, "invert_bit": 0, "thresh_impl": "",
        "pixels": layer.pixels, "out_beats": graph.layer_out_len(layer) // layer.pe,
        "swu": None, "pool": None, "n_class": 1, "corr": None, "pix_class": None,
        "huff": huffman_context(layer) if layer.huffman else None,
        "name_c": _c_string(layer.name),
    }
    conv, pool = graph.conv(layer), graph.pool(layer)
    if conv is not None:
        d["swu"] = list(dataflow.window_params(layer, conv))
    if pool is not None:
        d["pool"] = list(dataflow.pool_params(layer, pool))
    corr = padding_corrections(layer, conv)
    if corr is not None and corr.offsets.size > layer.mh:
        offsets = corr.offsets.reshape(-1, layer.mh)          # class = row class * columns + column class
        top = 1 << layer.acc_bits
        wrapped = (offsets + top // 2) % top - top // 2        # acc_t arithmetic wraps the same way
        d["n_class"] = len(offsets)
        d["corr"] = [[[str(int(wrapped[c, nf * layer.pe + p])) for nf in range(layer.nf)]
                      for p in range(layer.pe)] for c in range(len(offsets))]
        ncol = corr.offsets.shape[1]
        d["pix_class"] = [str(int(r * ncol + c)) for r in corr.row_class for c in corr.col_class]
    if wbits > AP_INT_LIMIT:
        raise HLSEmitError(f"layer {layer.name!r}: its weight word (PE={layer.pe} x SIMD={layer.simd} x "
                           f"{layer.wtype.bits}-bit weights) is {wbits} bits wide, more than ap_int's "
                           f"{AP_INT_LIMIT}; choose a smaller PE or SIMD for it "
                           f"(--pe/--simd, or --folding for this layer)")
    widths += _activation_context(layer, d)
    widths += [(wbits, f"{layer.name} weight word"), (d["in_beat_bits"], f"{layer.name} input beat"),
               (d["out_beat_bits"], f"{layer.name} output beat")]
    return d, widths


def _activation_context(layer: MatVec, d: dict[str, Any]) -> list[tuple[int, str]]:
    """The layer's activation in ``d``: a multi-threshold unit and its ROM, or
    raw accumulators out of the last layer. Returns the words it adds to the
    width check."""
    out_dt = layer.out_dtype
    if layer.is_output:
        d["activation"] = f"lbgen::RawAccumulator<{layer.pe}, {layer.acc_bits}>"
        return []
    if out_dt.bits > 16:
        raise HLSEmitError(f"layer {layer.name!r}: {out_dt} outputs need {(1 << out_dt.bits) - 1} "
                           f"thresholds per channel; the multi-threshold unit takes up to 16 bits")
    t = int(layer.thresholds.shape[1])
    tbits = channel_threshold_bits(layer)
    if tbits > AP_INT_LIMIT:
        raise HLSEmitError(f"layer {layer.name!r}: one channel's threshold word ({t} thresholds x "
                           f"{layer.acc_bits}-bit accumulator + invert flag) is {tbits} bits wide, "
                           f"more than ap_int's {AP_INT_LIMIT}; use fewer output bits or a narrower "
                           f"accumulator (--acc auto)")
    rom = threshold_rom(layer)
    d.update(
        activation=f"lbgen::MultiThreshold<{layer.pe}, {t}, {layer.acc_bits}, {out_dt.bits}>",
        thresholds=[[word_literal(w, tbits) for w in row] for row in rom],
        thresh_limbs=[[limbs_literal(w, tbits) for w in row] for row in rom],
        thresh_limb_count=(tbits + 63) // 64,
        thresh_word_bits=tbits, n_thresholds=t, invert_bit=t * layer.acc_bits,
        thresh_impl=_rom_impl(layer.nf),
    )
    return [(tbits, f"{layer.name} threshold word (one channel)")]


def _dataflow_steps(graph: Graph, flow: dataflow.Plan, layers: list[dict[str, Any]],
                    topk: dict[str, Any] | None):
    """The streams and steps of the top function, in the order of the dataflow
    plan (lbgen.dataflow), and the converter words for the width check.

    A FIFO of the plan is the depth of the stream it reads (its output is that
    stream under another name); the plan's input and output streams are the
    top function's ``in`` and ``out``."""
    alias = {u.dst: u.src for u in flow.units if u.kind == "fifo"}
    depth = {u.src: u.depth for u in flow.units if u.kind == "fifo"}

    def name(stream: str) -> str:
        while stream in alias:
            stream = alias[stream]
        return {flow.input: "in", flow.output: "out"}.get(stream, stream)

    streams = [{"name": s.name, "type": f"{layers[s.owner]['cfg']}::{s.side}_beat_t",
                "depth": max(STREAM_DEPTH, depth.get(s.name, 0))}
               for s in flow.streams if s.name not in alias and name(s.name) not in ("in", "out")]
    steps: list[dict[str, Any]] = []
    widths: list[tuple[int, str]] = []
    for u in flow.units:
        if u.kind == "fifo":
            continue
        layer, d = graph.layers[u.layer], layers[u.layer]
        step: dict[str, Any] = {"src": name(u.src), "dst": name(u.dst)}
        if u.kind == "window":
            step.update(kind="swu", cfg=f"{d['ident']}_swu_config",
                        comment=f"{layer.name}: sliding window, {layer.pixels} windows of {layer.sf} beats")
        elif u.kind == "mvau":
            args = [f"{d['ident']}_weights"] + ([f"{d['ident']}_thresholds"] if d["thresholds"] is not None else [])
            if d["corr"] is not None:
                args += [f"{d['ident']}_corr", f"{d['ident']}_pix_class"]
            step.update(kind="mvau", cfg=d["cfg"], args=args, trace_name=None if d["pool"] else d["ident"],
                        beats=d["out_beats"],
                        comment=f"{layer.name}: {layer.mh}x{layer.mw} {d['pe_kind']}, "
                                + (f"{layer.pixels} pixels x " if layer.pixels > 1 else "")
                                + f"{layer.sf} beats in, {layer.nf} beats out")
        elif u.kind == "pool":
            pool = graph.pool(layer)
            step.update(kind="pool", cfg=f"{d['ident']}_pool_config", trace_name=d["ident"], beats=d["out_beats"],
                        comment=f"{layer.name}: {pool.k}x{pool.k} max-pool")
        elif u.kind == "convert":
            in_elems, out_elems, elem_bits, frame = u.convert
            nxt = graph.layers[u.layer + 1]
            step.update(kind="convert", in_elems=in_elems, out_elems=out_elems, elem_bits=elem_bits, frame=frame,
                        comment=f"{layer.name} -> {nxt.name}: {in_elems}-element beats to {out_elems}-element beats")
            widths.append((converter_bits(in_elems, out_elems, elem_bits), f"{layer.name} -> {nxt.name} width converter"))
        else:
            step.update(kind="topk", cfg=topk["cfg"], args=[topk["rom"]] if topk["use_scale"] else [],
                        comment=f"top-K unit: the {topk['k']} largest of {topk['classes']} classes")
            widths += [(topk["out_w"], "top-K output beat"),
                       (topk["score_bits"] + topk["scale_bits"], "top-K score product")]
        steps.append(step)
    return streams, steps, widths


def hls_context(graph: Graph) -> dict[str, Any]:
    """Everything the templates render, computed from the graph."""
    graph.validate()
    check_thresholds_shape(graph)
    flow = dataflow.plan(graph)
    layers: list[dict[str, Any]] = []
    widths: list[tuple[int, str]] = []
    for layer, ident in zip(graph.layers, flow.idents):
        d, w = _layer_context(graph, layer, ident)
        layers.append(d)
        widths += w
    topk = topk_context(graph)
    streams, steps, w = _dataflow_steps(graph, flow, layers, topk)
    widths += w
    max_width, where = max(widths)
    if max_width > AP_INT_LIMIT:
        raise HLSEmitError(f"{where} is {max_width} bits wide, more than ap_int's {AP_INT_LIMIT}; "
                           f"lower PE/SIMD of that layer (--pe/--simd, or --folding for one layer)")
    first = graph.layers[0]
    out_dt, out_per_beat, out_beats = graph.output_stream()
    return {
        "graph_name": graph.name,
        "layers": layers, "streams": streams, "steps": steps, "topk": topk,
        "max_width": max_width,
        "ap_int_max_w": max(1024, 1024 * math.ceil(max_width / 1024)),
        "in_w": first.simd * first.itype.bits, "in_beats": graph.in_len // first.simd, "in_elems": first.simd,
        "in_dtype": str(first.itype),
        "out_w": out_per_beat * out_dt.bits, "out_beats": out_beats, "out_elems": out_per_beat,
        "out_dtype": ("class index" if topk else f"int{out_dt.bits} accumulator" if graph.output.is_output
                      else f"{out_dt} level"),
    }


def topk_context(graph: Graph) -> dict[str, Any] | None:
    """The traits and score ROM of lbgen::topk (lbgen_topk.hpp), as lbgen.ir.topk_terms decides."""
    if graph.topk is None:
        return None
    t = topk_terms(graph)
    last = graph.layers[-1]
    ident = dataflow.TOPK_ID
    wbits = t.scale_bits + t.bias_bits
    words = [(t.scale[c] & ((1 << t.scale_bits) - 1)) | ((t.bias[c] & ((1 << t.bias_bits) - 1)) << t.scale_bits)
             for c in range(t.classes)] if t.use_scale else []
    params = [("PE", last.pe), ("NF", last.nf), ("CLASSES", t.classes), ("K", t.k), ("IDX_BITS", t.idx_bits),
              ("IN_BITS", t.in_bits), ("IN_SIGNED", int(t.in_signed)), ("USE_SCALE", int(t.use_scale)),
              ("SCALE_BITS", t.scale_bits), ("BIAS_BITS", t.bias_bits), ("SCORE_BITS", t.score_bits)]
    return {
        "ident": ident, "cfg": f"{ident}_config", "rom": f"{ident}_scores", "k": t.k, "classes": t.classes,
        "use_scale": t.use_scale, "params": params, "in_w": last.pe * t.in_bits, "out_w": t.k * t.idx_bits,
        "word_bits": wbits, "score_bits": t.score_bits, "scale_bits": t.scale_bits, "score_shift": t.shift,
        "words": [word_literal(w, wbits) for w in words], "limbs": [limbs_literal(w, wbits) for w in words],
        "limb_count": (wbits + 63) // 64,
    }


def trace_names(graph: Graph) -> dict[str, str]:
    """Layer name -> the name of its trace file (``<name>.hex``) in a C-sim trace directory."""
    return dict(zip((layer.name for layer in graph.layers), dataflow.layer_idents(graph)))


def render_generated(name: str, ctx: dict[str, Any]) -> str:
    """One generated file (a name of ``GENERATED``) from ``hls_context(graph)``."""
    return _template(name + ".j2").render(**ctx)


def emit_hls(graph: Graph, hls_dir: Path) -> None:
    """Write the HLS C++ of ``graph`` (library headers + generated files) into ``hls_dir``."""
    ctx = hls_context(graph)
    hls_dir = Path(hls_dir)
    hls_dir.mkdir(parents=True, exist_ok=True)
    for f in library_files():
        with importlib.resources.as_file(f) as path:
            shutil.copyfile(path, hls_dir / f.name)
    for name in GENERATED:
        (hls_dir / name).write_text(render_generated(name, ctx))
