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
  ``(s * w_scale.double() + bias.double()).float()``.  "Exact" needs every
  partial sum of ``level * w_int`` below ``2**37`` in magnitude (times a
  16-bit step mantissa it stays within float64's 53 bits):
  ``sum|w_int| * max_level < 2**37`` per output channel, which every format
  here meets except log2 weights of 6 bits (``|w_int|`` up to ``2**30``); the
  frontend checks the bound (:data:`EXACT_ACC_LIMIT`).
* ``QuantConv2dMixin.forward`` (``BinaryConv2d``, ``IntConv2d``,
  ``Log2Conv2d``, ``HeteroBinaryConv2d``, ``TernaryConv2d``) -- each conv class subclasses its
  linear counterpart (2-d weight ``(out, in*kh*kw)``, torch's ``(c, ky, kx)``
  order) and runs ``F.conv2d`` in float64 on the reshaped integer kernel, then
  the same epilogue along the channel dimension: exact under the same bound,
  the sum running over the receptive field.  Padding is zero *in value* (for a
  bipolar input: 0, not -1).
* ``Log2Linear.quant_weight`` -- log-domain rounding decided exactly
  (``frexp`` and a float64 square), no ``log2`` call whose last ulp could
  depend on the platform.
* ``HeteroBinaryLinear.quant_weight`` -- masks: the n largest residuals, ties
  to the lower index (as a stable descending sort would pick them), plane
  scales rounded to integers ``k_i`` (multiples of ``a_0 / 2**F``), so the
  integer weights ``sum_i k_i * (2 s_i - 1)`` are exact and the per-channel
  float scale ``s_c * a_0 / 2**F`` is the only float.

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

import contextlib
import contextvars
import math
from typing import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..precision import EXACT_ACC_LIMIT, HETERO_DIST_TOL, HETERO_MAX_PLANES, check_hetero_dist, default_hetero_dist

__all__ = [
    "STEP_MANTISSA_BITS",
    "SCALE_MIN",
    "snap_step",
    "QuantAct",
    "BinaryAct",
    "QuantLinearBase",
    "BinaryLinear",
    "IntLinear",
    "Log2Linear",
    "HeteroBinaryLinear",
    "TernaryLinear",
    "QuantConv2dMixin",
    "BinaryConv2d",
    "IntConv2d",
    "Log2Conv2d",
    "HeteroBinaryConv2d",
    "TernaryConv2d",
    "HETERO_MAX_PLANES",
    "HETERO_DIST_TOL",
    "EXACT_ACC_LIMIT",
    "default_hetero_dist",
    "check_hetero_dist",
]

#: Number of significant mantissa bits kept in an activation step.
STEP_MANTISSA_BITS = 16

#: Lower bound for per-channel weight scales (guards all-zero rows).
SCALE_MIN = 1e-12

#: Lower bound for a learned activation clip (keeps the step positive).
CLIP_MIN = 1e-6





_FLOAT64_OUTPUTS = contextvars.ContextVar("lbgen_quant_float64_outputs", default=False)


@contextlib.contextmanager
def float64_outputs() -> Iterator[None]:
    """Inside: the linear and conv layers skip their final rounding to float32 and
    return float64, for a model copy run in float64 (``.double()``), which is how
    ``lbgen emit`` recovers the output layer's accumulators exactly. Outside, the
    contract's float32 output, always."""
    token = _FLOAT64_OUTPUTS.set(True)
    try:
        yield
    finally:
        _FLOAT64_OUTPUTS.reset(token)


def _out_dtype() -> torch.dtype:
    return torch.float64 if _FLOAT64_OUTPUTS.get() else torch.float32

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

    def epilogue(self, s: torch.Tensor, w_scale: torch.Tensor | None = None,
                 out_dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``s``: float64 ``(N, out)`` = exact integer dot product times the
        input step.  Returns ``(s * w_scale.double() + bias.double()).float()``
        (without bias: ``(s * w_scale.double()).float()``).  ``w_scale``
        defaults to ``self.quant_weight()[1]``.  ``out_dtype`` float64 skips
        the final rounding to float32 (:func:`float64_outputs`)."""
        if w_scale is None:
            _, w_scale = self.quant_weight()
        y = s * w_scale.double()
        if self.bias is not None:
            y = y + self.bias.double()
        return y.to(out_dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w_int, w_scale = self.quant_weight()
        s = F.linear(x.double(), w_int.double())
        return self.epilogue(s, w_scale, _out_dtype())

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
            raise ValueError(f"{type(self).__name__}: bits must be an int in 2..8, got {bits!r}")
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


class TernaryLinear(QuantLinearBase):
    """Ternary weights {-1, 0, +1} (TWN: Li & Liu, "Ternary weight networks").

    Per output channel c, with the latent weights ``w_c``: the threshold
    ``delta_c = 0.7 * mean|w_c|`` (TWN's approximation of the threshold that
    minimises ``|w - alpha * w_int|^2`` for roughly normal weights),
    ``w_int = sign(w)`` where ``|w| > delta_c`` else 0, and ``w_scale =
    alpha_c = mean |w|`` over the kept weights (the optimal scale for those
    codes; ``SCALE_MIN`` for a channel with none). Only ``w_int`` reaches the
    hardware, in the IR's ``DType("ternary", 2)``; ``alpha`` is a float
    scale like any other.

    Straight-through estimator: ``d w_int / d w = 1 / w_scale`` (so the
    effective weight ``w_int * w_scale`` passes the gradient unchanged, as
    in TWN); ``alpha`` gets its own gradient through the kept ``|w|``.
    """

    #: delta_c = DELTA_FACTOR * mean|w_c|
    DELTA_FACTOR = 0.7

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__(in_features, out_features, bias)
        self.weight_kind = "ternary"
        self.weight_bits = 2

    def quant_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.weight
        mag = w.abs()
        delta = self.DELTA_FACTOR * mag.detach().mean(dim=1, keepdim=True)
        keep = mag.detach() > delta
        kept = keep.sum(dim=1).clamp(min=1).to(w.dtype)
        w_scale = torch.clamp((mag * keep).sum(dim=1) / kept, min=SCALE_MIN)
        r = torch.where(keep, torch.where(w.detach() > 0, 1.0, -1.0), 0.0).to(torch.float32)
        if self.training and torch.is_grad_enabled():
            u = w / w_scale[:, None]
            r = r + (u - u.detach())
        return r, w_scale


class ChannelBitsLinear(IntLinear):
    """:class:`IntLinear` whose output channels have their own bit widths.

    Channel c keeps ``channel_bits[c]`` bits (2..``bits``): ``Q_c = 2**(b_c-1) - 1``
    levels each side of zero and its own scale ``max|w_c| / Q_c``, so a wide
    channel keeps its resolution while a narrow one spends few levels. The
    stored width ``weight_bits`` stays ``bits`` (the engine's multiplier); a
    Huffman code over the weight stream makes the narrow channels cheap in
    memory. Built by :func:`lbgen.passes.model.bits_budget.allocate_channel_bits` (per-channel bit
    allocation under an average budget, as in Banner, Nahshan and Soudry's
    4-bit post-training quantization)."""

    def __init__(self, in_features: int, out_features: int, bits: int = 8, bias: bool = True,
                 channel_bits=None):
        super().__init__(in_features, out_features, bits=bits, bias=bias)
        cb = (torch.full((self.out_features,), self.weight_bits, dtype=torch.int64) if channel_bits is None
              else torch.as_tensor(channel_bits, dtype=torch.int64).clone())
        if tuple(cb.shape) != (self.out_features,) or int(cb.min()) < 2 or int(cb.max()) > self.weight_bits:
            raise ValueError(f"{type(self).__name__}: channel_bits must be {self.out_features} widths in "
                             f"2..{self.weight_bits}")
        self.register_buffer("channel_bits", cb)

    def quant_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.weight
        q = (torch.pow(2, self.channel_bits - 1) - 1).to(w.dtype)       # Q_c per channel
        w_scale = torch.clamp(w.abs().amax(dim=1) / q, min=SCALE_MIN)
        u = w / w_scale[:, None]
        r = torch.maximum(torch.minimum(torch.round(u.detach()), q[:, None]), -q[:, None])
        if self.training and torch.is_grad_enabled():
            r = r + (u - u.detach())
        return r, w_scale

    def extra_repr(self) -> str:
        widths, counts = torch.unique(self.channel_bits, return_counts=True)
        mix = ", ".join(f"{int(c)}x{int(b)}" for b, c in zip(widths, counts))
        return super().extra_repr() + f", channel_bits=[{mix}]"


class Log2Linear(QuantLinearBase):
    """Power-of-two weights (Miyashita, Lee & Murmann 2016, "Convolutional
    neural networks using logarithmic data representation"): ``w = ±2^e`` or 0.

    ``bits`` = 1 sign bit + an exponent field of ``bits - 1`` bits (2..6 bits
    in all), the format ``DType("log2", bits)`` of the IR: the field holds the
    zero code and ``E = 2**(bits-1) - 1`` exponents.  Per output channel c,
    with ``m_c = max|w_c|`` and ``u = |w| / m_c``:

    * ``e = round(log2(u))`` -- rounding in the log domain, so the boundary
      between ``2^e`` and ``2^(e-1)`` is their geometric mean ``2^(e-1/2)``;
      decided exactly as ``floor(log2 u) + [frac(u)^2 >= 2]`` from ``frexp``;
    * ``e < -(E-1)`` (below the smallest exponent's rounding boundary) -> 0;
    * ``w_int = sign(w) * 2^(e + E - 1)``: integers ``0, ±1 .. ±2^(E-1)``,
      exactly the IR's log2 range; ``w_scale = m_c / 2^(E-1)``.

    Straight-through estimator: ``d w_int / d w = 1 / w_scale``.
    """

    def __init__(self, in_features: int, out_features: int, bits: int = 4, bias: bool = True):
        if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 6:
            raise ValueError(f"{type(self).__name__}: bits (sign + exponent field) must be an int in 2..6, "
                             f"got {bits!r}")
        super().__init__(in_features, out_features, bias)
        self.weight_kind = "log2"
        self.weight_bits = int(bits)
        self.n_exponents = 2 ** (self.weight_bits - 1) - 1  # E
        self.max_exp = self.n_exponents - 1  # the largest integer weight is 2**max_exp

    @staticmethod
    def log2_round(u: torch.Tensor) -> torch.Tensor:
        """``round(log2(u))`` for positive ``u`` (any float dtype), exactly:
        with ``u = m * 2**x``, ``m`` in [0.5, 1): ``x - 1 + (m*m >= 0.5)``
        (``m*m`` is exact in float64 for a float32 ``m``).  Returns int64."""
        m, x = torch.frexp(u.detach().to(torch.float64))
        return (x.to(torch.int64) - 1) + (m * m >= 0.5).to(torch.int64)

    def quant_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.weight
        m = torch.clamp(w.abs().amax(dim=1), min=SCALE_MIN)
        w_scale = m / float(2**self.max_exp)  # exact: a power-of-two division
        wd = w.detach()
        u = wd.abs() / m.detach()[:, None]  # in [0, 1]
        nz = u > 0
        e = self.log2_round(torch.where(nz, u, torch.ones_like(u)))
        keep = nz & (e >= -self.max_exp)
        mag = torch.exp2(torch.clamp(e + self.max_exp, min=0).to(torch.float32))
        r = torch.where(keep, torch.where(wd >= 0, mag, -mag), torch.zeros_like(mag))
        if self.training and torch.is_grad_enabled():
            v = w / w_scale[:, None]
            r = r + (v - v.detach())
        return r, w_scale

    def extra_repr(self) -> str:
        return super().extra_repr() + f", exponents=0..{self.max_exp}"


def _top_n(cand: torch.Tensor, n: int) -> torch.Tensor:
    """Boolean mask of the ``n`` largest entries of the 1-d ``cand``, ties
    going to the lower index: the first ``n`` of a stable descending sort,
    found with one ``kthvalue`` (O(size)) instead of a sort."""
    size = cand.numel()
    if n <= 0:
        return torch.zeros(size, dtype=torch.bool)
    if n >= size:
        return torch.ones(size, dtype=torch.bool)
    t = torch.kthvalue(cand, size - n + 1).values
    above = cand > t
    tie = cand == t
    need = n - int(above.sum())
    return above | (tie & (torch.cumsum(tie.to(torch.int64), 0) <= need))


#: largest integer plane scale (the IR's HETERO_SCALE_MAX)
_HETERO_SCALE_MAX = 1 << 16


class HeteroBinaryLinear(QuantLinearBase):
    """Heterogeneous-bitwidth binarized weights (Fromm, Patel & Philipose,
    NeurIPS 2018), built on residual binarization.

    Each weight is a sum of up to ``N`` bipolar planes, ``N = len(dist)``
    (at most :data:`HETERO_MAX_PLANES`); a per-weight mask says how many planes
    it uses, so that on average ``avg_bits`` (B) planes are used and a
    fraction ``dist[j]`` (P) of the weights uses ``j+1`` planes.  The masks are
    chosen greedily "middle-out" on the channel-normalised weights
    ``v = w / s_c`` (``s_c = mean|w_c|``):

    * plane 0 for every weight: ``s_0 = sign(v)``, ``a_0 = mean|v|`` (over the
      layer), ``r_1 = v - a_0 s_0``;
    * plane i (i >= 1) for the ``round(n * (P_i + .. + P_{N-1}))`` weights with
      the largest ``|r_i|`` among those using plane i-1 (values near the
      plane-(i-1) level, "the middle", keep fewer bits), ``a_i`` = mean
      ``|r_i|`` over them, ``s_i = sign(r_i)``,
      ``r_{i+1} = r_i - â_i s_i`` on those weights.

    Plane scales are fixed point, so the datapath is integer: per layer
    ``k_0 = 2**F`` and ``k_i = max(1, round(a_i / a_0 * 2**F))`` (``F =
    frac_bits``), ``â_i = k_i a_0 / 2**F``; the integer weight is
    ``sum over used planes of k_i * s_i`` and the per-channel float scale
    ``w_scale = s_c * a_0 / 2**F`` folds into the thresholds.

    Training recomputes masks, plane scales and signs on every forward from the
    latent weights (straight-through estimator: ``d w_int / d w = 1 / w_scale``
    where ``|w / w_scale| <= sum k_i``, else 0).  Switching to eval mode fixes
    the masks, the plane scales and ``a_0`` in buffers (they are saved with the
    model); in eval only the signs and ``s_c`` come from the latent weights.
    Call :meth:`freeze` to fix them again after editing weights in eval mode.
    """

    def __init__(self, in_features: int, out_features: int, avg_bits: float = 1.4, dist=None,
                 frac_bits: int = 3, bias: bool = True):
        if isinstance(avg_bits, bool) or not isinstance(avg_bits, (int, float)):
            raise ValueError(f"{type(self).__name__}: avg_bits must be a number in (1, {HETERO_MAX_PLANES}], "
                             f"got {avg_bits!r}")
        b = float(avg_bits)
        if not (math.isfinite(b) and 1.0 < b <= HETERO_MAX_PLANES):
            raise ValueError(f"{type(self).__name__}: avg_bits (the average bits B) must be in "
                             f"(1, {HETERO_MAX_PLANES}], got {avg_bits!r}")
        try:
            p = check_hetero_dist(b, default_hetero_dist(b) if dist is None else dist)
        except ValueError as exc:
            raise ValueError(f"{type(self).__name__}: {exc}") from None
        if isinstance(frac_bits, bool) or not isinstance(frac_bits, int) or not 0 <= frac_bits <= 12:
            raise ValueError(f"{type(self).__name__}: frac_bits must be an int in 0..12, got {frac_bits!r}")
        super().__init__(in_features, out_features, bias)
        self.weight_kind = "hetero"
        self.weight_bits = b  # average bits per weight (B)
        self.avg_bits = b
        self.dist = p
        self.planes = len(p)
        self.frac_bits = int(frac_bits)
        # fixed in eval mode (plane_count == 0: not fixed yet)
        self.register_buffer("plane_count", torch.zeros(self.out_features, self.in_features, dtype=torch.uint8))
        self.register_buffer("plane_scales", torch.zeros(self.planes, dtype=torch.int64))
        self.register_buffer("plane_a0", torch.zeros((), dtype=torch.float64))

    # -- masks ----------------------------------------------------------------
    def plane_counts(self) -> list[int]:
        """How many weights of the layer use plane i (i = 0 .. N-1)."""
        n = self.out_features * self.in_features
        return [n] + [int(round(n * sum(self.dist[i:]))) for i in range(1, self.planes)]

    def _normalised(self) -> tuple[torch.Tensor, torch.Tensor]:
        s_c = torch.clamp(self.weight.abs().mean(dim=1), min=SCALE_MIN)
        v = self.weight.detach().double() / s_c.detach().double()[:, None]
        return s_c, v

    def _choose(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Middle-out: (plane count per weight uint8, plane scales int64, a_0)."""
        flat = v.reshape(-1)
        one = 2**self.frac_bits
        a0 = float(flat.abs().mean()) if flat.numel() else 1.0
        a0 = a0 if a0 > 0 else 1.0
        count = torch.ones(flat.shape, dtype=torch.uint8)
        scales = [one]
        r = flat - a0 * torch.where(flat >= 0, 1.0, -1.0).to(flat.dtype)
        prev = torch.ones(flat.shape, dtype=torch.bool)
        for i, n_i in enumerate(self.plane_counts()[1:], start=1):
            mask = _top_n(torch.where(prev, r.abs(), torch.full_like(r, -1.0)), n_i)
            a_i = float(r[mask].abs().mean()) if n_i else 0.0
            k_i = int(min(max(round(a_i / a0 * one), 1), _HETERO_SCALE_MAX))
            scales.append(k_i)
            r = torch.where(mask, r - (k_i * a0 / one) * torch.where(r >= 0, 1.0, -1.0).to(r.dtype), r)
            count += mask.to(torch.uint8)
            prev = mask
        return count.reshape(v.shape), torch.tensor(scales, dtype=torch.int64), a0

    def _signs(self, v: torch.Tensor, count: torch.Tensor, scales: torch.Tensor, a0: float) -> torch.Tensor:
        """(N, out, in) bool plane signs (True = +1; False on unused planes)."""
        one = 2**self.frac_bits
        r = v
        signs = []
        for i in range(self.planes):
            used = count > i
            s = (r >= 0) & used
            signs.append(s)
            step = int(scales[i]) * a0 / one
            r = torch.where(used, r - step * torch.where(s, 1.0, -1.0).to(r.dtype), r)
        return torch.stack(signs)

    def _state(self):
        """(s_c, count, scales, a0, signs) for the current mode."""
        s_c, v = self._normalised()
        if self.training or not bool(self.plane_count.any()):
            with torch.no_grad():
                count, scales, a0 = self._choose(v)
        else:
            count, scales, a0 = self.plane_count, self.plane_scales, float(self.plane_a0)
        return s_c, count, scales, a0, self._signs(v, count, scales, a0)

    @torch.no_grad()
    def freeze(self) -> None:
        """Fix masks, plane scales and a_0 from the current latent weights."""
        _, v = self._normalised()
        count, scales, a0 = self._choose(v)
        self.plane_count.copy_(count)
        self.plane_scales.copy_(scales)
        self.plane_a0.fill_(a0)

    def train(self, mode: bool = True):
        if not mode and (self.training or not bool(self.plane_count.any())):
            self.freeze()
        return super().train(mode)

    # -- the contract -----------------------------------------------------------
    def quant_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        s_c, count, scales, a0, signs = self._state()
        w_int = torch.zeros(self.weight.shape, dtype=torch.float32)
        for i in range(self.planes):
            k = float(scales[i])
            w_int = w_int + torch.where(count > i, torch.where(signs[i], k, -k), 0.0).to(torch.float32)
        w_scale = s_c * (a0 / 2**self.frac_bits)
        if self.training and torch.is_grad_enabled():
            u = self.weight / w_scale[:, None]
            inside = (u.detach().abs() <= float(scales.sum())).to(u.dtype)
            w_int = w_int + (u - u.detach()) * inside
        return w_int, w_scale

    def quant_codes(self) -> tuple[torch.Tensor, tuple[int, ...], torch.Tensor]:
        """``(codes, plane_scales, w_scale)``: int64 ``(out, in)`` codes in the
        layout of the IR's ``DType("hetero", 2N-1, plane_scales)`` (bits
        ``[0, N)`` the plane signs, bit ``N+i-1`` set when plane i >= 1 is
        used; the sign bit of an unused plane is 0), the integer plane scales
        ``k_0 .. k_{N-1}`` and the per-channel scale of :meth:`quant_weight`."""
        with torch.no_grad():
            s_c, count, scales, a0, signs = self._state()
            n = self.planes
            codes = torch.zeros(self.weight.shape, dtype=torch.int64)
            for i in range(n):
                codes |= signs[i].to(torch.int64) << i
                if i >= 1:
                    codes |= (count > i).to(torch.int64) << (n + i - 1)
            w_scale = s_c * (a0 / 2**self.frac_bits)
        return codes, tuple(int(k) for k in scales), w_scale

    def extra_repr(self) -> str:
        return (super().extra_repr() + f", dist={list(self.dist)}, planes={self.planes}, "
                f"frac_bits={self.frac_bits}")


# ---------------------------------------------------------------------------
# 2-d convolutions
# ---------------------------------------------------------------------------


def _conv_pair(cls: str, name: str, value, minimum: int) -> tuple[int, int]:
    """``value`` (an int or a pair of ints, each >= ``minimum``) as a 2-tuple."""
    if isinstance(value, int) and not isinstance(value, bool):
        pair = (value, value)
    elif (isinstance(value, (tuple, list)) and len(value) == 2
          and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        pair = (int(value[0]), int(value[1]))
    else:
        raise ValueError(f"{cls}: {name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{cls}: {name} must be >= {minimum}, got {value!r}")
    return pair


class QuantConv2dMixin:
    """2-d convolution on top of a :class:`QuantLinearBase` weight format.

    A conv class is ``class XConv2d(QuantConv2dMixin, XLinear)``: the weight
    Parameter is the linear layer's, 2-d ``(out_channels, in_channels*kh*kw)``
    in torch's own flattening order of a ``Conv2d`` kernel, ``(c, ky, kx)``
    (``weight.reshape(out, in, kh, kw)`` is the kernel), so ``in_features =
    in_channels*kh*kw`` and ``out_features = out_channels``.  ``quant_weight``,
    ``quant_codes``, ``freeze``, the per-output-channel scales and the
    straight-through estimators are the linear class's, unchanged.  The
    initialisation equals ``nn.Conv2d``'s (kaiming-uniform with ``a=sqrt(5)``
    and ``fan_in = in_channels*kh*kw``; same random stream, too).

    ``forward(x)``, ``x`` of shape ``(N, C, H, W)``:
    ``s = F.conv2d(x.double(), w_int.double().reshape(out, in, kh, kw),
    stride=stride, padding=padding)`` and then
    ``(s * w_scale.double()[None, :, None, None] + bias.double()[None, :, None,
    None]).float()`` -- elementwise the very ops of the linear
    :meth:`~QuantLinearBase.epilogue`, which the conv classes inherit unchanged
    (channel-last: ``epilogue(s)`` for ``s`` of shape ``(..., out_channels)``
    gives ``forward``'s values at those positions, bit for bit).  The
    sum is exact under the same condition as a linear layer's (see the module
    docstring): every input a multiple of one 16-bit activation step and
    ``sum|w_int| * max_level < 2**37`` per output channel, the sum running over
    the whole receptive field ``in_channels*kh*kw`` -- the bound the frontend
    checks on the 2-d weight (:data:`EXACT_ACC_LIMIT`).

    Padding is zero padding *in value*: a padded position contributes 0 to
    the sum.  For a :class:`QuantAct` input that is level 0; for a
    :class:`BinaryAct` (bipolar) input it is **0, not -1**, so a window at the
    border holds values in {-1, 0, +1} (torch's semantics, which lbgen's
    hardware reproduces).  Only ``dilation=1``, ``groups=1`` and
    ``padding_mode="zeros"`` are supported; they are accepted (keyword only)
    for drop-in use and anything else raises ``ValueError``.
    """

    @staticmethod
    def _conv_geometry(cls: str, in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                       padding_mode) -> dict:
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{cls}: {name} must be a positive int, got {v!r}")
        if isinstance(padding, str):
            raise ValueError(f"{cls}: padding must be an int or a pair of ints (zero padding), got {padding!r}")
        geo = {
            "in_channels": int(in_channels),
            "out_channels": int(out_channels),
            "kernel_size": _conv_pair(cls, "kernel_size", kernel_size, 1),
            "stride": _conv_pair(cls, "stride", stride, 1),
            "padding": _conv_pair(cls, "padding", padding, 0),
        }
        if _conv_pair(cls, "dilation", dilation, 1) != (1, 1):
            raise ValueError(f"{cls}: dilation {dilation!r} is not supported (only dilation=1)")
        if isinstance(groups, bool) or groups != 1:
            raise ValueError(f"{cls}: groups={groups!r} is not supported (only groups=1)")
        if padding_mode != "zeros":
            raise ValueError(f"{cls}: padding_mode={padding_mode!r} is not supported (only 'zeros')")
        return geo

    def _conv_init(self, geo: dict) -> None:
        self.in_channels = geo["in_channels"]
        self.out_channels = geo["out_channels"]
        self.kernel_size = geo["kernel_size"]
        self.stride = geo["stride"]
        self.padding = geo["padding"]
        # constants, for code that treats nn.Conv2d and these alike
        self.dilation = (1, 1)
        self.groups = 1
        self.padding_mode = "zeros"

    @staticmethod
    def _in_features(geo: dict) -> int:
        kh, kw = geo["kernel_size"]
        return geo["in_channels"] * kh * kw

    def conv_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``quant_weight()`` with the integer weights as a kernel
        ``(out_channels, in_channels, kh, kw)``."""
        w_int, w_scale = self.quant_weight()
        return w_int.reshape(self.out_channels, self.in_channels, *self.kernel_size), w_scale

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """Output ``(H', W')`` for an ``H x W`` input: ``(H + 2p - k) // s + 1``."""
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"{type(self).__name__}: expected a 4-d (N, C, H, W) input, got shape "
                             f"{tuple(x.shape)}")
        w_int, w_scale = self.quant_weight()
        w4 = w_int.double().reshape(self.out_channels, self.in_channels, *self.kernel_size)
        s = F.conv2d(x.double(), w4, None, self.stride, self.padding)
        # the linear epilogue along dim 1: elementwise the same float64 ops as
        # ``self.epilogue(s.movedim(1, -1)).movedim(-1, 1)``
        y = s * w_scale.double()[None, :, None, None]
        if self.bias is not None:
            y = y + self.bias.double()[None, :, None, None]
        return y.to(_out_dtype())

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, " + super().extra_repr())


class BinaryConv2d(QuantConv2dMixin, BinaryLinear):
    """Conv2d with the weights of :class:`BinaryLinear` (bipolar, per-output-
    channel ``mean|w|`` over the receptive field); see :class:`QuantConv2dMixin`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = True,
                 *, dilation=1, groups: int = 1, padding_mode: str = "zeros"):
        geo = self._conv_geometry(type(self).__name__, in_channels, out_channels, kernel_size, stride, padding,
                                  dilation, groups, padding_mode)
        super().__init__(self._in_features(geo), geo["out_channels"], bias=bias)
        self._conv_init(geo)


class IntConv2d(QuantConv2dMixin, IntLinear):
    """Conv2d with the weights of :class:`IntLinear` (signed ``bits``-bit,
    2..8); see :class:`QuantConv2dMixin`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = True,
                 bits: int = 8, *, dilation=1, groups: int = 1, padding_mode: str = "zeros"):
        geo = self._conv_geometry(type(self).__name__, in_channels, out_channels, kernel_size, stride, padding,
                                  dilation, groups, padding_mode)
        super().__init__(self._in_features(geo), geo["out_channels"], bits=bits, bias=bias)
        self._conv_init(geo)


class ChannelBitsConv2d(QuantConv2dMixin, ChannelBitsLinear):
    """Conv2d with the weights of :class:`ChannelBitsLinear` (a bit width per
    output channel); see :class:`QuantConv2dMixin`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = True,
                 bits: int = 8, channel_bits=None, *, dilation=1, groups: int = 1, padding_mode: str = "zeros"):
        geo = self._conv_geometry(type(self).__name__, in_channels, out_channels, kernel_size, stride, padding,
                                  dilation, groups, padding_mode)
        super().__init__(self._in_features(geo), geo["out_channels"], bits=bits, bias=bias,
                         channel_bits=channel_bits)
        self._conv_init(geo)


class Log2Conv2d(QuantConv2dMixin, Log2Linear):
    """Conv2d with the weights of :class:`Log2Linear` (power-of-two, ``bits``
    = sign + exponent field, 2..6); see :class:`QuantConv2dMixin`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = True,
                 bits: int = 4, *, dilation=1, groups: int = 1, padding_mode: str = "zeros"):
        geo = self._conv_geometry(type(self).__name__, in_channels, out_channels, kernel_size, stride, padding,
                                  dilation, groups, padding_mode)
        super().__init__(self._in_features(geo), geo["out_channels"], bits=bits, bias=bias)
        self._conv_init(geo)


class TernaryConv2d(QuantConv2dMixin, TernaryLinear):
    """Conv2d with the weights of :class:`TernaryLinear` (threshold and scale
    per output channel over the receptive field); see :class:`QuantConv2dMixin`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = True,
                 *, dilation=1, groups: int = 1, padding_mode: str = "zeros"):
        geo = self._conv_geometry(type(self).__name__, in_channels, out_channels, kernel_size, stride, padding,
                                  dilation, groups, padding_mode)
        super().__init__(self._in_features(geo), geo["out_channels"], bias=bias)
        self._conv_init(geo)


class HeteroBinaryConv2d(QuantConv2dMixin, HeteroBinaryLinear):
    """Conv2d with the weights of :class:`HeteroBinaryLinear` (heterogeneous
    binarization, ``avg_bits`` / ``dist`` / ``frac_bits``; masks over the
    whole 2-d ``(out, in*kh*kw)`` weight, fixed in eval mode); see
    :class:`QuantConv2dMixin`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = True,
                 avg_bits: float = 1.4, dist=None, frac_bits: int = 3, *, dilation=1, groups: int = 1,
                 padding_mode: str = "zeros"):
        geo = self._conv_geometry(type(self).__name__, in_channels, out_channels, kernel_size, stride, padding,
                                  dilation, groups, padding_mode)
        super().__init__(self._in_features(geo), geo["out_channels"], avg_bits=avg_bits, dist=dist,
                         frac_bits=frac_bits, bias=bias)
        self._conv_init(geo)
