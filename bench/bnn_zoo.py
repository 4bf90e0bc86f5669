"""FINN's reference networks through lbgen, unmodified: brevitas_examples.bnn_pynq's TFC, SFC, LFC, CNV.

For every configuration brevitas_examples has (TFC/SFC 1w1a, 1w2a, 2w2a; LFC
1w1a, 1w2a; CNV 1w1a, 1w2a, 2w2a), built by ``model_with_cfg(name,
pretrained=False)`` with random batch-norm / TensorNorm statistics:

* both routes, in memory (``lbgen.emit``) and ``export_qonnx`` + ``lbgen emit
  model.onnx`` (the CLI, as a user runs it): emit seconds each, and whether the
  two build the same ROM images;
* cycles per frame (folding bound) at the default folding and at
  ``--target-cycles`` a quarter of that;
* C-sim (the ap_int code HLS synthesises) bit-exact against golden on the
  emitted vectors; RTL in Verilator bit-exact for TFC and SFC (32 frames) and
  CNV-1w1a (2 frames, ``--rtl-cnv``: about 10 minutes through cocotb).

Then accuracy end to end: TFC-1w1a and CNV-1w1a trained briefly on the digits
data set (8x8, upsampled to 28x28 and to 32x32x3; the only image data here
offline), and the hardware's accuracy -- golden, which the C-sim equals bit
for bit (checked on every test image of TFC, on the first 64 of CNV, whose
C-sim runs about a second per frame) -- beside torch's on the 360 test images.

Writes bench/results/bnn_zoo.json and prints the README's Markdown table.

    .venv/bin/python bench/bnn_zoo.py [--only tfc_1w1a,cnv_1w1a] [--rtl-cnv] [--epochs-tfc 30 --epochs-cnv 6]
    .venv/bin/python bench/bnn_zoo.py --accuracy-only --accuracy-of cnv_1w1a   # keep the rest of the JSON
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import lbgen
from lbgen import golden
from lbgen.csim import run_csim
from lbgen.flow import load_output
from lbgen.simulate import run_rtl

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
NETWORKS = ["tfc_1w1a", "tfc_1w2a", "tfc_2w2a", "sfc_1w1a", "sfc_1w2a", "sfc_2w2a", "lfc_1w1a", "lfc_1w2a",
            "cnv_1w1a", "cnv_1w2a", "cnv_2w2a"]
FRAMES = 32
CNN_CSIM_FRAMES = 8


class _Quiet(contextlib.ExitStack):
    def __enter__(self):
        super().__enter__()
        self.enter_context(contextlib.redirect_stdout(io.StringIO()))
        self.enter_context(contextlib.redirect_stderr(io.StringIO()))
        self.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore")
        return self


def reference_model(name: str, seed: int = 0):
    """The network as brevitas_examples builds it, random BN/TensorNorm statistics (tests/bnn_models.py)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from bnn_models import bnn_model

    return bnn_model(name, seed)


def shape_of(name: str) -> tuple[int, int, int]:
    return (3, 32, 32) if name.startswith("cnv") else (1, 28, 28)


def compile_both(name: str, model, x: np.ndarray, tmp: Path, extra: list[str] = ()) -> dict:
    """Emit in memory and through QONNX; seconds, bounds, ROM identity."""
    from brevitas.export import export_qonnx

    np.save(tmp / "x.npy", x)
    cnn = name.startswith("cnv")
    t0 = time.perf_counter()
    with _Quiet():
        mem = lbgen.emit(model, tmp / "mem", inputs=tmp / "x.npy", input_shape=shape_of(name) if cnn else None,
                         name=name, force=True)
    t_mem = time.perf_counter() - t0
    with _Quiet():
        export_qonnx(model, torch.rand(1, *shape_of(name)), str(tmp / f"{name}.onnx"))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "lbgen.cli", "emit", str(tmp / f"{name}.onnx"), "--inputs",
                           str(tmp / "x.npy"), "-o", str(tmp / "onnx"), "--force", *extra],
                          capture_output=True, text=True)
    t_onnx = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{name}: lbgen emit model.onnx failed: {proc.stderr[-2000:]}")
    mems = sorted((tmp / "mem" / "rtl").glob("*.mem"))
    same = bool(mems) and all((tmp / "onnx" / "rtl" / m.name).read_bytes() == m.read_bytes() for m in mems)
    return {"emit_memory_s": round(t_mem, 2), "emit_qonnx_s": round(t_onnx, 2), "same_roms": same,
            "checks": mem.checks + [" ".join(line.split()) for line in proc.stdout.splitlines()[1:]],
            "cycles_default": max(mem.graph.cycles(layer) for layer in mem.graph.layers)}


