"""LUT and FF per layer of the shipped digits CNN, and its throughput, at several target rates.

For each --target-cycles rate the CNN (examples/digits/digits_cnn_w1a2.pt by
default) is folded by lbgen's auto folding; every layer's units are then
synthesised with Yosys exactly as lbgen emits them (parameters from
``lbgen.emitters.rtl.rtl_plan``): the sliding-window unit (lb_swu, its line buffer
counted as LUT RAM), the matrix-vector engine (lb_mvau, weight / threshold /
initial-accumulator ROMs as black boxes, as in lut_per_lane.py) and the
max-pool (lb_maxpool). Throughput at 200 MHz is 200e6 / the folding bound,
which the RTL meets within 2% (tests/test_e2e_cnn.py measures it).

    .venv/bin/python bench/cnn_layers.py [--model PATH] [--targets 2304,1152,576] [--jobs 2]

Writes bench/results/cnn_layers.json and cnn_layers.png and prints a table.
Synthesis results are cached per unit configuration under bench/results/cache/.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from lut_per_lane import _sources, _yosys_version, synth_module  # noqa: E402

from lbgen.emitters.rtl import rtl_plan  # noqa: E402
from lbgen.flow import EmitOptions, build_graph  # noqa: E402
from lbgen.frontend.torch_frontend import load_module  # noqa: E402

RESULTS = HERE / "results"
DIGITS = HERE.parent / "examples" / "digits"
CLOCK_HZ = 200e6
YOSYS = "synth_xilinx -family xc7 -nodsp -flatten -top {top}"


def _rom_safe(params: list[tuple[str, str]]) -> dict[str, str]:
    out = dict(params)
    for key in ("WEIGHT_FILE", "THRESH_FILE", "INIT_FILE"):
        if out.get(key, '""') != '""':
            out[key] = '"rom0_0000.mem"'          # black box: the name only
    return out


def synth(job: tuple[str, dict, str]) -> dict:
    module, params, cache_dir = job
    sources = _sources()
    script = YOSYS.format(top=module)
    key = hashlib.sha256(json.dumps([module, params, script, sorted(sources.items()), _yosys_version()])
                         .encode()).hexdigest()[:20]
    path = Path(cache_dir) / f"unit-{key}.json"
    if path.is_file():
        return json.loads(path.read_text())
    stat = synth_module(module, params, sources, script, f"{module} {params}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stat) + "\n")
    return stat


def plan_jobs(model_path: Path, target: int, cache: str) -> tuple[list, list]:
    graph = build_graph(load_module(model_path), EmitOptions(input_shape="1,8,8", target_cycles=target))
    rows, jobs = [], []
    for layer, lp in zip(graph.layers, rtl_plan(graph)["layers"]):
        units = [("lb_mvau", _rom_safe(lp["params"]))]
        if lp["swu"]:
            units.insert(0, ("lb_swu", dict(lp["swu"])))
        if lp["maxpool"]:
            units.append(("lb_maxpool", dict(lp["maxpool"])))
        rows.append({"target": target, "layer": layer.name, "pe": layer.pe, "simd": layer.simd,
                     "cycles": graph.cycles(layer), "units": [u for u, _ in units]})
        jobs.append([(u, p, cache) for u, p in units])
    return rows, jobs


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    targets = sorted({r["target"] for r in rows}, reverse=True)
    layers = list(dict.fromkeys(r["layer"] for r in rows))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / len(targets)
    xs = np.arange(len(layers))
    for k, t in enumerate(targets):
        for ax, key in zip(axes, ("lut", "ff")):
            vals = [next(r[key] for r in rows if r["target"] == t and r["layer"] == n) for n in layers]
            fps = CLOCK_HZ / max(r["cycles"] for r in rows if r["target"] == t)
            ax.bar(xs + (k - (len(targets) - 1) / 2) * width, vals, width,
                   label=f"target {t} cycles ({fps / 1e3:.0f}k frames/s at 200 MHz)")
    for ax, label in zip(axes, ("LUT", "FF")):
        ax.set_xticks(xs)
        ax.set_xticklabels(layers)
        ax.set_ylabel(f"{label} per layer")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("digits CNN (w1a2) per layer: lb_swu + lb_mvau + lb_maxpool, Yosys synth_xilinx -nodsp")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=DIGITS / "digits_cnn_w1a2.pt")
    ap.add_argument("--targets", default="2304,1152,576")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    cache = str(args.out / "cache")
    all_rows, all_jobs = [], []
    for t in (int(v) for v in args.targets.split(",")):
        rows, jobs = plan_jobs(args.model, t, cache)
        all_rows += rows
        all_jobs += jobs
    flat = [j for js in all_jobs for j in js]
    t0 = time.monotonic()
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        stats = dict(zip(map(id, flat), pool.map(synth, flat)))
    for row, jobs in zip(all_rows, all_jobs):
        parts = [stats[id(j)] for j in jobs]
        row.update({key: sum(p[key] for p in parts) for key in ("lut", "lut_mem", "ff", "carry4")})
        row["by_unit"] = {j[0]: {k: p[k] for k in ("lut", "ff")} for j, p in zip(jobs, parts)}
    summary = []
    for t in sorted({r["target"] for r in all_rows}, reverse=True):
        rs = [r for r in all_rows if r["target"] == t]
        bound = max(r["cycles"] for r in rs)
        summary.append({"target": t, "bound": bound, "frames_per_s_200mhz": round(CLOCK_HZ / bound, 1),
                        "lut": sum(r["lut"] for r in rs), "ff": sum(r["ff"] for r in rs)})
    args.out.mkdir(parents=True, exist_ok=True)
    doc = {"model": args.model.name, "clock_hz": CLOCK_HZ, "yosys": _yosys_version(), "script": YOSYS,
           "rom": "lb_rom black box", "seconds": round(time.monotonic() - t0, 1), "summary": summary,
           "layers": all_rows}
    (args.out / "cnn_layers.json").write_text(json.dumps(doc, indent=1) + "\n")
    plot(all_rows, args.out / "cnn_layers.png")
    print(f"{'target':>7}{'layer':>8}{'PE':>4}{'SIMD':>5}{'cycles':>8}{'LUT':>7}{'FF':>7}")
    for r in all_rows:
        print(f"{r['target']:>7}{r['layer']:>8}{r['pe']:>4}{r['simd']:>5}{r['cycles']:>8}{r['lut']:>7}{r['ff']:>7}")
    for s in summary:
        print(f"target {s['target']}: bound {s['bound']} cycles/frame, {s['frames_per_s_200mhz']:.0f} frames/s "
              f"at 200 MHz, {s['lut']} LUT, {s['ff']} FF")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
