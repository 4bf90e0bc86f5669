"""Clipping ranges for post-training quantization (numpy and math only).

A uniform M-bit quantizer over [-alpha, alpha] trades two errors: values
beyond alpha are clipped, values inside are rounded to steps of
2*alpha / 2^M (noise alpha^2 / (3 * 4^M) per value). Banner, Nahshan and
Soudry's analytical clipping (ACIQ) fits a Laplace (scale b = E|x - mean|)
or Gaussian (sigma) prior to the tensor and takes the alpha that minimises
the sum of both errors under that prior:

    Laplace:  2 b^2 exp(-alpha/b)                                      + alpha^2 / (3 * 4^M)
    Gaussian: (alpha^2 + s^2)(1 - erf(alpha/(s*sqrt 2))) - sqrt(2/pi) alpha s exp(-alpha^2/(2 s^2))
                                                                       + alpha^2 / (3 * 4^M)

Both are convex in alpha, so the optimum is the root of the derivative,
found here by bisection (for Laplace, M = 2, 3, 4 give 2.83 b, 3.89 b,
5.03 b, the paper's values). An unsigned M-bit quantizer over [0, alpha] of
a non-negative tensor (activations after a ReLU) has the step of a signed
(M+1)-bit one over [-alpha, alpha] and sees one tail of the prior, so its
ratio is the signed (M+1)-bit ratio; the prior is fitted to the positive
values (a ReLU's zeros sit on the grid and halve both errors alike).

Baselines: ``minmax`` (alpha = max |x|, no clipping) and ``percentile``
(alpha = a high percentile of |x|). ``aciq`` tries both priors and keeps the
alpha whose quantization of the tensor itself has the smaller mean squared
error, so a tensor that is neither Laplace nor Gaussian gets the better fit.
"""

from __future__ import annotations

import math

import numpy as np

CLIP_METHODS = ("minmax", "percentile", "aciq")
PRIORS = ("laplace", "gauss")
DEFAULT_PERCENTILE = 99.99


def _derivative(ratio: float, bits: int, prior: str) -> float:
    """d/d(alpha) of the expected error in units of the prior's scale (b or sigma = 1)."""
    quant = 2.0 * ratio / (3.0 * 4.0 ** bits)
    if prior == "laplace":
        return -2.0 * math.exp(-ratio) + quant
    tail = 1.0 - math.erf(ratio / math.sqrt(2.0))
    return 2.0 * ratio * tail - 2.0 * math.sqrt(2.0 / math.pi) * math.exp(-ratio * ratio / 2.0) + quant


def expected_error(ratio: float, bits: int, prior: str) -> float:
    """The expected squared error per value, in units of the prior's scale squared."""
    quant = ratio * ratio / (3.0 * 4.0 ** bits)
    if prior == "laplace":
        return 2.0 * math.exp(-ratio) + quant
    tail = 1.0 - math.erf(ratio / math.sqrt(2.0))
    return ((ratio * ratio + 1.0) * tail - math.sqrt(2.0 / math.pi) * ratio * math.exp(-ratio * ratio / 2.0)
            + quant)


def optimal_ratio(bits: int, prior: str = "laplace", signed: bool = True) -> float:
    """alpha* / scale of an M-bit quantizer under ``prior`` (see the module docstring)."""
    if prior not in PRIORS:
        raise ValueError(f"prior {prior!r}: expected one of {', '.join(PRIORS)}")
    if not 1 <= int(bits) <= 16:
        raise ValueError(f"{bits} bits: expected 1..16")
    m = int(bits) + (0 if signed else 1)
    lo, hi = 0.0, 64.0
    for _ in range(200):                    # the derivative increases: bisection to float precision
        mid = 0.5 * (lo + hi)
        if _derivative(mid, m, prior) < 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def prior_scale(x: np.ndarray, prior: str, signed: bool = True) -> float:
    """Laplace b = E|x - mean| or Gaussian sigma of ``x``. Unsigned: of the positive
    values, as the tail of a zero-mean prior (a ReLU's zeros are exact on the grid and
    only halve both errors, which leaves the optimal alpha where it is)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    if not signed:
        pos = x[x > 0]
        if pos.size == 0:
            return 0.0
        return float(np.mean(pos)) if prior == "laplace" else float(np.sqrt(np.mean(pos * pos)))
    centred = x - x.mean()
    return float(np.mean(np.abs(centred))) if prior == "laplace" else float(np.std(x))


def quantization_mse(x: np.ndarray, alpha: float, bits: int, signed: bool = True) -> float:
    """Mean squared error of x against its uniform M-bit quantization clipped to alpha
    (signed: 2^M steps over [-alpha, alpha]; unsigned: 2^M - 1 steps over [0, alpha])."""
    x = np.asarray(x, dtype=np.float64)
    if alpha <= 0:
        return float(np.mean(x * x))
    if signed:
        step = 2.0 * alpha / (2 ** bits)
        q = np.clip(np.round(x / step), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1) * step
    else:
        step = alpha / (2 ** bits - 1)
        q = np.clip(np.round(x / step), 0, 2 ** bits - 1) * step
    return float(np.mean((x - q) ** 2))


def clip_value(x: np.ndarray, bits: int, method: str = "aciq", signed: bool = True,
               percentile: float = DEFAULT_PERCENTILE) -> float:
    """The clipping range alpha of ``x`` for an M-bit quantizer."""
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise ValueError("clipping needs a non-empty, finite tensor")
    if method not in CLIP_METHODS:
        raise ValueError(f"clipping {method!r}: expected one of {', '.join(CLIP_METHODS)}")
    top = float(np.max(np.abs(x)))
    if method == "minmax" or top == 0.0:
        return top
    if method == "percentile":
        if not 0 < percentile <= 100:
            raise ValueError(f"percentile {percentile}: expected 0 < p <= 100")
        return float(np.percentile(np.abs(x), percentile))
    candidates = [min(top, optimal_ratio(bits, p, signed) * prior_scale(x, p, signed)) for p in PRIORS]
    candidates = [a for a in candidates if a > 0] or [top]
    return min(candidates, key=lambda a: quantization_mse(x, a, bits, signed))
