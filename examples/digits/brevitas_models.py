#!/usr/bin/env python3
"""Brevitas models of the digits MLP, as a Brevitas user writes them.

Brevitas modules do not survive ``torch.save(model)``, so these ship as
state_dicts plus the factories below, which ``lbgen emit`` imports when told
to (``--arch``):

    lbgen emit examples/digits/digits_brevitas_w1a2.pt \\
        --arch examples/digits/brevitas_models.py:mlp_w1a2 --w 1 --a 2 -o out/

    .venv/bin/python examples/digits/brevitas_models.py     # retrain both

``mlp_w1a2``: signed 8-bit input, 8-bit first layer, binary hidden layer,
2-bit ReLU activations, 8-bit output layer. ``mlp_w4a4``: signed 8-bit input,
per-channel 8/4/8-bit weights, a 4-bit ReLU and a signed 4-bit HardTanh
activation (a zero point lbgen folds away).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import torch.nn as nn

HERE = Path(__file__).resolve().parent
HIDDEN = 64
EPOCHS = 40


def mlp_w1a2() -> nn.Sequential:
    import brevitas.nn as qnn
    from brevitas.quant import SignedBinaryWeightPerTensorConst

    return nn.Sequential(
        qnn.QuantIdentity(bit_width=8, return_quant_tensor=True),
        qnn.QuantLinear(64, HIDDEN, bias=True, weight_bit_width=8),
        nn.BatchNorm1d(HIDDEN),
        qnn.QuantReLU(bit_width=2, return_quant_tensor=True),
        qnn.QuantLinear(HIDDEN, HIDDEN, bias=False, weight_quant=SignedBinaryWeightPerTensorConst),
        nn.BatchNorm1d(HIDDEN),
        qnn.QuantReLU(bit_width=2, return_quant_tensor=True),
        qnn.QuantLinear(HIDDEN, 10, bias=True, weight_bit_width=8),
    )


def mlp_w4a4() -> nn.Sequential:
    import brevitas.nn as qnn

    return nn.Sequential(
        qnn.QuantIdentity(bit_width=8, return_quant_tensor=True),
        qnn.QuantLinear(64, HIDDEN, bias=True, weight_bit_width=8, weight_scaling_per_output_channel=True),
        nn.BatchNorm1d(HIDDEN),
        qnn.QuantReLU(bit_width=4, return_quant_tensor=True),
        qnn.QuantLinear(HIDDEN, HIDDEN, bias=True, weight_bit_width=4, weight_scaling_per_output_channel=True),
        nn.BatchNorm1d(HIDDEN),
        qnn.QuantHardTanh(bit_width=4, min_val=-2.0, max_val=2.0, return_quant_tensor=True),
        qnn.QuantLinear(HIDDEN, 10, bias=True, weight_bit_width=8, weight_scaling_per_output_channel=True),
    )


FACTORIES = {"w1a2": mlp_w1a2, "w4a4": mlp_w4a4}


def main() -> int:
    import torch

    sys.path.insert(0, str(HERE))
    from train import SEED, accuracy, fit, load_data  # noqa: E402  (this folder's training loop)

    warnings.simplefilter("ignore")
    torch.set_num_threads(2)
    x_tr, x_te, y_tr, y_te = (torch.from_numpy(a) for a in load_data())
    for name, factory in FACTORIES.items():
        torch.manual_seed(SEED)
        model, secs = fit(factory(), f"brevitas_{name}", EPOCHS, x_tr, y_tr, x_te, y_te)
        acc = accuracy(model, x_te, y_te)
        torch.save(model.state_dict(), HERE / f"digits_brevitas_{name}.pt")
        print(f"digits_brevitas_{name}.pt: test accuracy {acc:.4f}, trained in {secs:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
