"""The figures of ``lbgen report``: per layer and in total, from the IR (and Yosys).

What a hardware engineer weighs before building: area (LUT/FF/CARRY4/BRAM/DSP
from Yosys ``synth_xilinx``, with ``--synth``), rate (cycles per frame, frames
per second, latency at a clock), memory (weight bits raw and as stored) and
work (bit-operations, and how much of it the first and last layers do --
the layers every low-bit paper keeps wide). The numbers are computed here
once and then printed, written to ``out/report/report.json`` and rendered to
``out/report.html``, so the three never disagree.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

from .ir import Graph, MatVec

#: the Yosys cells the totals add up (the table shows all but the block RAMs by size)
CELL_COLUMNS = ("lut", "ff", "carry4", "bram", "ramb36", "ramb18", "dsp")


@dataclass
class LayerFigures:
    name: str
    source: str
    pe_kind: str
    weights: str               # weight format, e.g. int4, bipolar1
    inputs: str                # input format
    outputs: str               # output format (the last layer: its accumulators)
    mw: int
    mh: int
    pixels: int                # output positions of a convolution, 1 for a matrix-vector layer
    pe: int
    simd: int
    cycles: int                # per frame
    acc_bits: int
    macs: int                  # multiply-accumulates per frame
    bit_ops: int               # macs x weight bits x input bits
    weight_bits_raw: int       # mw x mh x code width
    weight_bits_stored: int    # as stored: the Huffman lane ROMs, else raw
    cells: Optional[dict] = None   # Yosys: lut, ff, carry4, bram, dsp (+ seconds)


@dataclass
class Totals:
    clock_mhz: float
    bottleneck_cycles: int
    frames_per_second: float
    latency_cycles: int        # sum of the layers' cycles: a frame passes each layer once
    latency_us: float
    macs: int
    bit_ops: int
    edge_bit_ops_share: float  # first + last layer's share of the bit-operations
    edge_macs_share: float
    weight_bits_raw: int
    weight_bits_stored: int
    cells: Optional[dict] = None


@dataclass
class Report:
    name: str
    layers: list[LayerFigures]
    totals: Totals
    notes: list[str] = field(default_factory=list)
    output: str = ""           # what the top streams (raw accumulators, levels, or the top-K unit's indices)

    def to_json(self) -> dict:
        return {"name": self.name, "layers": [asdict(l) for l in self.layers], "totals": asdict(self.totals),
                "notes": self.notes, "output": self.output}


def layer_figures(graph: Graph, layer: MatVec, cells: Optional[dict] = None) -> LayerFigures:
    from .passes.compress import layer_stats

    macs = layer.mw * layer.mh * layer.pixels
    raw = layer.mw * layer.mh * layer.wtype.bits
    stored = layer_stats(layer).stored_bits if layer.huffman is not None else raw
    return LayerFigures(
        name=layer.name, source=layer.source, pe_kind=str(layer.pe_kind), weights=str(layer.wtype),
        inputs=str(layer.itype), outputs=str(layer.out_dtype) if not layer.is_output else f"int{layer.acc_bits}",
        mw=layer.mw, mh=layer.mh, pixels=layer.pixels, pe=layer.pe, simd=layer.simd,
        cycles=graph.cycles(layer),
        acc_bits=layer.acc_bits, macs=macs,
        # a weight's bits: the realised mean planes for hetero weights
        bit_ops=int(round(macs * float(layer.weight_bits_avg) * layer.itype.bits)),
        weight_bits_raw=raw, weight_bits_stored=stored, cells=cells)


def build_report(graph: Graph, clock_mhz: float, cells: Optional[dict[str, dict]] = None) -> Report:
    """The report of ``graph``; ``cells``: Yosys figures per layer name (``--synth``)."""
    from .passes.folding import folding_bound

    layers = [layer_figures(graph, l, (cells or {}).get(l.name)) for l in graph.layers]
    bound = folding_bound(graph)
    latency = sum(l.cycles for l in layers)
    bit_ops = sum(l.bit_ops for l in layers)
    macs = sum(l.macs for l in layers)
    edge = [layers[0]] + ([layers[-1]] if len(layers) > 1 else [])
    total_cells = None
    if cells and all(l.cells for l in layers):
        total_cells = {k: sum(int(l.cells.get(k, 0)) for l in layers) for k in CELL_COLUMNS}
    totals = Totals(
        clock_mhz=clock_mhz, bottleneck_cycles=bound, frames_per_second=clock_mhz * 1e6 / bound,
        latency_cycles=latency, latency_us=latency / clock_mhz, macs=macs, bit_ops=bit_ops,
        edge_bit_ops_share=sum(l.bit_ops for l in edge) / bit_ops if bit_ops else 0.0,
        edge_macs_share=sum(l.macs for l in edge) / macs if macs else 0.0,
        weight_bits_raw=sum(l.weight_bits_raw for l in layers),
        weight_bits_stored=sum(l.weight_bits_stored for l in layers), cells=total_cells)
    notes = ["latency: the sum of the layers' cycles per frame (each layer takes the whole frame before its "
             "last output; the FIFOs and pipeline stages add a few cycles each)"]
    if total_cells is not None:
        notes.append("cells: Yosys synth_xilinx -family xc7 per layer engine (its weight ROM, threshold unit and, "
                     "for a convolution, its sliding window and max-pool), before Vivado's packing and "
                     "optimisation; the stream FIFOs and width converters between layers are not counted")
    return Report(name=graph.name, layers=layers, totals=totals, notes=notes, output=output_description(graph))


def output_description(graph: Graph) -> str:
    """One line on what the top streams per frame (the top-K unit, levels or accumulators)."""
    last = graph.output
    if graph.topk is not None:
        from .ir import topk_terms

        t = topk_terms(graph)
        how = (f"exact integer scores acc*S_c+B_c ({t.score_bits} bits, logit = score/2^{t.shift})" if t.use_scale
               else "the levels" if not last.is_output else "the accumulators (one positive scale, one bias)")
        return (f"top-K unit: the {t.k} largest of {t.classes} classes by {how}, one beat of {t.k} x "
                f"{t.idx_bits}-bit indices per frame, one class per cycle ({t.classes} cycles/frame)")
    if not last.is_output:
        return f"output layer thresholded in hardware: {last.mh} {last.out_dtype} levels per frame"
    return f"output layer: {last.mh} raw int{last.acc_bits} accumulators per frame"


# -- plots and HTML ---------------------------------------------------------------

def write_plots(report: Report, out_dir: Path) -> list[Path]:
    """PNG plots of cycles and resources per layer; the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    out_dir.mkdir(parents=True, exist_ok=True)
    names = [l.name for l in report.layers]
    x = range(len(names))
    files = []
    fig, ax = plt.subplots(figsize=(max(4.5, 1.1 * len(names) + 2), 3.4))
    cycles = [l.cycles for l in report.layers]
    bars = ax.bar(x, cycles, color="#4c72b0")
    ax.axhline(report.totals.bottleneck_cycles, color="#c44e52", lw=1, ls="--",
               label=f"bottleneck {report.totals.bottleneck_cycles} cycles/frame")
    ax.bar_label(bars, labels=[str(c) for c in cycles], fontsize=8)
    ax.set_xticks(list(x), names)
    ax.set_ylabel("cycles per frame")
    ax.set_title(f"{report.name}: cycles per layer "
                 f"({report.totals.frames_per_second:,.0f} frames/s at {report.totals.clock_mhz:g} MHz)", fontsize=9)
    ax.set_ylim(0, max(cycles) * 1.25)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    path = out_dir / "cycles.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    files.append(path)

    fig, axes = plt.subplots(1, 2, figsize=(max(7.5, 2.2 * len(names) + 3), 3.4))
    kb = [l.weight_bits_raw / 8192 for l in report.layers]
    st = [l.weight_bits_stored / 8192 for l in report.layers]
    w = 0.38
    axes[0].bar([i - w / 2 for i in x], kb, w, label="raw", color="#8172b2")
    axes[0].bar([i + w / 2 for i in x], st, w, label="stored", color="#64b5cd")
    axes[0].set_xticks(list(x), names)
    axes[0].set_ylabel("weight memory (KiB)")
    axes[0].set_title("weight memory per layer", fontsize=9)
    axes[0].legend(fontsize=8)
    if all(l.cells for l in report.layers):
        keys = [("lut", "LUT"), ("ff", "FF"), ("carry4", "CARRY4"), ("bram", "BRAM"), ("dsp", "DSP")]
        ww = 0.8 / len(keys)
        top = 1
        for j, (k, label) in enumerate(keys):
            vals = [int(l.cells.get(k, 0)) for l in report.layers]
            top = max(top, *vals)
            pos = [i - 0.4 + ww * (j + 0.5) for i in x]
            drawn = [(p, v) for p, v in zip(pos, vals) if v > 0]
            color = f"C{j}"
            axes[1].bar([p for p, _ in drawn], [v - 0.8 for _, v in drawn], ww, bottom=0.8, color=color)
            for p, v in drawn:
                axes[1].text(p, v * 1.15, f"{v:,}", fontsize=6, rotation=90, ha="center", va="bottom")
        axes[1].set_yscale("log")
        axes[1].set_ylim(0.8, top * 300)
        axes[1].set_ylabel("cells (Yosys synth_xilinx, log scale)")
        axes[1].set_title("resources per layer (0 is not drawn)", fontsize=9)
        axes[1].legend(handles=[Patch(color=f"C{j}", label=label) for j, (_, label) in enumerate(keys)],
                       fontsize=7, ncol=5, loc="upper center")
    else:
        ops = [l.bit_ops / 1e6 for l in report.layers]
        bars = axes[1].bar(x, ops, color="#55a868")
        axes[1].bar_label(bars, labels=[f"{v:.3g}" for v in ops], fontsize=8)
        axes[1].set_ylabel("bit-operations per frame (millions)")
        axes[1].set_title("work per layer (run lbgen report --synth for LUT/FF/BRAM/DSP)", fontsize=9)
    axes[1].set_xticks(list(x), names)
    fig.tight_layout()
    path = out_dir / "resources.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    files.append(path)
    return files


