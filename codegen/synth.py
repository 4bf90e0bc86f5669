"""Yosys figures for ``lbgen report --synth`` (Debian's yosys, no vendor tool).

What a hardware engineer asks of a Huffman-coded layer is what its decoders
cost. The lanes of a layer are one lb_huff_lane each, the same code and logic
with their own stream ROM, so lane 0 is synthesised with the layer's
parameters (``synth_xilinx -family xc7 -nodsp -flatten``; the stream ROM, a
block or LUT RAM whose size the Huffman table already counts in bits, is a
black box) and the layer's decoder cost is that times the PE x SIMD lanes
(the lanes' shared control, a fill state and a pass counter, is left out).
Results are cached in ``out/report/synth.json``, keyed by the RTL source and
the parameters, so a second report does not run Yosys again.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

from .emitters.rtl import huffman_weights_params, library_files, rtl_library_dir, rtl_plan
from .errors import UsageError
from .huffman import huffman_lanes
from .ir import Graph, MatVec
from .pool import Job, Pool

YOSYS_SYNTH = "synth_xilinx -family xc7 -nodsp -flatten -top lb_huff_lane"
#: lb_rom as a black box: a ROM's contents are not folded into the logic, and its
#: storage (block or LUT RAM, a choice of the memory) is not counted
ROM_BLACKBOX = """(* blackbox *)
module lb_rom #(parameter DEPTH = 2, parameter WIDTH = 8, parameter ADDR_W = 1, parameter INIT_FILE = "") (
  input wire clk, input wire en, input wire [ADDR_W-1:0] addr, output wire [WIDTH-1:0] q);
