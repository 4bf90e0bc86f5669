"""Per-channel bit allocation under an average budget (numpy only).

Banner, Nahshan and Soudry's post-training 4-bit work gives each channel
its own width so that the total quantization noise is least for a fixed
total of bits. Channel c of range alpha_c (the quantizer's clip) on a
symmetric grid of Q = 2**(b-1) - 1 levels each side has step alpha_c / Q and
noise proportional to alpha_c**2 / Q**2 per weight. In the continuous
relaxation the optimum is 2**b_c proportional to alpha_c**(2/3): wide channels
get more bits. Widths are integers here, so the allocation is the exact
integer optimum instead: the noise of a channel falls by less with every bit
added (convex), so handing out the budget one bit at a time, each to the
channel whose noise falls most, is optimal.
"""

from __future__ import annotations

import heapq
import math

import numpy as np


def channel_noise(alpha: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """alpha_c**2 / Q_c**2: each channel's quantization noise up to a common factor (step**2 / 12)."""
    q = (2.0 ** (np.asarray(bits, dtype=np.float64) - 1) - 1)
    return np.asarray(alpha, dtype=np.float64) ** 2 / q ** 2


def allocate_bits(alpha, budget: float, lo: int = 2, hi: int = 8) -> np.ndarray:
    """Integer widths in lo..hi, one per channel, averaging at most ``budget`` bits,
    that minimise the total noise sum_c alpha_c**2 / Q(b_c)**2.

    All channels start at ``lo``; floor(budget * C) - lo * C more bits are
    handed out one at a time to the channel whose noise falls most (ties: the
    wider channel, then the lower index), never beyond ``hi``.
    """
    alpha = np.asarray(alpha, dtype=np.float64).ravel()
    if alpha.size == 0 or not np.all(np.isfinite(alpha)) or np.any(alpha < 0):
        raise ValueError("channel ranges must be finite and non-negative, at least one")
    if not 2 <= lo <= hi:
        raise ValueError(f"widths {lo}..{hi}: need 2 <= lo <= hi")
    if not lo <= budget <= hi:
        raise ValueError(f"budget {budget:g} bits is outside {lo}..{hi}")
    n = alpha.size
    bits = np.full(n, lo, dtype=np.int64)
    spare = int(np.floor(budget * n + 1e-9)) - lo * n

    def key(c: int) -> tuple[float, float, int]:
        # the noise a bit removes, alpha**2 * (1/Q(b)**2 - 1/Q(b+1)**2), in logs (no underflow
        # for tiny ranges); equal gains go to the wider channel, then the lower index
        if alpha[c] == 0:
            return (math.inf, 0.0, c)
        qa, qb = 2.0 ** (bits[c] - 1) - 1, 2.0 ** bits[c] - 1
        return (-(2 * math.log(alpha[c]) + math.log(1 / qa ** 2 - 1 / qb ** 2)), -alpha[c], c)

    heap = [key(c) for c in range(n) if bits[c] < hi]
    heapq.heapify(heap)
    while spare > 0 and heap:
        c = heapq.heappop(heap)[2]
        bits[c] += 1
        spare -= 1
        if bits[c] < hi:
            heapq.heappush(heap, key(c))
    return bits
