"""Weight and activation precision: what ``--w``, ``--a`` and ``--hetero-dist`` mean.

``--w`` names a weight format:

* ``1``            binary (bipolar) weights, ``BinaryLinear``
* ``2`` .. ``8``   k-bit signed integer weights, ``IntLinear(bits=k)``
* ``log2:K``       power-of-two weights of K = 2..6 bits (sign + exponent
                   field), ``Log2Linear(bits=K)``
* ``ternary``      ternary weights {-1, 0, +1} in 2 bits, ``TernaryLinear``
* ``B`` with a decimal point, ``1 < B <= 3`` (e.g. ``1.4``; also written
  ``hetero:1.4``): heterogeneous-bitwidth binarized weights averaging B bits,
  ``HeteroBinaryLinear(avg_bits=B)``. ``--hetero-dist "0.7,0.2,0.1"`` gives
  the fraction of weights with 1, 2 and 3 bits; it must average to B.

This module needs neither torch nor numpy, so the CLI can check its options
before loading a model. The plain-Python helpers for bit distributions live
here too and :mod:`lbgen.quant` re-exports them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Optional, Sequence, Union

from .errors import UsageError

#: Heterogeneous binarization: at most this many bipolar planes per weight.
HETERO_MAX_PLANES = 3
#: Tolerance when checking that a bit distribution sums to 1 / averages to B.
HETERO_DIST_TOL = 1e-6
#: torch's float64 forward of an lbgen.quant layer is exact while every partial
#: dot product ``sum level * w_int`` stays below this bound in magnitude (times
#: a 16-bit activation-step mantissa it fits float64's 53-bit significand).
EXACT_ACC_LIMIT = 1 << 37
#: Bit widths of the formats (inclusive ranges).
INT_BITS = (2, 8)
LOG2_BITS = (2, 6)
ACT_BITS = (1, 8)
#: the model's input quantizer may be wider than the hidden activations: a float
#: input on a 9..16-bit grid (e.g. hls4ml's fixed<16,6>) feeds the first layer
INPUT_BITS = (1, 16)

KINDS = ("bipolar", "int", "log2", "hetero", "ternary")

#: the spellings of --w, for its help and its errors
W_FORMATS = ("1 (binary), 2..8 (k-bit integer), ternary (-1, 0, +1), log2:K (power-of-two, K = 2..6 bits) "
             f"or a fractional average in (1, {HETERO_MAX_PLANES}] such as 1.4 (heterogeneous binarization)")
_W_HELP = f"expected {W_FORMATS}"


# -- bit distributions (plain Python, ValueError) -------------------------------

def default_hetero_dist(avg_bits: float) -> tuple[float, ...]:
    """The fraction of weights with 1, 2 and 3 bits for an average of ``avg_bits``.

    ``1 < B <= 2``: ``P3 = (B-1)/4, P2 = (B-1)/2, P1 = 1 - P2 - P3`` (for 1.4
    bits the paper's 70 % / 20 % / 10 %); ``2 < B <= 3``: the mirror image,
    ``P1 = (3-B)/4, P2 = (3-B)/2, P3 = 1 - P1 - P2``. Both average to ``B``.
    """
    b = _avg_bits(avg_bits)
    if b <= 2.0:
        p3, p2 = (b - 1.0) / 4.0, (b - 1.0) / 2.0
        p = (1.0 - p2 - p3, p2, p3)
    else:
        p1, p2 = (3.0 - b) / 4.0, (3.0 - b) / 2.0
        p = (p1, p2, 1.0 - p1 - p2)
    return tuple(round(x, 12) for x in p)  # 0.7, not 0.7000000000000001


def _avg_bits(avg_bits) -> float:
    try:
        b = float(avg_bits)
    except (TypeError, ValueError):
        b = math.nan
    if isinstance(avg_bits, bool) or not (math.isfinite(b) and 1.0 < b <= HETERO_MAX_PLANES):
        raise ValueError(f"heterogeneous binarization: the average bits B must be in (1, {HETERO_MAX_PLANES}], "
                         f"got {avg_bits!r}")
    return b


def dist_mean(dist: Sequence[float]) -> float:
    """Average bits per weight of a distribution over 1, 2, .. planes."""
    return sum((i + 1) * float(x) for i, x in enumerate(dist))


def check_dist(dist) -> tuple[float, ...]:
    """A distribution P over 1..HETERO_MAX_PLANES planes: fractions >= 0
    summing to 1. Returns it as floats with trailing zeros dropped."""
    try:
        p = tuple(float(x) for x in dist)
    except (TypeError, ValueError):
        raise ValueError(f"heterogeneous binarization: the distribution P must be a sequence of numbers, "
                         f"got {dist!r}") from None
    if not 1 <= len(p) <= HETERO_MAX_PLANES:
        raise ValueError(f"heterogeneous binarization: P={list(p)} has {len(p)} entries, but a weight has "
                         f"1..{HETERO_MAX_PLANES} planes (P[i] is the fraction of weights with i+1 bits)")
    if any(not math.isfinite(x) or x < 0 for x in p):
        raise ValueError(f"heterogeneous binarization: P={list(p)} has a negative or non-finite fraction")
    if abs(sum(p) - 1.0) > HETERO_DIST_TOL:
        raise ValueError(f"heterogeneous binarization: P={list(p)} sums to {sum(p):.6g}, not 1")
    while len(p) > 1 and p[-1] == 0.0:
        p = p[:-1]
    return p


def check_hetero_dist(avg_bits: float, dist) -> tuple[float, ...]:
    """Validate a bit distribution P against the target average B; return P
    (floats, trailing zeros dropped). Raises ValueError naming P and B."""
    b = _avg_bits(avg_bits)
    p = check_dist(dist)
    mean = dist_mean(p)
    if abs(mean - b) > HETERO_DIST_TOL:
        raise ValueError(f"heterogeneous binarization: P={list(p)} averages {mean:.6g} bits per weight, "
                         f"not the target B={b:g}")
    return p


def same_dist(p: Sequence[float], q: Sequence[float]) -> bool:
    """Equal up to trailing zeros and HETERO_DIST_TOL."""
    n = max(len(p), len(q))
    pp = list(p) + [0.0] * (n - len(p))
    qq = list(q) + [0.0] * (n - len(q))
    return all(abs(a - b) <= HETERO_DIST_TOL for a, b in zip(pp, qq))


def format_dist(dist: Sequence[float]) -> str:
    return ",".join(f"{x:g}" for x in dist)


# -- --w ------------------------------------------------------------------------

@dataclass(frozen=True)
class WeightSpec:
    """A weight format: ``kind`` (bipolar, int, log2, hetero, ternary) and
    ``bits`` (1; 2..8; 2..6; the average B of a hetero format; 2)."""

    kind: str
    bits: float

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown weight kind {self.kind!r}; expected one of {KINDS}")
        b = float(self.bits)
        if self.kind != "hetero":
            if b != int(b):
                raise ValueError(f"{self.kind} weights have a whole number of bits, not {self.bits}")
            b = int(b)
        ok = {"bipolar": b == 1, "int": INT_BITS[0] <= b <= INT_BITS[1],
              "log2": LOG2_BITS[0] <= b <= LOG2_BITS[1],
              "hetero": math.isfinite(b) and 1.0 < b <= HETERO_MAX_PLANES, "ternary": b == 2}[self.kind]
        if not ok:
            raise ValueError(f"{self.kind} weights cannot have {self.bits} bits")
        object.__setattr__(self, "bits", b)

    @property
    def width(self) -> float:
        """Bits per weight (the average for hetero): what "wider" compares."""
        return float(self.bits)

    def matches(self, other: "WeightSpec") -> bool:
        if self.kind != other.kind:
            return False
        if self.kind == "hetero":
            return abs(self.bits - other.bits) <= HETERO_DIST_TOL
        return self.bits == other.bits

    def describe(self) -> str:
        """e.g. "1-bit binary", "4-bit integer", "4-bit log2", "1.4-bit heterogeneous binarized"."""
        return {"bipolar": "1-bit binary", "int": f"{self.bits}-bit integer", "ternary": "2-bit ternary",
                "log2": f"{self.bits}-bit log2", "hetero": f"{self.bits:g}-bit heterogeneous binarized"}[self.kind]

    def short(self) -> str:
        """e.g. "1-bit", "4-bit", "4-bit log2", "1.4-bit heterogeneous"."""
        return {"bipolar": "1-bit", "int": f"{self.bits}-bit", "ternary": "2-bit ternary",
                "log2": f"{self.bits}-bit log2", "hetero": f"{self.bits:g}-bit heterogeneous"}[self.kind]

    def __str__(self) -> str:
        """The --w text that means this format."""
        if self.kind == "ternary":
            return "ternary"
        if self.kind == "log2":
            return f"log2:{self.bits}"
        if self.kind == "hetero":
            text = f"{self.bits:g}"
            return text if "." in text else text + ".0"
        return str(self.bits)


def parse_weight_spec(text: str) -> WeightSpec:
    """``--w`` text -> WeightSpec; UsageError naming ``--w`` and the value."""
    raw = str(text)
    t = raw.strip().lower()
    where = f"--w {raw}"
    if t == "ternary":
        return WeightSpec("ternary", 2)
    if t.startswith("log2:"):
        field = t[5:].strip()
        if not re.fullmatch(r"\d+", field):
            raise UsageError(f"{where}: log2:K needs a whole number of bits K = {LOG2_BITS[0]}..{LOG2_BITS[1]}")
        k = int(field)
        if not LOG2_BITS[0] <= k <= LOG2_BITS[1]:
            raise UsageError(f"{where}: a log2 weight takes {LOG2_BITS[0]}..{LOG2_BITS[1]} bits "
                             f"(sign + exponent field), not {k}")
        return WeightSpec("log2", k)
    hetero = t.startswith("hetero:")
    if hetero:
        t = t[7:].strip()
    if re.fullmatch(r"\d+", t) and not hetero:
        k = int(t)
        if not 1 <= k <= INT_BITS[1]:
            raise UsageError(f"{where}: weight bits must be 1..{INT_BITS[1]}")
        return WeightSpec("bipolar", 1) if k == 1 else WeightSpec("int", k)
    if re.fullmatch(r"(\d+\.\d*|\.\d+|\d+)", t):
        b = float(t)
        if not 1.0 < b <= HETERO_MAX_PLANES:
            hint = "; use --w 1 for binary weights" if b == 1.0 else ""
            raise UsageError(f"{where}: a fractional (heterogeneous binarized) weight width must be in "
                             f"(1, {HETERO_MAX_PLANES}] bits{hint}")
        return WeightSpec("hetero", b)
    raise UsageError(f"{where}: {_W_HELP}")


def coerce_weight_spec(w: Union[None, int, float, str, WeightSpec]) -> Optional[WeightSpec]:
    """None, a WeightSpec, an int (1 binary, 2..8 integer), a float (hetero
    average bits) or ``--w`` text -> WeightSpec (or None)."""
    if w is None or isinstance(w, WeightSpec):
        return w
    if isinstance(w, bool):
        raise UsageError(f"--w {w}: {_W_HELP}")
    if isinstance(w, int):
        return parse_weight_spec(str(w))
    if isinstance(w, float):
        if not math.isfinite(w):
            raise UsageError(f"--w {w}: {_W_HELP}")
        return parse_weight_spec(repr(w) if "." in repr(w) else f"{w:.1f}")
    if isinstance(w, str):
        return parse_weight_spec(w)
    raise UsageError(f"--w {w!r}: {_W_HELP}")


def check_act_bits(a: Optional[int]) -> Optional[int]:
    """``--a``: None or 1..8."""
    if a is None:
        return None
    if isinstance(a, bool) or not isinstance(a, int) or not ACT_BITS[0] <= a <= ACT_BITS[1]:
        raise UsageError(f"--a {a}: activation bits must be {ACT_BITS[0]}..{ACT_BITS[1]}")
    return a


# -- --hetero-dist ----------------------------------------------------------------

def parse_hetero_dist(text: str) -> tuple[float, ...]:
    """``--hetero-dist "0.7,0.2,0.1"`` -> (0.7, 0.2, 0.1): fractions of
    weights with 1, 2, 3 bits, >= 0 and summing to 1. UsageError naming the
    option and the value."""
    raw = str(text)
    parts = [p.strip() for p in raw.split(",")]
    where = f"--hetero-dist {raw}"
    if not raw.strip() or any(not p for p in parts):
        raise UsageError(f"{where}: expected 1..{HETERO_MAX_PLANES} comma-separated fractions, "
                         "e.g. 0.7,0.2,0.1 (weights with 1, 2, 3 bits)")
    values = []
    for p in parts:
        try:
            values.append(float(p))
        except ValueError:
            raise UsageError(f"{where}: {p!r} is not a number") from None
    try:
        return check_dist(values)
    except ValueError as exc:
        raise UsageError(f"{where}: {str(exc).split(': ', 1)[1]}") from None


def check_hetero_option(w: Optional[WeightSpec], dist: Optional[Sequence[float]]) -> None:
    """--hetero-dist needs a fractional --w (or none) and must average to it."""
    if dist is None:
        return
    if w is not None and w.kind != "hetero":
        raise UsageError(f"--hetero-dist {format_dist(dist)}: it applies to heterogeneous binarized weights, "
                         f"but --w {w} asks for {w.describe()} weights")
    if w is not None:
        mean = dist_mean(dist)
        if abs(mean - w.bits) > HETERO_DIST_TOL:
            raise UsageError(f"--hetero-dist {format_dist(dist)} averages {mean:.6g} bits per weight, "
                             f"so it cannot give the {w.bits:g} bits of --w {w}")
