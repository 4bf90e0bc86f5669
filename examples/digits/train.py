#!/usr/bin/env python3
"""Train the shipped digits models (scikit-learn's bundled 8x8 digits, no download).

    .venv/bin/python examples/digits/train.py

Writes next to this file:
  digits_w1a2.pt, digits_w1a1.pt  -- quantized nn.Sequential models, eval mode,
                                     saved with torch.save(model)
  digits_test.npz                 -- the 360 test images: x (360,64) float32, y (360,) int64
  results.json                    -- test accuracies and training time

Deterministic on CPU (fixed seeds, 2 threads).
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

from lbgen.quant import SAFE_GLOBALS, BinaryAct, BinaryLinear, IntLinear, QuantAct

HERE = Path(__file__).resolve().parent
SEED = 0
HIDDEN = 256

# Training hyper-parameters (shared by all three networks).
EPOCHS = {"float": 40, "w1a2": 60, "w1a1": 60}
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


BUILDERS = {"float": make_float, "w1a2": make_w1a2, "w1a1": make_w1a1}


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    pred = model(x).argmax(dim=1)
    return float((pred == y).double().mean())


def train(name: str, x_tr, y_tr, x_te, y_te, log=print) -> tuple[nn.Module, float]:
    torch.manual_seed(SEED)
    model = BUILDERS[name]()
    epochs = EPOCHS[name]
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=HERE, help="output directory (default: next to this script)")
    args = ap.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    np.random.seed(SEED)
    torch.manual_seed(SEED)

    x_tr, x_te, y_tr, y_te = load_data()
    np.savez(out / "digits_test.npz", x=x_te, y=y_te)
    xt_tr, yt_tr = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    xt_te, yt_te = torch.from_numpy(x_te), torch.from_numpy(y_te)
    print(f"digits: {len(x_tr)} train / {len(x_te)} test images")

    results: dict = {
        "dataset": "sklearn.datasets.load_digits, X/16, train_test_split(test_size=360, random_state=0, stratify=y)",
        "n_train": int(len(x_tr)),
        "n_test": int(len(x_te)),
        "models": {},
    }
    t_all = time.perf_counter()
    for name in ("float", "w1a2", "w1a1"):
        model, secs = train(name, xt_tr, yt_tr, xt_te, yt_te)
        acc = accuracy(model, xt_te, yt_te)
        entry = {"test_accuracy": round(acc, 6), "train_seconds": round(secs, 2), "epochs": EPOCHS[name]}
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
        results["models"][name] = entry
        print(f"{name}: test accuracy {acc:.4f} ({round(acc * len(x_te))}/{len(x_te)}), {secs:.1f} s")
    results["train_seconds_total"] = round(time.perf_counter() - t_all, 2)
    results["torch"] = torch.__version__
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"total training time {results['train_seconds_total']:.1f} s; wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
