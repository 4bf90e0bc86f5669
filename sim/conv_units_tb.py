"""cocotb testbench for stand-alone stream units (lb_swu, lb_maxpool, ...).

The top (written by tests/test_rtl_conv_units.py) holds several unit
instances side by side, each with its own streams ``<prefix>_s_axis_*`` and
``<prefix>_m_axis_*`` (tdata/tvalid/tready, m_axis also tlast) and a shared
``clk``/``rst_n``, so one build serves many parameter sets. The
configuration is a JSON file named by the environment variable
``CONV_UNITS_CONFIG``:

    {"results": path, "seed": int, "clock_ns": 10, "reset_cycles": 8,
     "units": [{"prefix": "u0", "in_width": bits, "out_width": bits,
                "frames": [[beat, ...], ...],      # input frames, beats as ints
                "out_beats": int,                  # output beats per frame
                "n1": int, "n2": int,              # correctness / throughput frames
                "gaps": p, "backpressure": p,      # phase 1 pause probabilities
                "burst": q,                        # phase 1: a pause decision holds
                                                   # for a run of about 1/q cycles
                "timeout_cycles": int}, ...]}      # per frame without progress

Every unit runs two phases, all units at once:

1. ``n1`` frames with random tvalid gaps on s_axis and random tready
   back-pressure on m_axis (drawn once per cycle, seeded, by one coroutine,
   so the pattern is the same in every simulator);
2. ``n2`` frames back to back with no gaps and no back-pressure; the cycles
   per frame are (end of frame n2-1 - end of frame 1) / (n2 - 2), counted
   at the tlast handshakes.

The testbench checks nothing itself: it writes every received frame (split
at m_axis_tlast, beats as ints), the frame end cycles, timeouts and stray
beats to the results file, and the test compares them with its reference.
"""

from __future__ import annotations

import json
import logging
import os
import random
import traceback
from pathlib import Path
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge, SimTimeoutError, with_timeout
from cocotb.utils import get_sim_time, get_time_from_sim_steps
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

CONFIG_ENV = "CONV_UNITS_CONFIG"


class Unit:
    """One instance: its source, sink, pause pattern and what it received."""

    def __init__(self, dut: Any, cfg: dict, seed: int) -> None:
        p = cfg["prefix"]
        self.cfg = cfg
        self.prefix = p
        self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, f"{p}_s_axis"), dut.clk, dut.rst_n,
                                      reset_active_level=False, byte_size=int(cfg["in_width"]))
        self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, f"{p}_m_axis"), dut.clk, dut.rst_n,
                                  reset_active_level=False, byte_size=int(cfg["out_width"]))
        for log in (self.source.log, self.sink.log):
            log.setLevel(logging.WARNING)
        self.rng = random.Random(seed)
        self.gaps = float(cfg.get("gaps", 0.0))
        self.backpressure = float(cfg.get("backpressure", 0.0))
        self.burst = float(cfg.get("burst", 1.0))
        self.phase = 1
        self.frames: list[list[int]] = []
        self.ends: list[int] = []       # clock cycle of every frame's tlast handshake
        self.error = ""
        self.done = False

    def pace(self) -> None:
        """Draw this cycle's tvalid gap and tready pause (phase 1 only)."""
        if self.phase != 1:
            return
        r = self.rng.random
        if self.gaps and r() < self.burst:
            self.source.pause = r() < self.gaps
        if self.backpressure and r() < self.burst:
            self.sink.pause = r() < self.backpressure

    async def run(self, period_ns: float) -> None:
        cfg = self.cfg
        n1, n2 = int(cfg["n1"]), int(cfg["n2"])
        frames = cfg["frames"]
        timeout_ns = float(cfg["timeout_cycles"]) * period_ns
        try:
            for phase, first, count in ((1, 0, n1), (2, n1, n2)):
                if count == 0:
                    continue
                self.phase = phase
                if phase == 2:
                    self.source.pause = False
                    self.sink.pause = False
                for k in range(first, first + count):
                    await self.source.send(AxiStreamFrame(tdata=list(frames[k % len(frames)])))
                for _ in range(count):
                    try:
                        frame = await with_timeout(self.sink.recv(), timeout_ns, "ns")
                    except SimTimeoutError:
                        self.error = (f"timeout: no complete output frame for {cfg['timeout_cycles']} cycles "
                                      f"after {len(self.frames)} frames (deadlock or missing tlast)")
                        return
                    self.frames.append([int(b) for b in frame.tdata])
                    # rising edges fall at (k + 1/2) periods: the floor numbers the cycles
                    self.ends.append(int(get_time_from_sim_steps(frame.sim_time_end, "ns") // period_ns))
        except Exception:
            self.error = "testbench error: " + traceback.format_exc()
        finally:
            self.phase = 0
            self.done = True

    def result(self) -> dict:
        n1, n2 = int(self.cfg["n1"]), int(self.cfg["n2"])
        cpf = None
        if not self.error and n2 >= 3 and len(self.ends) >= n1 + n2:
            e = self.ends[n1:]
            cpf = (e[n2 - 1] - e[1]) / (n2 - 2)
        stray = []
        while not self.sink.empty():
            stray.append([int(b) for b in self.sink.recv_nowait().tdata])
        return {"frames": self.frames, "ends": self.ends, "cycles_per_frame": cpf, "error": self.error,
                "stray_frames": stray, "partial_frame": not self.sink.idle()}


@cocotb.test()
async def conv_units_test(dut: Any) -> None:
    """Drive every unit's frames (see the module docstring) and record what comes out."""
    cfg = json.loads(Path(os.environ[CONFIG_ENV]).read_text())
    period = float(cfg.get("clock_ns", 10))
    for name in ("cocotb", f"cocotb.{dut._name}"):
        logging.getLogger(name).setLevel(logging.WARNING)
    Clock(dut.clk, period, unit="ns").start(start_high=False)
    dut.rst_n.value = 0
    seed = int(cfg.get("seed", 0))
    units = [Unit(dut, u, seed * 1000 + i) for i, u in enumerate(cfg["units"])]
    for _ in range(int(cfg.get("reset_cycles", 8))):
        await RisingEdge(dut.clk)
    dut.rst_n.value = 1
    await RisingEdge(dut.clk)

    tasks = [cocotb.start_soon(u.run(period)) for u in units]
    edge = FallingEdge(dut.clk)
    while not all(u.done for u in units):
        await edge
        for u in units:
            u.pace()
    for t in tasks:
        await t
    for _ in range(64):                       # let stray beats show up
        await RisingEdge(dut.clk)
    doc = {"units": {u.prefix: u.result() for u in units},
           "cycles": int(get_sim_time("ns") // period)}
    Path(cfg["results"]).write_text(json.dumps(doc) + "\n")
