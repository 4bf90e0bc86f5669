"""C-simulation of the emitted HLS C++ with plain g++ (no vendor tool).

    build_csim(out/"hls", build_dir) -> path of the testbench binary
    run_csim(out, inputs)            -> CsimResult (raw output accumulators,
                                        every layer's output, timings)

The testbench (templates/hls/tb_csim.cpp.j2) reads packed input beats, one hex
word per line, calls ``lbgen_top`` once per frame and writes the output beats
the same way; built with ``-DLBGEN_TRACE`` it also writes every layer's output
stream, so a mismatch against the golden model names a layer and a channel.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from .emitters.hls import trace_names
from .ir import DType, Graph, IRError
from .packing import pack_stream, unpack_stream
from .pool import Job, Pool

CXX_STD = "-std=c++14"
#: -O3, portable (no -march=native: a cached binary may run on another machine); ap_types asserts kept
CXX_FLAGS = ("-O3", "-DLBGEN_TRACE", "-w")
#: the C-simulation model of the MVAU dot products and threshold compares in native integers
#: (hls/lbgen_pe.hpp, hls/lbgen_mvau.hpp)
NATIVE_FLAG = "-DLBGEN_CSIM_NATIVE"


def binary_name(native: bool) -> str:
    return "tb_csim" if native else "tb_csim_ap"


class CsimError(RuntimeError):
    """Building or running the C-simulation failed; the message carries the tool output."""


@dataclass
class CsimResult:
    result: np.ndarray                                          # (N, out) what the top emits (Trace.result)
    layers: dict[str, np.ndarray] = field(default_factory=dict)  # layer -> (N, mh) output values
    build_seconds: float = 0.0                                  # 0 when the cached binary was reused
    run_seconds: float = 0.0                                    # the testbench process, wall clock
    sim_seconds: float = 0.0                                    # lbgen_top calls only, as the testbench measured
    frames: int = 0
    binary: Optional[Path] = None

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.sim_seconds if self.sim_seconds > 0 else float("inf")

    def mismatch(self, trace) -> Optional[str]:
        """Compare with a golden ``Trace``; None if bit-exact, else where it first differs.

        Layers are checked in order, so the message names the first layer whose
        output differs, the frame, the channel and both values.
        """
        order = list(trace.outputs)
        got_all = dict(self.layers)
        if trace.topk is None:
            got_all.setdefault(order[-1], self.result)
        for name in order:
            if name in got_all:
                first = _first_difference(f"layer {name!r}", "values", "channel", trace.outputs[name], got_all[name])
                if first:
                    return first
        if trace.topk is not None:
            return _first_difference("topk stage", "indices", "position", trace.topk, self.result)
        return None


def _first_difference(where: str, what: str, axis: str, want: np.ndarray, got: np.ndarray) -> Optional[str]:
    """The first C-sim value that differs from golden, named by frame and ``axis`` index, else None."""
    if want.shape != got.shape:
        return f"{where}: C-sim output shape {got.shape}, golden {want.shape}"
    diff = np.argwhere(want != got)
    if not diff.size:
        return None
    n, c = (int(v) for v in diff[0])
    return (f"{where}: {len(diff)} {what} differ; first at frame {n}, {axis} {c}: "
            f"C-sim {int(got[n, c])}, golden {int(want[n, c])}")


def ap_types_include() -> Path:
    """The directory holding ap_int.h / hls_stream.h (shipped by the hls4ml package)."""
    spec = importlib.util.find_spec("hls4ml")
    if spec is None or not spec.submodule_search_locations:
        raise CsimError("C-simulation needs the ap_types headers from the hls4ml package: "
                        "pip install 'lbgen[sim]' (or pip install hls4ml)")
    for root in spec.submodule_search_locations:
        path = Path(root) / "templates" / "vivado" / "ap_types"
        if (path / "ap_int.h").is_file() and (path / "hls_stream.h").is_file():
            return path
    raise CsimError(f"hls4ml is installed ({list(spec.submodule_search_locations)}) but its "
                    f"templates/vivado/ap_types/ap_int.h is missing")


def _compiler() -> str:
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None:
        raise CsimError(f"C++ compiler {cxx!r} not found (set CXX or install g++)")
    return cxx


def _sources(hls_dir: Path) -> list[Path]:
    return sorted(p for p in hls_dir.iterdir() if p.suffix in (".h", ".hpp", ".cpp") and p.is_file())


def build_csim(hls_dir: Path, build_dir: Path, *, native: bool = True, force: bool = False) -> Path:
    """Compile the testbench and the top with g++ -O3; return the binary.

    ``native`` (default) builds the top with ``-DLBGEN_CSIM_NATIVE``: the MVAU's
    MAC stage and multi-threshold compare run as native-integer models of the
    same arithmetic in C-simulation (5-10x faster on the digits MLPs); without
    it every operation is the ap_int code that synthesis sees (the headers cut
    constant ROM words apart once, a C-simulation path for wiring only, see
    hls/lbgen_mvau.hpp). The two translation
    units compile in parallel; an object or binary built from the same sources
    with the same command is reused unless ``force`` (the testbench object is
    shared by both variants). Raises CsimError with the compiler output on failure.
    """
    hls_dir, build_dir = Path(hls_dir).resolve(), Path(build_dir).resolve()
    for name in ("lbgen_top.cpp", "tb_csim.cpp", "lbgen_top.h", "lbgen_params.h"):
        if not (hls_dir / name).is_file():
            raise CsimError(f"{hls_dir / name} is missing (emit the HLS design first)")
    build_dir.mkdir(parents=True, exist_ok=True)
    cxx = _compiler()
    base = [CXX_STD, *CXX_FLAGS, f"-I{ap_types_include()}", f"-I{hls_dir}"]
    binary = build_dir / binary_name(native)
    sources = hashlib.sha256()
    for src in _sources(hls_dir):
        sources.update(src.name.encode() + b"\0" + src.read_bytes() + b"\0")

    def up_to_date(target: Path, digest: str) -> bool:
        stamp = target.with_name(target.name + ".sha256")
        return not force and target.is_file() and stamp.is_file() and stamp.read_text() == digest

    def stamp(target: Path, digest: Optional[str]) -> None:
        path = target.with_name(target.name + ".sha256")
        if digest is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(digest)

    def run_cached(cmd: list[str], target: Path, digest: str, what: str) -> Path:
        """Run ``cmd`` to make ``target`` unless it was made by the same digest."""
        if up_to_date(target, digest):
            return target
        stamp(target, None)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise CsimError(f"C-simulation {what} failed: {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
        stamp(target, digest)
        return target

    def compile_one(job: tuple[str, list[str], Path]) -> Path:
        src, flags, obj = job
        cmd = [cxx, *flags, "-c", str(hls_dir / src), "-o", str(obj)]
        digest = hashlib.sha256((" ".join(cmd) + sources.hexdigest()).encode()).hexdigest()
        return run_cached(cmd, obj, digest, "build")

    jobs = [("lbgen_top.cpp", base + ([NATIVE_FLAG] if native else []), build_dir / f"lbgen_top.{binary.name}.o"),
            ("tb_csim.cpp", base, build_dir / "tb_csim.o")]
    with ThreadPoolExecutor(max_workers=2) as pool:
        objs = list(pool.map(compile_one, jobs))
    cmd = [cxx, *[str(o) for o in objs], "-o", str(binary)]
    digest = hashlib.sha256("\0".join([*cmd, *(o.with_name(o.name + ".sha256").read_text() for o in objs)])
                            .encode()).hexdigest()
    return run_cached(cmd, binary, digest, "link")


def _write_beats(path: Path, frames: list[list[int]], width: int) -> None:
    digits = max(1, (width + 3) // 4)
    with open(path, "w") as f:
        for frame in frames:
            f.write("".join(f"{b:0{digits}x}\n" for b in frame))


def _read_beats(path: Path, per_frame: int, n: int, what: str) -> list[list[int]]:
    beats = [int(line, 16) for line in Path(path).read_text().split()]
    if len(beats) != per_frame * n:
        raise CsimError(f"{what}: {len(beats)} beats, expected {per_frame} x {n} frames")
    return [beats[i * per_frame:(i + 1) * per_frame] for i in range(n)]


def _check_design(hls_dir: Path, graph: Graph) -> None:
    """The emitted top must have the beat formats of ``graph`` (else: emitted from another graph)."""
    top_h = hls_dir / "lbgen_top.h"
    if not top_h.is_file():
        raise CsimError(f"{top_h} is missing (emit the HLS design first)")
    defines = dict(re.findall(r"^#define (LBGEN_\w+) (\d+)", top_h.read_text(), flags=re.M))
    first = graph.layers[0]
    out_dt, per_beat, beats = graph.output_stream()
    want = {"LBGEN_IN_W": first.simd * first.itype.bits, "LBGEN_IN_BEATS": graph.in_len // first.simd,
            "LBGEN_OUT_W": per_beat * out_dt.bits, "LBGEN_OUT_BEATS": beats}
    for key, value in want.items():
        if int(defines.get(key, -1)) != value:
            raise CsimError(f"{top_h}: {key} is {defines.get(key)}, the graph needs {value}; "
                            f"the HLS design was emitted from another graph (re-emit it)")


def run_csim(out_dir: Path, inputs: np.ndarray, build_dir: Path | None = None, *,
             graph: Graph | None = None, trace: bool = True, native: bool = True,
             force_build: bool = False) -> CsimResult:
    """Run the C-simulation of ``out_dir/hls`` on ``inputs``, (N, MW0) int64 input values.

    One testbench process runs every frame. Returns the (N, MH_last) raw
    accumulators and, with ``trace``, every layer's (N, mh) output values
    (bipolar as -1/+1, as ``lbgen.golden`` gives them). ``graph`` defaults to
    ``Graph.load(out_dir)``; ``build_dir`` to ``out_dir/build/csim``;
    ``native=False`` runs the pure ap_int datapath (see ``build_csim``).
    """
    out_dir = Path(out_dir)
    graph = graph if graph is not None else Graph.load(out_dir)
    hls_dir = out_dir / "hls"
    build_dir = Path(build_dir) if build_dir is not None else out_dir / "build" / "csim"
    x = np.asarray(inputs)
    first, last = graph.layers[0], graph.layers[-1]
    if x.ndim != 2 or x.shape[1] != graph.in_len:
        raise IRError(f"csim: inputs of shape {x.shape}, expected (N, {graph.in_len})")
    n = x.shape[0]
    _check_design(hls_dir, graph)

    t0 = time.perf_counter()
    old = build_dir / binary_name(native)
    before = old.stat().st_mtime_ns if old.exists() else None
    binary = build_csim(hls_dir, build_dir, native=native, force=force_build)
    built = before is None or binary.stat().st_mtime_ns != before
    build_seconds = time.perf_counter() - t0 if built else 0.0

    with tempfile.TemporaryDirectory(prefix="lbgen-csim-") as tmp:
        tmp_path = Path(tmp)
        in_path, out_path = tmp_path / "in.hex", tmp_path / "out.hex"
        _write_beats(in_path, pack_stream(x, first.itype, first.simd), first.simd * first.itype.bits)
        cmd = [str(binary), str(in_path), str(out_path)]
        if trace:
            (tmp_path / "trace").mkdir()
            cmd.append(str(tmp_path / "trace"))
        t1 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        run_seconds = time.perf_counter() - t1
        if proc.returncode != 0:
            raise CsimError(f"C-simulation failed (exit {proc.returncode}): {' '.join(cmd)}\n"
                            f"{proc.stdout}{proc.stderr}")
        sim_seconds = run_seconds
        for tok in proc.stdout.split():
            if tok.startswith("seconds="):
                sim_seconds = float(tok.split("=", 1)[1])
        out_type, per_beat, beats = graph.output_stream()
        result = unpack_stream(_read_beats(out_path, beats, n, "C-sim output"), out_type, per_beat) \
            if n else np.zeros((0, per_beat * beats), dtype=np.int64)
        layers: dict[str, np.ndarray] = {}
        if trace and n:
            for layer, fname in zip(graph.layers, trace_names(graph).values()):
                path = tmp_path / "trace" / f"{fname}.hex"
                frames = _read_beats(path, graph.layer_out_len(layer) // layer.pe, n, f"C-sim trace of layer {layer.name!r}")
                layers[layer.name] = unpack_stream(frames, layer.out_dtype, layer.pe)
    return CsimResult(result=result, layers=layers, build_seconds=build_seconds, run_seconds=run_seconds,
                      sim_seconds=sim_seconds, frames=n, binary=binary)


def _csim_shard(out_dir: str, inputs: np.ndarray, native: bool, trace: bool) -> CsimResult:
    """One shard of ``run_csim_sharded`` (a pool job: a top-level function of plain arguments)."""
    return run_csim(Path(out_dir), inputs, native=native, trace=trace)


def run_csim_sharded(out_dir: Path, inputs: np.ndarray, pool: Pool, shards: int, *, native: bool = True,
                     trace: bool = True, progress=None) -> CsimResult:
    """``run_csim`` in ``shards`` contiguous pieces of the frames, run as jobs of ``pool``
    (``lbgen.pool``) and merged in frame order.

    The binary is built once, here, before any shard starts, so the shards only
    run it. Frames are independent (the top function leaves no state behind a
    frame), so the merged result is the one-run result; ``tests/test_pool.py``
    checks that, and ``lbgen sim`` compares it with golden as usual.
    ``progress`` hears of each shard done (``Pool.run``)."""
    out_dir = Path(out_dir)
    x = np.asarray(inputs)
    if len(x) == 0 or pool.client is None:
        return run_csim(out_dir, x, native=native, trace=trace)
    t0 = time.perf_counter()
    binary = build_csim(out_dir / "hls", out_dir / "build" / "csim", native=native)
    build_seconds = time.perf_counter() - t0
    pieces = [idx for idx in np.array_split(np.arange(len(x)), max(1, min(int(shards), len(x)))) if len(idx)]
    jobs = [Job(f"C-sim frames {idx[0]}..{idx[-1]}", _csim_shard, (str(out_dir), x[idx], native, trace))
            for idx in pieces]
    t1 = time.perf_counter()
    parts: list[CsimResult] = pool.run(jobs, progress)
    run_seconds = time.perf_counter() - t1
    layers = {name: np.concatenate([p.layers[name] for p in parts]) for name in parts[0].layers} if parts else {}
    return CsimResult(result=np.concatenate([p.result for p in parts]) if parts else np.zeros((0, 0), np.int64),
                      layers=layers, build_seconds=build_seconds, run_seconds=run_seconds,
                      sim_seconds=max((p.sim_seconds for p in parts), default=0.0), frames=len(x), binary=binary)
