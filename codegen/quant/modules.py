"""Quantization-aware-training modules whose forward is *exactly* an integer
model times per-tensor / per-channel scales.

The hardware compiler folds everything between two activation quantizers
(linear epilogue, BatchNorm, ...) into integer thresholds by evaluating these
modules on synthetic accumulator values, and then requires torch's integer
activation levels to match a numpy golden model bit for bit.  Every op sequence
below is therefore part of the contract and must not be "simplified":

* ``QuantAct.step()``   -- ``clip / L`` snapped to <= 16 significant bits, so
  that ``level * step`` is exact in float32 for every level < 256.
* ``QuantAct.levels(x)`` -- ``round(clamp(x, 0, L*step) / step)`` (half-to-even).
* ``QuantLinearBase.forward`` -- ``F.linear`` in float64 on an input that is an
  exact multiple of a 16-bit step and integer weights: the sum is exact and
  independent of summation order; then ``epilogue`` does
  ``(s * w_scale.double() + bias.double()).float()``.

Straight-through estimators are written as ``value + (t - t.detach())`` where
``t`` is the surrogate whose gradient we want.  ``t - t.detach()`` is exactly
zero for finite ``t``, so the forward value is exactly ``value`` in training
mode as well.

Module state is deliberately plain (tensors, Parameters, buffers, ints, floats,
bools, strings) so that ``torch.save(model)`` can be read back with
``torch.load(path, weights_only=True)`` after
``torch.serialization.add_safe_globals([*SAFE_GLOBALS, <torch.nn classes>])``.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "STEP_MANTISSA_BITS",
    "SCALE_MIN",
    "snap_step",
    "QuantAct",
    "BinaryAct",
    "QuantLinearBase",
    "BinaryLinear",
    "IntLinear",
]

#: Number of significant mantissa bits kept in an activation step.
STEP_MANTISSA_BITS = 16

#: Lower bound for per-channel weight scales (guards all-zero rows).
SCALE_MIN = 1e-12

#: Lower bound for a learned activation clip (keeps the step positive).
CLIP_MIN = 1e-6


def snap_step(s: torch.Tensor) -> torch.Tensor:
    """Round a positive float32 step to at most ``STEP_MANTISSA_BITS``
    significant bits: ``m, e = frexp(s); ldexp(round(m * 2**16), e - 16)``.

    Computed in float64 (all intermediate values are exact) and cast back to
    float32, which is exact as well since the result has <= 17 significant
    bits (17 only when rounding carries to the next power of two).  No gradient
    flows through this function; use ``s + (snap_step(s) - s).detach()``.
    """
    s64 = s.detach().to(torch.float64)
    m, e = torch.frexp(s64)
    r = torch.round(m * float(2**STEP_MANTISSA_BITS))
    snapped = r * torch.exp2((e - STEP_MANTISSA_BITS).to(torch.float64))
    return snapped.to(torch.float32)


class QuantAct(nn.Module):
    """k-bit unsigned activation quantizer on ``[0, clip]``.

    ``L = 2**bits - 1`` levels above zero, ``step = snap(clip / L)``,
    ``levels(x) = round(clamp(x, 0, L*step) / step)``,
    ``forward(x) = levels(x) * step``.

    Training uses a straight-through estimator: gradient 1 for
    ``0 <= x <= L*step`` and 0 outside.  With ``learn_clip=True`` the clip is a
    Parameter and receives the PACT gradient (the sum of the upstream gradient
    over inputs above ``L*step``), passed straight through the step snapping.

    Inputs are expected to be float32 (the golden model is float32).
    """

    def __init__(self, bits: int, clip: float = 1.0, learn_clip: bool = False):
        super().__init__()
        if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 8:
            raise ValueError(f"QuantAct: bits must be an int in 1..8, got {bits!r}")
        clip = float(clip)
        if not (math.isfinite(clip) and clip > 0.0):
            raise ValueError(f"QuantAct: clip must be a positive finite number, got {clip!r}")
        self.bits = int(bits)
        self.signed = False
        self.kind = "uint"
        self.learn_clip = bool(learn_clip)
        self.n_levels = 2**self.bits - 1  # L
        clip_t = torch.tensor(clip, dtype=torch.float32)
        if self.learn_clip:
            self.clip = nn.Parameter(clip_t)
        else:
            self.register_buffer("clip", clip_t)

    def step(self) -> torch.Tensor:
        """0-dim float32 step (snapped to <= 16 significant bits)."""
        clip = self.clip
        if self.learn_clip:
            clip = torch.clamp(clip, min=CLIP_MIN)
        s = clip / self.n_levels
        return s + (snap_step(s) - s).detach()

    def _levels(self, x: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        step = step.detach()
        upper = self.n_levels * step
        return torch.round(torch.clamp(x, torch.zeros_like(upper), upper) / step)

    def levels(self, x: torch.Tensor) -> torch.Tensor:
        """Integer activation levels (as float) in ``0..L``."""
        return self._levels(x, self.step())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        step = self.step()
        q = self._levels(x, step) * step.detach()
        if not (self.training and torch.is_grad_enabled()):
            return q
        # STE: clamp's autograd gives d/dx = 1 on [0, upper] and, for a learned
        # clip, d/dupper = 1 where x > upper (PACT); upper = L*step and the
        # step snapping is straight-through, so d/dclip = sum over x > upper.
        upper = self.n_levels * step
        xc = torch.clamp(x, torch.zeros_like(upper), upper)
        return q + (xc - xc.detach())

    def extra_repr(self) -> str:
        return f"bits={self.bits}, clip={float(self.clip.detach()):.6g}, learn_clip={self.learn_clip}"


class BinaryAct(nn.Module):
    """Bipolar activation: ``+1`` where ``x >= 0`` (zero maps to +1), else ``-1``.

    STE with the hardtanh gradient: 1 where ``|x| <= 1``, else 0.
    ``levels(x)`` is the bit ``b = (v + 1) / 2``.
    """

    def __init__(self):
        super().__init__()
        self.bits = 1
        self.signed = True
        self.kind = "bipolar"

    def step(self) -> torch.Tensor:
        return torch.tensor(1.0, dtype=torch.float32)

    def levels(self, x: torch.Tensor) -> torch.Tensor:
        return (x >= 0).to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = torch.where(x >= 0, 1.0, -1.0).to(x.dtype)
        if not (self.training and torch.is_grad_enabled()):
            return v
        mask = (x.detach().abs() <= 1).to(x.dtype)
        return v + (x - x.detach()) * mask


class QuantLinearBase(nn.Module):
    """Quantized linear layer: ``y = (x @ w_int.T) * w_scale + bias``.

    Subclasses implement :meth:`quant_weight`.  The forward pass computes the
    integer dot product in float64 (exact for inputs that are multiples of a
    16-bit activation step, independent of summation order) and then applies
    :meth:`epilogue`.
    """

    weight_kind: str = ""
    weight_bits: int = 0

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.weight = nn.Parameter(torch.empty(self.out_features, self.in_features))
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_features))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Same initialisation as nn.Linear.
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
            nn.init.uniform_(self.bias, -bound, bound)

    def quant_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(w_int, w_scale)``: float32 integer-valued weights
        ``(out, in)`` and positive float32 per-output-channel scales ``(out,)``."""
        raise NotImplementedError

    def epilogue(self, s: torch.Tensor, w_scale: torch.Tensor | None = None) -> torch.Tensor:
        """``s``: float64 ``(N, out)`` = exact integer dot product times the
        input step.  Returns ``(s * w_scale.double() + bias.double()).float()``
        (without bias: ``(s * w_scale.double()).float()``).  ``w_scale``
        defaults to ``self.quant_weight()[1]``."""
        if w_scale is None:
            _, w_scale = self.quant_weight()
        y = s * w_scale.double()
        if self.bias is not None:
            y = y + self.bias.double()
        return y.float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w_int, w_scale = self.quant_weight()
        s = F.linear(x.double(), w_int.double())
        return self.epilogue(s, w_scale)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, weight_kind={self.weight_kind!r}, "
            f"weight_bits={self.weight_bits}"
        )


