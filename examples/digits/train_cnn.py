#!/usr/bin/env python3
"""Train the small quantized CNNs on scikit-learn's bundled 8x8 digits (no download).

    .venv/bin/python examples/digits/train_cnn.py                    # every CNN
    .venv/bin/python examples/digits/train_cnn.py --only cnn_w1a2

Same data split as train.py (its load_data is imported from there). The model
input is the 8x8 image as (N, 1, 8, 8): ``digits_test.npz``'s ``x`` (360, 64)
reshaped with ``x.reshape(-1, 1, 8, 8)`` (row-major, as load_digits flattens).

Architecture (every format; 98,048 MACs per image)::

    QuantAct(4, clip=1.0)                         1x8x8   input quantizer, as train.py
    IntConv2d(1, 8, 3, padding=1, bits=8) + BN    8x8x8   first layer int8, as train.py
    act
    <W>Conv2d(8, 16, 3, padding=1) + BN           16x8x8
    act
    MaxPool2d(2)                                  16x4x4  pools quantized levels
    <W>Conv2d(16, 32, 3, padding=0) + BN          32x2x2
    act
    Flatten                                       128
    IntLinear(128, 10, bits=8)                    10      logits, int8 as train.py

``cnn_w1a1``: BinaryConv2d, BinaryAct; ``cnn_w1a2``: BinaryConv2d,
``QuantAct(2, clip=2.0, learn_clip=True)``; ``cnn_w4a4``: IntConv2d(bits=4),
``QuantAct(4, clip=2.0, learn_clip=True)``.

Padding is zero in value: after a BinaryAct (bipolar +-1) the padded border
of the next conv is 0, not -1 (torch's semantics, reproduced by lbgen's
hardware).

Writes next to this file:
  digits_cnn_<fmt>.pt -- nn.Sequential in eval mode, torch.save(model)
  cnn_results.json    -- test accuracies, training times, epochs and the layer
                         list (output shapes, MACs); --only keeps the others

Deterministic on CPU (fixed seeds reset per model, 2 threads,
torch.use_deterministic_algorithms).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from lbgen.quant import SAFE_GLOBALS, BinaryAct, BinaryConv2d, IntConv2d, IntLinear, QuantAct, QuantConv2dMixin

HERE = Path(__file__).resolve().parent
SEED = 0

EPOCHS = 60
BATCH = 64
LR = 3e-3
WEIGHT_DECAY = 0.0
ACT_CLIP_INIT = 2.0  # initial clip of the learned hidden quantizers (after BatchNorm), as train.py
INPUT_SHAPE = (1, 8, 8)
C1, C2, C3 = 8, 16, 32  # conv output channels

#: the torch.nn classes of these models, for torch.load(weights_only=True)
TORCH_CLASSES = [nn.Sequential, nn.BatchNorm2d, nn.MaxPool2d, nn.Flatten]


def _train_py():
    """examples/digits/train.py as a module (its load_data is the split)."""
    spec = importlib.util.spec_from_file_location("digits_train", HERE / "train.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def load_data():
    """train.py's split, images as (N, 1, 8, 8)."""
    x_tr, x_te, y_tr, y_te = _train_py().load_data()
    return x_tr.reshape(-1, *INPUT_SHAPE), x_te.reshape(-1, *INPUT_SHAPE), y_tr, y_te


def _act(bits: int) -> nn.Module:
    """Hidden activation quantizer: bipolar for 1 bit, else a learned-clip QuantAct."""
    return BinaryAct() if bits == 1 else QuantAct(bits, clip=ACT_CLIP_INIT, learn_clip=True)


def make_cnn(conv, act_bits: int) -> nn.Sequential:
    """``conv(in, out, k, padding)`` builds a hidden conv layer in the model's weight format."""
    return nn.Sequential(
        QuantAct(4, clip=1.0),
        IntConv2d(1, C1, 3, padding=1, bits=8),
        nn.BatchNorm2d(C1),
        _act(act_bits),
        conv(C1, C2, 3, 1),
        nn.BatchNorm2d(C2),
        _act(act_bits),
        nn.MaxPool2d(2),
        conv(C2, C3, 3, 0),
        nn.BatchNorm2d(C3),
        _act(act_bits),
        nn.Flatten(),
        IntLinear(C3 * 2 * 2, 10, bits=8),
    )


BUILDERS = {
    "cnn_w1a1": lambda: make_cnn(lambda i, o, k, p: BinaryConv2d(i, o, k, padding=p), 1),
    "cnn_w1a2": lambda: make_cnn(lambda i, o, k, p: BinaryConv2d(i, o, k, padding=p), 2),
    "cnn_w4a4": lambda: make_cnn(lambda i, o, k, p: IntConv2d(i, o, k, padding=p, bits=4), 4),
}
MODELS = tuple(BUILDERS)
DESCRIPTIONS = {
    "cnn_w1a1": "CNN, binary hidden conv weights, bipolar activations",
    "cnn_w1a2": "CNN, binary hidden conv weights, 2-bit activations",
    "cnn_w4a4": "CNN, 4-bit hidden conv weights, 4-bit activations",
}


