"""The ``lbgen`` command line: emit, sim, report.

Usage errors (a bad option, a missing or unsafe file, a layer lbgen cannot
build) print one message naming the culprit and exit with code 2; a
simulation that disagrees with the golden model exits with code 1.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import UsageError
from .pool import check_pool_options, open_pool
from .precision import W_FORMATS

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="lbgen: quantized PyTorch models -> bit-exact Verilog and HLS C++.")
# a pipe or a CI log gets a wide console, so tables are not squeezed into 80 columns
# no emoji codes: a path such as "a:x:b.pt" must print as it is; user text goes through escape()
out_console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 240, emoji=False)
err_console = Console(stderr=True, soft_wrap=True, emoji=False)


class Target(str, Enum):
    fpga = "fpga"


class Simulator(str, Enum):
    icarus = "icarus"
    verilator = "verilator"
    csim = "csim"
    all = "all"


class Harness(str, Enum):
    """How lbgen sim drives an RTL simulator: the native Verilog testbench (bulk
    frames, no Python per clock) or the cocotb one (per-cycle Python)."""
    native = "native"
    cocotb = "cocotb"


def _fail(exc: Exception) -> None:
    # escaped: a message quotes paths and names, which may contain "[...]" that rich reads as markup
    err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@app.command()
def emit(
    model: Path = typer.Argument(..., help="model.pt: a whole nn.Module saved with torch.save (or a state_dict "
                                 "with --arch); model.onnx: a QONNX graph (as Brevitas' export_qonnx writes it)"),
    arch: Optional[str] = typer.Option(
        None, "--arch", help="MODULE:FACTORY (e.g. mypkg.models:make_net or models.py:make_net): model.pt is a "
        "state_dict, loaded with weights_only=True into FACTORY() -- your own code, imported because you name "
        "it (the way to hand over a Brevitas model, whose modules do not pickle)"),
    output: Path = typer.Option(Path("out"), "-o", "--output", help="output directory"),
    target: Target = typer.Option(Target.fpga, "--target", help="what to build"),
    w: Optional[str] = typer.Option(
        None, "--w", help=f"weight format of hidden layers, checked against the model: {W_FORMATS}; omit to "
        "take the model's own (mixed precision)"),
    a: Optional[int] = typer.Option(None, "--a", help="activation bits of hidden layers (checked against the model)"),
    hetero_dist: Optional[str] = typer.Option(
        None, "--hetero-dist", help="with --w 1.4 etc.: fractions of 1-, 2-, 3-plane weights, e.g. 0.7,0.2,0.1 "
        "(checked against the model)"),
    acc: str = typer.Option("32", "--acc", help="accumulator width: 32 (default), another width, or auto"),
    pe: Optional[int] = typer.Option(None, "--pe", help="output channels in parallel, every layer"),
    simd: Optional[int] = typer.Option(None, "--simd", help="inputs in parallel, every layer"),
    folding: Optional[Path] = typer.Option(None, "--folding", help="folding.json: {layer: {pe, simd}}"),
    target_cycles: Optional[int] = typer.Option(
        None, "--target-cycles", help="cycles per frame: every layer not fixed by --folding gets the cheapest "
        "folding (estimated LUTs) that meets it"),
    inputs: Optional[Path] = typer.Option(None, "--inputs", help="test vectors: .npy features or .npz with x, y"),
    input_shape: Optional[str] = typer.Option(
        None, "--input-shape", help="C,H,W of a convolutional model's input when it takes (N, C, H, W) tensors "
        "and does not begin with nn.Unflatten"),
    compress: str = typer.Option(
        "none", "--compress", help="weight memory: none (plain ROMs) or huffman (a canonical Huffman code per "
        "layer, one decoder per PE x SIMD lane in front of the engine)"),
    huffman_max_len: Optional[int] = typer.Option(
        None, "--huffman-max-len", help="with --compress huffman: longest code in bits (default 12; "
        "longer codes cost decoder area)"),
    bits_budget: Optional[float] = typer.Option(
        None, "--bits-budget", help="per-channel bit allocation: hidden int layers give every output channel "
        "its own width (2 .. the layer's width), averaging at most this many bits per weight, more bits for "
        "wider channels; pair with --compress huffman to store the mix compactly"),
    calib: Optional[Path] = typer.Option(
        None, "--calib", help="calibration inputs (.npy (N, features) or .npz with x): the model is a float "
        "MLP or CNN, quantized post-training to --w/--a (first and last layer 8-bit weights)"),
    clip: str = typer.Option("aciq", "--clip", help="with --calib: ranges by aciq (analytical clipping), "
                             "minmax or percentile"),
    bias_correction: bool = typer.Option(True, "--bias-correction/--no-bias-correction",
                                         help="with --calib: move the quantized weights' expected output "
                                         "shift into the bias"),
    input_format: Optional[str] = typer.Option(
        None, "--input-format", help="number format of a float model input that no quantizer describes, in "
        "hls4ml's spelling: fixed<W,I>, ufixed<W,I>, int<W>, uint<W> (ap_fixed rounding and overflow: "
        "fixed<16,6,RND_CONV,SAT> to choose), up to 16 bits; a QONNX input's finn_datatype annotation "
        "(INT8, BIPOLAR, ...) is taken without it"),
    topk: Optional[int] = typer.Option(
        None, "--topk", help="K: a hardware top-K unit after the last layer streams, per frame, one beat of the "
        "K largest classes' indices (largest first, ties to the lowest index) instead of the logits"),
    trust: bool = typer.Option(False, "--trust", help="allow the model file to run code when loaded (unsafe)"),
    force: bool = typer.Option(False, "--force", help="replace an existing output directory"),
) -> None:
    """Compile a quantized model to Verilog + HLS C++ with test vectors."""
    from .flow import emit as run_emit
    from .options import EmitOptions
    from .output import check_output

    try:
        # the option text parsed and checked once, before loading, which may be slow
        opts = EmitOptions(w=w, a=a, acc=acc, pe=pe, simd=simd, folding=folding, trust=trust,
                           hetero_dist=hetero_dist, input_shape=input_shape, target_cycles=target_cycles,
                           compress=compress, huffman_max_len=huffman_max_len, bits_budget=bits_budget,
                           calib=calib, clip=clip, bias_correction=bias_correction, input_format=input_format,
                           topk=topk)
        check_output(output, force)
        result = run_emit(_load_model(model, arch, trust), output, opts, inputs=inputs, force=force,
                          name=model.stem)
    except UsageError as exc:
        _fail(exc)
        return
    _print_emit_summary(output, result)



def _load_model(model: Path, arch: Optional[str], trust: bool):
    """The model file as a module: a QONNX graph (.onnx), a state_dict into
    --arch's factory, or a whole pickled module (code runs only with --trust)."""
    if model.suffix.lower() == ".onnx":
        if arch is not None:
            raise UsageError("--arch builds a torch model for a state_dict; a .onnx file is a whole graph")
        from .frontend.onnx_frontend import load_onnx
        return load_onnx(model)
    if arch is not None:
        from .api import load_state_dict_model
        return load_state_dict_model(model, arch)
    from .frontend.torch_frontend import load_module
    return load_module(model, trust=trust)