def verify(out: Path, frames: int, rtl: bool) -> dict:
    graph = load_output(out)
    values = np.load(out / "sim" / "inputs.npy")[:frames]
    trace = golden.run(graph, values)
    t0 = time.perf_counter()
    res = run_csim(out, values, native=False)
    row = {"csim_frames": len(values), "csim_exact": bool(np.array_equal(res.result, trace.result)),
           "csim_s": round(time.perf_counter() - t0, 1)}
    if rtl:
        t0 = time.perf_counter()
        r = run_rtl(out, values, simulator="verilator", seed=1, backpressure=0.3, gaps=0.3, throughput_frames=3)
        row.update(rtl_frames=len(values), rtl_exact=bool(r.passed and not r.mismatches
                                                          and np.array_equal(r.result, trace.result)),
                   rtl_s=round(time.perf_counter() - t0, 1), rtl_cycles_per_frame=r.cycles_per_frame)
    return row


def target_bound(name: str, model, x: np.ndarray, tmp: Path, target: int) -> int:
    with _Quiet():
        res = lbgen.emit(model, tmp / "target", inputs=None, target_cycles=target, name=name, force=True,
                         input_shape=shape_of(name) if name.startswith("cnv") else None)
    return max(res.graph.cycles(layer) for layer in res.graph.layers)


