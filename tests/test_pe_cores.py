"""The processing-element cores (lb_pe_xnor, lb_pe_addsub, lb_pe_mac, lb_pe_shift, lb_pe_planes,
lb_pe_masked).

For every core and several parameter sets (PE, SIMD, weight bits, bipolar/uint/int inputs,
unsigned/signed weights, log2 widths, hetero planes with scales, ternary weights), lb_mvau_core is
instantiated twice side by side, with BEHAVIORAL = 0 (the bit heap that synthesis builds)
and BEHAVIORAL = 1 (the word-level model), and driven with random weight words and input
beats for a few hundred cycles, with random `en` stalls, invalid beats and random chains of
synapse folds (`first`). Every cycle both accumulators must be equal, and after every
update they must be the exact dot products (modulo 2^ACC_BITS) that numpy computes from
the decoded weights and inputs: the initial accumulator of a chain is the sum of its beats'
constant parts (lbgen.emitters.rtl.accumulator_offsets), presented two enabled cycles after
the chain's first beat, as lb_mvau does.

All parameter sets are instances of one generated top, so each simulator builds once; the
testbench is plain Verilog (stimulus from $readmemh files, a dump of both accumulators per
cycle), run under Icarus and Verilator.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from lbgen import pe as processing_elements
from lbgen.emitters.rtl import KIND_CODE, accumulator_offsets

#: PE kind -> PE_KIND parameter, from the registry
PE_KIND_CODE = {name: p.code for name, p in processing_elements.REGISTRY.items()}
from lbgen.ir import DType, MatVec

ROOT = Path(__file__).resolve().parents[1]
RTL = ROOT / "templates" / "rtl"
#: lb_mvau_core and every PE core the registry names (so a new PE is simulated once it registers)
SOURCES = ["lb_mvau_core.v", *(f"{p.rtl_core}.v" for p in processing_elements.REGISTRY.values()),
           "lb_pe_reduce.v", "lb_rowsum.v", "lb_adder_tree.v", "lb_thresh.v"]
SIMULATORS = ("icarus", "verilator")
CYCLES = 300

B = DType("bipolar", 1)
U = lambda k: DType("uint", k)                                     # noqa: E731
I = lambda k: DType("int", k)                                      # noqa: E731
L2 = lambda k: DType("log2", k)                                    # noqa: E731
HET = lambda *s: DType("hetero", 2 * len(s) - 1, tuple(s))         # noqa: E731
TER = DType("ternary", 2)


@dataclass(frozen=True)
class Core:
    """One parameter set: lb_mvau_core with PE_KIND = the kind the formats call for."""

    name: str
    pe_kind: str
    wtype: DType
    itype: DType
    pe: int
    simd: int
    acc_bits: int = 32

    @property
    def params(self) -> dict:
        scales = self.wtype.scales or (1,)
        return {"PE": self.pe, "SIMD": self.simd, "WEIGHT_BITS": self.wtype.bits,
                "W_KIND": KIND_CODE[self.wtype.kind], "IN_BITS": self.itype.bits,
                "IN_KIND": KIND_CODE[self.itype.kind], "ACC_BITS": self.acc_bits,
                "PE_KIND": PE_KIND_CODE[self.pe_kind], "N_PLANES": len(scales),
                "PLANE_SCALES": "128'h%x" % sum(k << (32 * i) for i, k in enumerate(scales))}

    @property
    def w_bits(self) -> int:
        return self.pe * self.simd * self.wtype.bits

    @property
    def x_bits(self) -> int:
        return self.simd * self.itype.bits


CORES = [
    Core("xnor_p2_s5", "xnor", B, B, 2, 5, 12),
    Core("xnor_p1_s1", "xnor", B, B, 1, 1, 8),
    Core("xnor_p3_s16", "xnor", B, B, 3, 16),
    Core("addsub_u3", "addsub", B, U(3), 2, 4),
    Core("addsub_i4", "addsub", B, I(4), 1, 7),
    Core("addsub_u1_s3", "addsub", B, U(1), 2, 3, 10),
    Core("addsub_i2", "addsub", B, I(2), 3, 6),
    Core("mac_u4_u3", "mac", U(4), U(3), 2, 5),
    Core("mac_i4_i3", "mac", I(4), I(3), 2, 4),
    Core("mac_i3_u2", "mac", I(3), U(2), 1, 9),
    Core("mac_u2_i4", "mac", U(2), I(4), 3, 2),
    Core("mac_i4_bip", "mac", I(4), B, 2, 5),
    Core("mac_u3_bip", "mac", U(3), B, 1, 4),
    Core("mac_i8_u8", "mac", I(8), U(8), 2, 3),
    Core("mac_i2_i2_s1", "mac", I(2), I(2), 2, 1, 6),
    Core("shift_l3_u2", "shift", L2(3), U(2), 2, 4),
    Core("shift_l4_u3", "shift", L2(4), U(3), 1, 5),
    Core("shift_l2_bip", "shift", L2(2), B, 2, 3),
    Core("shift_l5_u4", "shift", L2(5), U(4), 2, 6),
    Core("shift_l6_u2", "shift", L2(6), U(2), 1, 2, 48),
    Core("planes_1_u2", "planes", HET(3), U(2), 2, 4),
    Core("planes_2_bip", "planes", HET(5, 2), B, 2, 5),
    Core("planes_3_u3", "planes", HET(8, 4, 1), U(3), 1, 7),
    Core("planes_4_u2", "planes", HET(16, 4, 2, 1), U(2), 2, 5),
    Core("planes_2_big_u1", "planes", HET(65536, 3), U(1), 1, 3),
    # random codes include 10, which is no ternary code: the core and DType.decode both read it as 0
    Core("masked_u2", "masked", TER, U(2), 2, 5),
    Core("masked_i3", "masked", TER, I(3), 2, 4),
    Core("masked_bip", "masked", TER, B, 3, 7),
    Core("masked_u1_s1", "masked", TER, U(1), 1, 1, 6),
    Core("masked_i2_s3", "masked", TER, I(2), 1, 3, 8),
    Core("masked_u4_s16", "masked", TER, U(4), 2, 16),
]


@dataclass(frozen=True)
class Thresh:
    """One lb_thresh parameter set (BEHAVIORAL 0: chunked comparators, 1: plain compare)."""

    acc_bits: int
    n_thresh: int
    out_bits: int

    @property
    def name(self) -> str:
        return f"thresh_a{self.acc_bits}_n{self.n_thresh}_o{self.out_bits}"

    @property
    def stim_bits(self) -> int:
        return 1 + (self.n_thresh + 1) * self.acc_bits


THRESH = [Thresh(8, 3, 2), Thresh(13, 1, 1), Thresh(16, 15, 4), Thresh(5, 7, 3), Thresh(2, 1, 1)]


def _env(simulator: str) -> dict:
    from lbgen.simulate import toolchain_env
    return toolchain_env(simulator)


def _have(simulator: str) -> bool:
    tool = "iverilog" if simulator == "icarus" else "verilator"
    try:
        env = _env(simulator)
    except Exception:                       # noqa: BLE001 -- the toolchain is missing
        return False
    return shutil.which(tool, path=env["PATH"]) is not None


# --------------------------------------------------------------------------- stimulus and expectation

@dataclass
class Stimulus:
    words: list[int]          # per cycle: {init, x, w, first, valid, en}
    expect: dict[int, np.ndarray]   # cycle -> (PE,) accumulators (unsigned, mod 2^ACC) after its edge
    first_update: int         # first cycle after which the accumulators are defined


def _stimulus(core: Core, seed: int) -> Stimulus:
    rng = np.random.default_rng(seed)
    n = CYCLES
    wt, it = core.wtype, core.itype
    en = rng.random(n) < 0.8
    en[:4] = True
    valid = rng.random(n) < 0.85
    first = rng.random(n) < 0.3
    wcodes = rng.integers(0, 1 << wt.bits, size=(n, core.pe, core.simd), dtype=np.uint64)
    xcodes = rng.integers(0, 1 << it.bits, size=(n, core.simd), dtype=np.uint64)
    wvals = wt.decode(wcodes)
    xvals = it.decode(xcodes)
    dots = np.einsum("nps,ns->np", wvals, xvals)                      # (n, PE)
    # the constant part of every beat's heap: one layer whose rows are all beats' PE rows
    layer = MatVec(name="beats", mw=core.simd, mh=n * core.pe, weights=wvals.reshape(n * core.pe, core.simd),
                   wtype=wt, itype=it, pe=1, simd=core.simd, acc_bits=core.acc_bits, pe_kind=core.pe_kind,
                   weight_codes=wcodes.reshape(n * core.pe, core.simd))
    off = accumulator_offsets(layer).reshape(n, core.pe)

    # the beats the core takes: one per enabled cycle, in order
    edges = [c for c in range(n) if en[c]]
    taken = [c for c in edges if valid[c]]
    if taken:
        first[taken[0]] = True
    # chains of valid beats: init of a chain = the sum of its beats' offsets
    chain_init: dict[int, np.ndarray] = {}
    head = None
    for c in taken:
        if first[c]:
            head = c
            chain_init[head] = np.zeros(core.pe, dtype=object)
        chain_init[head] = chain_init[head] + off[c].astype(object)
    mod = 1 << core.acc_bits
    init = rng.integers(0, 1 << min(core.acc_bits, 62), size=(n, core.pe)).astype(object)   # junk by default
    expect: dict[int, np.ndarray] = {}
    acc = None
    for k, c in enumerate(edges):
        if k + 2 >= len(edges):
            break
        upd = edges[k + 2]                 # the beat of edge c reaches stage 4 on this edge
        if valid[c]:
            if first[c]:
                init[upd] = chain_init[c]
                acc = chain_init[c].copy()
            acc = acc + (dots[c] - off[c]).astype(object)
            expect[upd] = np.array([int(v) % mod for v in acc], dtype=object)
    fields = []
    for c in range(n):
        word = 0
        pos = 0
        for value, bits in ((int(en[c]), 1), (int(valid[c]), 1), (int(first[c]), 1)):
            word |= value << pos
            pos += bits
        for p in range(core.pe):
            for s in range(core.simd):
                word |= int(wcodes[c, p, s]) << pos
                pos += wt.bits
        for s in range(core.simd):
            word |= int(xcodes[c, s]) << pos
            pos += it.bits
        for p in range(core.pe):
            word |= (int(init[c][p]) % mod) << pos
            pos += core.acc_bits
        fields.append(word)
    return Stimulus(fields, expect, min(expect) if expect else n)


def _thresh_stimulus(t: Thresh, seed: int) -> tuple[list[int], list[int]]:
    """Per cycle {thr, acc, inv} words and the expected levels."""
    rng = np.random.default_rng(seed)
    acc_t = DType("int", t.acc_bits)
    words, levels = [], []
    for _ in range(CYCLES):
        a = int(rng.integers(0, 1 << t.acc_bits))
        # thresholds near the accumulator half the time, so that ties and neighbours occur
        thr = [int(rng.integers(0, 1 << t.acc_bits)) if rng.random() < 0.5
               else (a + int(rng.integers(-2, 3))) % (1 << t.acc_bits) for _ in range(t.n_thresh)]
        inv = int(rng.random() < 0.5)
        av = int(acc_t.decode(np.array([a]))[0])
        count = sum(av >= int(acc_t.decode(np.array([v]))[0]) for v in thr)
        levels.append(t.n_thresh - count if inv else count)
        word = inv | (a << 1)
        for j, v in enumerate(thr):
            word |= v << (1 + t.acc_bits * (1 + j))
        words.append(word)
    return words, levels


def _stim_bits(core: Core) -> int:
    return 3 + core.w_bits + core.x_bits + core.pe * core.acc_bits


def _testbench(cores: list[Core], thresh: list[Thresh]) -> str:
    lines = ["`timescale 1ns/1ps", "module tb;", "  reg clk = 1'b0;", "  integer cyc, fd;"]
    for i, t in enumerate(thresh):
        lines += [f"  // {t.name}", f"  reg  [{t.stim_bits}-1:0] tmem{i} [0:{CYCLES}-1];",
                  f"  reg  [{t.stim_bits}-1:0] ts{i};", f"  wire [{t.out_bits}-1:0] l{i}_0, l{i}_1;"]
        for b in (0, 1):
            lines.append(f"  lb_thresh #(.ACC_BITS({t.acc_bits}), .N_THRESH({t.n_thresh}), .OUT_BITS({t.out_bits}), "
                         f".BEHAVIORAL({b})) t{i}_{b} (.acc(ts{i}[1 +: {t.acc_bits}]), "
                         f".thr(ts{i}[{1 + t.acc_bits} +: {t.n_thresh * t.acc_bits}]), .inv(ts{i}[0]), "
                         f".level(l{i}_{b}));")
    for i, core in enumerate(cores):
        sb, ab = _stim_bits(core), core.pe * core.acc_bits
        wlo, xlo = 3, 3 + core.w_bits
        ilo = xlo + core.x_bits
        params = ", ".join(f".{k}({v})" for k, v in core.params.items())
        lines += [
            f"  // {core.name}",
            f"  reg  [{sb}-1:0] mem{i} [0:{CYCLES}-1];",
            f"  reg  [{sb}-1:0] s{i};",
            f"  wire [{ab}-1:0] a{i}_0, a{i}_1;",
        ]
        for b in (0, 1):
            lines.append(
                f"  lb_mvau_core #({params}, .BEHAVIORAL({b})) u{i}_{b} (.clk(clk), .en(s{i}[0]), .valid(s{i}[1]), "
                f".first(s{i}[2]), .w(s{i}[{wlo} +: {core.w_bits}]), .x(s{i}[{xlo} +: {core.x_bits}]), "
                f".init(s{i}[{ilo} +: {ab}]), .acc(a{i}_{b}));")
    lines += ["  initial begin", '    fd = $fopen("acc.txt", "w");']
    lines += [f'    $readmemh("stim{i}.hex", mem{i});' for i in range(len(cores))]
    lines += [f'    $readmemh("tstim{i}.hex", tmem{i});' for i in range(len(thresh))]
    lines += ["    for (cyc = 0; cyc < %d; cyc = cyc + 1) begin" % CYCLES]
    lines += [f"      s{i} = mem{i}[cyc];" for i in range(len(cores))]
    lines += [f"      ts{i} = tmem{i}[cyc];" for i in range(len(thresh))]
    lines += ["      #5 clk = 1'b1;", "      #5 clk = 1'b0;"]
    lines += [f'      $fwrite(fd, "%0d {i} %h %h\\n", cyc, a{i}_0, a{i}_1);' for i in range(len(cores))]
    lines += [f'      $fwrite(fd, "%0d t{i} %h %h\\n", cyc, l{i}_0, l{i}_1);' for i in range(len(thresh))]
    lines += ["    end", "    $fclose(fd);", "    $finish;", "  end", "endmodule", ""]
    return "\n".join(lines)


def _run(cmd: list[str], cwd: Path, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, (cmd[0], res.stdout[-3000:], res.stderr[-3000:])
    return res


@pytest.fixture(scope="module", params=SIMULATORS)
def simulated(request, tmp_path_factory):
    """Build the testbench of every core once for this simulator and run it:
    (simulator, {core index: stimulus}, {(cycle, core index or "t<i>"): (BEHAVIORAL=0, BEHAVIORAL=1) outputs},
    {lb_thresh index: expected levels})."""
    sim = request.param
    if not _have(sim):
        pytest.skip(f"{sim} not installed")
    env = _env(sim)
    d = tmp_path_factory.mktemp(f"pe_cores_{sim}")
    for name in SOURCES:
        shutil.copy(RTL / name, d / name)
    stims = {}
    for i, core in enumerate(CORES):
        stims[i] = _stimulus(core, seed=1000 + i)
        (d / f"stim{i}.hex").write_text("".join(f"{w:x}\n" for w in stims[i].words))
    levels = {}
    for i, t in enumerate(THRESH):
        words, levels[i] = _thresh_stimulus(t, seed=2000 + i)
        (d / f"tstim{i}.hex").write_text("".join(f"{w:x}\n" for w in words))
    (d / "tb.v").write_text(_testbench(CORES, THRESH))
    if sim == "icarus":
        _run(["iverilog", "-g2005", "-Wall", "-o", "tb.vvp", "-s", "tb", *SOURCES, "tb.v"], d, env)
        _run(["vvp", "-n", "tb.vvp"], d, env)
    else:
        _run(["verilator", "--binary", "--timing", "-Wno-fatal", "-Wno-lint", "-Wno-style", "--x-initial", "unique",
              "--x-assign", "unique", "--top-module", "tb", *SOURCES, "tb.v", "--Mdir", "obj_dir", "-o", "vtb",
              "-CFLAGS", "-std=c++20", "-MAKEFLAGS", "OPT_FAST=-O0", "-MAKEFLAGS", "OPT_SLOW=-O0",
              "-MAKEFLAGS", "OPT_GLOBAL=-O0"], d, env, timeout=900)
        _run([str(d / "obj_dir" / "vtb"), "+verilator+rand+reset+2"], d, env)
    dump = {}
    for line in (d / "acc.txt").read_text().split("\n"):
        if line:
            cyc, i, a0, a1 = line.split()
            dump[(int(cyc), i if i.startswith("t") else int(i))] = (a0, a1)
    return sim, stims, dump, levels


@pytest.mark.parametrize("idx", range(len(CORES)), ids=[c.name for c in CORES])
def test_pe_core_bit_heap_equals_word_model_and_dot_products(simulated, idx):
    sim, stims, dump, _ = simulated
    core, st = CORES[idx], stims[idx]
    assert len(st.expect) > CYCLES // 3, "too few accumulator updates"
    mask = (1 << core.acc_bits) - 1
    # BEHAVIORAL 0 and 1 agree on every cycle once the accumulators are set
    for cyc in range(st.first_update, CYCLES):
        a0, a1 = dump[(cyc, idx)]
        assert "x" not in a0.lower() and "z" not in a0.lower(), (sim, core.name, cyc, a0)
        assert a0 == a1, f"{sim} {core.name} cycle {cyc}: bit heap {a0} != word model {a1}"
    # and both are the exact dot products after every update
    for cyc, want in st.expect.items():
        got = int(dump[(cyc, idx)][0], 16)
        fields = [(got >> (p * core.acc_bits)) & mask for p in range(core.pe)]
        assert fields == [int(v) for v in want], f"{sim} {core.name} cycle {cyc}: {fields} != {list(want)}"


@pytest.mark.parametrize("idx", range(len(THRESH)), ids=[t.name for t in THRESH])
def test_thresh_chunked_compare_equals_plain_compare(simulated, idx):
    """lb_thresh: the chunked comparators (BEHAVIORAL 0) and the plain signed compare (1) give
    the same levels, and both are the count of thresholds <= acc (inverted: N - count)."""
    sim, _, dump, levels = simulated
    t = THRESH[idx]
    for cyc in range(CYCLES):
        l0, l1 = dump[(cyc, f"t{idx}")]
        assert l0 == l1, f"{sim} {t.name} cycle {cyc}: chunked {l0} != plain {l1}"
        assert int(l0, 16) == levels[idx][cyc], f"{sim} {t.name} cycle {cyc}: {l0} != {levels[idx][cyc]}"


# --------------------------------------------------------------------------- PE_KIND is built as given

def test_pe_kind_that_does_not_fit_stops_elaboration(tmp_path):
    """A PE_KIND other than the one the formats call for (here mac for bipolar weights x uint
    inputs, which is addsub) stops elaboration; Yosys names the values in the instance path."""
    for name in SOURCES:
        shutil.copy(RTL / name, tmp_path / name)
    (tmp_path / "bad_top.v").write_text(
        "`timescale 1ns/1ps\nmodule bad_top;\n  lb_mvau_core #(.PE(2), .SIMD(2), .WEIGHT_BITS(1), .W_KIND(0), "
        ".IN_BITS(2), .IN_KIND(1), .ACC_BITS(8), .PE_KIND(2)) u_bad ();\nendmodule\n")
    files = [*SOURCES, "bad_top.v"]
    error = "lb_mvau_core_error_PE_KIND_does_not_fit_W_KIND_IN_KIND"
    env = _env("icarus")
    ran = 0
    if shutil.which("iverilog", path=env["PATH"]):
        res = subprocess.run(["iverilog", "-g2005", "-o", "bad.vvp", "-s", "bad_top", *files], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=120)
        assert res.returncode != 0 and error in res.stdout + res.stderr, res.stdout + res.stderr
        ran += 1
    if shutil.which("yosys", path=env["PATH"]):
        res = subprocess.run(["yosys", "-q", "-p", f"read_verilog {' '.join(files)}; hierarchy -check -top bad_top"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        out = res.stdout + res.stderr
        assert res.returncode != 0 and error in out and "PE_KIND_[2].W_KIND_[0].IN_KIND_[1]" in out, out
        ran += 1
    if _have("verilator"):
        venv = _env("verilator")
        res = subprocess.run(["verilator", "--lint-only", "--top-module", "bad_top", "-Wno-fatal", "-Wno-PINMISSING",
                              *files], cwd=tmp_path, env=venv, capture_output=True, text=True, timeout=120)
        assert res.returncode != 0 and error in res.stdout + res.stderr, res.stdout + res.stderr
        ran += 1
    if not ran:
        pytest.skip("no iverilog, yosys or verilator")


def test_emitter_builds_the_pe_the_formats_call_for():
    """rtl_plan passes the IR's pe_kind as PE_KIND and accepts only choose_pe's kind: a
    bipolar-weight layer is never built as mac."""
    from lbgen.emitters.rtl import rtl_plan
    from lbgen.ir import IRError
    from lbgen_testing.graphs import random_graph

    graph = random_graph(3, [8, 4, 2], [B, I(3)], [U(2), U(2)], [(2, 2), (2, 2)])
    plan = rtl_plan(graph)
    assert [dict(lp["params"])["PE_KIND"] for lp in plan["layers"]] == [str(PE_KIND_CODE["addsub"]),
                                                                         str(PE_KIND_CODE["mac"])]
    graph.layers[0].pe_kind = "mac"
    with pytest.raises(IRError, match=r"'mac' does not fit bipolar weights.*expected 'addsub'"):
        rtl_plan(graph)