def layer_list(model: nn.Sequential) -> tuple[list[dict], int]:
    """Per module: index, type, repr, output shape (one image) and MACs; total MACs."""
    layers, total = [], 0
    h = torch.zeros(1, *INPUT_SHAPE)
    with torch.no_grad():
        for i, m in enumerate(model):
            h = m(h)
            macs = 0
            if isinstance(m, QuantConv2dMixin):
                macs = m.out_channels * m.in_features * h.shape[2] * h.shape[3]
            elif isinstance(m, IntLinear):
                macs = m.out_features * m.in_features
            total += macs
            entry = {"index": i, "type": type(m).__name__, "module": repr(m), "out_shape": list(h.shape[1:])}
            if macs:
                entry["macs"] = macs
            layers.append(entry)
    return layers, total


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return _train_py().accuracy(model, x, y)


def train(name: str, x_tr, y_tr, x_te, y_te, epochs: int = EPOCHS, log=print) -> tuple[nn.Module, float]:
    """train.py's loop and hyper-parameters (SEED, BATCH, LR, WEIGHT_DECAY are the same)."""
    torch.manual_seed(SEED)
    return _train_py().fit(BUILDERS[name](), name, epochs, x_tr, y_tr, x_te, y_te, log)


def _parse_only(text: str | None) -> tuple[str, ...]:
    return _train_py()._parse_only(text, MODELS)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=HERE, help="output directory (default: next to this script)")
    ap.add_argument("--only", metavar="NAMES", default=None,
                    help=f"comma-separated models to train (default: all of {','.join(MODELS)})")
    ap.add_argument("--epochs", type=int, default=EPOCHS, help=f"training epochs (default {EPOCHS})")
    args = ap.parse_args(argv)
    out: Path = args.out
    names = _parse_only(args.only)
    out.mkdir(parents=True, exist_ok=True)

    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    np.random.seed(SEED)
    torch.manual_seed(SEED)

    x_tr, x_te, y_tr, y_te = load_data()
    test_npz = HERE / "digits_test.npz"
    if test_npz.exists():  # the shipped test set (written by train.py) is this split
        with np.load(test_npz) as z:
            assert np.array_equal(z["x"].reshape(-1, *INPUT_SHAPE), x_te) and np.array_equal(z["y"], y_te)
    xt_tr, yt_tr = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    xt_te, yt_te = torch.from_numpy(x_te), torch.from_numpy(y_te)
    print(f"digits: {len(x_tr)} train / {len(x_te)} test images, input {INPUT_SHAPE}")

    results_path = out / "cnn_results.json"
    old = json.loads(results_path.read_text()) if results_path.exists() else {}
    results: dict = {
        "dataset": "sklearn.datasets.load_digits, X/16, train_test_split(test_size=360, random_state=0, "
                   "stratify=y) (train.py's load_data)",
        "input": "digits_test.npz x (N, 64) reshaped to (N, 1, 8, 8)",
        "n_train": int(len(x_tr)),
        "n_test": int(len(x_te)),
        "models": {},
    }
    previous = old.get("models", {})
    t_all = time.perf_counter()
    for name in MODELS:
        if name not in names:
            if name in previous:
                results["models"][name] = previous[name]
            continue
        model, secs = train(name, xt_tr, yt_tr, xt_te, yt_te, epochs=args.epochs)
        acc = accuracy(model, xt_te, yt_te)
        path = out / f"digits_{name}.pt"
        torch.save(model.eval(), path)
        # Check: the weights_only load reproduces the outputs exactly.
        with torch.serialization.safe_globals([*SAFE_GLOBALS, *TORCH_CLASSES]):
            reloaded = torch.load(path, weights_only=True)
        with torch.no_grad():
            assert torch.equal(reloaded(xt_te), model(xt_te)), name
        layers, macs = layer_list(reloaded)
        results["models"][name] = {
            "test_accuracy": round(acc, 6), "train_seconds": round(secs, 2), "epochs": args.epochs,
            "description": DESCRIPTIONS[name], "file": path.name, "input_shape": list(INPUT_SHAPE),
            "macs_per_image": macs, "layers": layers,
        }
        print(f"{name}: test accuracy {acc:.4f} ({round(acc * len(x_te))}/{len(x_te)}), {secs:.1f} s, "
              f"{macs} MACs/image")
    secs_all = time.perf_counter() - t_all
    results["train_seconds_total"] = round(sum(m["train_seconds"] for m in results["models"].values()), 2)
    results["torch"] = torch.__version__
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"time {secs_all:.1f} s ({', '.join(names)}); wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