class BinaryLinear(QuantLinearBase):
    """Binary (bipolar) weights: ``w_int = +1`` where latent ``w >= 0`` else
    ``-1`` (STE: gradient passed where ``|w| <= 1``), per-output-channel
    ``w_scale = mean(|w_row|)`` (XNOR-Net alpha)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__(in_features, out_features, bias)
        self.weight_kind = "bipolar"
        self.weight_bits = 1

    def quant_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.weight
        w_scale = torch.clamp(w.abs().mean(dim=1), min=SCALE_MIN)
        v = torch.where(w.detach() >= 0, 1.0, -1.0).to(torch.float32)
        if self.training and torch.is_grad_enabled():
            mask = (w.detach().abs() <= 1).to(w.dtype)
            v = v + (w - w.detach()) * mask
        return v, w_scale


class IntLinear(QuantLinearBase):
    """Signed ``bits``-bit weights, symmetric narrow range ``[-Q, Q]`` with
    ``Q = 2**(bits-1) - 1``; per-output-channel ``scale = max|w_row| / Q``;
    ``w_int = clamp(round(w / scale), -Q, Q)`` (STE on ``w / scale``)."""

    def __init__(self, in_features: int, out_features: int, bits: int = 8, bias: bool = True):
        if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 8:
            raise ValueError(f"IntLinear: bits must be an int in 2..8, got {bits!r}")
        super().__init__(in_features, out_features, bias)
        self.weight_kind = "int"
        self.weight_bits = int(bits)
        self.q_max = 2 ** (self.weight_bits - 1) - 1  # Q

    def quant_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.weight
        q = self.q_max
        w_scale = torch.clamp(w.abs().amax(dim=1) / q, min=SCALE_MIN)
        u = w / w_scale[:, None]
        r = torch.clamp(torch.round(u.detach()), -q, q)
        if self.training and torch.is_grad_enabled():
            r = r + (u - u.detach())
        return r, w_scale