TABLE_COLUMNS = [("layer", "name"), ("module", "source"), ("PE kind", "pe_kind"), ("W", "weights"),
                 ("A in", "inputs"), ("out", "outputs"), ("MW x MH", None), ("PE x SIMD", None),
                 ("cycles/frame", "cycles"), ("acc bits", "acc_bits"), ("bit-ops/frame", "bit_ops"),
                 ("weight bits", "weight_bits_raw"), ("stored bits", "weight_bits_stored")]
CELL_HEADERS = [("LUT", "lut"), ("FF", "ff"), ("CARRY4", "carry4"), ("BRAM", "bram"), ("DSP", "dsp")]


def table_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    """The header and rows the terminal and the HTML both show."""
    synth = all(l.cells for l in report.layers)
    header = [h for h, _ in TABLE_COLUMNS] + ([h for h, _ in CELL_HEADERS] if synth else [])
    rows = []
    for l in report.layers:
        row = []
        for h, key in TABLE_COLUMNS:
            if h == "MW x MH":
                row.append(f"{l.mw} x {l.mh}" + (f" x {l.pixels} px" if l.pixels > 1 else ""))
            elif h == "PE x SIMD":
                row.append(f"{l.pe} x {l.simd}")
            else:
                v = getattr(l, key)
                row.append(f"{v:,}" if isinstance(v, int) else str(v))
        if synth:
            row += [f"{int(l.cells.get(k, 0)):,}" for _, k in CELL_HEADERS]
        rows.append(row)
    return header, rows


