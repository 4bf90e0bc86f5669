"""FINN's reference networks at the size users deploy: every figure of lbgen's flow, side by side.

For each network of brevitas_examples.bnn_pynq (TFC, SFC, LFC, CNV in 1w1a
and 2w2a; random batch-norm statistics, tests/bnn_models.py), at lbgen's
default folding, in one run:

* emit: seconds and peak memory (``lbgen emit`` in a child process, its
  maximum resident set);
* C-sim of the ap_int code HLS synthesises: frames/s (``run_csim``);
* RTL: cycles/s of the bare Verilated loop (bench/native_tb_bare.cpp: tvalid
  and tready high, no checks), of the native testbench on Verilator (random
  gaps and back-pressure, every layer probed) and on Icarus, and of cocotb
  on Verilator; the native run must be bit-exact;
* ``--jobs 2``: the native Verilator run in two shards on a local Dask
  cluster, its wall-clock speed-up over one process;
* Yosys: ``lbgen report --synth`` figures, seconds per layer unit and the
  whole network's LUT, FF, RAMB36, RAMB18 (the Yosys runs on the same pool).

    .venv/bin/python bench/scale.py [--nets tfc_1w1a,cnv_1w1a] [--frames 8] [--icarus-frames 1]
                                    [--no-cocotb] [--no-synth] [--work /tmp/lbgen-scale]

Writes bench/results/scale.json and scale.png and prints a Markdown table
(docs/benchmarks.md carries it). Rows of networks not run keep their last
figures in the JSON.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(ROOT / "tests"))
#: brevitas_examples ships no LFC-2w2a (bnn_pynq/cfg has lfc_1w1a and lfc_1w2a); LFC-1w2a stands in for it
NETS = ("tfc_1w1a", "tfc_2w2a", "sfc_1w1a", "sfc_2w2a", "lfc_1w1a", "lfc_1w2a", "cnv_1w1a", "cnv_2w2a")

#: the child process that emits one network and reports its time and peak memory
EMIT_CHILD = """
import json, resource, sys, time
sys.path.insert(0, {tests!r})
import numpy as np, lbgen
from bnn_models import bnn_model, input_shape
t0 = time.perf_counter()
lbgen.emit(bnn_model({name!r}), {out!r}, inputs={x!r}, input_shape=input_shape({name!r}), name={name!r},
           force=True)
