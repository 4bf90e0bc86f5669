"""LUT, FF and CARRY4 per PE*SIMD lane of lb_mvau engines, synthesised with Yosys.

For every number format and folding (SIMD x PE) this builds one hidden
layer the way lbgen emits it (MW inputs, MH channels, 2^A-1 thresholds per
channel for A-bit outputs, the accumulator sized exactly for MW like
``--acc auto`` would for the worst-case weights), takes lb_mvau's parameters
from ``lbgen.emitters.rtl.rtl_plan`` and synthesises the engine:

    yosys: read_verilog -lib <lb_rom black box>; read_verilog <library>;
           chparam <lbgen's parameters> lb_mvau;
           synth_xilinx -family xc7 -nodsp -flatten -top lb_mvau; stat

* The weight, threshold and initial-accumulator ROMs (``lb_rom``) are black
  boxes: their contents are not constant-folded into the logic, and their
  storage (block RAM or LUT RAM, a choice of the memory, not of the PE) is
  not counted. Everything else is: issue counters, the input buffer (LUT
  RAM, counted as LUTs), the compute core, accumulators, the threshold
  comparators, the output skid buffer.
* ``-nodsp``: a product mapped to a DSP48 is not a LUT saving, and the
  low-bit engines are meant to live in LUTs; with DSPs the wide formats
  would trade LUTs for a few DSP slices instead.
* LUT = LUT1..LUT6 cells + LUT RAM / SRL cells in LUT6 units (Yosys maps
  without LUT6_2 packing, so Vivado's count after packing is lower).

The reference is the FINN-R analytic estimate of LUTs per lane,
1.1*[(2*ceil((W+A)/6)-1)*(W+A) + 2*(W+A)] (log2: W = code bits; hetero:
W = average bits, 1.4). Results are cached per configuration (keyed by the
configuration and the library sources) under bench/results/cache/, so a
re-run only synthesises what changed. Writes bench/results/lut_per_lane.json
and lut_per_lane.png and prints a table. ``--only`` re-measures just the
named formats and keeps the other formats' rows of the existing
lut_per_lane.json (``kept_rows`` counts them): a change to one PE core does
not change the others' logic, only Yosys' mapping noise (W2A2 moved by
under 1.5 % when lb_pe_masked was added), so they need no new Yosys run.

    .venv/bin/python bench/lut_per_lane.py [--jobs 2] [--only W1A2,W4A4] [--simd 16,32,64] [--pe 1,4]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lbgen.emitters.rtl import library_files, rtl_library_dir, rtl_plan
from lbgen.ir import DType, signed_bits_for
from lbgen.synth import synth_module

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))     # the tests' helpers: random IR graphs
from lbgen_testing.graphs import random_graph  # noqa: E402

RESULTS = HERE / "results"
MW = 256                       # inputs per channel (fixes the accumulator width)
MH = 64                        # channels
SIMDS = (16, 32, 64)
PES = (1, 4)
YOSYS_SCRIPT = "synth_xilinx -family xc7 -nodsp -flatten -top lb_mvau"


B = DType("bipolar", 1)


@dataclass(frozen=True)
class Format:
    name: str
    wtype: DType
    itype: DType            # input activations; the layer outputs the same format
    w_bits: float           # W in the FINN-R formula
    a_bits: int             # A in the FINN-R formula
    target: bool            # must reach 0.5x FINN-R

    def finn_r(self) -> float:
        s = self.w_bits + self.a_bits
        return 1.1 * ((2 * math.ceil(s / 6) - 1) * s + 2 * s)


def U(k: int) -> DType:
    return DType("uint", k)


def I(k: int) -> DType:  # noqa: E743
    return DType("int", k)


FORMATS = [
    Format("W1A1", B, B, 1, 1, True),
    Format("W1A2", B, U(2), 1, 2, True),
    Format("W1A3", B, U(3), 1, 3, False),
    Format("W1A4", B, U(4), 1, 4, False),
    Format("W2A2", I(2), U(2), 2, 2, True),
    Format("WTA2", DType("ternary", 2), U(2), 2, 2, True),     # FINN-R: ternary as INT2
    Format("W4A4", I(4), U(4), 4, 4, True),
    Format("W8A8", I(8), U(8), 8, 8, False),
    Format("log2-4b x A4", DType("log2", 4), U(4), 4, 4, True),
    Format("hetero1.4 x A1", DType("hetero", 5, (8, 4, 2)), B, 1.4, 1, False),
    Format("hetero1.4 x A2", DType("hetero", 5, (8, 4, 2)), U(2), 1.4, 2, False),
]


def worst_acc_bits(fmt: Format) -> int:
    """Accumulator bits for any MW-input channel of this format (what --acc auto
    gives for the worst weights), one above the range for a "never" threshold."""
    w, x = fmt.wtype, fmt.itype
    xs = [-1, 1] if x.kind == "bipolar" else [x.min, x.max]
    prods = [a * b for a in (w.min, w.max) for b in xs]
    return signed_bits_for(MW * min(prods), MW * max(prods) + 1)


def lb_mvau_params(fmt: Format, simd: int, pe: int, thresholds: str = "auto") -> dict[str, str]:
    """lb_mvau's parameters exactly as lbgen emits them for this layer;
    ``thresholds`` "parallel" or "search" overrides lbgen's threshold unit."""
    out = fmt.itype
    graph = random_graph(1, [MW, MH, 2], [fmt.wtype, B if out.kind == "bipolar" else I(2)],
                         [fmt.itype, out], [(pe, simd), (1, 1)], acc_bits=worst_acc_bits(fmt))
    params = dict(rtl_plan(graph)["layers"][0]["params"])
    if thresholds != "auto":
        params["THRESH_SEARCH"] = str(int(thresholds == "search"))
    for key in ("WEIGHT_FILE", "THRESH_FILE", "INIT_FILE"):
        if params.get(key, '""') != '""':
            params[key] = '"rom0_0000.mem"'    # black box: the name only (search's pattern)
    return params


