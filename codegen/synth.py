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
from dataclasses import asdict, dataclass
from pathlib import Path

from .emit.rtl import huffman_weights_params, rtl_library_dir
from .errors import UsageError
from .huffman import huffman_lanes
from .ir import MatVec

YOSYS_SYNTH = "synth_xilinx -family xc7 -nodsp -flatten -top lb_huff_lane"
ROM_BLACKBOX = """(* blackbox *)
module lb_rom #(parameter DEPTH = 2, parameter WIDTH = 8, parameter ADDR_W = 1, parameter INIT_FILE = "") (
  input wire clk, input wire en, input wire [ADDR_W-1:0] addr, output wire [WIDTH-1:0] q);
endmodule
"""
CACHE = Path("report") / "synth.json"


@dataclass(frozen=True)
class Cells:
    """Xilinx 7-series cells of one design, as Yosys counts them."""

    lut: int            # LUT1..LUT6 (before Vivado's LUT6_2 packing)
    ff: int             # FD* flip-flops
    carry4: int
    muxf: int           # MUXF7 + MUXF8

    def times(self, k: int) -> "Cells":
        return Cells(self.lut * k, self.ff * k, self.carry4 * k, self.muxf * k)


def _count(stat: dict) -> Cells:
    cells = stat.get("design", {}).get("num_cells_by_type") or {}
    if not cells:      # one module only: its own counts
        mods = stat.get("modules", {})
        cells = next(iter(mods.values()), {}).get("num_cells_by_type", {}) if mods else {}
    lut = sum(v for k, v in cells.items() if re.fullmatch(r"LUT[1-6]", k))
    ff = sum(v for k, v in cells.items() if k.startswith("FD"))
    return Cells(lut=lut, ff=ff, carry4=cells.get("CARRY4", 0), muxf=cells.get("MUXF7", 0) + cells.get("MUXF8", 0))


def lane_params(layer: MatVec) -> dict:
    """lb_huff_lane's parameters for lane 0 of a Huffman-coded layer."""
    lanes = huffman_lanes(layer)
    p = huffman_weights_params(layer.huffman, lanes, layer.wtype.bits, layer.nf * layer.sf)
    lane0 = lanes[0]
    keep = ("L", "FW", "WB", "NSYM", "IXW", "LJ", "FIRST", "BASE", "ORDER")
    return {**{k: p[k] for k in keep}, "DEPTH": lane0.depth, "LAST_BITS": lane0.last_bits,
            "CHECKSUM": f"16'h{lane0.checksum:x}"}


def _synth_lane(params: dict) -> Cells:
    yosys = shutil.which("yosys")
    if yosys is None:
        raise UsageError("--synth needs yosys (the Debian package yosys; make install sets it up)")
    src = (rtl_library_dir() / "lb_huff_lane.v").read_text()
    with tempfile.TemporaryDirectory(prefix="lbgen-synth-") as tmp:
        t = Path(tmp)
        (t / "lb_rom_bb.v").write_text(ROM_BLACKBOX)
        (t / "lb_huff_lane.v").write_text(src)
        chparam = " ".join(f"-set {k} {v}" for k, v in params.items())
        script = (f"read_verilog -lib lb_rom_bb.v; read_verilog lb_huff_lane.v; chparam {chparam} lb_huff_lane; "
                  f"{YOSYS_SYNTH}; tee -q -o stat.json stat -json")
        run = subprocess.run([yosys, "-q", "-p", script], cwd=t, capture_output=True, text=True)
        if run.returncode != 0 or not (t / "stat.json").is_file():
            tail = "\n".join((run.stderr or run.stdout).splitlines()[-15:])
            raise UsageError(f"yosys failed on lb_huff_lane ({params['L']}-bit codes):\n{tail}")
        return _count(json.loads((t / "stat.json").read_text()))


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
