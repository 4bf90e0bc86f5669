"""cocotb testbench for an emitted ``lbgen_top`` (docs/emit-contract.md).

Run through ``lbgen.simulate.run_rtl``, which writes the configuration (a
JSON file named by the environment variable ``LBGEN_SIM_CONFIG``) and reads
the results back. Two phases on one reset:

1. correctness: every input frame, with random tvalid gaps on s_axis and
   random tready back-pressure on m_axis (seeded);
2. throughput: ``phase2_frames`` frames back to back, no gaps, no
   back-pressure; cycles per frame = (clock cycles between the output tlast
   of frame 2 and of the last frame) / (frames - 2).

Every layer's output stream inside the top (``<layer>_out_tdata/_tvalid/_tready``)
and m_axis (with tlast) are recorded by one monitor coroutine that samples
all handshakes on the falling clock edge, when every signal has settled for
the coming rising edge (the same in Icarus and in Verilator, whose edge
callbacks run after the design has evaluated). Comparison with the golden
model happens after the simulation (lbgen.simlib.scoreboard), so the
per-cycle Python work is a few signal reads.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
import traceback
from pathlib import Path
from typing import Any, Optional

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import Event, FallingEdge, RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from .scoreboard import check_stream, report
from .streams import StreamSpec, pack_frames

CONFIG_ENV = "LBGEN_SIM_CONFIG"
_log = logging.getLogger("lbgen.tb")
_log.setLevel(logging.INFO)


def _raw(handle: Any) -> Any:
    """The GPI object behind a cocotb handle: reading its binary string directly
    skips building a LogicArray per read, which dominates a per-cycle monitor."""
    return getattr(handle, "_handle", None) or handle


def _binstr(raw: Any) -> str:
    get = getattr(raw, "get_signal_val_binstr", None)
    return get() if get else str(raw.value)


class _Probe:
    """The tdata/tvalid/tready (and optionally tlast) of one stream, sampled once per cycle."""

    __slots__ = ("name", "data", "valid", "ready", "last", "beats", "lasts", "cycles")

    def __init__(self, name: str, data: Any, valid: Any, ready: Any, last: Any = None) -> None:
        self.name = name
        self.data, self.valid, self.ready = _raw(data), _raw(valid), _raw(ready)
        self.last = _raw(last) if last is not None else None
        self.beats: list[int | str] = []
        self.lasts: list[int] = []
        self.cycles: list[int] = []   # clock count of every beat (m_axis only)


class Recorder:
    """One coroutine for all streams: sample handshakes on the falling edge and record beats."""

    def __init__(self, clk: Any, probes: list[_Probe], out: _Probe, inp: _Probe, stall_cycles: int,
                 source: AxiStreamSource, sink: AxiStreamSink, seed: int, frame_beats: int) -> None:
        self.clk = clk
        self.source, self.sink = source, sink
        # pause patterns for the next rising edge, drawn here rather than by cocotbext-axi's
        # own per-edge generator coroutines: fewer wake-ups per cycle, and the same
        # pattern in every simulator (no dependence on the order coroutines wake in)
        self.gap_rng, self.bp_rng = random.Random(seed * 2 + 1), random.Random(seed * 2 + 2)
        self.gaps = 0.0
        self.backpressure = 0.0
        self.probes = probes          # internal layer streams (recorded)
        self.out = out                # m_axis (recorded, with tlast and cycle numbers)
        self.inp = inp                # s_axis (counted, for progress only)
        self.stall_cycles = stall_cycles
        self.cycle = 0
        self.in_beats = 0
        self.last_progress = 0
        self.target = 0               # m_axis beats to wait for
        self.event = Event()
        self.stalled = False
        self.running = True
        self.frame_beats = frame_beats
        self.progress_beats = 50 * frame_beats      # log progress every 50 output frames
        self.t0 = time.monotonic()

    def wait_for(self, out_beats: int) -> Event:
        self.target = out_beats
        self.stalled = False
        self.last_progress = self.cycle
        self.event.clear()
        if len(self.out.beats) >= out_beats:
            self.event.set()
        return self.event

    async def run(self) -> None:
        edge = FallingEdge(self.clk)
        probes, out, inp = self.probes, self.out, self.inp
        source, sink = self.source, self.sink
        gap, bp = self.gap_rng.random, self.bp_rng.random
        while self.running:
            await edge
            self.cycle += 1
            if self.gaps:
                source.pause = gap() < self.gaps
            if self.backpressure:
                sink.pause = bp() < self.backpressure
            progress = False
            for p in probes:
                if p.valid.get_signal_val_binstr() == "1" and p.ready.get_signal_val_binstr() == "1":
                    s = p.data.get_signal_val_binstr()
                    try:
                        p.beats.append(int(s, 2))
                    except ValueError:
                        p.beats.append(s)
                    progress = True
            if out.valid.get_signal_val_binstr() == "1" and out.ready.get_signal_val_binstr() == "1":
                s = out.data.get_signal_val_binstr()
                try:
                    out.beats.append(int(s, 2))
                except ValueError:
                    out.beats.append(s)
                out.lasts.append(1 if out.last.get_signal_val_binstr() == "1" else 0)
                out.cycles.append(self.cycle)
                if len(out.beats) % self.progress_beats == 0:
                    _log.info("%d output frames after %d cycles, %.1f s", len(out.beats) // self.frame_beats,
                              self.cycle, time.monotonic() - self.t0)
                progress = True
                if len(out.beats) >= self.target:
                    self.event.set()
            if inp.valid.get_signal_val_binstr() == "1" and inp.ready.get_signal_val_binstr() == "1":
                self.in_beats += 1
                progress = True
            if progress:
                self.last_progress = self.cycle
            elif self.cycle - self.last_progress > self.stall_cycles and not self.event.is_set():
                self.stalled = True
                self.event.set()


class _ContractError(Exception):
    """The top does not have the ports or wires docs/emit-contract.md promises."""


def load_config() -> dict:
    path = os.environ.get(CONFIG_ENV)
    if not path:
        raise RuntimeError(f"{CONFIG_ENV} is not set: run this testbench through lbgen.simulate.run_rtl")
    return json.loads(Path(path).read_text())


def _write_results(cfg: dict, doc: dict, arrays: dict[str, np.ndarray]) -> None:
    Path(cfg["results"]).write_text(json.dumps(doc, indent=1) + "\n")
    np.savez(cfg["observed"], **arrays)


@cocotb.test()
async def lbgen_stream_test(dut: Any) -> None:
    """Drive all frames with gaps and back-pressure, then measure throughput; check against golden."""
    t_start = time.monotonic()
    cfg = load_config()
    in_spec = StreamSpec.from_json(cfg["input"])
    specs = [StreamSpec.from_json(d) for d in cfg["layers"]]
    out_spec = specs[-1]
    n1, n2 = int(cfg["phase1_frames"]), int(cfg["phase2_frames"])
    vec = np.load(cfg["vectors"])
    inputs = vec["inputs"]
    expected = [vec[f"expected_{i}"] for i in range(len(specs))]
    doc: dict[str, Any] = {"passed": False, "mismatches": [], "errors": [], "cycles_per_frame": None,
                           "cycles": 0, "phase1_cycles": None}
    arrays: dict[str, np.ndarray] = {}
    for name in ("cocotb", "cocotb.lbgen_top", "cocotb.lbgen_top.s_axis", "cocotb.lbgen_top.m_axis"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        errors = _check_ports(dut, in_spec, out_spec)
        probes: list[_Probe] = []
        if cfg.get("monitor_layers", True):
            for spec in specs:
                found = _layer_probe(dut, spec, errors)
                if found is not None:
                    probes.append(found)
        if errors:
            doc["errors"] = errors
            raise _ContractError(errors[0])

        Clock(dut.clk, float(cfg.get("clock_period_ns", 10)), unit="ns").start(start_high=False)
        dut.rst_n.value = 0
        source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst_n,
                                 reset_active_level=False, byte_size=in_spec.width)
        sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst_n,
                             reset_active_level=False, byte_size=out_spec.width)
        for _ in range(int(cfg.get("reset_cycles", 8))):
            await RisingEdge(dut.clk)
        dut.rst_n.value = 1
        await RisingEdge(dut.clk)

        out = _Probe("m_axis", dut.m_axis_tdata, dut.m_axis_tvalid, dut.m_axis_tready, dut.m_axis_tlast)
        inp = _Probe("s_axis", dut.s_axis_tdata, dut.s_axis_tvalid, dut.s_axis_tready)
        rec = Recorder(dut.clk, probes, out, inp, int(cfg["stall_cycles"]), source, sink, int(cfg["seed"]),
                       out_spec.beats)
        frames = pack_frames(inputs, in_spec)
        # phase 1: correctness under random gaps and back-pressure
        rec.gaps, rec.backpressure = float(cfg["gaps"]), float(cfg["backpressure"])
        cocotb.start_soon(rec.run())
        for beats in frames[:n1]:
            await source.send(AxiStreamFrame(tdata=beats))
        await rec.wait_for(n1 * out_spec.beats).wait()
        stalled = rec.stalled
        doc["phase1_cycles"] = rec.cycle

        # phase 2: throughput, back to back, no gaps, no back-pressure
        if n2 and not stalled:
            await _settle(dut, rec, cfg)
            rec.gaps = rec.backpressure = 0.0
            source.pause = False
            sink.pause = False
            for beats in frames[n1:n1 + n2]:
                await source.send(AxiStreamFrame(tdata=beats))
            await rec.wait_for((n1 + n2) * out_spec.beats).wait()
            stalled = rec.stalled
            if not stalled and n2 >= 3:
                # clock count at the last beat (tlast) of phase-2 frames 2 and n2 (1-based),
                # located by beat count so that a misplaced tlast cannot skew it
                nb = out_spec.beats
                end = [out.cycles[(n1 + k + 1) * nb - 1] for k in (1, n2 - 1)]
                doc["cycles_per_frame"] = (end[1] - end[0]) / (n2 - 2)
        await _settle(dut, rec, cfg)          # let stray extra beats show up
        rec.running = False
        doc["cycles"] = rec.cycle
        while not sink.empty():               # the sink drove tready; the recorder kept the beats
            sink.recv_nowait()

        results = []
        by_name = {p.name: p for p in probes}
        for k, spec in enumerate(specs):
            p = by_name.get(spec.name)
            if p is None:
                continue
            r = check_stream(spec, expected[k], p.beats, order=k, phase1_frames=n1)
            results.append(r)
            arrays[f"layer_{k}"] = r.values
        last_probe = by_name.get(out_spec.name)
        same = last_probe is not None and last_probe.beats == out.beats
        r = check_stream(out_spec, expected[-1], out.beats, order=len(specs),
                         label=f"layer {out_spec.name!r} (m_axis)", tlast=out.lasts, phase1_frames=n1,
                         tlast_only=same)
        results.append(r)
        arrays["output"] = r.values
        extra = _weight_errors(dut, specs)
        if stalled:
            extra.append(f"timeout: no handshake on any stream for {cfg['stall_cycles']} cycles "
                         f"(s_axis took {rec.in_beats} beats, m_axis gave {len(out.beats)})")
        doc["mismatches"] = report(results, extra)
        doc["passed"] = not doc["mismatches"]
    except _ContractError:
        doc["mismatches"] = list(doc["errors"])
    except Exception:
        doc["errors"].append(traceback.format_exc())
        doc["mismatches"].append("testbench error: " + traceback.format_exc().strip().splitlines()[-1])
        raise
    finally:
        doc["wall_seconds"] = time.monotonic() - t_start
        _write_results(cfg, doc, arrays)
    assert doc["passed"], doc["mismatches"][0]


def _weight_errors(dut: Any, specs: list[StreamSpec]) -> list[str]:
    """The sticky weight-decoder error of every layer that has one (Huffman-coded weights)."""
    found = []
    for spec in specs:
        handle = getattr(dut, f"{spec.prefix or spec.name}_weight_err", None)
        if handle is not None and str(handle.value).strip() != "0":
            found.append(f"layer {spec.name!r}: weight_err: its Huffman-coded weight stream does not decode "
                         f"(a code that does not exist, a pass that ends off its last bit, or a checksum "
                         f"that differs)")
    return found


async def _settle(dut: Any, rec: Recorder, cfg: dict) -> None:
    for _ in range(int(cfg.get("settle_cycles", 32))):
        await RisingEdge(dut.clk)


def _check_ports(dut: Any, in_spec: StreamSpec, out_spec: StreamSpec) -> list[str]:
    errors = []
    for port in ("clk", "rst_n", "s_axis_tdata", "s_axis_tvalid", "s_axis_tready", "s_axis_tlast",
                 "m_axis_tdata", "m_axis_tvalid", "m_axis_tready", "m_axis_tlast"):
        if not hasattr(dut, port):
            errors.append(f"lbgen_top has no port {port}")
    if not errors:
        for port, spec in (("s_axis_tdata", in_spec), ("m_axis_tdata", out_spec)):
            width = len(getattr(dut, port))
            if width != spec.width:
                errors.append(f"lbgen_top.{port} is {width} bits wide, the contract says "
                              f"{spec.per_beat} x {spec.bits} = {spec.width}")
    return errors


def _layer_probe(dut: Any, spec: StreamSpec, errors: list[str]) -> Optional[_Probe]:
    prefix = spec.prefix or spec.name
    names = [f"{prefix}_out_tdata", f"{prefix}_out_tvalid", f"{prefix}_out_tready"]
    missing = [n for n in names if not hasattr(dut, n)]
    if missing:
        errors.append(f"layer {spec.name!r}: lbgen_top has no wire {', '.join(missing)} "
                      f"(docs/emit-contract.md: every layer's output stream is visible in the top)")
        return None
    width = len(getattr(dut, names[0]))
    if width != spec.width:
        errors.append(f"layer {spec.name!r}: {names[0]} is {width} bits wide, the contract says "
                      f"{spec.per_beat} x {spec.bits} = {spec.width}")
        return None
    return _Probe(spec.name, *(getattr(dut, n) for n in names))
