"""The RTL Huffman decoder (lb_huff_weights / lb_huff_lane) against the Python decoders.

Hypothesis draws batches of random lane streams: symbol widths 1..8, codes
from skewed, uniform, single-symbol and length-limit-forcing (Fibonacci)
distributions, length limits from the tightest possible up to 14, 1..3 lanes
and passes of 1..40 symbols, and in some streams one flipped bit. A batch is
one generated top with one lb_huff_weights instance per stream, simulated
with cocotb (sim/huff_lanes_tb.py) on Icarus and Verilator: words are taken
with random pauses for a pass and a half, then in every cycle for two more
passes. Every lane of a clean stream must give exactly the symbols
HuffmanCode.decode reads from its bits (pass after pass), with no stall in
the every-cycle phase and no error; a corrupted stream must give what the
cycle model (lbgen.huffman.simulate_lane) gives, error flag included.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lbgen.emitters.rtl import huffman_weights_params
from lbgen.huffman import HuffmanCode, LaneStream, encode_lanes, simulate_lane, word_bits
from lbgen.packing import write_mem
from lbgen.simulate import toolchain_env

ROOT = Path(__file__).resolve().parents[1]
RTL = ROOT / "templates" / "rtl"
TB_MODULE = "lbgen.simlib.huff_lanes_tb"
TOP = "huff_lanes_top"


@dataclass
class Case:
    """One lb_huff_weights instance: its code, lane sequences and (maybe) one flipped bit."""

    code: HuffmanCode
    sym_bits: int
    seqs: np.ndarray                       # (lanes, pass_len)
    flip: tuple[int, int] | None           # (lane, stream bit)
    pause: float

    @property
    def lanes(self) -> list[LaneStream]:
        return encode_lanes(self.code, self.seqs, word_bits(self.code.max_len))

    @property
    def pass_len(self) -> int:
        return self.seqs.shape[1]

    @property
    def words1(self) -> int:
        return self.pass_len + self.pass_len // 2 + 1

    @property
    def words2(self) -> int:
        return 2 * self.pass_len

    def rom(self, lane: int) -> list[int]:
        s = self.lanes[lane]
        words = list(s.words)
        if self.flip is not None and self.flip[0] == lane:
            k, j = divmod(self.flip[1], s.fw)
            words[k] ^= 1 << (s.fw - 1 - j)
        return words


@st.composite
def cases(draw) -> Case:
    sym_bits = draw(st.integers(1, 8))
    n_sym = 1 << sym_bits
    kind = draw(st.sampled_from(["skewed", "uniform", "one", "fibonacci"]))
    lanes = draw(st.integers(1, 3))
    pass_len = draw(st.integers(1, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "one":
        seqs = np.full((lanes, pass_len), rng.integers(n_sym))
    elif kind == "uniform":
        seqs = rng.integers(n_sym, size=(lanes, pass_len))
    elif kind == "skewed":
        p = rng.dirichlet(np.full(n_sym, draw(st.sampled_from([0.05, 0.3, 2.0]))))
        seqs = rng.choice(n_sym, size=(lanes, pass_len), p=p)
    else:                                   # Fibonacci counts: the unconstrained code is as long as it gets
        fib = [1, 1]
        while len(fib) < min(n_sym, 14):
            fib.append(fib[-1] + fib[-2])
        pool = np.repeat(np.arange(len(fib)), fib)
        seqs = rng.choice(pool, size=(lanes, pass_len))
    distinct = len(np.unique(seqs))
    tightest = max(1, math.ceil(math.log2(distinct)))
    max_len = draw(st.integers(tightest, 14))
    code = HuffmanCode.for_symbols(seqs.ravel(), sym_bits, max_len)
    flip = None
    if draw(st.booleans()) and draw(st.booleans()):          # a quarter of the streams
        lane = draw(st.integers(0, lanes - 1))
        n_bits = len(code.encode(seqs[lane]))
        flip = (lane, draw(st.integers(0, max(0, n_bits - 1)))) if n_bits else None
    return Case(code, sym_bits, seqs.astype(np.int64), flip, draw(st.sampled_from([0.0, 0.3, 0.7])))


def _top_verilog(batch: list[Case]) -> str:
    ports, body = ["  input  wire clk", "  input  wire rst_n"], []
    for i, c in enumerate(batch):
        p = f"u{i}"
        n = len(c.lanes) * c.sym_bits
        ports += [f"  input  wire {p}_take", f"  output wire [{n - 1}:0] {p}_word",
                  f"  output wire {p}_ready", f"  output wire {p}_err"]
        params = huffman_weights_params(c.code, c.lanes, c.sym_bits, c.pass_len)
        params["INIT_FILE"] = f'"{p}_0000.mem"'
        plist = ", ".join(f".{k}({v})" for k, v in params.items())
        body.append(f"  lb_huff_weights #({plist}) {p} (\n"
                    f"    .clk(clk), .rst_n(rst_n), .take({p}_take), .word({p}_word), .ready({p}_ready),"
                    f" .err({p}_err)\n  );")
    return "`timescale 1ns/1ps\n" + f"module {TOP} (\n" + ",\n".join(ports) + "\n);\n" + "\n".join(body) \
        + "\nendmodule\n"


def _simulate(batch: list[Case], where: Path, simulator: str, seed: int) -> dict:
    from cocotb_tools.runner import get_runner

    from lbgen.simulate import _environ

    where.mkdir(parents=True, exist_ok=True)
    (where / f"{TOP}.v").write_text(_top_verilog(batch))
    run_dir = where / f"run-{simulator}"
    run_dir.mkdir(exist_ok=True)
    for i, c in enumerate(batch):
        for lane, s in enumerate(c.lanes):
            write_mem(run_dir / f"u{i}_{lane:04d}.mem", c.rom(lane), s.fw)
    results = run_dir / "results.json"
    cfg = {"results": str(results), "seed": seed, "clock_ns": 10, "reset_cycles": 8,
           "units": [{"prefix": f"u{i}", "words1": c.words1, "words2": c.words2, "pause": c.pause}
                     for i, c in enumerate(batch)]}
    (run_dir / "config.json").write_text(json.dumps(cfg) + "\n")
    env = dict(toolchain_env(simulator), HUFF_LANES_CONFIG=str(run_dir / "config.json"))
    env.pop("PYTEST_CURRENT_TEST", None)
    sources = [RTL / "lb_rom.v", RTL / "lb_huff_lane.v", RTL / "lb_huff_weights.v", where / f"{TOP}.v"]
    bdir = where / f"build-{simulator}"
    with _environ(env):
        runner = get_runner(simulator)
        runner.build(sources=[str(s) for s in sources], hdl_toplevel=TOP, build_dir=str(bdir), always=True,
                     build_args=["-Wall", "-Wno-DECLFILENAME"] if simulator == "verilator" else [],
                     log_file=str(bdir / "build.log"))
        try:
            runner.test(test_module=TB_MODULE, hdl_toplevel=TOP, hdl_toplevel_lang="verilog", build_dir=str(bdir),
                        test_dir=str(run_dir), results_xml=str(run_dir / "results.xml"),
                        log_file=str(run_dir / "sim.log"))
        except SystemExit:
            pass
    if not results.is_file():
        log = (run_dir / "sim.log").read_text(errors="replace") if (run_dir / "sim.log").is_file() else ""
        pytest.fail(f"{simulator}: the testbench wrote no results\n" + "\n".join(log.splitlines()[-40:]))
    return json.loads(results.read_text())["units"]


def _lane_symbols(words: list[int], lanes: int, bits: int) -> np.ndarray:
    mask = (1 << bits) - 1
    return np.array([[(w >> (i * bits)) & mask for w in words] for i in range(lanes)], dtype=np.int64)


def _check(batch: list[Case], got: dict, simulator: str) -> list[str]:
    errors = []
    for i, c in enumerate(batch):
        r = got[f"u{i}"]
        n = c.words1 + c.words2
        where = (f"{simulator} u{i}: {len(c.lanes)} lanes of {c.sym_bits}-bit symbols, pass {c.pass_len}, "
                 f"L {c.code.max_len}, flip {c.flip}")
        if len(r["words"]) != n:
            errors.append(f"{where}: took {len(r['words'])} words of {n}")
            continue
        rtl = _lane_symbols(r["words"], len(c.lanes), c.sym_bits)
        want_err = False
        for lane, s in enumerate(c.lanes):
            if c.flip is None or c.flip[0] != lane:
                decoded, used = c.code.decode(s.bits, c.pass_len)      # the plain Python decoder
                assert used == s.n_bits and np.array_equal(decoded, c.seqs[lane])
                want = np.resize(decoded, n)
            else:
                trace = simulate_lane(c.code, s, n, c.pass_len, words=c.rom(lane))
                want, want_err = trace.symbols, trace.error
            if not np.array_equal(rtl[lane], want):
                k = int(np.flatnonzero(rtl[lane] != want)[0])
                errors.append(f"{where}: lane {lane} symbol {k} (pass {k // c.pass_len}): expected {want[k]}, "
                              f"got {rtl[lane][k]}")
        if r["err"] != int(want_err):
            errors.append(f"{where}: err {r['err']}, the cycle model says {int(want_err)}")
        if r["stalls"]:
            errors.append(f"{where}: {r['stalls']} cycles without a word while taken in every cycle")
    return errors


BATCH = st.lists(cases(), min_size=10, max_size=10)


@pytest.mark.parametrize("simulator,examples", [
    ("icarus", 3),
    pytest.param("verilator", 1, marks=pytest.mark.slow),      # its build is the slow part; make test-all
])
def test_rtl_decoder_matches_the_python_decoders_on_random_streams(simulator, examples, tmp_path_factory):
    runs = []

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(batch=BATCH, seed=st.integers(0, 2**16))
    def check(batch, seed):
        where = tmp_path_factory.mktemp(f"huff_lanes_{simulator}")
        got = _simulate(batch, where, simulator, seed)
        runs.append(len(batch))
        errors = _check(batch, got, simulator)
        assert not errors, "\n".join(errors)

    check()
    assert sum(runs) >= 10 * examples
