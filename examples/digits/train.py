#!/usr/bin/env python3
"""Train the shipped digits models (scikit-learn's bundled 8x8 digits, no download).

    .venv/bin/python examples/digits/train.py                 # every model
    .venv/bin/python examples/digits/train.py --only w4a4,mixed

Writes next to this file:
  digits_<name>.pt  -- quantized nn.Sequential models, eval mode, saved with
                       torch.save(model); <name> is one of MODELS below
  digits_test.npz   -- the 360 test images: x (360,64) float32, y (360,) int64
                       (rewritten only when its contents change)
  results.json      -- test accuracies, training times and, per model, the
                       weight format and realised bits per weight of every
                       layer (from the lowered IR); --only updates just the
                       models it trains

Deterministic on CPU (fixed seeds, 2 threads): the seeds are reset for every
model, so a model's weights do not depend on which others are trained.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from lbgen.quant import (SAFE_GLOBALS, BinaryAct, BinaryLinear, HeteroBinaryLinear, IntLinear, Log2Linear,
                         QuantAct, TernaryLinear)

HERE = Path(__file__).resolve().parent
SEED = 0
HIDDEN = 256

# Training hyper-parameters (shared by all networks).
EPOCHS = {"float": 40, "w1a2": 60, "w1a1": 60}
QUANT_EPOCHS = 60  # the models added after w1a2 / w1a1
BATCH = 64
LR = 3e-3
WEIGHT_DECAY = 0.0
ACT_CLIP_INIT = 2.0  # initial clip of the learned 2-bit quantizers (after BatchNorm)


def load_data():
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=360, random_state=0, stratify=y)
    return x_tr, x_te, y_tr, y_te


def make_float() -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(64, HIDDEN),
        nn.BatchNorm1d(HIDDEN),
        nn.ReLU(),
        nn.Linear(HIDDEN, HIDDEN),
        nn.BatchNorm1d(HIDDEN),
        nn.ReLU(),
        nn.Linear(HIDDEN, 10),
    )


def make_w1a2() -> nn.Sequential:
    return nn.Sequential(
        QuantAct(4, clip=1.0),
        IntLinear(64, HIDDEN, bits=8),
        nn.BatchNorm1d(HIDDEN),
        QuantAct(2, clip=ACT_CLIP_INIT, learn_clip=True),
        BinaryLinear(HIDDEN, HIDDEN),
        nn.BatchNorm1d(HIDDEN),
        QuantAct(2, clip=ACT_CLIP_INIT, learn_clip=True),
        IntLinear(HIDDEN, 10, bits=8),
    )


def make_w1a1() -> nn.Sequential:
    return nn.Sequential(
        QuantAct(4, clip=1.0),
        IntLinear(64, HIDDEN, bits=8),
        nn.BatchNorm1d(HIDDEN),
        BinaryAct(),
        BinaryLinear(HIDDEN, HIDDEN),
        nn.BatchNorm1d(HIDDEN),
        BinaryAct(),
        IntLinear(HIDDEN, 10, bits=8),
    )


def _act(bits: int) -> nn.Module:
    """Hidden activation quantizer: bipolar for 1 bit, else a learned-clip QuantAct."""
    return BinaryAct() if bits == 1 else QuantAct(bits, clip=ACT_CLIP_INIT, learn_clip=True)


def make_hidden(hidden: nn.Module, act_bits: int, in_bits: int = 4) -> nn.Sequential:
    """The w1a2 architecture with another hidden layer and hidden activation bits."""
    return nn.Sequential(
        QuantAct(in_bits, clip=1.0),
        IntLinear(64, HIDDEN, bits=8),
        nn.BatchNorm1d(HIDDEN),
        _act(act_bits),
        hidden,
        nn.BatchNorm1d(HIDDEN),
        _act(act_bits),
        IntLinear(HIDDEN, 10, bits=8),
    )


def make_mixed() -> nn.Sequential:
    """Mixed precision, four linear layers and three PE kinds:
    8-bit input -> int8 (mac) -> 2-bit -> binary (addsub) -> 4-bit -> log2 4-bit (shift) -> 4-bit -> int8 (mac)."""
    return nn.Sequential(
        QuantAct(8, clip=1.0),
        IntLinear(64, HIDDEN, bits=8),
        nn.BatchNorm1d(HIDDEN),
        _act(2),
        BinaryLinear(HIDDEN, HIDDEN),
        nn.BatchNorm1d(HIDDEN),
        _act(4),
        Log2Linear(HIDDEN, HIDDEN, bits=4),
        nn.BatchNorm1d(HIDDEN),
        _act(4),
        IntLinear(HIDDEN, 10, bits=8),
    )


BUILDERS = {
    "float": make_float,
    "w1a2": make_w1a2,
    "w1a1": make_w1a1,
    "w1a3": lambda: make_hidden(BinaryLinear(HIDDEN, HIDDEN), 3),
    "w1a4": lambda: make_hidden(BinaryLinear(HIDDEN, HIDDEN), 4),
    "w2a2": lambda: make_hidden(IntLinear(HIDDEN, HIDDEN, bits=2), 2),
    "wta2": lambda: make_hidden(TernaryLinear(HIDDEN, HIDDEN), 2),
    "w4a4": lambda: make_hidden(IntLinear(HIDDEN, HIDDEN, bits=4), 4),
    # an 8-bit input quantizer too: --a 8 asks the input for at least 8 bits
    "w8a8": lambda: make_hidden(IntLinear(HIDDEN, HIDDEN, bits=8), 8, in_bits=8),
    "wlog4a4": lambda: make_hidden(Log2Linear(HIDDEN, HIDDEN, bits=4), 4),
    "wh14a1": lambda: make_hidden(HeteroBinaryLinear(HIDDEN, HIDDEN, avg_bits=1.4), 1),
    "wh14a2": lambda: make_hidden(HeteroBinaryLinear(HIDDEN, HIDDEN, avg_bits=1.4), 2),
    "mixed": make_mixed,
}
for _name in BUILDERS:
    EPOCHS.setdefault(_name, QUANT_EPOCHS)
#: every model, in training (and table) order
MODELS = tuple(BUILDERS)

#: what each model is, for humans (README, results.json)
DESCRIPTIONS = {
    "float": "float baseline (nn.Linear, ReLU)",
    "w1a2": "binary hidden weights, 2-bit activations",
    "w1a1": "binary hidden weights, bipolar activations",
    "w1a3": "binary hidden weights, 3-bit activations",
    "w1a4": "binary hidden weights, 4-bit activations",
    "w2a2": "2-bit (ternary) hidden weights, 2-bit activations",
    "wta2": "ternary hidden weights (TWN thresholds, masked PE), 2-bit activations",
    "w4a4": "4-bit hidden weights, 4-bit activations",
    "w8a8": "8-bit hidden weights, 8-bit activations (and an 8-bit input quantizer)",
    "wlog4a4": "4-bit log2 hidden weights, 4-bit activations",
    "wh14a1": "1.4-bit heterogeneous binarized hidden weights, bipolar activations",
    "wh14a2": "1.4-bit heterogeneous binarized hidden weights, 2-bit activations",
    "mixed": "mixed precision: 8-bit input, int8 / binary / log2-4 / int8 layers, 2- and 4-bit activations",
}


def ir_summary(model: nn.Module) -> dict:
    """Per-layer weight format and realised bits per weight, from the lowered IR."""
    from lbgen.frontend.torch_frontend import lower
    from lbgen.passes.pe import choose_pe

    graph = lower(model)
    layers = [{"name": l.name, "source": l.source, "pe_kind": choose_pe(l), "weights": str(l.wtype),
               "inputs": str(l.itype), "out_x_in": f"{l.mh}x{l.mw}", "bits_avg": round(l.weight_bits_avg, 6)}
              for l in graph.layers]
    hidden = graph.layers[1:-1]
    n = sum(l.mw * l.mh for l in hidden)
    avg = sum(l.weight_bits_avg * l.mw * l.mh for l in hidden) / n if n else None
    return {"layers": layers, "hidden_bits_avg": None if avg is None else round(avg, 6)}


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    pred = model(x).argmax(dim=1)
    return float((pred == y).double().mean())


def train(name: str, x_tr, y_tr, x_te, y_te, log=print) -> tuple[nn.Module, float]:
    torch.manual_seed(SEED)
    return fit(BUILDERS[name](), name, EPOCHS[name], x_tr, y_tr, x_te, y_te, log)


def fit(model: nn.Module, name: str, epochs: int, x_tr, y_tr, x_te, y_te, log=print) -> tuple[nn.Module, float]:
    """Adam with a one-cycle schedule, shuffled batches from a fixed generator;
    returns the model in eval mode and the training seconds (train_cnn.py uses it too)."""
    opt = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    steps_per_epoch = (len(x_tr) + BATCH - 1) // BATCH
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=LR, total_steps=epochs * steps_per_epoch, pct_start=0.15
    )
    gen = torch.Generator().manual_seed(SEED + 1)
    t0 = time.perf_counter()
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(len(x_tr), generator=gen)
        total = 0.0
        for i in range(0, len(x_tr), BATCH):
            idx = perm[i : i + BATCH]
            if len(idx) < 2:  # BatchNorm needs > 1 sample
                continue
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x_tr[idx]), y_tr[idx])
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        if (ep + 1) % 10 == 0 or ep == epochs - 1:
            log(
                f"  [{name}] epoch {ep + 1:3d}/{epochs}  loss {total / len(x_tr):.4f}  "
                f"test acc {accuracy(model, x_te, y_te):.4f}"
            )
    secs = time.perf_counter() - t0
    model.eval()
    return model, secs


def _write_test_set(path: Path, x_te: np.ndarray, y_te: np.ndarray) -> None:
    """np.savez stamps the zip with the time: keep an identical file untouched."""
    if path.exists():
        with np.load(path) as z:
            if set(z.files) == {"x", "y"} and np.array_equal(z["x"], x_te) and z["x"].dtype == x_te.dtype \
                    and np.array_equal(z["y"], y_te) and z["y"].dtype == y_te.dtype:
                return
    np.savez(path, x=x_te, y=y_te)


def _parse_only(text: str | None, models: tuple[str, ...] = MODELS) -> tuple[str, ...]:
    """--only text -> the chosen models in ``models``' order (train_cnn.py passes its own)."""
    if not text:
        return models
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in models]
    if unknown:
        raise SystemExit(f"--only: unknown model(s) {', '.join(unknown)}; choose from {', '.join(models)}")
    return tuple(n for n in models if n in names)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=HERE, help="output directory (default: next to this script)")
    ap.add_argument("--only", metavar="NAMES", default=None,
                    help=f"comma-separated models to train (default: all of {','.join(MODELS)})")
    args = ap.parse_args(argv)
    out: Path = args.out
    names = _parse_only(args.only)
    out.mkdir(parents=True, exist_ok=True)

    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    np.random.seed(SEED)
    torch.manual_seed(SEED)

    x_tr, x_te, y_tr, y_te = load_data()
    _write_test_set(out / "digits_test.npz", x_te, y_te)
    xt_tr, yt_tr = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    xt_te, yt_te = torch.from_numpy(x_te), torch.from_numpy(y_te)
    print(f"digits: {len(x_tr)} train / {len(x_te)} test images")

    results_path = out / "results.json"
    old = json.loads(results_path.read_text()) if results_path.exists() else {}
    results: dict = {
        "dataset": "sklearn.datasets.load_digits, X/16, train_test_split(test_size=360, random_state=0, stratify=y)",
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
        model, secs = train(name, xt_tr, yt_tr, xt_te, yt_te)
        acc = accuracy(model, xt_te, yt_te)
        entry = {"test_accuracy": round(acc, 6), "train_seconds": round(secs, 2), "epochs": EPOCHS[name],
                 "description": DESCRIPTIONS[name]}
        if name != "float":
            path = out / f"digits_{name}.pt"
            torch.save(model.eval(), path)
            entry["file"] = path.name
            # Check: the weights_only load reproduces the accuracy exactly.
            allowed = [*SAFE_GLOBALS, nn.Sequential, nn.BatchNorm1d]
            with torch.serialization.safe_globals(allowed):
                reloaded = torch.load(path, weights_only=True)
            with torch.no_grad():
                same = torch.equal(reloaded(xt_te), model(xt_te))
            acc2 = accuracy(reloaded, xt_te, yt_te)
            assert same and acc2 == acc, (name, acc, acc2)
            entry.update(ir_summary(reloaded))
        results["models"][name] = entry
        print(f"{name}: test accuracy {acc:.4f} ({round(acc * len(x_te))}/{len(x_te)}), {secs:.1f} s")
    secs_all = time.perf_counter() - t_all
    if set(names) == set(MODELS):
        results["train_seconds_total"] = round(secs_all, 2)
    else:  # the sum of the per-model times on record
        results["train_seconds_total"] = round(sum(m["train_seconds"] for m in results["models"].values()), 2)
    results["torch"] = torch.__version__
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"training time {secs_all:.1f} s ({', '.join(names)}); wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
