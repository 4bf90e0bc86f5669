"""Native bulk testbench vs the bare Verilated loop vs cocotb, on FINN's CNV-1w1a.

Emits brevitas_examples' CNV-1w1a (random batch-norm statistics,
tests/bnn_models.py; 112,896 cycles/frame at the default folding) and runs,
one after the other in this process:

(a) bare: bench/native_tb_bare.cpp, a C++ loop around the Verilated
    ``lbgen_top`` (tvalid and tready always high, no checks, no files), for
    as many cycles as (b) simulates;
(b) native, Verilator: ``lbgen.native_tb.run_native``, back-pressure and gaps
    0.3 in phase 1, every layer's stream probed, then the throughput frames;
(c) native, Icarus: a few frames, no throughput phase;
(d) cocotb, Verilator (``lbgen.simulate.run_rtl``): 1 frame;
(e) native, Verilator with ``--threads N`` for each N of ``--threads``
    (default 2): the same frames as (b), on a model Verilator partitions
    over N threads.

cycles/s = simulated clock cycles / seconds of the simulator run (build
excluded; the native and cocotb figures include the process start and the
ROM loading, the bare one only its loop). Writes bench/results/native_tb.json
(and native_tb.png).

    .venv/bin/python bench/native_tb.py [--work /tmp/native_tb] [--phase1 2 --throughput 4]
"""

from __future__ import annotations

import argparse
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


def emit_cnv(work: Path) -> tuple[Path, float]:
    """out/ of CNV-1w1a (reused when it is there); emit seconds (0 if reused)."""
    out = work / "cnv_1w1a"
    if (out / "lbgen.json").is_file() and (out / "sim" / "inputs.npy").is_file():
        return out, 0.0
    import lbgen
    from bnn_models import bnn_model, raw_inputs

    x = raw_inputs("cnv_1w1a", 4)
    work.mkdir(parents=True, exist_ok=True)
    np.save(work / "x.npy", x)
    t0 = time.perf_counter()
    lbgen.emit(bnn_model("cnv_1w1a"), out, inputs=work / "x.npy", input_shape=(3, 32, 32), name="cnv_1w1a",
               force=True)
    return out, time.perf_counter() - t0


def bare_loop(out: Path, work: Path, cycles: int) -> dict:
    """Build (once) and run bench/native_tb_bare.cpp around the Verilated lbgen_top."""
    from lbgen.simulate import read_filelist, toolchain_env

    env = toolchain_env("verilator")
    bdir = work / "bare"
    exe = bdir / "Vlbgen_top"
    build_s = 0.0
    if not exe.is_file():
        sources, includes = read_filelist(out / "rtl")
        t0 = time.perf_counter()
        subprocess.run(["verilator", "--cc", "--exe", "--build", "-O3", "-Wno-fatal", "-j", "2",
                        "--top-module", "lbgen_top", "--Mdir", str(bdir), "-o", "Vlbgen_top",
                        *[f"-I{d}" for d in includes], *map(str, sources), str(HERE / "native_tb_bare.cpp")],
                       env=env, check=True, capture_output=True)
        build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    proc = subprocess.run([str(exe), str(cycles)], cwd=out / "rtl", env=env, check=True, capture_output=True,
                          text=True)
    wall = time.perf_counter() - t0
    doc = dict(zip(proc.stdout.split()[::2], proc.stdout.split()[1::2]))
    loop_s = float(doc["seconds"])
    return {"cycles": cycles, "out_beats": int(doc["out_beats"]), "loop_s": round(loop_s, 3),
            "wall_s": round(wall, 3), "cycles_per_s": round(cycles / loop_s), "build_s": round(build_s, 1)}


def figures(res, frames: int) -> dict:
    return {"frames": frames, "passed": res.passed, "cycles": res.cycles, "run_s": round(res.run_seconds, 2),
            "cycles_per_s": round(res.cycles / res.run_seconds) if res.run_seconds else None,
            "cycles_per_frame": res.cycles_per_frame, "build_s": round(res.build_seconds, 1),
            "build_reused": res.build_reused, "first_mismatch": res.mismatches[:1]}


