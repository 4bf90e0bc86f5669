"""Does widening a 1-bit network recover the float accuracy? A width sweep of the w1a1 digits MLP and CNN.

The question reviewers ask of wide reduced-precision networks (Mishra et al.,
WRPN, 2017): a binary network loses accuracy to its float counterpart; does
making it wider win the loss back, and what does the width cost in hardware?

Two architectures, each at width factor k = 1, 2, 3, 4, each trained binary
(w1a1) and float:

* MLP, the w1a1 model of examples/digits/train.py (make_w1a1) with hidden
  width 64*k: QuantAct(4) -> IntLinear(64, 64k, 8 bit) + BN -> BinaryAct ->
  BinaryLinear(64k, 64k) + BN -> BinaryAct -> IntLinear(64k, 10, 8 bit).
  Float: Linear + BN + ReLU in the same places.
* CNN, the cnn_w1a1 model of examples/digits/train_cnn.py with its channels
  C1, C2, C3 = 8, 16, 32 times k: QuantAct(4) -> IntConv2d(1, C1k, 3, pad 1,
  8 bit) + BN -> BinaryAct -> BinaryConv2d(C1k, C2k, 3, pad 1) + BN ->
  BinaryAct -> MaxPool2d(2) -> BinaryConv2d(C2k, C3k, 3) + BN -> BinaryAct ->
  Flatten -> IntLinear(4*C3k, 10, 8 bit). Float: Conv2d/Linear + BN + ReLU.

Every model is trained by train.py's ``fit`` (Adam, one-cycle, batch 64, the
same number of epochs for float and w1a1), with the seeds reset per model;
``--seeds`` trains each model with several seeds (initialisation and batch
order both follow the seed) and the table gives the mean. For each w1a1 model
the script records: parameters, torch test accuracy, the golden model's
accuracy on the 360 test images (``build_graph`` + ``golden.run``: exactly
what the emitted hardware computes), bit-operations per frame (the sum over
layers of MACs x weight bits x input bits, from the IR; a convolution's MACs
are output pixels x MW x MH) and estimated LUTs: the sum over layers of
``lbgen.passes.cost.estimate_luts`` -- the calibrated per-engine estimate, not
a Yosys figure, without the sliding-window units and max-pools -- at one
folding policy for every width and both networks: ``--target-cycles`` (default
1152 cycles per frame, 174k frames/s at 200 MHz), each layer folded to its
cheapest estimate within the target, so a wider network pays in area, not in
throughput. The float models are the accuracy baseline (their bit-operations
are counted at 32 x 32 bits for scale; they have no hardware here).

    .venv/bin/python bench/width_sweep.py [--seeds 0,1] [--target-cycles 1152]
    .venv/bin/python bench/width_sweep.py --quick --out /tmp/ws   # smoke test

Writes bench/results/width_sweep.json and width_sweep.png (or into --out) and
prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
DIGITS = ROOT / "examples" / "digits"

WIDTHS = (1, 2, 3, 4)
MLP_BASE = 64                 # hidden units at width x1
EPOCHS = 60                   # train.py's w1a1 and train_cnn.py's epochs; the float models get the same
TARGET_CYCLES = 1152          # cycles per frame, every width, both networks
CLOCK_HZ = 200e6              # only to express the target as frames per second
FLOAT_BITS = 32               # float bit-operations are counted at 32 x 32 bits
SEEDS = (0, 1)                # two seeds: the full run takes ~7 min on 2 cores, three ~10
QUICK_WIDTHS = (1, 2)
QUICK_EPOCHS = 2


def _digits():
    """examples/digits/train.py and train_cnn.py as modules (not edited; imported)."""
    sys.path.insert(0, str(DIGITS))
    try:
        import train as digits
        import train_cnn
    finally:
        sys.path.remove(str(DIGITS))
    return digits, train_cnn


# ---------------------------------------------------------------- the models


def make_mlp(k: int, binary: bool) -> nn.Sequential:
    from lbgen.quant import BinaryAct, BinaryLinear, IntLinear, QuantAct

    h = MLP_BASE * k
    if binary:   # train.py's make_w1a1 at hidden width h
        return nn.Sequential(
            QuantAct(4, clip=1.0),
            IntLinear(64, h, bits=8), nn.BatchNorm1d(h), BinaryAct(),
            BinaryLinear(h, h), nn.BatchNorm1d(h), BinaryAct(),
            IntLinear(h, 10, bits=8))
    return nn.Sequential(
        nn.Linear(64, h), nn.BatchNorm1d(h), nn.ReLU(),
        nn.Linear(h, h), nn.BatchNorm1d(h), nn.ReLU(),
        nn.Linear(h, 10))


def make_cnn(k: int, binary: bool) -> nn.Sequential:
    from lbgen.quant import BinaryAct, BinaryConv2d, IntConv2d, IntLinear, QuantAct

    _, tc = _digits()
    c1, c2, c3 = tc.C1 * k, tc.C2 * k, tc.C3 * k
    if binary:   # train_cnn.py's cnn_w1a1 with k times the channels
        return nn.Sequential(
            QuantAct(4, clip=1.0),
            IntConv2d(1, c1, 3, padding=1, bits=8), nn.BatchNorm2d(c1), BinaryAct(),
            BinaryConv2d(c1, c2, 3, padding=1), nn.BatchNorm2d(c2), BinaryAct(),
            nn.MaxPool2d(2),
            BinaryConv2d(c2, c3, 3, padding=0), nn.BatchNorm2d(c3), BinaryAct(),
            nn.Flatten(),
            IntLinear(c3 * 2 * 2, 10, bits=8))
    return nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1), nn.BatchNorm2d(c1), nn.ReLU(),
        nn.Conv2d(c1, c2, 3, padding=1), nn.BatchNorm2d(c2), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(c2, c3, 3), nn.BatchNorm2d(c3), nn.ReLU(),
        nn.Flatten(),
        nn.Linear(c3 * 2 * 2, 10))


BUILDERS = {"mlp": make_mlp, "cnn": make_cnn}
DESCRIPTIONS = {
    "mlp": f"64 -> {MLP_BASE}k -> {MLP_BASE}k -> 10 (train.py make_w1a1 at hidden width {MLP_BASE}k; "
           "float: Linear + BatchNorm + ReLU)",
    "cnn": "conv 1-8k-16k 3x3 pad 1, max-pool 2, conv 32k 3x3, linear 128k-10 (train_cnn.py cnn_w1a1 with "
           "C1, C2, C3 times k; float: Conv2d/Linear + BatchNorm + ReLU)",
}


def torch_macs(model: nn.Sequential, x: torch.Tensor) -> int:
    """MACs of one frame of a float model (conv: output pixels x in_ch*kh*kw x out_ch)."""
    total, h = 0, x[:1]
    with torch.no_grad():
        for m in model:
            h = m(h)
            if isinstance(m, nn.Conv2d):
                total += h.shape[2] * h.shape[3] * m.out_channels * m.in_channels * m.kernel_size[0] * m.kernel_size[1]
            elif isinstance(m, nn.Linear):
                total += m.in_features * m.out_features
    return total


# ---------------------------------------------------------------- one model


def golden_figures(model: nn.Module, kind: str, x_te: np.ndarray, y_te: np.ndarray, target: int) -> dict:
    """Compile by lbgen's flow at ``target`` cycles/frame; the golden model's accuracy,
    bit-operations, MACs and estimated LUTs from the folded IR."""
    from lbgen import golden
    from lbgen.flow import EmitOptions, build_graph
    from lbgen.passes.cost import estimate_luts
    from lbgen.passes.folding import folding_bound

    opts = EmitOptions(target_cycles=target, input_shape="1,8,8" if kind == "cnn" else None)
    graph = build_graph(model, opts)
    values = graph.input.quantize(x_te.reshape(len(x_te), -1))
    chw = graph.meta.get("input_chw")
    if chw is not None:   # the hardware takes the image NHWC
        c, h, w = chw
        values = values.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(len(values), -1)
    logits = golden.run(graph, values).logits
    layers = []
    for l in graph.layers:
        macs = l.pixels * l.mw * l.mh
        wbits = l.weight_bits_avg
        layers.append({"name": l.name, "source": l.source, "mw": l.mw, "mh": l.mh, "pixels": l.pixels,
                       "macs": macs, "weight_bits": wbits, "input_bits": l.itype.bits,
                       "bitops": macs * wbits * l.itype.bits, "pe": l.pe, "simd": l.simd,
                       "cycles": graph.cycles(l), "est_luts": round(estimate_luts(l), 1)})
    return {"golden_accuracy": float(np.mean(np.argmax(logits, 1) == y_te)),
            "macs": sum(r["macs"] for r in layers),
            "bitops": int(round(sum(r["bitops"] for r in layers))),
            "est_luts": round(sum(r["est_luts"] for r in layers)),
            "cycles_per_frame": folding_bound(graph),
            "layers": layers}


def run_one(kind: str, k: int, binary: bool, seed: int, epochs: int, data, target: int) -> dict:
    digits, _ = _digits()
    x_tr, y_tr, x_te, y_te = data
    saved = digits.SEED
    digits.SEED = seed           # fit's batch-order generator follows the seed too
    try:
        torch.manual_seed(seed)
        np.random.seed(seed)
        model = BUILDERS[kind](k, binary)
        name = f"{kind}_{'w1a1' if binary else 'float'}_x{k}_s{seed}"
        model, secs = digits.fit(model, name, epochs, x_tr, y_tr, x_te, y_te, log=lambda *a: None)
    finally:
        digits.SEED = saved
    acc = digits.accuracy(model, x_te, y_te)
    row = {"kind": kind, "format": "w1a1" if binary else "float", "width": k, "seed": seed,
           "parameters": int(sum(p.numel() for p in model.parameters())),
           "torch_accuracy": acc, "train_seconds": round(secs, 2)}
    if binary:
        row.update(golden_figures(model, kind, x_te.numpy(), y_te.numpy(), target))
    else:
        macs = torch_macs(model, x_te)
        row.update({"macs": macs, "bitops": macs * FLOAT_BITS * FLOAT_BITS})
    return row


# ---------------------------------------------------------------- summary, table, figure


def summarise(rows: list[dict], kind: str, widths) -> list[dict]:
    out = []
    for k in widths:
        b = [r for r in rows if r["kind"] == kind and r["width"] == k and r["format"] == "w1a1"]
        f = [r for r in rows if r["kind"] == kind and r["width"] == k and r["format"] == "float"]
        g = [r["golden_accuracy"] for r in b]
        fa = [r["torch_accuracy"] for r in f]
        out.append({"kind": kind, "width": k, "parameters": b[0]["parameters"],
                    "float_parameters": f[0]["parameters"],
                    "torch_accuracy": float(np.mean([r["torch_accuracy"] for r in b])),
                    "golden_accuracy": float(np.mean(g)), "golden_accuracy_min": min(g),
                    "golden_accuracy_max": max(g),
                    "float_accuracy": float(np.mean(fa)), "float_accuracy_min": min(fa),
                    "float_accuracy_max": max(fa),
                    "gap": float(np.mean(fa) - np.mean(g)),
                    "macs": b[0]["macs"], "bitops": b[0]["bitops"], "float_bitops": f[0]["bitops"],
                    "est_luts": b[0]["est_luts"], "cycles_per_frame": b[0]["cycles_per_frame"]})
    return out


def _eng(v: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= div:
            return f"{v / div:.3g}{unit}"
    return f"{v:.0f}"


def markdown(summary: list[dict], n_seeds: int) -> str:
    acc = "accuracy" if n_seeds == 1 else f"accuracy, mean of {n_seeds} seeds"
    lines = [f"| net | width | params (w1a1) | w1a1 torch {acc} | w1a1 golden {acc} | float {acc} | "
             "float - w1a1 | bit-ops/frame (w1a1) | est. LUTs | cycles/frame |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for s in summary:
        lines.append(f"| {s['kind'].upper()} | x{s['width']} | {s['parameters']:,} | "
                     f"{100 * s['torch_accuracy']:.2f}% | {100 * s['golden_accuracy']:.2f}% | "
                     f"{100 * s['float_accuracy']:.2f}% | {100 * s['gap']:+.2f} pt | {_eng(s['bitops'])} | "
                     f"{s['est_luts']:,} | {s['cycles_per_frame']} |")
    return "\n".join(lines)


def plot(summary: list[dict], path: Path, target: int, n_seeds: int, n_test: int) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [k for k in ("mlp", "cnn") if any(s["kind"] == k for s in summary)]
    fig, axes = plt.subplots(1, len(kinds), figsize=(6.2 * len(kinds), 4.8), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        ss = [s for s in summary if s["kind"] == kind]
        ks = [s["width"] for s in ss]

        def band(key):
            mid = np.array([100 * s[key] for s in ss])
            lo = np.array([100 * s[key + "_min"] for s in ss])
            hi = np.array([100 * s[key + "_max"] for s in ss])
            return mid, [mid - lo, hi - mid]

        fm, fe = band("float_accuracy")
        bm, be = band("golden_accuracy")
        seeds = f", mean, bars min-max of {n_seeds} seeds" if n_seeds > 1 else ""
        ax.errorbar(ks, fm, yerr=fe, marker="s", color="tab:blue", capsize=4, lw=2, label=f"float (torch){seeds}")
        ax.errorbar(ks, bm, yerr=be, marker="o", color="tab:red", capsize=4, lw=2,
                    label=f"w1a1 (golden = hardware){seeds}")
        ax.set_xticks(ks)
        ax.set_xticklabels([f"x{k}\n{_eng(s['bitops'])} bit-ops" for k, s in zip(ks, ss)])
        ax.set_xlabel("width factor k" + (" (hidden units 64k)" if kind == "mlp" else " (channels 8k, 16k, 32k)")
                      + "\nand the w1a1 model's bit-operations per frame")
        ax.set_ylabel(f"test accuracy, % of {n_test} images")
        lo = min(min(bm - be[0]), min(fm - fe[0]))
        ax.set_ylim(max(0.0, lo - 2.5), 100.5)
        ax.grid(alpha=0.3)
        ax2 = ax.twinx()
        ax2.plot(ks, [s["est_luts"] for s in ss], ls="--", marker="^", color="0.45", label="est. LUTs (w1a1)")
        ax2.set_ylabel(f"w1a1 estimated LUTs at {target} cycles/frame", color="0.35")
        ax2.set_ylim(0, 1.15 * max(s["est_luts"] for s in ss))
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, loc="lower right", fontsize=8)
        ax.set_title(f"digits {kind.upper()}: w1a1 vs float by width")
    fig.suptitle(f"Width sweep (WRPN's question) on sklearn digits; LUTs: lbgen.passes.cost estimate "
                 f"(not Yosys), every layer folded to {target} cycles/frame", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"smoke test: {QUICK_EPOCHS} epochs, widths {QUICK_WIDTHS}, seed 0")
    ap.add_argument("--out", type=Path, default=RESULTS, help="output directory (default bench/results)")
    ap.add_argument("--seeds", default=",".join(map(str, SEEDS)),
                    help=f"comma-separated training seeds (default {','.join(map(str, SEEDS))})")
    ap.add_argument("--epochs", type=int, default=None, help=f"training epochs (default {EPOCHS})")
    ap.add_argument("--target-cycles", type=int, default=TARGET_CYCLES,
                    help=f"folding policy: every layer's cheapest folding within this many cycles/frame "
                         f"(default {TARGET_CYCLES})")
    ap.add_argument("--only", choices=["mlp", "cnn"], help="one network only")
    args = ap.parse_args(argv)
    widths = QUICK_WIDTHS if args.quick else WIDTHS
    epochs = args.epochs or (QUICK_EPOCHS if args.quick else EPOCHS)
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",") if s.strip()]
    kinds = [args.only] if args.only else ["mlp", "cnn"]

    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    digits, tc = _digits()
    x_tr, x_te, y_tr, y_te = digits.load_data()
    t0 = time.perf_counter()
    rows = []
    for kind in kinds:
        shape = (-1, 1, 8, 8) if kind == "cnn" else (-1, 64)
        data = (torch.from_numpy(x_tr.reshape(shape)), torch.from_numpy(y_tr),
                torch.from_numpy(x_te.reshape(shape)), torch.from_numpy(y_te))
        for k in widths:
            for binary in (True, False):
                for seed in seeds:
                    t1 = time.perf_counter()
                    row = run_one(kind, k, binary, seed, epochs, data, args.target_cycles)
                    row["seconds"] = round(time.perf_counter() - t1, 2)
                    rows.append(row)
                    extra = (f" golden {100 * row['golden_accuracy']:.2f}%, {row['est_luts']} est. LUTs"
                             if binary else "")
                    print(f"  {kind} {row['format']:5s} x{k} seed {seed}: torch {100 * row['torch_accuracy']:.2f}%"
                          f"{extra} ({row['seconds']:.1f} s)", flush=True)
    summary = [s for kind in kinds for s in summarise(rows, kind, widths)]
    seconds = time.perf_counter() - t0
    policy = (f"--target-cycles {args.target_cycles}: every layer of every width gets the folding (PE x SIMD) "
              f"with the fewest estimated LUTs that takes at most {args.target_cycles} cycles per frame "
              f"({CLOCK_HZ / args.target_cycles / 1e3:.1f}k frames/s at {CLOCK_HZ / 1e6:.0f} MHz)")
    doc = {
        "question": "does widening a w1a1 network recover the float accuracy (Mishra et al., WRPN)?",
        "dataset": "sklearn.datasets.load_digits, X/16, train_test_split(test_size=360, random_state=0, "
                   "stratify=y) (examples/digits/train.py load_data)",
        "n_train": int(len(x_tr)), "n_test": int(len(x_te)),
        "models": {k: DESCRIPTIONS[k] for k in kinds},
        "settings": {"widths": list(widths), "epochs": epochs, "seeds": seeds, "quick": args.quick,
                     "training": "examples/digits/train.py fit (Adam, one-cycle LR 3e-3, batch 64); torch and "
                                 "batch-order seeds reset to the seed before every model; same epochs for "
                                 "float and w1a1",
                     "target_cycles": args.target_cycles, "folding_policy": policy,
                     "luts": "sum over layers of lbgen.passes.cost.estimate_luts at the folding above: the "
                             "calibrated estimate of the matrix-vector engines (fitted to bench/lut_per_lane.py's "
                             "Yosys figures), not a Yosys synthesis; sliding-window units and max-pools are "
                             "not counted",
                     "bitops": "per frame, sum over layers of MACs x weight bits x input bits from the IR (a "
                               "convolution's MACs: output pixels x MW x MH); float models at "
                               f"{FLOAT_BITS} x {FLOAT_BITS} bits",
                     "golden_accuracy": "lbgen.flow.build_graph + lbgen.golden.run on the 360 test images: "
                                        "what the emitted hardware computes",
                     "torch_threads": torch.get_num_threads(), "torch": torch.__version__},
        "summary": summary,
        "rows": rows,
        "seconds": round(seconds, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "width_sweep.json").write_text(json.dumps(doc, indent=1) + "\n")
    plot(summary, args.out / "width_sweep.png", args.target_cycles, len(seeds), len(x_te))
    print()
    print(markdown(summary, len(seeds)))
    print(f"\nLUTs: lbgen.passes.cost.estimate_luts (calibrated estimate, not Yosys), engines only; folding policy: "
          f"{policy}.\nBit-ops: MACs x weight bits x input bits per frame. {epochs} epochs, seeds {seeds}; "
          f"{seconds:.0f} s.\nwrote {args.out / 'width_sweep.json'} and {args.out / 'width_sweep.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
