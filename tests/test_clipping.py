"""Clipping ranges for post-training quantization (lbgen.passes.model.clipping, ACIQ and baselines).

The optimal clipping ratios reproduce the values of Banner et al.'s ACIQ
(Laplace 2.83 b, 3.89 b, 5.03 b and Gaussian 1.71, 2.15, 2.55 sigma at 2, 3,
4 bits); ACIQ's range quantizes Laplace, Gaussian and ReLU'd samples with
less error than min-max at 4 bits and below, and close to the best range of
a fine grid.
"""

from __future__ import annotations

import numpy as np
import pytest

from lbgen.passes.model.clipping import clip_value, optimal_ratio, quantization_mse

PAPER = {"laplace": {2: 2.83, 3: 3.89, 4: 5.03}, "gauss": {2: 1.71, 3: 2.15, 4: 2.55}}


@pytest.mark.parametrize("prior", ["laplace", "gauss"])
def test_optimal_ratios_are_the_papers(prior):
    for bits, want in PAPER[prior].items():
        assert abs(optimal_ratio(bits, prior) - want) < 0.01, (prior, bits)
    ratios = [optimal_ratio(b, prior) for b in range(1, 9)]
    assert all(a < b for a, b in zip(ratios, ratios[1:]))          # more bits, less clipping
    assert optimal_ratio(3, prior, signed=False) == optimal_ratio(4, prior)


def _samples(kind: str, n: int = 200_000, seed: int = 0) -> tuple[np.ndarray, bool]:
    rng = np.random.default_rng(seed)
    if kind == "laplace":
        return rng.laplace(0.3, 1.7, n), True
    if kind == "gauss":
        return rng.normal(-0.2, 0.6, n), True
    return np.maximum(rng.laplace(0.0, 1.0, n), 0.0), False            # a ReLU's output


@pytest.mark.parametrize("kind", ["laplace", "gauss", "relu"])
@pytest.mark.parametrize("bits", [2, 3, 4])
def test_aciq_beats_minmax_and_is_near_the_best_range(kind, bits):
    x, signed = _samples(kind)
    aciq = clip_value(x, bits, "aciq", signed=signed)
    top = clip_value(x, bits, "minmax", signed=signed)
    assert top == np.max(np.abs(x)) and 0 < aciq < top
    e_aciq = quantization_mse(x, aciq, bits, signed)
    assert e_aciq < quantization_mse(x, top, bits, signed)
    assert e_aciq < quantization_mse(x, clip_value(x, bits, "percentile", signed=signed), bits, signed)
    best = min(quantization_mse(x, a, bits, signed) for a in np.linspace(0.05, 1.0, 200) * top)
    assert e_aciq <= 1.15 * best


def test_clipping_refuses_bad_tensors_and_options():
    for bad in (np.array([]), np.array([1.0, np.nan]), np.array([np.inf])):
        with pytest.raises(ValueError):
            clip_value(bad, 4)
    with pytest.raises(ValueError, match="expected one of"):
        clip_value(np.ones(3), 4, "mean")
    with pytest.raises(ValueError):
        clip_value(np.ones(3), 4, "percentile", percentile=0)
    with pytest.raises(ValueError):
        optimal_ratio(4, "cauchy")
    assert clip_value(np.zeros(5), 4) == 0.0