def _print_emit_summary(output: Path, result) -> None:
    """What emit wrote, what the host does around the hardware, and the checks' verdicts."""
    g = result.graph
    from .passes.folding import folding_bound

    out_console.print(f"[green]wrote[/] {escape(str(output))}/  ({len(g.layers)} layers, "
                      f"{folding_bound(g)} cycles/frame bound, {len(result.vectors.values)} test vectors)")
    out_console.print(f"  host streams: {g.input.describe()}", markup=False)
    if g.meta.get("host_output"):
        out_console.print(f"  the hardware streams the logits' accumulators; the host applies the model's trailing "
                          f"{g.meta['host_output']} (lbgen sim and the golden model do too)", markup=False)
    for line in result.checks:
        out_console.print(f"  {line}", markup=False)
    if g.topk is not None:
        out_console.print(f"  the hardware streams the top-{g.topk.k} class indices of {g.output.mh} (one beat per "
                          f"frame, largest first, ties to the lowest index), not the logits", markup=False)
    elif not g.output.is_output:
        out_console.print(f"  the hardware streams the output layer's {g.output.out_dtype} levels (thresholded "
                          "in hardware)", markup=False)


@app.command()
def sim(
    out_dir: Path = typer.Argument(..., help="an output directory written by lbgen emit"),
    simulator: Simulator = typer.Option(Simulator.icarus, "--simulator", help="icarus, verilator, csim (g++ C-sim) or all"),
    inputs: Optional[Path] = typer.Option(None, "--inputs", help="test vectors instead of out/sim: .npy features or .npz with x, y"),
    frames: Optional[int] = typer.Option(None, "--frames", help="simulate only the first N vectors"),
    seed: int = typer.Option(0, "--seed", help="seed of the random tvalid gaps and tready back-pressure"),
    backpressure: float = typer.Option(0.3, "--backpressure", help="probability that tready is low in a cycle"),
    harness: Harness = typer.Option(Harness.native, "--harness", help="RTL testbench: native (a Verilog "
                                    "testbench, no Python per clock; the default) or cocotb"),
    allow_modified: bool = typer.Option(
        False, "--allow-modified", help="simulate out/ even where its files differ from what lbgen emit wrote "
        "(out/manifest.json), e.g. a ROM bit flipped on purpose for mutation testing; the ROM sizes and the HLS "
        "parameters are still checked against the IR"),
    jobs: Optional[int] = typer.Option(None, "--jobs", help="split the vectors into N shards that run in parallel "
                                       "on a local Dask cluster of N worker processes (C-sim and the native "
                                       "testbench)"),
    cluster: Optional[str] = typer.Option(None, "--cluster", help="run the shards on the workers of this Dask "
                                          "scheduler (tcp://host:port; they must see out/ by path)"),
    threads: int = typer.Option(1, "--threads", help="Verilator only: evaluate the model on N threads "
                                "(verilator --threads; a build of its own). docs/benchmarks.md has when it pays"),
) -> None:
    """Simulate out/ against the golden model, bit for bit; print cycles/frame and accuracy.

    Before anything is built, out/ is checked against out/manifest.json and its ROM
    images and HLS parameters against the IR (lbgen.integrity)."""
    from .passes.folding import folding_bound

    try:
        if not 0.0 <= backpressure < 1.0:
            raise UsageError(f"--backpressure {backpressure}: must be in [0, 1)")
        if frames is not None and frames < 1:
            raise UsageError(f"--frames {frames}: must be at least 1")
        check_pool_options(jobs, cluster)
        if threads < 1:
            raise UsageError(f"--threads {threads}: must be at least 1")
        if threads > 1 and (simulator not in (Simulator.verilator, Simulator.all) or harness != Harness.native):
            raise UsageError(f"--threads {threads}: only the native testbench on Verilator runs a multithreaded "
                             f"model (--simulator verilator or all, --harness native)")
        if (jobs is not None or cluster is not None) and harness == Harness.cocotb and simulator != Simulator.csim:
            raise UsageError("--jobs/--cluster with --harness cocotb: shards run the native testbench and the "
                             "C-simulation; the cocotb testbench runs in one process")
        graph, values, labels, trace = prepare_sim(out_dir, inputs, frames, allow_modified)
    except UsageError as exc:
        _fail(exc)
        return
    bound = folding_bound(graph)
    chosen = ["csim", "icarus", "verilator"] if simulator == Simulator.all else [simulator.value]
    options = RtlOptions(harness.value, seed, backpressure, threads)
    ok = True
    try:
        with open_pool(jobs, cluster) as pool:
            if pool.client is not None:
                err_console.print(f"shards on {pool.description}", highlight=False)
            for name in chosen:
                ok &= _run_one(name, out_dir, graph, values, trace, options, bound, labels, pool)
    except UsageError as exc:
        _fail(exc)
    if labels is not None:
        from .golden import predicted

        acc = float(np.mean(predicted(graph, trace.result) == labels))
        out_console.print(f"golden accuracy on {len(values)} frames: {100 * acc:.2f}%")
    raise typer.Exit(0 if ok else 1)


