"""Post-training quantization (``--calib``): a plain float MLP or CNN into lbgen.quant modules.

A float ``nn.Sequential`` of ``Linear``/``Conv2d`` layers with ``BatchNorm``
and ``ReLU``/``ReLU6`` between them (a ``MaxPool2d`` and ``Flatten`` after a
ReLU, a leading ``Flatten`` or ``Unflatten(1, (C, H, W))``) becomes the same
network with an unsigned activation quantizer in front of every layer and
integer weights (a max-pool moves behind the quantizer: it commutes with a
monotone quantizer), which the usual flow then compiles bit-exactly:

* **Ranges** come from a calibration batch: per output channel for the
  weights (signed), per tensor for the activations (unsigned: the input
  features and every ReLU's output), by ``clip`` = ``aciq`` (analytical
  clipping, lbgen.passes.model.clipping), ``minmax`` or ``percentile``. A weight
  range below max |w| clamps the float weights first, so IntLinear's own
  per-channel scale (max |w| / Q) lands on it.
* **Widths**: hidden layers get ``w_bits`` weights and ``a_bits``
  activations; the first and last layer keep ``edge_bits`` weights and the
  input quantizer ``in_bits`` (the usual "first and last layer wider").
* **Bias correction**: quantizing W to W_q shifts each channel's expected
  output by (W - W_q) . E[x] (for a convolution, the mean over positions of
  the conv with W - W_q, borders included). Layer by layer, E[x] is measured on the
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
import torch.nn.functional as F

from .clipping import CLIP_METHODS, clip_value
from ...quant.modules import IntConv2d, IntLinear, QuantAct

ELEMENTWISE = (nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.Dropout, nn.Identity)
RELUS = (nn.ReLU, nn.ReLU6)
#: modules that follow a layer's activation quantizer in the quantized model
AFTER_QUANT = (nn.MaxPool2d, nn.Flatten)


class PTQError(ValueError):
    """A float model or option the post-training quantizer cannot take (names the module)."""


def _flatten(model: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    if isinstance(model, nn.Sequential):
        out = []
        for name, child in model.named_children():
            out.extend(_flatten(child, f"{prefix}.{name}" if prefix else name))
        return out
    return [(prefix or type(model).__name__, model)]


def _segments(model: nn.Module):
    """(leading shape modules, [(path, Linear or Conv2d, element-wise modules after it)]) in
    order; PTQError on anything else."""
    if not isinstance(model, nn.Sequential):
        raise PTQError(f"post-training quantization takes an nn.Sequential, not {type(model).__name__}")
    steps = _flatten(model)
    lead = []
    while steps and isinstance(steps[0][1], (nn.Flatten, nn.Unflatten)):
        lead.append(steps[0][1])
        steps = steps[1:]
    layers = (nn.Linear, nn.Conv2d)
    bad = [f"{p} ({type(m).__name__})" for p, m in steps if not isinstance(m, layers + ELEMENTWISE + AFTER_QUANT)]
    for p, m in steps:
        if isinstance(m, nn.Conv2d) and (m.groups != 1 or tuple(m.dilation) != (1, 1) or isinstance(m.padding, str)
                                         or m.padding_mode != "zeros"):
            bad.append(f"{p} (Conv2d with groups={m.groups}, dilation={m.dilation}, padding={m.padding!r}, "
                       f"padding_mode={m.padding_mode!r}; lbgen takes 1, 1, integers, 'zeros')")
    if bad:
        raise PTQError("post-training quantization supports Linear, Conv2d, BatchNorm1d/2d, ReLU, ReLU6, Dropout, "
                       "Identity, MaxPool2d and Flatten (a leading Flatten or Unflatten too); unsupported: "
                       + "; ".join(bad))
    segs: list[tuple[str, nn.Module, list[nn.Module]]] = []
    for path, m in steps:
        if isinstance(m, layers):
            segs.append((path, m, []))
        elif not segs:
            raise PTQError(f"{path} ({type(m).__name__}) comes before the first Linear or Conv2d")
        else:
            segs[-1][2].append(m)
    if not segs:
        raise PTQError("the model has no Linear or Conv2d layer")
    for path, _, after in segs[:-1]:
        if not any(isinstance(m, RELUS) for m in after):
            raise PTQError(f"layer {path}: needs a ReLU (or ReLU6) before the next layer, since lbgen's hidden "
                           "activations are unsigned")
        tail = [m for m in after if isinstance(m, AFTER_QUANT)]
        if tail and after[-len(tail):] != tail:
            raise PTQError(f"layer {path}: MaxPool2d and Flatten must come after its BatchNorm and ReLU")
    if any(isinstance(m, AFTER_QUANT) for m in segs[-1][2]):
        raise PTQError(f"layer {segs[-1][0]}: the last layer emits logits; nothing may pool or flatten them")
    return lead, segs


def _in_features(lead: list[nn.Module], first: nn.Module) -> int:
    for m in lead:
        if isinstance(m, nn.Unflatten):
            return int(np.prod([int(v) for v in m.unflattened_size]))
    if isinstance(first, nn.Conv2d):
        raise PTQError("a float CNN takes flat calibration vectors through a leading nn.Unflatten(1, (C, H, W))")
    return int(first.in_features)


def _quant_layer(lin: nn.Module, bits: int) -> nn.Module:
    if isinstance(lin, nn.Conv2d):
        return IntConv2d(lin.in_channels, lin.out_channels, lin.kernel_size, lin.stride, lin.padding, bias=True,
                         bits=bits)
    return IntLinear(lin.in_features, lin.out_features, bits=bits, bias=True)


def _apply(lin: nn.Module, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``lin``'s linear map with the weights ``w`` (the float layer's shape), no bias."""
    if isinstance(lin, nn.Conv2d):
        return F.conv2d(h, w, None, lin.stride, lin.padding)
    return F.linear(h, w)