endmodule
"""
CACHE = Path("report") / "synth.json"
#: LUT6 equivalents of memory primitives (LUT RAM and shift registers count as LUTs)
LUTRAM = {"RAM32M": 4, "RAM64M": 4, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4, "RAM256X1S": 4,
          "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "SRL16E": 1, "SRLC32E": 1}


def parse_stat(text: str) -> dict[str, int]:
    """Yosys' ``stat`` text -> LUTs (logic + memory in LUT6 units), FFs, CARRY4, MUXF7/8, DSP, and
    block RAMs: ``bram`` primitives of either size, ``ramb36`` and ``ramb18`` apart."""
    cells: dict[str, int] = {}
    for m in re.finditer(r"^\s+(\S+)\s+(\d+)\s*$", text, re.M):
        cells[m.group(1)] = cells.get(m.group(1), 0) + int(m.group(2))
    lut = sum(v for k, v in cells.items() if re.fullmatch(r"LUT[1-6]", k))
    mem = sum(v * LUTRAM[k] for k, v in cells.items() if k in LUTRAM)
    ff = sum(v for k, v in cells.items() if re.fullmatch(r"FD[RSCPE]E?", k))
    return {"lut_logic": lut, "lut_mem": mem, "lut": lut + mem, "ff": ff,
            "carry4": cells.get("CARRY4", 0), "muxf": cells.get("MUXF7", 0) + cells.get("MUXF8", 0),
            "dsp": sum(v for k, v in cells.items() if k.startswith("DSP")),
            "bram": sum(v for k, v in cells.items() if k.startswith("RAMB")),
            "ramb36": sum(v for k, v in cells.items() if k.startswith("RAMB36")),
            "ramb18": sum(v for k, v in cells.items() if k.startswith("RAMB18"))}


def synth_module(module: str, params: dict, sources: dict, script: str, label: str,
                 mem_dir: Optional[Path] = None, log: Optional[Path] = None) -> dict:
    """Synthesise one library module with ``params``; its cell counts (``parse_stat``) and
    the seconds Yosys took. RuntimeError with Yosys' output on failure.

    Without ``mem_dir`` lb_rom is a black box (a ROM's storage is not counted); with it,
    Yosys runs there so the ROMs read their .mem files and map to block or LUT RAM.
    ``log``: where to keep Yosys' ``stat`` text."""
    with tempfile.TemporaryDirectory(prefix="lbgen-synth-") as tmp:
        d = Path(tmp)
        (d / "rom_bb.v").write_text(ROM_BLACKBOX)
        for name, text in sources.items():
            (d / name).write_text(text)
        files = " ".join(str(d / name) for name in sorted(sources))
        chparam = " ".join(f"-set {k} {v}" for k, v in params.items())
        lib = "" if mem_dir is not None else f"read_verilog -lib {d / 'rom_bb.v'}; "
        cmd = (f"{lib}read_verilog {files}; chparam {chparam} {module}; "
               f"{script}; tee -q -o {d / 'stat.txt'} stat")
        t0 = time.monotonic()
        res = subprocess.run(["yosys", "-q", "-p", cmd], cwd=mem_dir or d, capture_output=True, text=True,
                             timeout=3600)
        if res.returncode != 0:
            raise RuntimeError(f"yosys failed for {label}:\n{res.stdout[-3000:]}{res.stderr[-3000:]}")
        text = (d / "stat.txt").read_text()
        stat = parse_stat(text)
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(text)
    stat["seconds"] = round(time.monotonic() - t0, 1)
    return stat


@dataclass(frozen=True)
class Cells:
    """Xilinx 7-series cells of one design, as Yosys counts them (``parse_stat``)."""

    lut: int            # LUT1..LUT6 + LUT RAM in LUT6 units (before Vivado's LUT6_2 packing)
    ff: int             # FD* flip-flops
    carry4: int
    muxf: int           # MUXF7 + MUXF8

    def times(self, k: int) -> "Cells":
        return Cells(self.lut * k, self.ff * k, self.carry4 * k, self.muxf * k)


def lane_params(layer: MatVec) -> dict:
    """lb_huff_lane's parameters for lane 0 of a Huffman-coded layer."""
    lanes = huffman_lanes(layer)
    p = huffman_weights_params(layer.huffman, lanes, layer.wtype.bits, layer.nf * layer.sf)
    lane0 = lanes[0]
    keep = ("L", "FW", "WB", "NSYM", "IXW", "LJ", "FIRST", "BASE", "ORDER")
    return {**{k: p[k] for k in keep}, "DEPTH": lane0.depth, "LAST_BITS": lane0.last_bits,
            "CHECKSUM": f"16'h{lane0.checksum:x}"}


def _synth_lane(params: dict) -> Cells:
    if shutil.which("yosys") is None:
        raise UsageError("--synth needs yosys (the Debian package yosys; make install sets it up)")
    src = (rtl_library_dir() / "lb_huff_lane.v").read_text()
    try:
        stat = synth_module("lb_huff_lane", params, {"lb_huff_lane.v": src}, YOSYS_SYNTH,
                            f"lb_huff_lane ({params['L']}-bit codes)")
    except RuntimeError as exc:
        raise UsageError(str(exc)) from None
    return Cells(lut=stat["lut"], ff=stat["ff"], carry4=stat["carry4"], muxf=stat["muxf"])


def _read_cache(out_dir: Path) -> dict:
    cache_path = Path(out_dir) / CACHE
    try:
        cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        cache = {}
    return cache if isinstance(cache, dict) else {}


def _write_cache(out_dir: Path, cache: dict) -> None:
    """out/report/synth.json, never half-written; a read-only out/ just recomputes next time."""
    cache_path = Path(out_dir) / CACHE
    try:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(cache, indent=1) + "\n")
        tmp.replace(cache_path)
    except OSError:
        pass


def _cached(out_dir: Path, key: str, compute: Callable[[], dict]) -> dict:
    """``compute()`` once per key, kept in out/report/synth.json."""
    cache = _read_cache(out_dir)
    entry = cache.get(key)
    if isinstance(entry, dict):
        return entry
    entry = compute()
    cache[key] = entry
    _write_cache(out_dir, cache)
    return entry


def huffman_decoder_cells(out_dir: Path, layer: MatVec) -> tuple[Cells, Cells]:
    """(one lane, all PE x SIMD lanes) of a Huffman-coded layer, cached in out/report/synth.json."""
    params = lane_params(layer)
    src = (rtl_library_dir() / "lb_huff_lane.v").read_text()
    key = hashlib.sha256((src + json.dumps(params, sort_keys=True) + YOSYS_SYNTH).encode()).hexdigest()[:24]
    entry = _cached(out_dir, f"huffman_lane:{key}", lambda: asdict(_synth_lane(params)))
    try:
        lane = Cells(**entry)
    except TypeError:
        lane = _synth_lane(params)
    return lane, lane.times(layer.pe * layer.simd)