def prepare_sim(out_dir: Path, inputs: Optional[Path] = None, frames: Optional[int] = None,
                allow_modified: bool = False):
    """Everything ``lbgen sim`` does before it builds a simulator: check out/
    (lbgen.integrity), read the vectors, run the golden model. Returns (graph,
    values, labels, golden trace); UsageError naming the file otherwise."""
    from . import golden
    from .inputs import read_vectors
    from .integrity import verified_graph
    from .ir import IRError

    graph = verified_graph(out_dir, allow_modified=allow_modified)
    if inputs is not None:
        vec = read_vectors(inputs, graph)
        values, labels = vec.values, vec.labels
    else:
        values, labels = _stored_vectors(out_dir, graph)
    if frames is not None:
        values = values[:frames]
        labels = labels[:frames] if labels is not None else None
    try:
        trace = golden.run(graph, values)
    except IRError as exc:      # e.g. an accumulator that overflows an acc_bits edited under --allow-modified
        raise UsageError(f"{Path(out_dir) / 'lbgen.json'}: the golden model cannot run this IR ({exc})") from None
    return graph, values, labels, trace


def _stored_values(out_dir: Path, graph) -> np.ndarray:
    """out/sim/inputs.npy: (N, in_len) integer input values."""
    path = Path(out_dir) / "sim" / "inputs.npy"
    try:
        values = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read the test vectors ({exc})") from None
    if values.ndim != 2 or values.shape[1] != graph.in_len or values.dtype.kind not in "iu":
        raise UsageError(f"{path}: {values.dtype} shape {values.shape}, expected integer input values of "
                         f"shape (N, {graph.in_len})")
    it = graph.layers[0].itype
    if values.size and (values.min() < it.min or values.max() > it.max or (it.kind == "bipolar" and
                                                                           np.any(values == 0))):
        raise UsageError(f"{path}: input values outside the first layer's {it} ({it.min}..{it.max})")
    return values.astype(np.int64)