def plot(doc: dict, path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    names = [k for k in ("bare", "native_verilator", *sorted(k for k in doc["runs"] if k.startswith("native_verilator_t")),
                         "native_icarus", "cocotb_verilator") if k in doc["runs"]]
    vals = [doc["runs"][k]["cycles_per_s"] for k in names]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    palette = {"bare": "#888", "native_icarus": "#48c", "cocotb_verilator": "#4a4"}
    ax.barh(names[::-1], vals[::-1], color=[palette.get(n, "#c44") for n in names][::-1])
    ax.set_xscale("log")
    ax.set_xlabel("simulated clock cycles per second (log)")
    ax.set_title(f"CNV-1w1a ({doc['cycles_per_frame_bound']:,} cycles/frame)")
    for i, v in enumerate(vals[::-1]):
        ax.text(v, i, f" {v:,}", va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    from lbgen.flow import load_output
    from lbgen.native_tb import run_native
    from lbgen.passes.folding import folding_bound
    from lbgen.simulate import run_rtl

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/lbgen-native-tb-bench"))
    ap.add_argument("--phase1", type=int, default=2, help="frames with gaps and back-pressure (native Verilator)")
    ap.add_argument("--throughput", type=int, default=4, help="throughput frames (native Verilator)")
    ap.add_argument("--icarus-frames", type=int, default=1)
    ap.add_argument("--cocotb-frames", type=int, default=1)
    ap.add_argument("--threads", default="2", help="comma-separated Verilator model thread counts for (e)")
    ap.add_argument("--skip", default="", help="comma-separated: bare, icarus, cocotb, threads")
    args = ap.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    out, emit_s = emit_cnv(args.work)
    graph = load_output(out)
    x = np.load(out / "sim" / "inputs.npy")
    doc = {"design": "FINN CNV-1w1a (brevitas_examples, random BN statistics)",
           "cycles_per_frame_bound": folding_bound(graph), "emit_s": round(emit_s, 1), "runs": {}}
    runs = doc["runs"]
    n1 = args.phase1
    res = run_native(out, x[:n1], simulator="verilator", seed=1, backpressure=0.3, gaps=0.3,
                     throughput_frames=args.throughput, build_dir=args.work / "native")
    runs["native_verilator"] = {**figures(res, n1 + args.throughput), "backpressure": 0.3, "gaps": 0.3,
                                "probes": "every layer + m_axis"}
    print("native verilator", runs["native_verilator"], flush=True)
    if "bare" not in skip:
        runs["bare"] = bare_loop(out, args.work, res.cycles)
        print("bare", runs["bare"], flush=True)
    if "icarus" not in skip:
        r = run_native(out, x[:args.icarus_frames], simulator="icarus", seed=1, throughput_frames=0,
                       build_dir=args.work / "native")
        runs["native_icarus"] = figures(r, args.icarus_frames)
        print("native icarus", runs["native_icarus"], flush=True)
    if "cocotb" not in skip:
        r = run_rtl(out, x[:args.cocotb_frames], simulator="verilator", seed=1, throughput_frames=0,
                    build_dir=args.work / "cocotb")
        runs["cocotb_verilator"] = figures(r, args.cocotb_frames)
        print("cocotb verilator", runs["cocotb_verilator"], flush=True)
    if "threads" not in skip:
        for n in [int(t) for t in args.threads.split(",") if t]:
            r = run_native(out, x[:n1], simulator="verilator", seed=1, backpressure=0.3, gaps=0.3,
                           throughput_frames=args.throughput, build_dir=args.work / "native", threads=n)
            runs[f"native_verilator_t{n}"] = {**figures(r, n1 + args.throughput), "threads": n}
            doc[f"threads{n}_over_threads1"] = round(runs[f"native_verilator_t{n}"]["cycles_per_s"]
                                                     / runs["native_verilator"]["cycles_per_s"], 3)
            print(f"native verilator --threads {n}", runs[f"native_verilator_t{n}"], flush=True)
    if "bare" in runs:
        doc["native_over_bare"] = round(runs["native_verilator"]["cycles_per_s"] / runs["bare"]["cycles_per_s"], 3)
    if "cocotb_verilator" in runs:
        doc["native_over_cocotb"] = round(runs["native_verilator"]["cycles_per_s"]
                                          / runs["cocotb_verilator"]["cycles_per_s"], 1)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "native_tb.json").write_text(json.dumps(doc, indent=1) + "\n")
    plot(doc, RESULTS / "native_tb.png")
    print(json.dumps({k: v for k, v in doc.items() if k != "runs"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
