"""Post-training quantization of a plain float MLP into lbgen.quant modules.

A float ``nn.Sequential`` of ``Linear`` layers with ``BatchNorm1d`` and
``ReLU``/``ReLU6`` between them becomes the same network with an unsigned
activation quantizer in front of every ``Linear`` and integer weights,
which the usual flow then compiles bit-exactly:

* **Ranges** come from a calibration batch: per output channel for the
  weights (signed), per tensor for the activations (unsigned: the input
  features and every ReLU's output), by ``clip`` = ``aciq`` (analytical
  clipping, lbgen.quant.clipping), ``minmax`` or ``percentile``. A weight
  range below max |w| clamps the float weights first, so IntLinear's own
  per-channel scale (max |w| / Q) lands on it.
* **Widths**: hidden layers get ``w_bits`` weights and ``a_bits``
  activations; the first and last layer keep ``edge_bits`` weights and the
  input quantizer ``in_bits`` (the usual "first and last layer wider").
* **Bias correction**: quantizing W to W_q shifts each channel's expected
  output by (W - W_q) . E[x]. Layer by layer, E[x] is measured on the
  calibration batch as the already-quantized layers before it deliver it,
  and the shift goes back into the bias, where the flow folds it into the
  integer thresholds at no cost. (Banner et al. also rescale each channel's
  quantized weights to the float weights' spread; a per-channel factor
  would need a scale IntLinear does not take, so only the mean is
  corrected here.)

Layers are converted in order and each activation range is calibrated on
what the quantized layers before it produce, so errors do not compound
unseen.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn as nn

from .clipping import CLIP_METHODS, clip_value
from .modules import IntLinear, QuantAct

ELEMENTWISE = (nn.BatchNorm1d, nn.ReLU, nn.ReLU6, nn.Dropout, nn.Identity)
RELUS = (nn.ReLU, nn.ReLU6)


class PTQError(ValueError):
    """A float model or option the post-training quantizer cannot take (names the module)."""


def _flatten(model: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    if isinstance(model, nn.Sequential):
        out = []
        for name, child in model.named_children():
            out.extend(_flatten(child, f"{prefix}.{name}" if prefix else name))
        return out
    return [(prefix or type(model).__name__, model)]


def _segments(model: nn.Module) -> list[tuple[str, nn.Linear, list[nn.Module]]]:
    """(path, Linear, element-wise modules after it) in order; PTQError on anything else."""
    if not isinstance(model, nn.Sequential):
        raise PTQError(f"post-training quantization takes an nn.Sequential MLP, not {type(model).__name__}")
    steps = _flatten(model)
    while steps and isinstance(steps[0][1], nn.Flatten):
        steps = steps[1:]
    bad = [f"{p} ({type(m).__name__})" for p, m in steps if not isinstance(m, (nn.Linear,) + ELEMENTWISE)]
    if bad:
        raise PTQError("post-training quantization supports Linear, BatchNorm1d, ReLU, ReLU6, Dropout and "
                       "Identity (a leading Flatten too); unsupported: " + "; ".join(bad))
    segs: list[tuple[str, nn.Linear, list[nn.Module]]] = []
    for path, m in steps:
        if isinstance(m, nn.Linear):
            segs.append((path, m, []))
        elif not segs:
            raise PTQError(f"{path} ({type(m).__name__}) comes before the first Linear")
        else:
            segs[-1][2].append(m)
    if not segs:
        raise PTQError("the model has no Linear layer")
    for path, _, after in segs[:-1]:
        if not any(isinstance(m, RELUS) for m in after):
            raise PTQError(f"layer {path}: needs a ReLU (or ReLU6) before the next layer, since lbgen's hidden "
                           "activations are unsigned")
    return segs


def quantize_float_model(model: nn.Module, calib: np.ndarray, w_bits: int = 4, a_bits: int = 4,
                         clip: str = "aciq", bias_correction: bool = True, edge_bits: int = 8,
                         in_bits: int = 8, percentile: float = 99.99) -> nn.Sequential:
    """The float MLP ``model`` as lbgen.quant modules, calibrated on ``calib`` (N, in_features)."""
    for name, bits, lo in (("w_bits", w_bits, 2), ("edge_bits", edge_bits, 2), ("a_bits", a_bits, 1),
                           ("in_bits", in_bits, 1)):
        if isinstance(bits, bool) or not isinstance(bits, int) or not lo <= bits <= 8:
            raise PTQError(f"{name} {bits!r}: expected an integer in {lo}..8")
    if clip not in CLIP_METHODS:
        raise PTQError(f"clip {clip!r}: expected one of {', '.join(CLIP_METHODS)}")
    segs = _segments(model)
    x = np.asarray(calib, dtype=np.float32)
    if x.ndim != 2 or len(x) < 2 or x.shape[1] != segs[0][1].in_features or not np.all(np.isfinite(x)):
        raise PTQError(f"calibration data of shape {x.shape}: expected (N >= 2, {segs[0][1].in_features}) "
                       "finite values")
    if x.min() < 0:
        raise PTQError("calibration inputs have negative values; lbgen's input quantizer is unsigned "
                       "(shift or scale the features to >= 0)")
    layers: list[nn.Module] = [QuantAct(in_bits, clip=_act_clip(x, in_bits, clip, percentile))]
    n = len(segs)
    with torch.no_grad():
        h = layers[0](torch.from_numpy(x))            # the calibration batch as the next layer sees it
        for i, (_, lin, after) in enumerate(segs):
            bits = edge_bits if i in (0, n - 1) else w_bits
            q = IntLinear(lin.in_features, lin.out_features, bits=bits, bias=True)
            w = lin.weight.detach().double().numpy()
            alpha = np.array([clip_value(row, bits, clip, signed=True, percentile=percentile) for row in w])
            alpha = np.where(alpha > 0, alpha, np.abs(w).max(axis=1))
            q.weight.copy_(torch.from_numpy(np.clip(w, -alpha[:, None], alpha[:, None])).float())
            bias = lin.bias.detach().double() if lin.bias is not None else torch.zeros(lin.out_features,
                                                                                      dtype=torch.float64)
            if bias_correction:
                w_int, w_scale = q.quant_weight()
                w_hat = w_int.double() * w_scale.double()[:, None]
                bias = bias + (lin.weight.detach().double() - w_hat) @ h.double().mean(dim=0)
            q.bias.copy_(bias.float())
            step = [q.eval()] + [copy.deepcopy(m).eval() for m in after]
            for m in step:
                h = m(h)
            layers.extend(step)
            if i < n - 1:
                act = QuantAct(a_bits, clip=_act_clip(h.numpy(), a_bits, clip, percentile))
                h = act(h)
                layers.append(act)
    return nn.Sequential(*layers).eval()


def _act_clip(values: np.ndarray, bits: int, method: str, percentile: float) -> float:
    c = clip_value(np.maximum(values, 0.0), bits, method, signed=False, percentile=percentile)
    return c if c > 0 else 1.0