#: per-layer synthesis: DSPs allowed (a k-bit multiply may map to one), ROMs read their .mem files
LAYER_SYNTH = "synth_xilinx -family xc7 -flatten -top {top}"
#: the report's cell columns, from parse_stat
LAYER_CELLS = ("lut", "ff", "carry4", "muxf", "bram", "ramb36", "ramb18", "dsp")


def layer_units(graph: Graph) -> dict[str, list[tuple[str, dict]]]:
    """Per layer, the library modules the top instantiates for it and their parameters:
    the engine (lb_mvau), and for a convolution its sliding window (lb_swu) and max-pool."""
    plan = rtl_plan(graph)
    units: dict[str, list[tuple[str, dict]]] = {}
    for layer, lp in zip(graph.layers, plan["layers"]):
        mods = [("lb_mvau", dict(lp["params"]))]
        if lp["swu"]:
            mods.append(("lb_swu", dict(lp["swu"])))
        if lp["maxpool"]:
            mods.append(("lb_maxpool", dict(lp["maxpool"])))
        units[layer.name] = mods
    return units


def _synth_unit(module: str, params: dict, sources: dict, rtl: str, log: str, label: str) -> dict:
    """One layer unit through Yosys (a pool job: a top-level function of plain arguments)."""
    try:
        return synth_module(module, params, sources, LAYER_SYNTH.format(top=module), label, mem_dir=Path(rtl),
                            log=Path(log))
    except RuntimeError as exc:
        raise UsageError(str(exc)) from None


def _unit_key(library: bytes, module: str, params: dict, rtl: Path, layer: str) -> str:
    """The cache key of one unit: the library, its parameters, the script and the ROM images it reads."""
    digest = hashlib.sha256(library)
    digest.update(json.dumps([params, LAYER_CELLS], sort_keys=True).encode() + LAYER_SYNTH.encode()
                  + module.encode())
    for m in sorted(v.strip('"') for v in map(str, params.values()) if str(v).endswith('.mem"')):
        path = rtl / m
        if not path.is_file():
            raise UsageError(f"{path}: missing (layer {layer}); re-run lbgen emit")
        digest.update(path.read_bytes())
    return f"layer:{module}:{digest.hexdigest()[:24]}"


def layer_cells(out_dir: Path, graph: Graph, progress: Optional[Callable[[str], None]] = None,
                pool: Optional[Pool] = None) -> dict[str, dict]:
    """Yosys cells of every layer (its units summed), cached in out/report/synth.json; each
    unit's ``stat`` text is kept in out/report/yosys/<layer>.<module>.txt. The units not in
    the cache run as jobs of ``pool`` (``lbgen.pool``: in parallel with --jobs/--cluster)."""
    if shutil.which("yosys") is None:
        raise UsageError("--synth needs yosys (the Debian package yosys; make install sets it up)")
    out_dir = Path(out_dir)
    rtl = out_dir / "rtl"
    lib = rtl_library_dir()
    sources = {name: (lib / name).read_text() for name in library_files()}
    library = hashlib.sha256("".join(sources[k] for k in sorted(sources)).encode()).digest()
    units = [(name, module, params, _unit_key(library, module, params, rtl, name),
              out_dir / "report" / "yosys" / f"{name}.{module}.txt")
             for name, mods in layer_units(graph).items() for module, params in mods]
    cache = _read_cache(out_dir)
    todo = [u for u in units if not (isinstance(cache.get(u[3]), dict) and u[4].is_file())]
    jobs = [Job(f"yosys synth_xilinx: layer {name} ({module})", _synth_unit,
                (module, params, sources, str(rtl), str(log), f"layer {name} ({module})"))
            for name, module, params, _, log in todo]
    for unit, stat in zip(todo, (pool or Pool()).run(jobs, progress)):
        cache[unit[3]] = stat
    if todo:
        _write_cache(out_dir, cache)
    result: dict[str, dict] = {}
    for name, _, _, key, _ in units:
        total = result.setdefault(name, {**{k: 0 for k in LAYER_CELLS}, "seconds": 0.0})
        for k in LAYER_CELLS:
            total[k] += int(cache[key].get(k, 0))
        total["seconds"] += float(cache[key].get("seconds", 0.0))
    return result