print(json.dumps({{"emit_s": time.perf_counter() - t0,
                   "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def _native_tb_bench():
    spec = importlib.util.spec_from_file_location("native_tb_bench", HERE / "native_tb.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def emit(name: str, work: Path, frames: int) -> tuple[Path, dict]:
    from bnn_models import raw_inputs

    out, x = work / name, work / f"{name}_x.npy"
    work.mkdir(parents=True, exist_ok=True)
    np.save(x, raw_inputs(name, frames))
    code = EMIT_CHILD.format(tests=str(ROOT / "tests"), name=name, out=str(out), x=str(x))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"lbgen.emit of {name} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return out, json.loads(proc.stdout.strip().splitlines()[-1])


def rtl_figures(out: Path, work: Path, frames: int, icarus_frames: int, cocotb: bool) -> dict:
    """cycles/s: bare loop, native Verilator (and its bit-exact verdict), native Icarus, cocotb; --jobs 2."""
    from lbgen.native_tb import run_native, run_native_sharded
    from lbgen.pool import open_pool
    from lbgen.simulate import run_rtl

    nb = _native_tb_bench()
    row: dict = {}
    nat = run_native(out, simulator="verilator", seed=1, throughput_frames=4)
    row["native_verilator"] = nb.figures(nat, frames)
    bare_dir = work / f"{out.name}_bare"
    bare_dir.mkdir(parents=True, exist_ok=True)             # Verilator makes --Mdir, not its parents
    row["bare"] = nb.bare_loop(out, bare_dir, nat.cycles)
    row["native_over_bare"] = round(row["native_verilator"]["cycles_per_s"] / row["bare"]["cycles_per_s"], 3)
    if icarus_frames:
        x = np.load(out / "sim" / "inputs.npy")[:icarus_frames]
        row["native_icarus"] = nb.figures(run_native(out, x, simulator="icarus", throughput_frames=0),
                                          icarus_frames)
    if cocotb:
        x = np.load(out / "sim" / "inputs.npy")[:1]
        row["cocotb_verilator"] = nb.figures(run_rtl(out, x, simulator="verilator", throughput_frames=0), 1)
    t0 = time.perf_counter()
    one = run_native(out, simulator="verilator", seed=1, throughput_frames=0)
    serial_s = time.perf_counter() - t0
    with open_pool(jobs=2) as pool:
        t0 = time.perf_counter()
        two = run_native_sharded(out, None, pool, 2, simulator="verilator", seed=1, throughput_frames=0)
        sharded_s = time.perf_counter() - t0
    row["jobs2"] = {"frames": frames, "serial_s": round(serial_s, 2), "sharded_s": round(sharded_s, 2),
                    "speedup": round(serial_s / sharded_s, 2), "same_outputs": bool(
                        one.passed and two.passed and np.array_equal(one.outputs, two.outputs))}
    return row


def csim_figures(out: Path) -> dict:
    from lbgen.csim import run_csim

    x = np.load(out / "sim" / "inputs.npy")
    res = run_csim(out, x, native=False, trace=False)
    from lbgen import golden
    from lbgen.ir import Graph

    exact = bool(np.array_equal(res.result, golden.run(Graph.load(out), x).result))
    return {"frames": len(x), "frames_per_s": round(res.frames_per_second, 1), "exact": exact,
            "build_s": round(res.build_seconds, 1)}


def synth_figures(out: Path) -> dict:
    from lbgen.ir import Graph
    from lbgen.pool import open_pool
    from lbgen.synth import layer_cells

    t0 = time.perf_counter()
    with open_pool(jobs=2) as pool:
        cells = layer_cells(out, Graph.load(out), pool=pool)
    keys = ("lut", "ff", "ramb36", "ramb18", "dsp")
    return {"wall_s": round(time.perf_counter() - t0, 1),
            "seconds_per_layer": {k: round(v["seconds"], 1) for k, v in cells.items()},
            **{k: sum(int(v.get(k, 0)) for v in cells.values()) for k in keys}}


def table(rows: dict) -> str:
    head = ("| network | cycles/frame | emit s | peak MB | C-sim frames/s | bare cyc/s | native Verilator cyc/s "
            "| native/bare | Icarus cyc/s | cocotb cyc/s | --jobs 2 | Yosys s | LUT | FF | RAMB36 | RAMB18 |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, r in rows.items():
        rtl, syn = r.get("rtl", {}), r.get("synth", {})

        def cps(key: str) -> str:
            v = rtl.get(key, {}).get("cycles_per_s")
            return f"{v:,}" if v else "-"
        lines.append(
            f"| {name} | {r['cycles_per_frame']:,} | {r['emit']['emit_s']:.1f} | {r['emit']['peak_mb']:.0f} "
            f"| {r.get('csim', {}).get('frames_per_s', '-')} | {cps('bare')} | {cps('native_verilator')} "
            f"| {rtl.get('native_over_bare', '-')} | {cps('native_icarus')} | {cps('cocotb_verilator')} "
            f"| {rtl.get('jobs2', {}).get('speedup', '-')}x | {syn.get('wall_s', '-')} | {syn.get('lut', '-')} "
            f"| {syn.get('ff', '-')} | {syn.get('ramb36', '-')} | {syn.get('ramb18', '-')} |")
    return "\n".join(lines)


def plot(rows: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in rows if rows[n].get("rtl")]
    kinds = [("bare", "bare Verilated loop"), ("native_verilator", "native, Verilator"),
             ("native_icarus", "native, Icarus"), ("cocotb_verilator", "cocotb, Verilator")]
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(names) + 2), 3.6))
    w = 0.8 / len(kinds)
    for j, (key, label) in enumerate(kinds):
        vals = [rows[n]["rtl"].get(key, {}).get("cycles_per_s") or 0 for n in names]
        ax.bar([i - 0.4 + w * (j + 0.5) for i in range(len(names))], vals, w, label=label, color=f"C{j}")
    ax.set_xticks(range(len(names)), names)
    ax.set_yscale("log")
    ax.set_ylabel("simulated cycles per second (log)")
    ax.set_title("RTL simulation speed on FINN's reference networks", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def run_net(name: str, args) -> dict:
    from lbgen.ir import Graph
    from lbgen.passes.folding import folding_bound

    out, em = emit(name, Path(args.work), args.frames)
    row = {"emit": {k: round(v, 2) for k, v in em.items()}, "cycles_per_frame": folding_bound(Graph.load(out)),
           "csim": csim_figures(out)}
    row["rtl"] = rtl_figures(out, Path(args.work), args.frames, args.icarus_frames, not args.no_cocotb)
    if not args.no_synth:
        row["synth"] = synth_figures(out)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", default=",".join(NETS), help="comma-separated networks")
    ap.add_argument("--frames", type=int, default=8, help="frames for C-sim and the native runs")
    ap.add_argument("--icarus-frames", type=int, default=1, help="frames on Icarus (0: skip)")
    ap.add_argument("--no-cocotb", action="store_true", help="skip the cocotb figure")
    ap.add_argument("--no-synth", action="store_true", help="skip Yosys")
    ap.add_argument("--work", default="/tmp/lbgen-scale", help="where the designs are emitted")
    args = ap.parse_args(argv)
    nets = [n for n in args.nets.split(",") if n]
    bad = [n for n in nets if n not in NETS]
    if bad:
        ap.error(f"--nets: unknown {', '.join(bad)} (known: {', '.join(NETS)})")
    path = RESULTS / "scale.json"
    doc = json.loads(path.read_text()) if path.is_file() else {"rows": {}}
    RESULTS.mkdir(exist_ok=True)
    for name in nets:
        t0 = time.perf_counter()
        doc["rows"][name] = run_net(name, args)
        print(f"{name}: {time.perf_counter() - t0:.0f} s", flush=True)
        doc["rows"] = {n: doc["rows"][n] for n in NETS if n in doc["rows"]}
        path.write_text(json.dumps(doc, indent=1) + "\n")      # after every network: a long run keeps its rows
    plot(doc["rows"], RESULTS / "scale.png")
    print(table(doc["rows"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