def _sources() -> dict[str, str]:
    lib = rtl_library_dir()
    return {name: (lib / name).read_text() for name in library_files() if name != "lb_rom.v"}


def _yosys_version() -> str:
    try:
        return subprocess.run(["yosys", "-V"], capture_output=True, text=True, timeout=60).stdout.strip()
    except OSError:
        return ""


def config_key(fmt: Format, simd: int, pe: int, params: dict, sources: dict) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([fmt.name, simd, pe, params, YOSYS_SCRIPT, sorted(sources.items()),
                         _yosys_version(), MW, MH]).encode())
    return h.hexdigest()[:20]


def synthesise(fmt: Format, simd: int, pe: int, params: dict, sources: dict) -> dict:
    return synth_module("lb_mvau", params, sources, YOSYS_SCRIPT, f"{fmt.name} SIMD {simd} PE {pe}")


def run_one(args: tuple) -> dict:
    fmt_name, simd, pe, cache_dir, thresholds = args
    fmt = next(f for f in FORMATS if f.name == fmt_name)
    sources = _sources()
    params = lb_mvau_params(fmt, simd, pe, thresholds)
    key = config_key(fmt, simd, pe, params, sources)
    path = Path(cache_dir) / f"{key}.json"
    if path.is_file():
        row = json.loads(path.read_text())
        row["cached"] = True
        return row
    stat = synthesise(fmt, simd, pe, params, sources)
    lanes = simd * pe
    row = {"format": fmt.name, "simd": simd, "pe": pe, "lanes": lanes, "acc_bits": int(params["ACC_BITS"]),
           "pe_kind": params["PE_KIND"], "threshold_search": int(params["THRESH_SEARCH"]), **stat,
           "lut_per_lane": stat["lut"] / lanes, "ff_per_lane": stat["ff"] / lanes,
           "carry4_per_lane": stat["carry4"] / lanes, "finn_r": fmt.finn_r(),
           "ratio": stat["lut"] / lanes / fmt.finn_r(), "target": fmt.target}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(row, indent=1) + "\n")
    row["cached"] = False
    return row


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [f.name for f in FORMATS if any(r["format"] == f.name for r in rows)]
    configs = sorted({(r["pe"], r["simd"]) for r in rows})
    fig, axes = plt.subplots(3, 1, figsize=(max(8, 1.3 * len(names)), 11), sharex=True)
    width = 0.8 / max(1, len(configs))
    xs = np.arange(len(names))
    for ax, key, label in zip(axes, ("lut_per_lane", "ff_per_lane", "carry4_per_lane"),
                              ("LUT / lane", "FF / lane", "CARRY4 / lane")):
        for k, (pe, simd) in enumerate(configs):
            vals = [next((r[key] for r in rows if r["format"] == n and r["pe"] == pe and r["simd"] == simd),
                         np.nan) for n in names]
            ax.bar(xs + (k - (len(configs) - 1) / 2) * width, vals, width, label=f"PE {pe} x SIMD {simd}")
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
        if key == "lut_per_lane":
            finn = [next(f.finn_r() for f in FORMATS if f.name == n) for n in names]
            for i, v in enumerate(finn):
                ax.hlines(v, i - 0.45, i + 0.45, colors="k", linestyles="-",
                          label="FINN-R estimate" if i == 0 else None)
                ax.hlines(v / 2, i - 0.45, i + 0.45, colors="r", linestyles="--",
                          label="0.5 x FINN-R (target)" if i == 0 else None)
            ax.set_yscale("log")
            ax.legend(fontsize=7, ncol=2)
    axes[-1].set_xticks(xs)
    axes[-1].set_xticklabels(names, rotation=20)
    fig.suptitle(f"lb_mvau per PE*SIMD lane, Yosys synth_xilinx -nodsp, MW={MW}, MH={MH}, "
                 "thresholds and accumulators included")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(rows: list[dict]) -> str:
    head = (f"{'format':<16}{'PE':>3}{'SIMD':>5}{'acc':>4}{'LUT':>7}{'mem':>5}{'FF':>7}{'CARRY':>6}"
            f"{'LUT/l':>8}{'FF/l':>7}{'CY/l':>6}{'FINN-R':>8}{'ratio':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        mark = "" if not r["target"] else (" ok" if r["ratio"] <= 0.5 else " >0.5")
        lines.append(f"{r['format']:<16}{r['pe']:>3}{r['simd']:>5}{r['acc_bits']:>4}{r['lut']:>7}{r['lut_mem']:>5}"
                     f"{r['ff']:>7}{r['carry4']:>6}{r['lut_per_lane']:>8.2f}{r['ff_per_lane']:>7.2f}"
                     f"{r['carry4_per_lane']:>6.2f}{r['finn_r']:>8.1f}{r['ratio']:>7.2f}{mark}")
    return "\n".join(lines)


def _kept_rows(path: Path, measured: set[str], order: dict[str, int]) -> list[dict]:
    """With --only: the rows of the formats not re-measured, from the previous results file."""
    if not path.is_file():
        return []
    old = json.loads(path.read_text())
    return [r for r in old.get("rows", []) if r["format"] not in measured and r["format"] in order]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--only", default="", help="comma-separated format names (default: all)")
    ap.add_argument("--simd", default=",".join(map(str, SIMDS)))
    ap.add_argument("--pe", default=",".join(map(str, PES)))
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--thresholds", choices=("auto", "parallel", "search"), default="auto",
                    help="threshold unit: lbgen's choice (auto) or forced, to compare the two")
    args = ap.parse_args(argv)
    if shutil.which("yosys") is None:
        print("yosys not found (apt-get install yosys)", file=sys.stderr)
        return 2
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    fmts = [f for f in FORMATS if not only or f.name in only]
    simds = [int(s) for s in args.simd.split(",")]
    pes = [int(p) for p in args.pe.split(",")]
    cache = args.out / "cache"
    jobs = [(f.name, s, p, str(cache), args.thresholds) for f in fmts for p in pes for s in simds]
    # the largest first, so the two workers finish together
    jobs.sort(key=lambda j: -(j[1] * j[2] * next(f for f in FORMATS if f.name == j[0]).finn_r()))
    t0 = time.monotonic()
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        rows = list(pool.map(run_one, jobs))
    order = {f.name: i for i, f in enumerate(FORMATS)}
    elapsed = time.monotonic() - t0
    synthesised = sum(not r["cached"] for r in rows)
    kept = _kept_rows(args.out / "lut_per_lane.json", {f.name for f in fmts}, order) if only else []
    rows = [*kept, *({k: v for k, v in r.items() if k != "cached"} for r in rows)]
    rows.sort(key=lambda r: (order[r["format"]], r["pe"], r["simd"]))
    args.out.mkdir(parents=True, exist_ok=True)
    doc = {"mw": MW, "mh": MH, "yosys": _yosys_version(), "script": YOSYS_SCRIPT,
           "rom": "lb_rom black box (weights, thresholds, initial accumulators)",
           "seconds": round(elapsed, 1), "synthesised": synthesised, "kept_rows": len(kept), "rows": rows}
    (args.out / "lut_per_lane.json").write_text(json.dumps(doc, indent=1) + "\n")
    plot(rows, args.out / "lut_per_lane.png")
    print(table(rows))
    print(f"\n{len(rows)} configurations ({synthesised} synthesised, {len(kept)} kept from the previous file, "
          f"the rest cached) in {elapsed:.0f} s; wrote {args.out / 'lut_per_lane.json'} and lut_per_lane.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
