"""Post-training quantization of the float digits MLP: accuracy by width, clipping and bias correction.

Trains the float baseline of examples/digits/train.py (Linear-BatchNorm-ReLU,
256 hidden units, fixed seeds), then quantizes it with lbgen.quant.ptq at
8/8, 4/4, 3/3 and 2/4 bits (hidden weights / activations; the first and last
layer keep 8-bit weights, the input 8 bits), and 2/2, with min-max,
percentile (99.99) and ACIQ clipping, each with and without bias correction,
calibrated on 256 training images. Every quantized model is compiled by the
usual flow; its accuracy is the golden model's on the 360 test images
(exactly what the emitted hardware computes), and its logit error is the
mean squared difference from the float model's logits over those images,
relative to their mean square: the quantity clipping is chosen to reduce,
and a finer one than the accuracy of 360 images (one image is 0.28 %). Writes bench/results/ptq_digits.json and prints a
Markdown table (the one in the README).

    .venv/bin/python bench/ptq_table.py [--calib 256]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from lbgen import golden
from lbgen.flow import EmitOptions, build_graph
from lbgen.quant.ptq import quantize_float_model

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
WIDTHS = [(8, 8), (4, 4), (3, 3), (2, 4), (2, 2)]
CLIPS = ["minmax", "percentile", "aciq"]


def float_model():
    sys.path.insert(0, str(ROOT / "examples" / "digits"))
    import train as digits

    x_tr, x_te, y_tr, y_te = digits.load_data()
    torch.manual_seed(digits.SEED)
    t = [torch.from_numpy(v) for v in (x_tr, y_tr, x_te, y_te)]
    model, _ = digits.fit(digits.make_float(), "float", digits.EPOCHS["float"], *t, log=lambda *a: None)
    acc = float((model(t[2]).argmax(1) == t[3]).double().mean())
    return model, x_tr, x_te, y_te, acc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calib", type=int, default=256, help="training images used for calibration")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    model, x_tr, x_te, y_te, float_acc = float_model()
    with torch.no_grad():
        ref = model(torch.from_numpy(x_te)).double().numpy()
    calib = x_tr[:args.calib]
    rows = []
    for w, a in WIDTHS:
        for clip in CLIPS:
            for bc in (False, True):
                q = quantize_float_model(model, calib, w_bits=w, a_bits=a, clip=clip, bias_correction=bc)
                graph = build_graph(q, EmitOptions(w=w, a=a))
                logits = golden.run(graph, graph.input.quantize(x_te)).logits
                rows.append({"w": w, "a": a, "clip": clip, "bias_correction": bc,
                             "accuracy": float(np.mean(np.argmax(logits, 1) == y_te)),
                             "logit_error": float(np.mean((logits - ref) ** 2) / np.mean(ref ** 2))})
    doc = {"model": "examples/digits/train.py make_float (64-256-256-10, BatchNorm, ReLU)",
           "float_accuracy": float_acc, "calibration_images": len(calib), "test_images": len(y_te),
           "rows": rows, "seconds": time.perf_counter() - t0}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ptq_digits.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"float model: {100 * float_acc:.2f}% on {len(y_te)} test images; calibration: {len(calib)} images\n")
    print("accuracy (logit error)\n")
    print("| W/A | bias correction | " + " | ".join(CLIPS) + " |")
    print("|---|---|" + "---|" * len(CLIPS))
    for w, a in WIDTHS:
        for bc in (False, True):
            sel = {r["clip"]: r for r in rows if (r["w"], r["a"], r["bias_correction"]) == (w, a, bc)}
            print(f"| {w}/{a} | {'yes' if bc else 'no'} | "
                  + " | ".join(f"{100 * sel[c]['accuracy']:.2f}% ({sel[c]['logit_error']:.4f})" for c in CLIPS) + " |")
    print(f"\n({doc['seconds']:.0f} s; bench/results/ptq_digits.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
