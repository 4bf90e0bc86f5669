"""cocotb testbench for an emitted ``lbgen_top`` (docs/emit-contract.md).

Run through ``lbgen.simulate.run_rtl``, which writes the configuration (a
JSON file named by the environment variable ``LBGEN_SIM_CONFIG``) and reads
the results back. Two phases on one reset:

1. correctness: every input frame, with random tvalid gaps on s_axis and
   random tready back-pressure on m_axis (seeded); optionally with long
   bursts of either (``stall_bursts``: m_axis_tready low, ``gap_bursts``:
   s_axis_tvalid low, for a run of cycles that starts with a given
   probability per cycle) and with resets in the middle of it (``resets``,
   see below);
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

Resets in phase 1 (``resets``: a list of points, used one after the other):
a point {"stream", "beats", "hold", "cycles"} fires at the falling edge at
which ``stream`` (``s_axis``, ``m_axis`` or a layer) has made ``beats``
handshakes since the previous (re)start; m_axis_tready is then held low for
``hold`` cycles (the pipeline fills up behind a back-pressured output), and
rst_n goes low at a falling edge for ``cycles`` rising edges. The recorder
drives rst_n and, in the same callback, the reset of the cocotbext-axi source
and sink (``assert_reset``; they also watch rst_n, which they were given, and
leave reset when both say so): on assertion the source drops tvalid and the
frame in flight (its queue is emptied too), the sink drops tready and its
partial frame, at once rather than whenever a simulator delivers the rst_n
edge callback. At the assertion everything recorded so far is discarded
(nothing before or during a reset is compared); after each rising edge in
reset every monitored tvalid must be low; after the release all input frames
are sent again from the first one, and the design must deliver exactly those
frames: a stale beat, a lost or duplicated beat or a misplaced tlast after
the reset is a mismatch.
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

    def clear(self) -> None:
        self.beats.clear()
        self.lasts.clear()
        self.cycles.clear()


class _Bursts:
    """Runs of a forced pause (m_axis tready or s_axis tvalid low): one starts with
    probability ``p`` in a cycle outside a run and lasts ``lo``..``hi`` cycles."""

    __slots__ = ("p", "lo", "hi", "rng", "left", "count", "cycles", "longest")

    def __init__(self, spec: Optional[list], rng: random.Random) -> None:
        self.p, self.lo, self.hi = (float(spec[0]), int(spec[1]), int(spec[2])) if spec else (0.0, 0, 0)
        self.rng = rng
        self.left = 0                 # cycles of the current run still to come
        self.count = self.cycles = self.longest = 0

    def step(self) -> bool:
        """One cycle: True when the pause is forced in it."""
        if self.left:
            self.left -= 1
            return True
        if self.p and self.rng.random() < self.p:
            n = self.rng.randint(self.lo, self.hi)
            self.count += 1
            self.cycles += n
            self.longest = max(self.longest, n)
            self.left = n - 1
            return True
        return False

    def stats(self) -> dict:
        return {"count": self.count, "cycles": self.cycles, "longest": self.longest}


class Recorder:
    """One coroutine for all streams: sample handshakes on the falling edge and record beats.

    It also draws the pause patterns, drives the resets of phase 1 and watches
    for a design that makes no progress: ``stall_cycles`` cycles without a
    handshake on any stream, not counting cycles of a deliberate stall (a
    burst, a hold before a reset, the reset itself)."""

    def __init__(self, clk: Any, probes: list[_Probe], out: _Probe, inp: _Probe, stall_cycles: int,
                 source: AxiStreamSource, sink: AxiStreamSink, seed: int, frame_beats: int,
                 rst_n: Any = None, resets: Optional[list[dict]] = None, stall_bursts: Optional[list] = None,
                 gap_bursts: Optional[list] = None) -> None:
        self.clk = clk
        self.source, self.sink = source, sink
        # pause patterns for the next rising edge, drawn here rather than by cocotbext-axi's
        # own per-edge generator coroutines: fewer wake-ups per cycle, and the same
        # pattern in every simulator (no dependence on the order coroutines wake in)
        self.gap_rng, self.bp_rng = random.Random(seed * 2 + 1), random.Random(seed * 2 + 2)
        self.gaps = 0.0
        self.backpressure = 0.0
        # bursts draw from their own generators: the patterns above stay what they were
        self.stall_bursts = _Bursts(stall_bursts, random.Random(f"stall-bursts-{seed}"))
        self.gap_bursts = _Bursts(gap_bursts, random.Random(f"gap-bursts-{seed}"))
        self.bursts = False           # phase 1: bursts on
        self.probes = probes          # internal layer streams (recorded)
        self.out = out                # m_axis (recorded, with tlast and cycle numbers)
        self.inp = inp                # s_axis (counted, for progress only)
        self.stall_cycles = stall_cycles
        self.cycle = 0
        self.in_beats = 0
        self.idle = 0                 # cycles without a handshake, deliberate stalls not counted
        self.target: Optional[int] = None   # m_axis beats to wait for
        self.event = Event()
        self.stalled = False
        self.running = True
        self.frame_beats = frame_beats
        self.progress_beats = 50 * frame_beats      # log progress every 50 output frames
        self.t0 = time.monotonic()
        # resets: the plan, the point armed now, and the state of the one under way
        self.rst_n = rst_n
        self.plan = list(resets or [])
        self.armed: Optional[dict] = self.plan[0] if self.plan else None
        self.hold_left = 0            # cycles m_axis_tready is still held low before the reset
        self.reset_left = 0           # rising edges still to come with rst_n low
        self.resets_done = 0          # resets released
        self.reset_log: list[dict] = []
        self.reset_missed = False     # all frames came out before the armed point was reached
        self.reset_errors: list[str] = []   # streams valid in reset

    @property
    def resetting(self) -> bool:
        """A reset is under way (held output before it, or rst_n low)."""
        return bool(self.hold_left or self.reset_left)

    def wait_for(self, out_beats: int) -> Event:
        self.target = out_beats
        self.stalled = False
        self.idle = 0
        self.event.clear()
        if len(self.out.beats) >= out_beats and self.armed is None and not self.resetting:
            self.event.set()
        return self.event

    def _count(self, stream: str) -> int:
        if stream == "s_axis":
            return self.in_beats
        if stream == "m_axis":
            return len(self.out.beats)
        for p in self.probes:
            if p.name == stream:
                return len(p.beats)
        raise KeyError(stream)

    def _assert_reset(self) -> None:
        point = self.armed or {}
        out = self.out
        self.reset_log.append({
            "cycle": self.cycle, **point,
            "beats_seen": {"s_axis": self.in_beats, **{p.name: len(p.beats) for p in self.probes},
                           "m_axis": len(out.beats)},
            "m_axis_tvalid": _binstr(out.valid), "m_axis_tready": _binstr(out.ready),
            "s_axis_tvalid": _binstr(self.inp.valid), "s_axis_tready": _binstr(self.inp.ready),
            "valid_in_reset": [],
        })
        _log.info("reset at cycle %d (%s)", self.cycle, point)
        self.rst_n.value = 0
        self.source.clear()                      # the frames not yet sent
        self.source.assert_reset(True)           # tvalid low, the frame in flight dropped
        self.sink.assert_reset(True)             # tready low, a partial frame dropped
        for p in self.probes:
            p.clear()
        out.clear()
        self.in_beats = 0
        self.hold_left = 0
        self.sink.pause = False                  # the hold is over (the draws decide from here on)
        self.reset_left = max(1, int(point.get("cycles", 1)))
        k = len(self.reset_log)
        self.armed = self.plan[k] if k < len(self.plan) else None

    def _valid_in_reset(self) -> None:
        entry = self.reset_log[-1]
        for p in self.probes + [self.out]:
            if p.valid.get_signal_val_binstr() != "0" and p.name not in entry["valid_in_reset"]:
                entry["valid_in_reset"].append(p.name)
                self.reset_errors.append(f"reset {len(self.reset_log) - 1} (cycle {entry['cycle']}): "
                                         f"{'m_axis' if p is self.out else 'layer ' + repr(p.name)} tvalid is "
                                         f"{p.valid.get_signal_val_binstr()} after a rising edge with rst_n low")

    def _release(self) -> None:
        self.rst_n.value = 1
        self.source.assert_reset(False)
        self.sink.assert_reset(False)
        self.resets_done += 1

    async def run(self) -> None:
        edge = FallingEdge(self.clk)
        probes, out, inp = self.probes, self.out, self.inp
        source, sink = self.source, self.sink
        gap, bp = self.gap_rng.random, self.bp_rng.random
        while self.running:
            await edge
            self.cycle += 1
            released = False
            if self.reset_left:
                # a rising edge with rst_n low has passed: no stream may be valid now
                # (AXI4-Stream: tvalid low in reset). Nothing is recorded; at the last
                # reset edge rst_n goes high again and the handshakes of the first edge
                # out of reset are recorded (a stale valid would show there)
                self._valid_in_reset()
                self.reset_left -= 1
                if self.reset_left:
                    continue
                self._release()
                released = True
            deliberate = self.resetting
            if self.gaps:
                source.pause = gap() < self.gaps
            if self.backpressure:
                sink.pause = bp() < self.backpressure
            if self.bursts:
                if self.gap_bursts.step():
                    source.pause = deliberate = True
                elif self.gap_bursts.p and not self.gaps:
                    source.pause = False
                if self.stall_bursts.step():
                    sink.pause = deliberate = True
                elif self.stall_bursts.p and not self.backpressure:
                    sink.pause = False
            if self.hold_left:
                sink.pause = True
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
            if inp.valid.get_signal_val_binstr() == "1" and inp.ready.get_signal_val_binstr() == "1":
                self.in_beats += 1
                progress = True
            # resets: hold the output, then assert rst_n (after this edge's samples,
            # which belong to the frames the reset throws away)
            if self.hold_left:
                self.hold_left -= 1
                if not self.hold_left:
                    self._assert_reset()
            elif self.armed is not None and self._count(self.armed["stream"]) >= int(self.armed["beats"]):
                hold = int(self.armed.get("hold", 0))
                if hold:
                    self.hold_left = hold
                    sink.pause = True
                else:
                    self._assert_reset()
            if released and not self.reset_left:
                # out of reset (and not straight back in): the test sends all frames again
                # (if a hold has begun, the next reset throws them away and they go again)
                self.event.set()
            if self.resetting:
                continue
            if self.target is not None and len(out.beats) >= self.target and not self.event.is_set():
                if self.armed is not None:
                    self.reset_missed = True
                self.event.set()
            if progress:
                self.idle = 0
            elif deliberate:
                pass
            else:
                self.idle += 1
                if self.idle > self.stall_cycles and not self.event.is_set():
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
        resets = list(cfg.get("resets") or [])
        rec = Recorder(dut.clk, probes, out, inp, int(cfg["stall_cycles"]), source, sink, int(cfg["seed"]),
                       out_spec.beats, rst_n=dut.rst_n, resets=resets, stall_bursts=cfg.get("stall_bursts"),
                       gap_bursts=cfg.get("gap_bursts"))
        frames = pack_frames(inputs, in_spec)
        # phase 1: correctness under random gaps and back-pressure (and bursts, and resets:
        # after each reset all frames again, from the first)
        rec.gaps, rec.backpressure = float(cfg["gaps"]), float(cfg["backpressure"])
        rec.bursts = True
        cocotb.start_soon(rec.run())
        attempt = 0
        while True:
            for beats in frames[:n1]:
                await source.send(AxiStreamFrame(tdata=beats))
            await rec.wait_for(n1 * out_spec.beats).wait()
            if rec.stalled or rec.resets_done <= attempt:
                break
            attempt = rec.resets_done
        stalled = rec.stalled
        rec.bursts = False
        doc["phase1_cycles"] = rec.cycle
        doc["stress"] = {"resets": rec.reset_log, "stall_bursts": rec.stall_bursts.stats(),
                         "gap_bursts": rec.gap_bursts.stats(), "timeout_cycles": rec.stall_cycles}

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
                         label=f"{out_spec.label} (m_axis)", tlast=out.lasts, phase1_frames=n1,
                         tlast_only=same)
        results.append(r)
        arrays["output"] = r.values
        extra = _weight_errors(dut, specs)
        extra += rec.reset_errors
        if rec.reset_missed:
            point = resets[len(rec.reset_log)]
            extra.append(f"reset point {len(rec.reset_log)} ({point['stream']} after {point['beats']} beats) "
                         f"was not reached: all {n1} frames came out before it")
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