def _stored_vectors(out_dir: Path, graph) -> tuple[np.ndarray, Optional[np.ndarray]]:
    values = _stored_values(out_dir, graph)
    labels = None
    lpath = Path(out_dir) / "sim" / "labels.npy"
    if lpath.exists():
        try:
            labels = np.load(lpath, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise UsageError(f"{lpath}: cannot read the labels ({exc})") from None
        if labels.shape != (values.shape[0],):
            raise UsageError(f"{lpath}: {labels.shape} labels for {values.shape[0]} vectors")
    return values, labels


@dataclass(frozen=True)
class RtlOptions:
    """How ``lbgen sim`` runs an RTL simulator, parsed once from its options."""
    harness: str = "native"        # native (Verilog testbench) or cocotb
    seed: int = 0
    backpressure: float = 0.3
    threads: int = 1               # Verilator model threads (native testbench)

    def threads_for(self, simulator: str) -> int:
        return self.threads if simulator == "verilator" else 1


def _shard_progress(status, what: str):
    """A Pool.run progress callback that shows the shards done in the spinner's line."""
    return lambda text: status.update(f"{what}: shard {text}")


def _run_one(name, out_dir, graph, values, trace, options: RtlOptions, bound, labels, pool) -> bool:
    """One executor against the golden trace; print the verdict. True if bit-exact and, for the
    RTL, the measured cycles/frame within the throughput tolerance of the folding bound."""
    from .simulate import THROUGHPUT_TOLERANCE, throughput_within

    res, messages = _execute(name, out_dir, values, trace, options, pool)
    cycles = None if name == "csim" else res.cycles_per_frame
    expected, got = trace.result, res.result
    exact = got.shape == expected.shape and np.array_equal(got, expected) and not messages
    timely = cycles is None or throughput_within(cycles, bound)
    status = "[green]bit-exact[/]" if exact else "[bold red]MISMATCH[/]"
    line = f"{name}: {len(values)} frames {status} vs golden"
    if cycles is not None:
        line += f"; {cycles:.1f} cycles/frame measured, folding bound {bound}"
    if name != "csim":
        line += f" ({options.harness} testbench)"
    out_console.print(line, highlight=False)
    for message in messages[:5]:
        out_console.print(f"  [red]{escape(str(message))}[/]", highlight=False)
    if not timely:
        side = "above" if cycles > bound else "below"
        out_console.print(f"  [red]throughput: {cycles:.1f} cycles/frame is more than {THROUGHPUT_TOLERANCE:.0%} "
                          f"{side} the folding bound {bound} (docs/user-guide.md, Throughput)[/]", highlight=False)
    if labels is not None and got.shape == expected.shape:
        from .golden import predicted

        accuracy = float(np.mean(predicted(graph, got) == labels))
        out_console.print(f"  hardware ({name}) accuracy on {len(values)} frames: {100 * accuracy:.2f}%",
                          highlight=False)
    return exact and timely


def _execute(name, out_dir, values, trace, options: RtlOptions, pool):
    """Run one executor on ``values``: (its result, its mismatch and error messages)."""
    if name == "csim":
        from .csim import CsimError, run_csim_sharded
        try:
            with err_console.status("C-simulation (g++, the ap_int code HLS synthesises) ...") as status:
                res = run_csim_sharded(Path(out_dir), values, pool, pool.workers, native=False,
                                       progress=_shard_progress(status, "C-simulation"))
        except CsimError as exc:
            raise UsageError(str(exc)) from None
        first = res.mismatch(trace)
        return res, [first] if first else []
    from .native_tb import run_native, run_native_sharded
    from .simulate import ToolchainError, run_rtl
    common = dict(simulator=name, seed=options.seed, backpressure=options.backpressure)
    try:
        with err_console.status(f"RTL simulation ({name}, {options.harness} testbench) ...") as status:
            if options.harness != "native":
                res = run_rtl(Path(out_dir), values, **common)
            elif pool.client is not None:
                res = run_native_sharded(Path(out_dir), values, pool, pool.workers, **common,
                                         threads=options.threads_for(name),
                                         progress=_shard_progress(status, f"RTL simulation ({name})"))
            else:
                res = run_native(Path(out_dir), values, **common, threads=options.threads_for(name))
    except ToolchainError as exc:
        raise UsageError(str(exc)) from None
    return res, list(res.mismatches) + list(res.errors)


@app.command()
def report(
    out_dir: Path = typer.Argument(..., help="an output directory written by lbgen emit"),
    clock_mhz: float = typer.Option(200.0, "--clock-mhz", help="clock for frames/s and latency"),
    synth: bool = typer.Option(False, "--synth", help="run Yosys (synth_xilinx) on every layer for LUT/FF/CARRY4/"
                               "BRAM/DSP, and on the Huffman decoders; cached in out/report/"),
    inputs: Optional[Path] = typer.Option(
        None, "--inputs", help="vectors for the activation statistics (.npy features or .npz with x); "
        "default: out/sim/inputs.npy"),
    jobs: Optional[int] = typer.Option(None, "--jobs", help="with --synth: Yosys runs in parallel on a local "
                                       "Dask cluster of N worker processes"),
    cluster: Optional[str] = typer.Option(None, "--cluster", help="with --synth: Yosys runs on the workers of "
                                          "this Dask scheduler (tcp://host:port; they must see out/ by path)"),
) -> None:
    """Per-layer table: PE kind, precision, folding, cycles, bit-operations, weight memory (and
    Yosys cells with --synth); totals; Huffman and activation statistics. Also writes
    out/report.html (with PNG plots) and out/report/report.json."""
    from .output import load_output
    from .report import build_report, table_rows, total_lines, write_html, write_json, write_plots

    try:
        graph = load_output(out_dir)
        if clock_mhz <= 0:
            raise UsageError(f"--clock-mhz {clock_mhz}: must be positive")
        values = _report_vectors(out_dir, graph, inputs)    # checked before anything is printed
        check_pool_options(jobs, cluster)
        if (jobs is not None or cluster is not None) and not synth:
            raise UsageError("--jobs/--cluster spread the Yosys runs of --synth; add --synth")
        cells = None
        if synth:
            from .synth import layer_cells

            with open_pool(jobs, cluster) as pool, err_console.status(f"yosys on {pool.description} ...") as status:
                err_console.print(f"yosys: {pool.description}", highlight=False)
                cells = layer_cells(out_dir, graph, progress=lambda text: status.update(text), pool=pool)
    except UsageError as exc:
        _fail(exc)
        return
    rep = build_report(graph, clock_mhz, cells)
    header, rows = table_rows(rep)
    table = Table(title=f"lbgen report: {escape(graph.name)}")
    for col in header:
        table.add_column(col, justify="left" if col in ("layer", "module", "PE kind") else "right")
    for row in rows:
        table.add_row(*row)
    out_console.print(table)
    try:
        extra = _extra_tables(out_dir, graph, synth, values)
    except UsageError as exc:
        _fail(exc)
        return
    for line in total_lines(rep):
        out_console.print(line, highlight=False)
    try:
        rdir = Path(out_dir) / "report"
        write_json(rep, rdir / "report.json")
        page = write_html(rep, Path(out_dir) / "report.html", write_plots(rep, rdir), extra)
        out_console.print(f"wrote {page} and {rdir / 'report.json'}", highlight=False, markup=False)
    except OSError as exc:
        err_console.print(f"[yellow]warning:[/] could not write the HTML report into {escape(str(out_dir))}: "
                          f"{escape(str(exc))}")


#: one extra report table: (title, column names, rows)
ExtraTable = tuple[str, list[str], list[list[str]]]


def _extra_tables(out_dir: Path, graph, synth: bool, values) -> list[ExtraTable]:
    """The report's tables after the per-layer one, printed as they are made (a
    Yosys run may take a while) and returned for the HTML page."""
    extra: list[ExtraTable] = []
    for make in (_channel_width_table, _huffman_table, _activation_table):
        got = make(out_dir, graph, synth, values)
        if got is None:
            continue
        title, cols, body, footer = got
        t = Table(title=title)
        for i, col in enumerate(cols):
            t.add_column(col, justify="left" if i == 0 or col == "channels per width" else "right")
        for r in body:
            t.add_row(*r)
        out_console.print(t)
        if footer:
            out_console.print(footer)
        extra.append((title, cols, body))
    return extra


def _channel_width_table(out_dir, graph, synth, values):
    mixed = [l for l in graph.layers if l.channel_bits is not None]
    if not mixed:
        return None
    body = []
    for l in mixed:
        widths, counts = np.unique(np.asarray(l.channel_bits), return_counts=True)
        body.append([l.name, str(l.wtype), ", ".join(f"{int(w)} bits: {int(c)}" for w, c in zip(widths, counts)),
                     f"{float(np.mean(l.channel_bits)):.3f}"])
    return ("Per-channel weight widths (--bits-budget)", ["layer", "stored as", "channels per width", "mean bits"],
            body, "")


def _huffman_table(out_dir, graph, synth, values):
    """Huffman statistics of every coded layer; with ``synth`` the decoders' Yosys cells too."""
    coded = [l for l in graph.layers if l.huffman is not None]
    if not coded:
        return None
    from .passes.compress import layer_stats

    cols = ["layer", "symbols", "raw bits", "Huffman bits", "stored bits", "entropy bound",
            "mean code length", "x optimal", "longest code"]
    if synth:
        cols += ["decoder LUT/lane", "lanes", "decoder LUTs", "decoder FFs"]
    body, totals = [], [0, 0, 0]
    for l in coded:
        st = layer_stats(l)
        totals = [totals[0] + st.raw_bits, totals[1] + st.huffman_bits, totals[2] + st.stored_bits]
        row = [l.name, str(st.symbols), str(st.raw_bits), str(st.huffman_bits), str(st.stored_bits),
               f"{st.entropy_bits:.0f}", f"{st.mean_len:.4f}", f"{st.mean_len / st.optimal_mean_len:.4f}",
               str(st.max_len)]
        if synth:
            from .synth import huffman_decoder_cells

            with err_console.status(f"yosys: the Huffman decoder of {l.name} ({l.huffman.max_len}-bit codes)"):
                lane, total = huffman_decoder_cells(out_dir, l)
            row += [str(lane.lut), str(l.pe * l.simd), str(total.lut), str(total.ff)]
        body.append(row)
    footer = (f"weight memory: {totals[0]} bits raw, {totals[1]} bits Huffman-coded, {totals[2]} "
              f"bits stored ({100 * (1 - totals[2] / totals[0]):.1f}% saved)")
    return "Huffman-coded weights", cols, body, footer


def _activation_table(out_dir, graph, synth, values):
    if values is None:
        return None
    from .passes.compress import activation_stats

    body = [[a.layer, str(a.values), str(a.raw_bits), str(a.symbols), f"{a.entropy:.3f}", f"{a.huffman:.3f}"]
            for a in activation_stats(graph, values)]
    return (f"Huffman bits per activation value (layer outputs, {len(values)} vectors)",
            ["layer", "values", "stream bits", "distinct", "entropy", "Huffman"], body, "")


def _report_vectors(out_dir: Path, graph, inputs: Optional[Path]):
    """Input values for the activation statistics: --inputs, else out/sim/inputs.npy, else None."""
    from .inputs import read_vectors

    if inputs is not None:
        return read_vectors(inputs, graph).values
    if not (out_dir / "sim" / "inputs.npy").is_file():
        return None
    return _stored_values(out_dir, graph)


def main() -> None:
    try:
        app()
    except UsageError as exc:  # pragma: no cover - commands catch their own
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}")
        sys.exit(2)


if __name__ == "__main__":
    main()