def zoo_row(name: str, rtl_cnv: bool) -> dict:
    model = reference_model(name)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(FRAMES, *shape_of(name))).astype(np.float32)
    x[0], x[1] = 0.0, 1.0
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        row = {"network": name, **compile_both(name, model, x, tmp)}
        row["target_cycles"] = max(1, row["cycles_default"] // 4)
        row["cycles_at_target"] = target_bound(name, model, x, tmp, row["target_cycles"])
        cnn = name.startswith("cnv")
        rtl = not cnn and not name.startswith("lfc") or (name == "cnv_1w1a" and rtl_cnv)
        row.update(verify(tmp / "onnx", 2 if cnn and rtl else CNN_CSIM_FRAMES if cnn else FRAMES, rtl))
    print(f"{name}: {json.dumps({k: v for k, v in row.items() if k != 'checks'})}", flush=True)
    return row


# -- accuracy end to end -------------------------------------------------------------------------

def digits_images(shape: tuple[int, int, int]):
    sys.path.insert(0, str(ROOT / "examples" / "digits"))
    import train as digits

    x_tr, x_te, y_tr, y_te = digits.load_data()

    def up(x):
        t = torch.from_numpy(x).reshape(-1, 1, 8, 8)
        t = F.interpolate(t, size=shape[1:], mode="bilinear", align_corners=False).clamp(0, 1)
        return t.repeat(1, shape[0], 1, 1).numpy().astype(np.float32)

    return up(x_tr), up(x_te), y_tr, y_te


def train_and_check(name: str, epochs: int, seed: int = 0, csim_frames: int | None = None) -> dict:
    """Train briefly (Adam, one-cycle), then torch's accuracy beside the hardware's: the golden
    model's on every test image, and the C-sim's equality with it on ``csim_frames`` of them
    (None: all; CNV's C-sim runs about a second per frame)."""
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    torch.manual_seed(seed)
    with _Quiet():
        model, _ = model_with_cfg(name, pretrained=False)
    x_tr, x_te, y_tr, y_te = digits_images(shape_of(name))
    xt, yt = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    batch = 64
    steps = epochs * ((len(xt) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps, pct_start=0.2)
    gen = torch.Generator().manual_seed(seed + 1)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(epochs):
            model.train()
            perm = torch.randperm(len(xt), generator=gen)
            for i in range(0, len(xt) - 1, batch):
                idx = perm[i:i + batch]
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(model(xt[idx]), yt[idx]).backward()
                opt.step()
                sched.step()
                model.clip_weights(-1, 1)       # as bnn_pynq's trainer does
    train_s = time.perf_counter() - t0
    model.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch_pred = model(torch.from_numpy(x_te)).argmax(1).numpy()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        np.savez(tmp / "test.npz", x=x_te, y=y_te)
        with _Quiet():
            res = lbgen.emit(model, tmp / "out", inputs=tmp / "test.npz", name=name,
                             input_shape=shape_of(name) if name.startswith("cnv") else None)
        trace = golden.run(res.graph, res.vectors.values)
        n_csim = len(y_te) if csim_frames is None else min(csim_frames, len(y_te))
        csim = run_csim(tmp / "out", res.vectors.values[:n_csim], native=False)
        hw_pred = np.argmax(trace.logits, 1)
    row = {"network": name, "epochs": epochs, "train_s": round(train_s, 1),
           "torch_accuracy": float(np.mean(torch_pred == y_te)), "hardware_accuracy": float(np.mean(hw_pred == y_te)),
           "predictions_equal": bool(np.array_equal(torch_pred, hw_pred)),
           "csim_exact": bool(np.array_equal(csim.result, trace.result[:n_csim])), "csim_frames": n_csim,
           "test_images": len(y_te)}
    print(f"accuracy {name}: {json.dumps(row)}", flush=True)
    return row


def table(rows: list[dict]) -> str:
    lines = ["| network | routes (same ROMs) | emit s (memory / QONNX) | cycles/frame default | at --target-cycles "
             "| C-sim bit-exact | Verilator bit-exact |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        rtl = f"yes ({r['rtl_frames']} frames)" if r.get("rtl_exact") else ("NO" if "rtl_exact" in r else "not run")
        lines.append(f"| {r['network']} | memory, QONNX ({'yes' if r['same_roms'] else 'NO'}) | "
                     f"{r['emit_memory_s']:.1f} / {r['emit_qonnx_s']:.1f} | {r['cycles_default']} | "
                     f"{r['cycles_at_target']} (target {r['target_cycles']}) | "
                     f"{'yes' if r['csim_exact'] else 'NO'} ({r['csim_frames']} frames) | {rtl} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=None, help="comma-separated networks")
    ap.add_argument("--rtl-cnv", action="store_true", help="also CNV-1w1a in Verilator (2 frames)")
    ap.add_argument("--epochs-tfc", type=int, default=30)
    ap.add_argument("--epochs-cnv", type=int, default=6)
    ap.add_argument("--no-accuracy", action="store_true")
    ap.add_argument("--accuracy-only", action="store_true", help="keep the networks' rows of bench/results/bnn_zoo.json")
    ap.add_argument("--accuracy-of", default="tfc_1w1a,cnv_1w1a", help="networks trained on digits")
    ap.add_argument("--cnv-csim-frames", type=int, default=64, help="test images CNV's C-sim runs (all: 360)")
    args = ap.parse_args(argv)
    out = RESULTS / "bnn_zoo.json"
    names = args.only.split(",") if args.only else NETWORKS
    old = json.loads(out.read_text()) if out.is_file() else {"networks": [], "accuracy": []}
    rows = old["networks"] if args.accuracy_only else [zoo_row(n, args.rtl_cnv) for n in names]
    trained = [] if args.no_accuracy else args.accuracy_of.split(",")
    acc = [a for a in old["accuracy"] if a["network"] not in trained]
    acc += [train_and_check(n, args.epochs_cnv if n.startswith("cnv") else args.epochs_tfc,
                            csim_frames=args.cnv_csim_frames if n.startswith("cnv") else None) for n in trained]
    RESULTS.mkdir(exist_ok=True)
    out.write_text(json.dumps({"networks": rows, "accuracy": acc}, indent=1) + "\n")
    print(table(rows))
    for a in acc:
        print(f"{a['network']}: torch {a['torch_accuracy']:.4f}, hardware {a['hardware_accuracy']:.4f} on "
              f"{a['test_images']} digits ({a['epochs']} epochs, {a['train_s']:.0f} s)")
    failed = [r["network"] for r in rows if not (r["same_roms"] and r["csim_exact"] and r.get("rtl_exact", True))]
    failed += [a["network"] for a in acc if not (a["predictions_equal"] and a["csim_exact"])]
    if failed:
        print(f"FAILED: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
