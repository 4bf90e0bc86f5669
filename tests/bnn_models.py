"""FINN's reference networks (brevitas_examples.bnn_pynq) with random statistics, and
inputs for them: shared by tests/test_bnn_pynq.py and bench/bnn_zoo.py (test helpers)."""

from __future__ import annotations

import warnings

import numpy as np
import torch


def bnn_model(name: str, seed: int = 0):
    """The reference network with random weights and random batch-norm / TensorNorm statistics."""
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, _ = model_with_cfg(name, pretrained=False)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)) or type(m).__name__ == "TensorNorm":
                c = m.running_mean.numel()
                m.running_mean.copy_(torch.randn(c, generator=g) * 3)
                m.running_var.copy_(torch.rand(c, generator=g) * 4 + 0.05)
                m.weight.copy_(torch.randn(c, generator=g))      # gains of both signs
                m.bias.copy_(torch.randn(c, generator=g))
    return model.eval()


def input_shape(name: str) -> tuple[int, int, int]:
    return (3, 32, 32) if name.startswith("cnv") else (1, 28, 28)


def raw_inputs(name: str, n: int = 32, seed: int = 0) -> np.ndarray:
    """Inputs spanning the networks' [0, 1] range: uniform, plus frames of exact 0, 1 and 0.5."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, size=(n, *input_shape(name))).astype(np.float32)
    x[0], x[1], x[2] = 0.0, 1.0, 0.5
    x[3].reshape(-1)[::2] = 0.0
    x[3].reshape(-1)[1::2] = 1.0
    return x