def total_lines(report: Report) -> list[str]:
    t = report.totals
    lines = [f"bottleneck {t.bottleneck_cycles} cycles/frame -> {t.frames_per_second:,.0f} frames/s at "
             f"{t.clock_mhz:g} MHz; latency about {t.latency_cycles} cycles = {t.latency_us:.2f} us",
             f"{t.macs:,} MACs, {t.bit_ops:,} bit-operations per frame; the first and last layer do "
             f"{100 * t.edge_bit_ops_share:.1f}% of the bit-operations ({100 * t.edge_macs_share:.1f}% of the MACs)",
             f"weight memory {t.weight_bits_raw:,} bits raw, {t.weight_bits_stored:,} bits stored"]
    if report.output:
        lines.append(report.output)
    if t.cells:
        lines.append("total (Yosys, layer engines): " + ", ".join(f"{h} {t.cells[k]:,}" for h, k in CELL_HEADERS)
                     + f" (block RAMs: RAMB36 {t.cells.get('ramb36', 0):,}, RAMB18 {t.cells.get('ramb18', 0):,})")
    return lines


def write_html(report: Report, path: Path, plots: list[Path], extra_tables: list[tuple[str, list[str],
               list[list[str]]]] = ()) -> Path:
    """``out/report.html``: the tables, the totals and the plots (relative links)."""
    esc = html.escape

    def table(title: str, header: list[str], rows: list[list[str]]) -> str:
        head = "".join(f"<th>{esc(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
        return f"<h2>{esc(title)}</h2><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    header, rows = table_rows(report)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>lbgen report: {esc(report.name)}</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:13px}"
             "td,th{border:1px solid #bbb;padding:3px 7px;text-align:right}th{background:#eee}"
             "td:nth-child(-n+3){text-align:left}</style></head><body>",
             f"<h1>lbgen report: {esc(report.name)}</h1>", table("Layers", header, rows), "<ul>"]
    parts += [f"<li>{esc(line)}</li>" for line in total_lines(report) + report.notes]
    parts.append("</ul>")
    for title, h, r in extra_tables:
        parts.append(table(title, h, r))
    for p in plots:
        rel = p.relative_to(path.parent) if p.is_relative_to(path.parent) else p
        parts.append(f"<p><img src='{esc(str(rel))}' alt='{esc(p.stem)}'></p>")
    parts.append("</body></html>\n")
    path.write_text("".join(parts))
    return path


def write_json(report: Report, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_json(), indent=1) + "\n")
    return path
