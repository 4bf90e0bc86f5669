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

from .emitters.rtl import huffman_weights_params, rtl_library_dir
from .errors import UsageError
from .huffman import huffman_lanes
from .ir import MatVec

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
    """Yosys' ``stat`` text -> LUTs (logic + memory in LUT6 units), FFs, CARRY4, MUXF7/8, DSP, BRAM."""
    cells: dict[str, int] = {}
    for m in re.finditer(r"^\s+(\S+)\s+(\d+)\s*$", text, re.M):
        cells[m.group(1)] = cells.get(m.group(1), 0) + int(m.group(2))
    lut = sum(v for k, v in cells.items() if re.fullmatch(r"LUT[1-6]", k))
    mem = sum(v * LUTRAM[k] for k, v in cells.items() if k in LUTRAM)
    ff = sum(v for k, v in cells.items() if re.fullmatch(r"FD[RSCPE]E?", k))
    return {"lut_logic": lut, "lut_mem": mem, "lut": lut + mem, "ff": ff,
            "carry4": cells.get("CARRY4", 0), "muxf": cells.get("MUXF7", 0) + cells.get("MUXF8", 0),
            "dsp": sum(v for k, v in cells.items() if k.startswith("DSP")),
            "bram": sum(v for k, v in cells.items() if k.startswith("RAMB"))}


def synth_module(module: str, params: dict, sources: dict, script: str, label: str) -> dict:
    """Synthesise one library module with ``params`` (lb_rom a black box); its cell counts
    (``parse_stat``) and the seconds Yosys took. RuntimeError with Yosys' output on failure."""
    with tempfile.TemporaryDirectory(prefix="lbgen-synth-") as tmp:
        d = Path(tmp)
        (d / "rom_bb.v").write_text(ROM_BLACKBOX)
        for name, text in sources.items():
            (d / name).write_text(text)
        files = " ".join(sorted(sources))
        chparam = " ".join(f"-set {k} {v}" for k, v in params.items())
        cmd = (f"read_verilog -lib rom_bb.v; read_verilog {files}; chparam {chparam} {module}; "
               f"{script}; tee -q -o stat.txt stat")
        t0 = time.monotonic()
        res = subprocess.run(["yosys", "-q", "-p", cmd], cwd=d, capture_output=True, text=True, timeout=3600)
        if res.returncode != 0:
            raise RuntimeError(f"yosys failed for {label}:\n{res.stdout[-3000:]}{res.stderr[-3000:]}")
        stat = parse_stat((d / "stat.txt").read_text())
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


def huffman_decoder_cells(out_dir: Path, layer: MatVec) -> tuple[Cells, Cells]:
    """(one lane, all PE x SIMD lanes) of a Huffman-coded layer, cached in out/report/synth.json."""
    params = lane_params(layer)
    src = (rtl_library_dir() / "lb_huff_lane.v").read_text()
    key = hashlib.sha256((src + json.dumps(params, sort_keys=True) + YOSYS_SYNTH).encode()).hexdigest()[:24]
    cache_path = Path(out_dir) / CACHE
    try:
        cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        cache = {}
    if not isinstance(cache, dict):
        cache = {}
    entry = cache.get(f"huffman_lane:{key}")
    try:
        lane = Cells(**entry) if isinstance(entry, dict) else None
    except TypeError:
        lane = None
    if lane is None:
        lane = _synth_lane(params)
        cache[f"huffman_lane:{key}"] = asdict(lane)
        try:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(cache, indent=1) + "\n")
            tmp.replace(cache_path)                 # never a half-written cache
        except OSError:
            pass                        # a read-only out/: the figures are still printed
    return lane, lane.times(layer.pe * layer.simd)
