"""Post-training quantization of the float digits MLP and CNN: accuracy by width, clipping and bias correction.

Trains the float baseline of examples/digits/train.py (Linear-BatchNorm-ReLU,
256 hidden units, fixed seeds) and a float CNN of the shape of
examples/digits/train_cnn.py's (three 3x3 convolutions, a max-pool), then quantizes each with lbgen.passes.model.ptq at
8/8, 4/4, 3/3 and 2/4 bits (hidden weights / activations; the first and last
layer keep 8-bit weights, the input 8 bits), and 2/2, with min-max,
percentile (99.99) and ACIQ clipping, each with and without bias correction,
calibrated on 256 training images. Every quantized model is compiled by the
usual flow; its accuracy is the golden model's on the 360 test images
(exactly what the emitted hardware computes), and its logit error is the
mean squared difference from the float model's logits over those images,
relative to their mean square: the quantity clipping is chosen to reduce,
and a finer one than the accuracy of 360 images (one image is 0.28 %). Writes
bench/results/ptq_digits.json (the MLP at the top level, the CNN under "cnn")
and prints Markdown tables (the ones in the README).

    .venv/bin/python bench/ptq_table.py [--calib 256] [--only mlp|cnn]
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
from lbgen.passes.model.ptq import quantize_float_model

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
WIDTHS = [(8, 8), (4, 4), (3, 3), (2, 4), (2, 2)]
CLIPS = ["minmax", "percentile", "aciq"]


CNN_EPOCHS = 30


def _digits():
    sys.path.insert(0, str(ROOT / "examples" / "digits"))
    import train as digits

    return digits


def make_float_cnn() -> torch.nn.Sequential:
    """The float counterpart of examples/digits/train_cnn.py's CNNs (flat input)."""
    nn = torch.nn
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3), nn.BatchNorm2d(32), nn.ReLU(), nn.Flatten(),
        nn.Linear(128, 10))


def float_model(kind: str = "mlp"):
    digits = _digits()
    x_tr, x_te, y_tr, y_te = digits.load_data()
    torch.manual_seed(digits.SEED)
    t = [torch.from_numpy(v) for v in (x_tr, y_tr, x_te, y_te)]
    if kind == "cnn":
        model, _ = digits.fit(make_float_cnn(), "float_cnn", CNN_EPOCHS, *t, log=lambda *a: None)
    else:
        model, _ = digits.fit(digits.make_float(), "float", digits.EPOCHS["float"], *t, log=lambda *a: None)
    with torch.no_grad():
        acc = float((model(t[2]).argmax(1) == t[3]).double().mean())
    return model, x_tr, x_te, y_te, acc


def table(kind: str, n_calib: int) -> dict:
    t0 = time.perf_counter()
    model, x_tr, x_te, y_te, float_acc = float_model(kind)
    with torch.no_grad():
        ref = model(torch.from_numpy(x_te)).double().numpy()
    calib = x_tr[:n_calib]
    rows = []
    for w, a in WIDTHS:
        for clip in CLIPS:
            for bc in (False, True):
                q = quantize_float_model(model, calib, w_bits=w, a_bits=a, clip=clip, bias_correction=bc)
                graph = build_graph(q, EmitOptions(w=w, a=a))
                values = graph.input.quantize(x_te)
                chw = graph.meta.get("input_chw")
                if chw is not None:   # the hardware takes the image NHWC
                    c, h, wd = chw
                    values = values.reshape(-1, c, h, wd).transpose(0, 2, 3, 1).reshape(len(values), -1)
                logits = golden.run(graph, values).logits
                rows.append({"w": w, "a": a, "clip": clip, "bias_correction": bc,
                             "accuracy": float(np.mean(np.argmax(logits, 1) == y_te)),
                             "logit_error": float(np.mean((logits - ref) ** 2) / np.mean(ref ** 2))})
    described = {"mlp": "examples/digits/train.py make_float (64-256-256-10, BatchNorm, ReLU)",
                 "cnn": "bench/ptq_table.py make_float_cnn (conv 1-8-16 3x3 pad 1, max-pool 2, conv 32 3x3, "
                        "linear 128-10; BatchNorm, ReLU)"}
    return {"model": described[kind], "float_accuracy": float_acc, "calibration_images": len(calib),
            "test_images": len(y_te), "rows": rows, "seconds": time.perf_counter() - t0}


def print_table(doc: dict) -> None:
    print(f"{doc['model']}: float {100 * doc['float_accuracy']:.2f}% on {doc['test_images']} test images; "
          f"calibration: {doc['calibration_images']} images\n")
    print("| W/A | bias correction | " + " | ".join(CLIPS) + " |")
    print("|---|---|" + "---|" * len(CLIPS))
    for w, a in WIDTHS:
        for bc in (False, True):
            sel = {r["clip"]: r for r in doc["rows"] if (r["w"], r["a"], r["bias_correction"]) == (w, a, bc)}
            print(f"| {w}/{a} | {'yes' if bc else 'no'} | "
                  + " | ".join(f"{100 * sel[c]['accuracy']:.2f}% ({sel[c]['logit_error']:.4f})" for c in CLIPS)
                  + " |")
    print(f"\n({doc['seconds']:.0f} s)\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calib", type=int, default=256, help="training images used for calibration")
    ap.add_argument("--only", choices=["mlp", "cnn"], help="one model only (the other keeps its stored figures)")
    args = ap.parse_args(argv)
    path = RESULTS / "ptq_digits.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    doc = table("mlp", args.calib) if args.only != "cnn" else {k: v for k, v in old.items() if k != "cnn"}
    cnn = table("cnn", args.calib) if args.only != "mlp" else old.get("cnn")
    if cnn is not None:
        doc["cnn"] = cnn
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")
    print("accuracy (logit error)\n")
    for d in (doc, cnn):
        if d is not None and "rows" in d:
            print_table(d)
    print("bench/results/ptq_digits.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