def quantize_float_model(model: nn.Module, calib: np.ndarray, w_bits: int = 4, a_bits: int = 4,
                         clip: str = "aciq", bias_correction: bool = True, edge_bits: int = 8,
                         in_bits: int = 8, percentile: float = 99.99) -> nn.Sequential:
    """The float ``model`` as lbgen.quant modules, calibrated on ``calib`` (N, in_features)."""
    for name, bits, lo in (("w_bits", w_bits, 2), ("edge_bits", edge_bits, 2), ("a_bits", a_bits, 1),
                           ("in_bits", in_bits, 1)):
        if isinstance(bits, bool) or not isinstance(bits, int) or not lo <= bits <= 8:
            raise PTQError(f"{name} {bits!r}: expected an integer in {lo}..8")
    if clip not in CLIP_METHODS:
        raise PTQError(f"clip {clip!r}: expected one of {', '.join(CLIP_METHODS)}")
    lead, segs = _segments(model)
    n_in = _in_features(lead, segs[0][1])
    x = np.asarray(calib, dtype=np.float32)
    if x.ndim != 2 or len(x) < 2 or x.shape[1] != n_in or not np.all(np.isfinite(x)):
        raise PTQError(f"calibration data of shape {x.shape}: expected (N >= 2, {n_in}) finite values")
    if x.min() < 0:
        raise PTQError("calibration inputs have negative values; lbgen's input quantizer is unsigned "
                       "(shift or scale the features to >= 0)")
    layers: list[nn.Module] = [QuantAct(in_bits, clip=_act_clip(x, in_bits, clip, percentile))]
    layers += [copy.deepcopy(m) for m in lead]
    n = len(segs)
    with torch.no_grad():
        h = layers[0](torch.from_numpy(x))            # the calibration batch as the next layer sees it
        for m in layers[1:]:
            h = m(h)
        for i, (_, lin, after) in enumerate(segs):
            bits = edge_bits if i in (0, n - 1) else w_bits
            q = _quant_layer(lin, bits)
            w = lin.weight.detach().double()
            rows = w.reshape(w.shape[0], -1).numpy()
            alpha = np.array([clip_value(row, bits, clip, signed=True, percentile=percentile) for row in rows])
            alpha = np.where(alpha > 0, alpha, np.abs(rows).max(axis=1))
            q.weight.copy_(torch.from_numpy(np.clip(rows, -alpha[:, None], alpha[:, None])).float())
            bias = lin.bias.detach().double() if lin.bias is not None else torch.zeros(w.shape[0],
                                                                                      dtype=torch.float64)
            if bias_correction:
                w_int, w_scale = q.quant_weight()
                w_hat = (w_int.double() * w_scale.double()[:, None]).reshape(w.shape)
                shift = _apply(lin, h.double(), w - w_hat)
                bias = bias + shift.transpose(0, 1).reshape(w.shape[0], -1).mean(dim=1)
            q.bias.copy_(bias.float())
            step = [q.eval()] + [copy.deepcopy(m).eval() for m in after if not isinstance(m, AFTER_QUANT)]
            for m in step:
                h = m(h)
            layers.extend(step)
            if i < n - 1:
                act = QuantAct(a_bits, clip=_act_clip(h.numpy(), a_bits, clip, percentile))
                h = act(h)
                layers.append(act)
                for m in after:
                    if isinstance(m, AFTER_QUANT):
                        m = copy.deepcopy(m).eval()
                        h = m(h)
                        layers.append(m)
    return nn.Sequential(*layers).eval()


def _act_clip(values: np.ndarray, bits: int, method: str, percentile: float) -> float:
    c = clip_value(np.maximum(values, 0.0), bits, method, signed=False, percentile=percentile)
    return c if c > 0 else 1.0
