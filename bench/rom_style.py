"""Which weight ROMs become block RAM and which LUT RAM: the rule, measured with Yosys.

lbgen's ROMs (``lb_rom``: one registered read port, initialised by
``$readmemh``) carry no ``rom_style`` attribute: the synthesis tool's memory
mapper chooses block RAM or LUTs by its cost model, as Vivado's "auto" does,
and ``lbgen report --synth`` counts what it chose (RAMB36/RAMB18 apart). This
bench writes the rule down by sweeping ROM shapes (DEPTH words x WIDTH bits,
random contents so nothing folds to constants) through
``synth_xilinx -family xc7`` and recording LUTs, RAMB36 and RAMB18 for each.

    .venv/bin/python bench/rom_style.py [--jobs 2]

Writes bench/results/rom_style.json and rom_style.png and prints the table.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from lbgen.emitters.rtl import rtl_library_dir
from lbgen.pool import Job, open_pool
from lbgen.synth import synth_module

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DEPTHS = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
WIDTHS = (8, 32, 72, 144)
SCRIPT = "synth_xilinx -family xc7 -flatten -top lb_rom"


def synth_rom(depth: int, width: int) -> dict:
    """Yosys cells of one lb_rom of random contents (a pool job)."""
    rng = random.Random(depth * 1000 + width)
    with tempfile.TemporaryDirectory(prefix="lbgen-rom-") as tmp:
        mem = Path(tmp)
        hexw = (width + 3) // 4
        (mem / "rom.mem").write_text("".join(f"{rng.getrandbits(width):0{hexw}x}\n" for _ in range(depth)))
        src = {"lb_rom.v": (rtl_library_dir() / "lb_rom.v").read_text()}
        params = {"DEPTH": depth, "WIDTH": width, "ADDR_W": max(1, (depth - 1).bit_length()),
                  "INIT_FILE": '"rom.mem"'}
        stat = synth_module("lb_rom", params, src, SCRIPT, f"lb_rom {depth}x{width}", mem_dir=mem)
    return {"depth": depth, "width": width, "bits": depth * width, "lut": stat["lut"],
            "lut_mem": stat["lut_mem"], "ff": stat["ff"], "ramb36": stat["ramb36"], "ramb18": stat["ramb18"],
            "style": "block" if stat["bram"] else "lut", "seconds": stat["seconds"]}


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.6))
    for j, width in enumerate(WIDTHS):
        sel = [r for r in rows if r["width"] == width]
        ax.plot([r["depth"] for r in sel], [r["lut"] for r in sel], marker="o", color=f"C{j}",
                label=f"{width} bits wide")
        for r in sel:
            if r["style"] == "block":
                ax.scatter([r["depth"]], [max(r["lut"], 1)], s=90, facecolors="none", edgecolors=f"C{j}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("symlog")
    ax.set_xlabel("ROM depth (words)")
    ax.set_ylabel("LUTs (Yosys synth_xilinx)")
    ax.set_title("lb_rom: LUTs per shape; circled = mapped to block RAM", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=None, help="Yosys runs in parallel on a local Dask cluster")
    args = ap.parse_args()
    shapes = [(d, w) for w in WIDTHS for d in DEPTHS]
    t0 = time.monotonic()
    with open_pool(args.jobs) as pool:
        rows = pool.run([Job(f"lb_rom {d}x{w}", synth_rom, (d, w)) for d, w in shapes])
    RESULTS.mkdir(exist_ok=True)
    block = [r for r in rows if r["style"] == "block"]
    rule = {"smallest_block_depth": {w: min((r["depth"] for r in block if r["width"] == w), default=None)
                                     for w in WIDTHS},
            "largest_lut_bits": max((r["bits"] for r in rows if r["style"] == "lut"), default=0),
            "smallest_block_bits": min((r["bits"] for r in block), default=0)}
    doc = {"script": SCRIPT, "rows": rows, "rule": rule, "seconds": round(time.monotonic() - t0, 1)}
    (RESULTS / "rom_style.json").write_text(json.dumps(doc, indent=1) + "\n")
    plot(rows, RESULTS / "rom_style.png")
    print(f"{'depth':>6} {'width':>6} {'style':>6} {'LUT':>6} {'RAMB36':>7} {'RAMB18':>7}")
    for r in rows:
        print(f"{r['depth']:>6} {r['width']:>6} {r['style']:>6} {r['lut']:>6} {r['ramb36']:>7} {r['ramb18']:>7}")
    print("rule:", json.dumps(rule))
    return 0


if __name__ == "__main__":
    sys.exit(main())
