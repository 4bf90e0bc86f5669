"""The integer, hardware-ready intermediate representation.

The IR is the only contract between the frontends (which know torch) and the
emitters (which know templates). It is deliberately small: a chain of typed
nodes (:class:`Node`), each with its own checks, golden function and
serialisation, registered by its ``op`` in :data:`NODE_TYPES`:

* :class:`MatVec`: a matrix-vector layer with integer weights, the number
  formats of its input, weights and output, its folding and, for every layer
  but the last, a per-channel multi-threshold activation;
* :class:`SlidingWindow`: the windows of a convolution, in front of the
  MatVec that computes it;
* :class:`MaxPool`: a max-pool of a layer's output levels.

A *layer* is a MatVec with the window before it and the pool after it
(``Graph.layers``, ``Graph.window``, ``Graph.pool``). The graph serialises to
``lbgen.json`` (format 2: a list of nodes) plus ``.npy`` arrays, so that golden
model, simulation and report run without torch; format 1 files (layers with
``conv``/``pool`` fields) still load.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Optional

import numpy as np

if TYPE_CHECKING:
    from .huffman import HuffmanCode

IR_VERSION = 2
#: formats ``Graph.load`` reads: 1 (layers with conv/pool fields) is converted
IR_VERSIONS = (1, 2)

#: Number kinds a stream element or a weight can have.
#: ``bipolar``: value in {-1,+1}, stored as bit b = (v+1)/2 (1 bit).
#: ``uint``: unsigned k-bit level in [0, 2^k-1].
#: ``int``: signed k-bit two's complement.
#: ``log2``: power-of-two weight, code = sign bit (top) + exponent field f
#:     (k-1 bits): f = 0 is the value 0, else (-1)^sign * 2^(f-1); the
#:     exponent runs 0 .. 2^(k-1)-2 (per-channel scales absorb the rest).
#: ``hetero``: heterogeneous-bitwidth binarized weight, a sum of up to N
#:     bipolar planes with integer plane scales k_0..k_{N-1} (``scales``):
#:     value = sum over used planes i of k_i * (2*s_i - 1). Code (2N-1 bits):
#:     bits [0, N) the plane signs s_i, bits [N, 2N-1) the mask: bit N+i-1
#:     set when plane i (i >= 1) is used; plane 0 is always used, the mask is
#:     a thermometer (plane i used => plane i-1 used) and the sign bit of an
#:     unused plane is 0. Codes are not implied by values (two masks may
#:     give one value), so such a layer carries its ``weight_codes``.
#: ``ternary``: weight in {-1, 0, +1} (Li & Liu, ternary weight networks), 2
#:     bits, the code its two's complement: 00 = 0, 01 = +1, 11 = -1. So bit 0
#:     says "nonzero" and bit 1 "negative", which is all the PE reads; 10 is
#:     no code (``check_codes`` refuses it, ``decode`` reads it as the PE
#:     does, as 0).
KINDS = ("bipolar", "uint", "int", "log2", "hetero", "ternary")
#: the kinds a stream element (an input or an activation) can have; the others are weights only
STREAM_KINDS = ("bipolar", "uint", "int")
#: the kinds whose width and range are fixed: kind -> (bits, min, max)
FIXED_KINDS = {"bipolar": (1, -1, 1), "ternary": (2, -1, 1)}
#: log2 codes: sign + exponent field; 6 bits reach 2^30 already
LOG2_BITS = (2, 6)
#: hetero: number of planes and the largest plane scale
HETERO_PLANES = (1, 4)
HETERO_SCALE_MAX = 1 << 16


class IRError(ValueError):
    """An IR that breaks its own contract (bad shape, width or value)."""


@dataclass(frozen=True)
class DType:
    """Number format of one stream element or one weight."""

    kind: str
    bits: int
    scales: tuple[int, ...] = ()  # hetero only: the integer plane scales k_i

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise IRError(f"unknown number kind {self.kind!r}; expected one of {KINDS}")
        fixed = FIXED_KINDS.get(self.kind)
        if fixed and self.bits != fixed[0]:
            raise IRError(f"a {self.kind} value is {fixed[0]} bit{'s' if fixed[0] > 1 else ''} wide")
        if not 1 <= self.bits <= 64:
            raise IRError(f"bit width {self.bits} out of range 1..64")
        if self.kind == "int" and self.bits < 2:
            raise IRError("a signed integer needs at least 2 bits")
        if self.kind == "log2" and not LOG2_BITS[0] <= self.bits <= LOG2_BITS[1]:
            raise IRError(f"a log2 weight takes {LOG2_BITS[0]}..{LOG2_BITS[1]} bits (sign + exponent field), "
                          f"not {self.bits}")
        object.__setattr__(self, "scales", tuple(int(k) for k in self.scales))
        if self.kind == "hetero":
            n = len(self.scales)
            if not HETERO_PLANES[0] <= n <= HETERO_PLANES[1]:
                raise IRError(f"a hetero weight has {HETERO_PLANES[0]}..{HETERO_PLANES[1]} planes, not {n}")
            if self.bits != 2 * n - 1:
                raise IRError(f"a hetero weight of {n} planes is {2 * n - 1} bits wide, not {self.bits}")
            if any(not 1 <= k <= HETERO_SCALE_MAX for k in self.scales):
                raise IRError(f"hetero plane scales must be integers in 1..{HETERO_SCALE_MAX}: {self.scales}")
        elif self.scales:
            raise IRError(f"only hetero weights have plane scales, not {self.kind}")

    @property
    def planes(self) -> int:
        """Number of bipolar planes (hetero), else 0."""
        return len(self.scales)

    @property
    def log2_max_exp(self) -> int:
        return (1 << (self.bits - 1)) - 2

    @property
    def min(self) -> int:
        if self.kind == "log2":
            return -(1 << self.log2_max_exp)
        if self.kind == "hetero":
            return -sum(self.scales)
        if self.kind in FIXED_KINDS:
            return FIXED_KINDS[self.kind][1]
        return {"uint": 0, "int": -(1 << (self.bits - 1))}[self.kind]

    @property
    def max(self) -> int:
        if self.kind in ("log2", "hetero"):
            return -self.min
        if self.kind in FIXED_KINDS:
            return FIXED_KINDS[self.kind][2]
        return {"uint": (1 << self.bits) - 1, "int": (1 << (self.bits - 1)) - 1}[self.kind]

    def check_codes(self, codes: np.ndarray) -> None:
        """Raise IRError unless every code is a canonical code of this format."""
        c = np.asarray(codes).astype(np.uint64)
        if c.size and int(c.max()) >> self.bits:
            raise IRError(f"a code does not fit {self.bits} bits")
        if self.kind == "hetero" and c.size:
            n = self.planes
            used = self.plane_mask(c)
            signs = (c[..., None] >> np.arange(n, dtype=np.uint64)) & np.uint64(1)
            if np.any(used[..., 1:] & ~used[..., :-1]):
                raise IRError("a hetero mask is not a thermometer (plane i used without plane i-1)")
            if np.any(signs.astype(bool) & ~used):
                raise IRError("a hetero code has a sign bit set on an unused plane")
        if self.kind == "log2" and c.size:
            field = c & np.uint64((1 << (self.bits - 1)) - 1)
            if np.any((field == 0) & (c != 0)):
                raise IRError("a log2 zero code has its sign bit set")
        if self.kind == "ternary" and np.any(c == 2):
            raise IRError("10 is not a ternary code (00 = 0, 01 = +1, 11 = -1)")

    def plane_mask(self, codes: np.ndarray) -> np.ndarray:
        """hetero codes -> (..., N) bool: which planes each weight uses."""
        c = np.asarray(codes).astype(np.uint64)
        n = self.planes
        mask = (c[..., None] >> (np.uint64(n) + np.arange(n - 1, dtype=np.uint64))) & np.uint64(1)
        return np.concatenate([np.ones(c.shape + (1,), dtype=bool), mask.astype(bool)], axis=-1)

    def encode(self, values: np.ndarray) -> np.ndarray:
        """Values -> the unsigned bit patterns the hardware carries (uint64)."""
        v = np.asarray(values).astype(np.int64)
        if v.size and (v.min() < self.min or v.max() > self.max):
            raise IRError(f"value out of range for {self}: [{v.min()}, {v.max()}]")
        if self.kind == "bipolar":
            if v.size and np.any(v == 0):
                raise IRError("0 is not a bipolar value")
            return ((v + 1) // 2).astype(np.uint64)
        if self.kind == "log2":
            mag = np.abs(v)
            exp = np.zeros_like(mag)
            nz = mag > 0
            exp[nz] = np.round(np.log2(mag[nz].astype(np.float64))).astype(np.int64)
            if np.any(nz & (np.left_shift(1, exp) != mag)):
                bad = v[nz & (np.left_shift(1, exp) != mag)].ravel()[0]
                raise IRError(f"{bad} is not a log2 value (0 or +-2^e)")
            field = np.where(nz, exp + 1, 0).astype(np.uint64)
            sign = (v < 0).astype(np.uint64) << np.uint64(self.bits - 1)
            return field | sign
        if self.kind == "hetero":
            raise IRError("hetero weights have no code implied by their value; the layer carries weight_codes")
        # two's complement by wrapping to uint64, then keep the low bits
        return v.astype(np.uint64) & np.uint64((1 << self.bits) - 1)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Unsigned bit patterns -> values (int64)."""
        c = np.asarray(codes).astype(np.uint64) & np.uint64((1 << self.bits) - 1)
        if self.kind == "bipolar":
            return 2 * c.astype(np.int64) - 1
        if self.kind == "log2":
            field = (c & np.uint64((1 << (self.bits - 1)) - 1)).astype(np.int64)
            sign = ((c >> np.uint64(self.bits - 1)) & np.uint64(1)).astype(np.int64)
            mag = np.where(field > 0, np.left_shift(1, np.maximum(field - 1, 0)), 0)
            return np.where(sign == 1, -mag, mag).astype(np.int64)
        if self.kind == "hetero":
            n = self.planes
            used = self.plane_mask(c)
            signs = ((c[..., None] >> np.arange(n, dtype=np.uint64)) & np.uint64(1)).astype(np.int64)
            k = np.array(self.scales, dtype=np.int64)
            return np.sum(np.where(used, k * (2 * signs - 1), 0), axis=-1).astype(np.int64)
        if self.kind == "ternary":      # bit 0 nonzero, bit 1 negative; 10 reads as 0, as in the PE
            nz = (c & np.uint64(1)).astype(np.int64)
            return nz - 2 * (nz & (c >> np.uint64(1)).astype(np.int64))
        if self.kind == "int":
            if self.bits == 64:
                return c.view(np.int64)
            sign = np.uint64(1 << (self.bits - 1))
            return (c ^ sign).astype(np.int64) - np.int64(1 << (self.bits - 1))
        if self.bits == 64 and c.size and c.max() > np.uint64(np.iinfo(np.int64).max):
            raise IRError("a uint64 value does not fit the int64 the golden model computes in")
        return c.astype(np.int64)

    def to_json(self) -> dict:
        d: dict[str, Any] = {"kind": self.kind, "bits": self.bits}
        if self.scales:
            d["scales"] = list(self.scales)
        return d

    @staticmethod
    def from_json(d: dict) -> "DType":
        scales = d.get("scales", [])
        if not isinstance(scales, list):
            raise IRError(f"number format {d!r}: scales must be a list")
        return DType(str(d["kind"]), int(d["bits"]), tuple(int(k) for k in scales))

    def __str__(self) -> str:
        if self.kind in FIXED_KINDS:
            return self.kind    # "bipolar", "ternary": as --w spells them
        if self.kind == "hetero":
            return f"hetero{self.planes}[{','.join(str(k) for k in self.scales)}]"
        if self.kind == "log2":
            return f"log2:{self.bits}"  # as --w spells it; "log24" would read as a number
        return f"{self.kind}{self.bits}"


def signed_bits_for(lo: int, hi: int) -> int:
    """Smallest two's complement width holding every integer in [lo, hi]."""
    bits = 2
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


#: element-wise ops the host may apply to raw features before the input quantizer
HOST_OPS = ("Mul", "Div", "Add", "Sub", "RSub")


@dataclass(frozen=True)
class HostOp:
    """One float32 element-wise op of the model's preprocessing, ``x op const``
    (``RSub``: ``const - x``), run by the host in front of the input quantizer.

    Models often scale or shift their raw input before the first quantizer
    (FINN's ``2x - 1``, a mean/std normalisation). Folding that into a new scale
    and zero point would change float32 rounding at the quantizer's steps, so
    the host replays the ops themselves, in the model's order and in float32,
    which is what torch, Brevitas and ONNX runtimes compute. ``const`` holds
    one value, or one per channel: feature ``i`` of a frame (in the order the
    model takes it, flat) uses ``const[(i // repeat) % len(const)]``.
    """

    op: str
    const: tuple[float, ...]
    repeat: int = 1

    def __post_init__(self) -> None:
        if self.op not in HOST_OPS:
            raise IRError(f"unknown preprocessing op {self.op!r}; expected one of {HOST_OPS}")
        object.__setattr__(self, "const", tuple(float(np.float32(c)) for c in self.const))
        if not self.const or not all(math.isfinite(c) for c in self.const):
            raise IRError(f"preprocessing {self.op}: constants must be finite and not empty")
        if self.op == "Div" and any(c == 0 for c in self.const):
            raise IRError("preprocessing Div by 0")
        if int(self.repeat) < 1:
            raise IRError(f"preprocessing {self.op}: repeat {self.repeat} must be positive")

    def apply(self, x: np.ndarray) -> np.ndarray:
        """(N, features) float32 -> the same after this op, in float32."""
        x = np.asarray(x, dtype=np.float32)
        c = np.asarray(self.const, dtype=np.float32)
        if c.size > 1:
            idx = (np.arange(x.shape[-1]) // self.repeat) % c.size
            c = c[idx]
        if self.op == "Mul":
            return x * c
        if self.op == "Div":
            return x / c
        if self.op == "Add":
            return x + c
        return x - c if self.op == "Sub" else c - x

    def describe(self) -> str:
        c = f"{self.const[0]:g}" if len(self.const) == 1 else f"c[{len(self.const)}]"
        return {"Mul": f"x * {c}", "Div": f"x / {c}", "Add": f"x + {c}", "Sub": f"x - {c}",
                "RSub": f"{c} - x"}[self.op]

    def to_json(self) -> dict:
        d: dict[str, Any] = {"op": self.op, "const": list(self.const)}
        if self.repeat != 1:
            d["repeat"] = int(self.repeat)
        return d

    @staticmethod
    def from_json(d: dict) -> "HostOp":
        if not isinstance(d, dict) or not isinstance(d.get("const"), list):
            raise IRError(f"bad preprocessing op {d!r}")
        return HostOp(str(d["op"]), tuple(float(c) for c in d["const"]), int(d.get("repeat", 1)))


@dataclass(frozen=True)
class InputQuant:
    """How the host turns a float feature x into the input level the hardware takes.

    This mirrors the model's own input quantizer, in float32, so the host can
    feed float features and match the model exactly. ``rule``:

    * ``"clip"`` (lbgen.quant): level = round_half_even(clip(x, 0, levels*step) / step)
      for ``uint``; bipolar: level = 1 if x >= 0 else 0 (streamed as +-1).
    * ``"affine"`` (Brevitas, QONNX ``Quant``): q = clip(rnd(x / step + zero_point),
      qmin, qmax), level = q + offset (a signed q streamed as an unsigned level).

    ``pre``: the model's preprocessing in front of its quantizer, replayed in
    float32 first (:class:`HostOp`). ``wrap``: out-of-range values wrap around
    modulo the level count instead of saturating (an ``ap_fixed`` input with
    ``AP_WRAP``, as ``--input-format`` spells it).
    """

    dtype: DType
    step: float
    rule: str = "clip"
    zero_point: float = 0.0
    qmin: int = 0
    qmax: int = 0
    offset: int = 0
    rounding: str = "ROUND"
    pre: tuple[HostOp, ...] = ()
    wrap: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "pre", tuple(self.pre))
        if self.wrap and self.rule != "affine":
            raise IRError("only an affine input quantizer can wrap around")
        if self.rule not in ("clip", "affine"):
            raise IRError(f"unknown input quantizer rule {self.rule!r}")
        if self.rule == "affine":
            if self.dtype.kind != "uint":
                raise IRError(f"an affine input quantizer streams uint levels, not {self.dtype}")
            if self.rounding not in ROUNDING_MODES:
                raise IRError(f"unknown rounding mode {self.rounding!r}")
            if not (self.dtype.min <= self.qmin + self.offset <= self.qmax + self.offset <= self.dtype.max):
                raise IRError(f"input levels {self.qmin}+{self.offset}..{self.qmax}+{self.offset} do not fit "
                              f"{self.dtype}")
        if not (math.isfinite(self.step) and self.step > 0):
            raise IRError(f"input step {self.step!r} must be positive and finite")

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """(N, features) raw float features, flat in the order the model takes
        them -> (N, features) integer input values (bipolar as -1/+1)."""
        x = np.asarray(x, dtype=np.float32)
        for op in self.pre:
            x = op.apply(x)
        if self.dtype.kind == "bipolar":
            return np.where(x >= 0, 1, -1).astype(np.int64)
        if self.dtype.kind != "uint":
            raise IRError(f"input quantizer of kind {self.dtype.kind} is not supported")
        step = np.float32(self.step)
        if self.rule == "affine":
            y = x / step
            if self.zero_point != 0.0:
                y = y + np.float32(self.zero_point)
            q = ROUNDING_MODES[self.rounding](y)
            if self.wrap:
                span = self.qmax - self.qmin + 1
                q = np.mod(np.clip(q.astype(np.float64), -2.0 ** 62, 2.0 ** 62) - self.qmin, span) + self.qmin
            q = np.clip(q, self.qmin, self.qmax)
            return q.astype(np.int64) + self.offset
        top = np.float32(self.dtype.max) * step
        return np.rint(np.clip(x, np.float32(0), top) / step).astype(np.int64)

    def describe(self) -> str:
        """One line: what the host computes from a raw feature x, and what it streams."""
        steps = [op.describe() for op in self.pre]
        if self.dtype.kind == "bipolar":
            steps.append("+1 if x >= 0 else -1, streamed as bit (v+1)/2")
        elif self.rule == "clip":
            steps.append(f"round_half_even(clip(x, 0, {self.dtype.max}*{self.step:g}) / {self.step:g})")
        else:
            zp = f" + {self.zero_point:g}" if self.zero_point else ""
            how = "wrapped into" if self.wrap else "clipped to"
            steps.append(f"{self.rounding.lower()}(x / {self.step:g}{zp}) {how} [{self.qmin}, {self.qmax}]"
                         + (f" + {self.offset}" if self.offset else ""))
        return " -> ".join(steps) + f" -> {self.dtype} levels"

    def to_json(self) -> dict:
        d: dict[str, Any] = {"dtype": self.dtype.to_json(), "step": float(self.step)}
        if self.rule != "clip":
            d.update(rule=self.rule, zero_point=float(self.zero_point), qmin=int(self.qmin), qmax=int(self.qmax),
                     offset=int(self.offset), rounding=self.rounding)
        if self.pre:
            d["pre"] = [op.to_json() for op in self.pre]
        if self.wrap:
            d["wrap"] = True
        return d

    @staticmethod
    def from_json(d: dict) -> "InputQuant":
        extra = {k: d[k] for k in ("rule", "zero_point", "qmin", "qmax", "offset", "rounding") if k in d}
        try:
            pre = d.get("pre", [])
            if not isinstance(pre, list):
                raise IRError(f"preprocessing must be a list, not {pre!r}")
            return InputQuant(DType.from_json(d["dtype"]), float(d["step"]), **extra,
                              pre=tuple(HostOp.from_json(p) for p in pre), wrap=bool(d.get("wrap", False)))
        except (TypeError, ValueError, KeyError) as exc:
            raise IRError(f"bad input quantizer {d!r}: {exc}") from None


#: float32 rounding of an affine quantizer, as numpy functions (np.rint: half to even, as torch.round)
ROUNDING_MODES = {"ROUND": np.rint, "FLOOR": np.floor, "CEIL": np.ceil, "ROUND_TO_ZERO": np.trunc,
                  "HALF_UP": lambda y: np.floor(y + np.float32(0.5))}


@dataclass
class Activation:
    """A per-channel activation before threshold folding.

    ``levels(acc)`` maps accumulators (int64, shape (R, channels)) to output
    levels of ``out_dtype`` for every channel at once: the exact float
    expression (bias, batch-norm, scales, clipping, rounding) that the
    frontend found between this layer and the next quantizer. It is never
    serialised: ``fold_thresholds`` replaces it with integer thresholds.
    """

    out_dtype: DType
    levels: Callable[[np.ndarray], np.ndarray]
    describe: str = ""


@dataclass(frozen=True)
class ConvGeom:
    """Geometry of a convolution lowered to a matrix-vector layer.

    Feature maps stream in NHWC order (pixels row-major, each pixel's
    channels in order), so a sliding-window unit in front of the matrix-vector
    engine can hand it one window per output pixel. The window vector of
    output pixel (oy, ox) has k_h*k_w*in_ch elements; element
    (ky*k_w + kx)*in_ch + c is input pixel (oy*s_h - p_h + ky, ox*s_w - p_w + kx),
    channel c. The layer's weight columns use the same order.

    Padding is zero *in value*, as torch pads: a padded position contributes
    nothing to the sum. ``pad`` is the input value a padded position takes,
    the level that means the value 0: 0 for a plain uint or int input, the
    zero level of a signed or zero-pointed input streamed as unsigned levels
    (``u = q + offset``; the layer's thresholds already subtract ``pad * sum(w)``
    per channel, so the padded positions cancel exactly). The sliding-window
    unit sends its code at padded positions. For bipolar inputs there is no
    code for 0 (code 0 is -1), so ``pad`` stays 0, the hardware sends code 0
    and the emitters start the accumulator of each border pixel with the
    correction (``padding_corrections``).
    """

    in_ch: int
    in_h: int
    in_w: int
    k_h: int
    k_w: int
    s_h: int = 1
    s_w: int = 1
    p_h: int = 0
    p_w: int = 0
    pad: int = 0             # the input value of a padded position (see above)

    def check(self, where: str) -> None:
        if min(self.in_ch, self.in_h, self.in_w, self.k_h, self.k_w, self.s_h, self.s_w) < 1:
            raise IRError(f"{where}: conv sizes, kernel and stride must be positive ({self})")
        if not (0 <= self.p_h < self.k_h and 0 <= self.p_w < self.k_w):
            raise IRError(f"{where}: conv padding ({self.p_h}, {self.p_w}) must be >= 0 and below the "
                          f"kernel ({self.k_h}, {self.k_w})")
        if self.out_h < 1 or self.out_w < 1:
            raise IRError(f"{where}: a {self.k_h}x{self.k_w} kernel does not fit the padded "
                          f"{self.in_h}x{self.in_w} input")

    @property
    def out_h(self) -> int:
        return (self.in_h + 2 * self.p_h - self.k_h) // self.s_h + 1

    @property
    def out_w(self) -> int:
        return (self.in_w + 2 * self.p_w - self.k_w) // self.s_w + 1

    @property
    def in_len(self) -> int:
        """Elements of one input frame."""
        return self.in_h * self.in_w * self.in_ch

    @property
    def pixels(self) -> int:
        """Output pixels (windows) per frame."""
        return self.out_h * self.out_w

    @property
    def window(self) -> int:
        return self.k_h * self.k_w * self.in_ch

    def window_index(self) -> np.ndarray:
        """(pixels, window) index into the flat NHWC input frame, -1 where padded."""
        oy, ox = np.divmod(np.arange(self.pixels), self.out_w)
        ky, kx = np.divmod(np.arange(self.k_h * self.k_w), self.k_w)
        y = oy[:, None] * self.s_h - self.p_h + ky[None, :]           # (pixels, k_h*k_w)
        x = ox[:, None] * self.s_w - self.p_w + kx[None, :]
        inside = (y >= 0) & (y < self.in_h) & (x >= 0) & (x < self.in_w)
        base = (y * self.in_w + x) * self.in_ch
        idx = base[:, :, None] + np.arange(self.in_ch)[None, None, :]
        idx = np.where(inside[:, :, None], idx, -1)
        return idx.reshape(self.pixels, self.window)

    def windows(self, x: np.ndarray, pad_value: int = 0) -> np.ndarray:
        """(N, in_len) frames -> (N, pixels, window) window vectors (im2col)."""
        idx = self.window_index()
        x = np.asarray(x)
        cols = x[:, np.where(idx < 0, 0, idx)]
        return np.where(idx[None] < 0, pad_value, cols)

    def check_pad(self, itype: DType, where: str) -> None:
        """``pad`` is a value of the input format; a bipolar input pads with 0
        (no code: ``padding_corrections`` makes up for it)."""
        if itype.kind == "bipolar":
            if self.pad != 0:
                raise IRError(f"{where}: a bipolar input has no code for the pad value {self.pad}; its padding "
                              "is the value 0 (border corrections), pad must be 0")
        elif not itype.min <= self.pad <= itype.max:
            raise IRError(f"{where}: pad value {self.pad} is outside the input format {itype} "
                          f"[{itype.min}, {itype.max}]")

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        if not self.pad:
            del d["pad"]                 # written only when set: older lbgen.json files have none
        return d

    @staticmethod
    def from_json(d: dict) -> "ConvGeom":
        return ConvGeom(**{k: int(d[k]) for k in ("in_ch", "in_h", "in_w", "k_h", "k_w", "s_h", "s_w",
                                                  "p_h", "p_w")}, pad=int(d.get("pad", 0)))


@dataclass(frozen=True)
class PoolGeom:
    """Max-pool on a layer's output levels (NHWC), torch's floor mode, no padding.

    Output (oy, ox, c) = max over ky, kx < k of input (oy*s + ky, ox*s + kx, c);
    rows and columns that do not fill a window are dropped. Levels compare as
    unsigned codes, which orders bipolar (-1 < +1) and uint levels alike.
    """

    ch: int
    in_h: int
    in_w: int
    k: int
    s: int

    def check(self, where: str) -> None:
        if min(self.ch, self.in_h, self.in_w, self.k, self.s) < 1:
            raise IRError(f"{where}: max-pool sizes must be positive ({self})")
        if self.s != self.k:
            raise IRError(f"{where}: max-pool stride {self.s} != kernel {self.k}; only stride = kernel "
                          "(torch's default) is supported")
        if self.out_h < 1 or self.out_w < 1:
            raise IRError(f"{where}: a {self.k}x{self.k} max-pool does not fit the {self.in_h}x{self.in_w} map")

    @property
    def out_h(self) -> int:
        return (self.in_h - self.k) // self.s + 1

    @property
    def out_w(self) -> int:
        return (self.in_w - self.k) // self.s + 1

    @property
    def out_len(self) -> int:
        return self.out_h * self.out_w * self.ch

    def apply(self, x: np.ndarray) -> np.ndarray:
        """(N, in_h*in_w*ch) levels -> (N, out_h*out_w*ch) maxima."""
        n = x.shape[0]
        m = x.reshape(n, self.in_h, self.in_w, self.ch)
        m = m[:, :self.out_h * self.s, :self.out_w * self.s, :]
        m = m.reshape(n, self.out_h, self.k, self.out_w, self.k, self.ch).max(axis=(2, 4))
        return m.reshape(n, -1)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @staticmethod
    def from_json(d: dict) -> "PoolGeom":
        return PoolGeom(**{k: int(d[k]) for k in ("ch", "in_h", "in_w", "k", "s")})


class Node:
    """One typed node of the graph: a unit of the dataflow.

    A node takes a stream of ``in_len`` elements per frame and gives one of
    ``out_len``; ``check`` tests its own invariants, ``golden`` computes it
    (values in, values out, (N, in_len) -> (N, out_len), exact integers),
    ``to_json``/``from_json`` serialise it (arrays beside it, by name:
    ``ARRAYS``). A new kind of node (an Add, a Concat) is a subclass
    registered with :func:`node_type`; ``Graph.validate`` checks how nodes
    link up.
    """

    op: ClassVar[str]
    #: names of the numpy arrays saved beside lbgen.json (``ir/<node>.<array>.npy``)
    ARRAYS: ClassVar[tuple[str, ...]] = ()
    name: str

    @property
    def in_len(self) -> int:
        raise NotImplementedError

    @property
    def out_len(self) -> int:
        raise NotImplementedError

    def check(self, where: str) -> None:
        raise NotImplementedError

    def golden(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def to_json(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_json(cls, d: dict, arrays: dict[str, np.ndarray]) -> "Node":
        raise NotImplementedError


#: op -> node class (``lbgen.json`` names a node's class by its op)
NODE_TYPES: dict[str, type[Node]] = {}


def node_type(cls):
    """Class decorator: register a node class under its ``op``."""
    if cls.op in NODE_TYPES:
        raise ValueError(f"node op {cls.op!r} is taken by {NODE_TYPES[cls.op].__name__}")
    NODE_TYPES[cls.op] = cls
    return cls


@node_type
@dataclass
class SlidingWindow(Node):
    """A convolution's sliding-window unit: one window vector per output pixel.

    It takes a feature map (NHWC, ``geom.in_len`` elements) and streams, for
    every output pixel in row-major order, the ``geom.window`` elements of its
    window (``ConvGeom.window_index``); padded positions carry the value
    ``geom.pad``. The MatVec after it applies its matrix to every window.
    """

    op: ClassVar[str] = "sliding_window"
    name: str
    geom: ConvGeom

    @property
    def in_len(self) -> int:
        return self.geom.in_len

    @property
    def out_len(self) -> int:
        return self.geom.pixels * self.geom.window

    def check(self, where: str) -> None:
        self.geom.check(where)

    def golden(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.int64)
        return self.geom.windows(x, pad_value=self.geom.pad).reshape(x.shape[0], -1)

    def to_json(self) -> dict:
        return {"op": self.op, "name": self.name, "geom": self.geom.to_json()}

    @classmethod
    def from_json(cls, d: dict, arrays: dict[str, np.ndarray]) -> "SlidingWindow":
        return cls(str(d["name"]), ConvGeom.from_json(d["geom"]))


@node_type
@dataclass
class MaxPool(Node):
    """A max-pool of a layer's output levels (``PoolGeom``), NHWC in and out."""

    op: ClassVar[str] = "max_pool"
    name: str
    geom: PoolGeom

    @property
    def in_len(self) -> int:
        return self.geom.in_h * self.geom.in_w * self.geom.ch

    @property
    def out_len(self) -> int:
        return self.geom.out_len

    def check(self, where: str) -> None:
        self.geom.check(where)

    def golden(self, x: np.ndarray) -> np.ndarray:
        """Maxima of the values: the level -> value map is increasing (bipolar
        2l - 1, uint the level), so pooling values or levels is the same."""
        return self.geom.apply(np.asarray(x, dtype=np.int64))

    def to_json(self) -> dict:
        return {"op": self.op, "name": self.name, "geom": self.geom.to_json()}

    @classmethod
    def from_json(cls, d: dict, arrays: dict[str, np.ndarray]) -> "MaxPool":
        return cls(str(d["name"]), PoolGeom.from_json(d["geom"]))


@dataclass(frozen=True)
class TopK:
    """A hardware top-K unit after the last layer (``--topk K``), like FINN's LabelSelect.

    It streams, per frame, the indices of the K largest classes, largest first,
    ties to the lowest index (as ``torch.topk``/``torch.argmax``). Classes are
    ordered by their logits, not by raw accumulators: the exact integer score
    ``acc_c * S_c + B_c`` (``score_terms``), or, when the last layer is
    thresholded, by its output levels. The unit's parameters (score width,
    whether it needs the multiplier) are derived from the output layer, never
    stored: only K is.
    """

    k: int

    def check(self, out: "MatVec") -> None:
        classes = out.mh
        if isinstance(self.k, bool) or not isinstance(self.k, (int, np.integer)) or not 1 <= self.k <= classes:
            raise IRError(f"topk: K={self.k!r} must be an integer in 1..{classes} (the output layer "
                          f"{out.name!r} has {classes} classes)")

    def to_json(self) -> dict:
        return {"k": int(self.k)}

    @staticmethod
    def from_json(d: dict) -> "TopK":
        if not isinstance(d, dict) or set(d) != {"k"} or not isinstance(d["k"], int) or isinstance(d["k"], bool):
            raise IRError(f"topk {d!r}: expected {{\"k\": <integer>}}")
        return TopK(int(d["k"]))


@dataclass(frozen=True)
class TopKTerms:
    """How the top-K unit scores a class (derived from the output layer by ``topk_terms``).

    ``use_scale``: score_c = x_c * scale[c] + bias[c] (one ROM word per class, a
    signed multiply); else score_c = x_c, the element of the last layer's stream
    itself (every S_c equal and positive and every B_c equal, or levels).
    """

    classes: int
    k: int
    idx_bits: int
    in_bits: int                 # bits of an element of the last layer's stream
    in_signed: bool              # raw accumulators (signed) or levels (unsigned codes)
    use_scale: bool
    scale: tuple[int, ...]       # S_c (use_scale only)
    bias: tuple[int, ...]        # B_c (use_scale only)
    shift: int                   # E: logit_c = score_c / 2^E (raw accumulators)
    scale_bits: int
    bias_bits: int
    score_bits: int


def topk_terms(graph: "Graph") -> TopKTerms:
    """The exact integer scores of the top-K unit: see TopK, TopKTerms, dyadic_terms."""
    assert graph.topk is not None
    out = graph.layers[-1]
    k, classes = int(graph.topk.k), out.mh
    if out.thresholds is not None:
        # levels: the order of the levels (bipolar codes order as -1 < +1), ties to the lowest index
        bits = out.out_dtype.bits
        return TopKTerms(classes, k, index_bits(classes), bits, False, False, (), (), 0, 1, 1, bits + 1)
    s, b, e = dyadic_terms(out.out_scale, out.out_bias)
    if out.out_zero is not None:        # logit = (acc - zero) * scale + bias: the zero joins the bias
        b = [bc - int(z) * sc for sc, bc, z in zip(s, b, np.asarray(out.out_zero, dtype=np.int64))]
    a = out.acc_bits
    lo, hi = -(1 << (a - 1)), (1 << (a - 1)) - 1
    if len(set(s)) == 1 and s[0] > 0 and len(set(b)) == 1:
        return TopKTerms(classes, k, index_bits(classes), a, True, False, (), (), e, 1, 1, a + 1)
    ends = [x * sc + bc for sc, bc in zip(s, b) for x in (lo, hi)]
    return TopKTerms(classes, k, index_bits(classes), a, True, True, tuple(s), tuple(b), e,
                     signed_bits_for(min(s), max(s)), signed_bits_for(min(b), max(b)),
                     signed_bits_for(min(ends), max(ends)))


def index_bits(classes: int) -> int:
    """Bits of a class index: enough for classes - 1, at least 1."""
    return max(1, (int(classes) - 1).bit_length())


def dyadic_terms(scale: np.ndarray, bias: np.ndarray) -> tuple[list[int], list[int], int]:
    """Integers S_c, B_c and one shift E with scale[c] = S_c / 2^E and bias[c] = B_c / 2^E exactly.

    A finite float64 is a dyadic rational, so this is exact; E is the smallest
    shift that makes every value an integer. The top-K unit orders classes by
    acc_c * S_c + B_c = 2^E * logit_c, which is the logits' order with no rounding.
    """
    from fractions import Fraction

    vals = [Fraction(float(v)) for v in np.asarray(scale, dtype=np.float64).ravel()] + \
           [Fraction(float(v)) for v in np.asarray(bias, dtype=np.float64).ravel()]
    e = max((f.denominator.bit_length() - 1 for f in vals), default=0)
    ints = [int(f * (1 << e)) for f in vals]
    n = len(ints) // 2
    return ints[:n], ints[n:], e


@node_type
@dataclass
class MatVec(Node):
    """One matrix-vector layer: y = W x, then thresholds (or raw output).

    Weights are the integer *values* (bipolar as -1/+1), shape (mh, mw).
    Output channel c is computed by PE c % pe in neuron fold c // pe; input i
    sits in lane i % simd of synapse fold i // simd.

    The layer applies W to ``pixels`` vectors per frame: one for a fully
    connected layer, one per output pixel behind a :class:`SlidingWindow`
    (a convolution), so a frame of pixels*mw inputs gives pixels*mh outputs
    (NHWC). A :class:`MaxPool` after it pools its output levels. After a
    convolution, a fully connected layer's vector is the NHWC frame (the
    frontend reorders the columns of a torch Flatten + Linear).

    A hidden layer carries ``thresholds`` (mh, n_thresholds), ascending per
    row, and ``threshold_invert`` (mh,): the output level is
    count(acc >= t) or, where inverted, (2^bits - 1) - count(acc >= t). The
    last layer usually carries none and emits the raw accumulator; ``out_zero``,
    ``out_scale`` and ``out_bias`` turn it into logits (:meth:`logits`):
    logit = (acc - out_zero) * out_scale + out_bias. ``out_zero`` (integers,
    None: 0) is the input's zero level times each row's weight sum, less a
    bias that lies on the accumulator's grid; kept apart from the float bias so
    that logits which tie in the model tie here too. A last layer followed by a
    quantizer in the model is thresholded like a hidden one and streams levels;
    its ``out_scale``/``out_bias`` (optional) dequantize them: logit = value *
    out_scale + out_bias, value the level (bipolar as -1/+1).
    """

    name: str
    mw: int
    mh: int
    weights: np.ndarray
    wtype: DType
    itype: DType
    source: str = ""  # the module path in the original model
    pe: int = 1
    simd: int = 1
    acc_bits: int = 32
    pe_kind: str = ""
    activation: Optional[Activation] = None
    thresholds: Optional[np.ndarray] = None
    threshold_invert: Optional[np.ndarray] = None
    odtype: Optional[DType] = None
    out_scale: Optional[np.ndarray] = None
    out_zero: Optional[np.ndarray] = None
    out_bias: Optional[np.ndarray] = None
    #: (mh, mw) uint64 codes of the weights, for formats whose code is not
    #: implied by the value (hetero); None: ``wtype.encode(weights)``
    weight_codes: Optional[np.ndarray] = None
    #: Huffman-coded weights (``lbgen.passes.compress``): the canonical code over
    #: the weight codes, and the encoded streams of the pe*simd lanes
    #: (``lbgen.huffman.lane_sequences``), back to back in ``huffman_stream``
    #: (uint8 bits), ``huffman_lane_bits[i]`` bits for lane i; None: a plain ROM
    huffman: Optional["HuffmanCode"] = None
    huffman_stream: Optional[np.ndarray] = None
    huffman_lane_bits: Optional[np.ndarray] = None
    #: (mh,) bit width of every output channel of an int layer whose channels
    #: differ in precision (--bits-budget): channel c's weights lie in
    #: +-(2^(b_c-1) - 1), stored in the layer's ``wtype``; None: all ``wtype``
    channel_bits: Optional[np.ndarray] = None
    #: matrix-vector products per frame: the output pixels of the sliding
    #: window in front of the layer, else 1
    pixels: int = 1

    op: ClassVar[str] = "matvec"
    ARRAYS: ClassVar[tuple[str, ...]] = (
        "weights", "weight_codes", "thresholds", "threshold_invert", "out_scale", "out_bias", "out_zero",
        "huffman_stream", "huffman_lane_bits", "channel_bits")

    def codes(self) -> np.ndarray:
        """The weight codes the hardware stores, (mh, mw) uint64."""
        if self.weight_codes is not None:
            return np.asarray(self.weight_codes).astype(np.uint64)
        return self.wtype.encode(self.weights)

    def logits(self, acc: np.ndarray) -> np.ndarray:
        """(N, mh) accumulators of the output layer (or the level values of a
        thresholded one) -> float64 logits; without a dequantization, the values."""
        a = np.asarray(acc, dtype=np.int64)
        if self.out_scale is None:
            return a.astype(np.float64)
        if self.out_zero is not None:
            a = a - np.asarray(self.out_zero, dtype=np.int64)[None, :]
        return a * np.asarray(self.out_scale, dtype=np.float64)[None, :] \
            + np.asarray(self.out_bias, dtype=np.float64)[None, :]

    @property
    def weight_bits_avg(self) -> float:
        """Realised bits per weight: the mean number of planes used (hetero), the mean
        channel width (per-channel widths), else the code width."""
        if self.wtype.kind == "hetero":
            return float(self.wtype.plane_mask(self.codes()).sum(axis=-1).mean())
        if self.channel_bits is not None:
            return float(np.mean(self.channel_bits))
        return float(self.wtype.bits)

    # -- derived, never stored -------------------------------------------
    @property
    def nf(self) -> int:
        """Neuron folds: output beats per frame."""
        return self.mh // self.pe

    @property
    def sf(self) -> int:
        """Synapse folds: input beats per output fold."""
        return self.mw // self.simd

    @property
    def in_len(self) -> int:
        """Elements of one input frame: ``pixels`` vectors of mw."""
        return self.pixels * self.mw

    @property
    def out_len(self) -> int:
        """Elements of one output frame, before any pool: ``pixels`` vectors of mh."""
        return self.pixels * self.mh

    @property
    def cycles(self) -> int:
        """Cycles per frame at initiation interval 1: NF*SF per matrix-vector
        product (``Graph.cycles`` adds what the window in front may cost)."""
        return self.pixels * self.nf * self.sf

    @property
    def is_output(self) -> bool:
        """True when the layer streams raw accumulators (an unthresholded last layer)."""
        return self.thresholds is None

    @property
    def out_dtype(self) -> DType:
        """Format of one element of this layer's output stream."""
        if self.thresholds is None:
            return DType("int", self.acc_bits)
        assert self.odtype is not None
        return self.odtype

    def acc_range(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact per-channel bounds of the accumulator over all inputs."""
        w = self.weights.astype(np.int64)
        lo_in, hi_in = self.itype.min, self.itype.max
        if self.itype.kind == "bipolar":
            # the input is +-1, never 0
            return -np.abs(w).sum(axis=1), np.abs(w).sum(axis=1)
        pos = np.where(w > 0, w, 0)
        neg = np.where(w < 0, w, 0)
        lo = pos.sum(axis=1) * lo_in + neg.sum(axis=1) * hi_in
        hi = pos.sum(axis=1) * hi_in + neg.sum(axis=1) * lo_in
        return lo, hi

    # -- the node ------------------------------------------------------------
    def check(self, where: str) -> None:
        """Sizes, folding, weights and their codes, per-channel widths, Huffman streams."""
        if self.mw <= 0 or self.mh <= 0:
            raise IRError(f"{where}: zero-sized layer ({self.mh}x{self.mw})")
        if self.pe < 1 or self.simd < 1 or self.pixels < 1:
            raise IRError(f"{where}: PE={self.pe}, SIMD={self.simd} and pixels={self.pixels} must be positive")
        if not 2 <= self.acc_bits <= 64:
            raise IRError(f"{where}: acc_bits={self.acc_bits} out of range 2..64")
        if self.weights.shape != (self.mh, self.mw):
            raise IRError(f"{where}: weights shape {self.weights.shape} != ({self.mh}, {self.mw})")
        w = self.weights
        if w.size and (w.min() < self.wtype.min or w.max() > self.wtype.max):
            raise IRError(f"{where}: weights outside {self.wtype}")
        if self.wtype.kind == "bipolar" and np.any(w == 0):
            raise IRError(f"{where}: a bipolar weight is 0")
        _check_weight_codes(self, where)
        _check_channel_bits(self, where)
        _check_huffman(self, where)
        if self.mh % self.pe or self.mw % self.simd:
            raise IRError(f"{where}: PE={self.pe} must divide MH={self.mh} and SIMD={self.simd} must divide "
                          f"MW={self.mw}")

    def golden(self, x: np.ndarray) -> np.ndarray:
        """Input values -> output values: the raw accumulators of an output
        layer, else the threshold levels as values (bipolar as -1/+1)."""
        from . import golden

        acc = golden.accumulate(self, x)
        return acc if self.is_output else golden.level_values(self, golden.threshold_levels(self, acc))

    def to_json(self) -> dict:
        """The layer without its arrays (``Graph.save`` writes those)."""
        if self.activation is not None:
            raise IRError(f"layer {self.name!r}: fold thresholds before saving")
        d: dict[str, Any] = {
            "op": self.op, "name": self.name, "source": self.source, "mw": self.mw, "mh": self.mh,
            "wtype": self.wtype.to_json(), "itype": self.itype.to_json(),
            "odtype": self.odtype.to_json() if self.odtype else None,
            "pe": self.pe, "simd": self.simd, "acc_bits": self.acc_bits, "pe_kind": self.pe_kind,
        }
        if self.pixels != 1:
            d["pixels"] = self.pixels
        if self.huffman is not None:
            d["huffman"] = self.huffman.to_json()
        return d

    @classmethod
    def from_json(cls, d: dict, arrays: dict[str, np.ndarray]) -> "MatVec":
        where = f"layer {d['name']!r}"
        if arrays.get("weights") is None:
            raise IRError(f"{where} has no weights")

        def fmt(key: str) -> DType:
            try:
                return DType.from_json(d[key])
            except IRError as exc:
                raise IRError(f"{where} {key}: {exc}") from None

        return cls(
            name=str(d["name"]), source=str(d.get("source", "")), mw=int(d["mw"]), mh=int(d["mh"]),
            weights=arrays["weights"], wtype=fmt("wtype"), itype=fmt("itype"),
            odtype=fmt("odtype") if d.get("odtype") else None,
            pe=int(d["pe"]), simd=int(d["simd"]), acc_bits=int(d["acc_bits"]), pe_kind=str(d["pe_kind"]),
            pixels=int(d.get("pixels", 1)),
            huffman=_huffman_from_json(d) if d.get("huffman") is not None else None,
            **{key: arrays.get(key) for key in cls.ARRAYS if key != "weights"})


@dataclass
class Graph:
    """A quantized network as a chain of typed nodes, input first.

    ``layers`` are its MatVec nodes; a layer's sliding window sits right
    before it and its max-pool right after it (``window``, ``pool``).
    """

    name: str
    input: InputQuant
    nodes: list[Node] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    #: a top-K unit after the last layer (``--topk``); None: the last layer's stream is the output
    topk: Optional[TopK] = None

    # -- layers ----------------------------------------------------------------
    @property
    def layers(self) -> list[MatVec]:
        """The matrix-vector layers, in order."""
        return [n for n in self.nodes if isinstance(n, MatVec)]

    @property
    def output(self) -> MatVec:
        return self.layers[-1]

    @property
    def in_len(self) -> int:
        """Elements of one input frame (what the first node takes)."""
        return self.nodes[0].in_len

    def _neighbour(self, layer: MatVec, step: int, kind: type) -> Any:
        i = self._index(layer) + step
        node = self.nodes[i] if 0 <= i < len(self.nodes) else None
        return node if isinstance(node, kind) else None

    def _index(self, layer: MatVec) -> int:
        for i, node in enumerate(self.nodes):
            if node is layer or (isinstance(node, MatVec) and node.name == layer.name):
                return i
        raise KeyError(layer.name)

    def window(self, layer: MatVec) -> Optional[SlidingWindow]:
        """The sliding window in front of ``layer`` (a convolution), else None."""
        return self._neighbour(layer, -1, SlidingWindow)

    def conv(self, layer: MatVec) -> Optional[ConvGeom]:
        """The convolution geometry of ``layer``, None for a fully connected one."""
        window = self.window(layer)
        return window.geom if window else None

    def pool(self, layer: MatVec) -> Optional[PoolGeom]:
        """The max-pool after ``layer``, else None."""
        node = self._neighbour(layer, 1, MaxPool)
        return node.geom if node else None

    def layer_in_len(self, layer: MatVec) -> int:
        """Elements of the frame the layer takes (its window's input for a convolution)."""
        conv = self.conv(layer)
        return conv.in_len if conv else layer.in_len

    def layer_out_len(self, layer: MatVec) -> int:
        """Elements of the frame the layer gives (after its pool)."""
        pool = self.pool(layer)
        return pool.out_len if pool else layer.out_len

    def cycles(self, layer: MatVec) -> int:
        """Cycles per frame of the layer at initiation interval 1: NF*SF per
        matrix-vector product, or the input beats where a strided 1x1 window
        reads more than the engine computes."""
        return max(layer.cycles, self.layer_in_len(layer) // layer.simd)

    def output_stream(self) -> tuple[DType, int, int]:
        """(element format, elements per beat, beats per frame) of the top's output stream:
        K class indices in one beat with a top-K unit, else the last layer's stream."""
        last = self.layers[-1]
        if self.topk is not None:
            return DType("uint", index_bits(last.mh)), int(self.topk.k), 1
        return last.out_dtype, last.pe, last.out_len // last.pe

    def layer(self, name: str) -> MatVec:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def replace(self, **changes: Any) -> "Graph":
        """A copy with fields changed; ``layers=`` swaps the MatVec nodes, in
        order, keeping windows and pools where they are."""
        layers = changes.pop("layers", None)
        if layers is not None:
            layers = list(layers)
            if len(layers) != len(self.layers):
                raise IRError(f"replace: {len(layers)} layers for a graph of {len(self.layers)}")
            it = iter(layers)
            changes["nodes"] = [next(it) if isinstance(n, MatVec) else n for n in self.nodes]
        return dataclasses.replace(self, **changes)

    # -- checks ------------------------------------------------------------------
    def validate(self) -> "Graph":
        """Check the structural contract; raise IRError naming the layer."""
        if not self.layers:
            raise IRError("the graph has no compute layers")
        names = [n.name for n in self.nodes]
        if len(set(names)) != len(names):
            raise IRError(f"two nodes are named {next(n for n in names if names.count(n) > 1)!r}")
        last = self.layers[-1]
        if self.nodes[-1] is not last or self.window(last) is not None:
            raise IRError(f"layer {last.name!r}: the output layer must be fully connected (add a Flatten and "
                          "a Linear after the last convolution)")
        prev_len, prev_type = None, self.input.dtype
        link = _Link()
        for i, node in enumerate(self.nodes):
            owner = self._owner(i)
            where = f"layer {owner.name!r}"
            node.check(where)
            link.check(self, i, where, prev_type)
            if isinstance(node, MatVec):
                if node.itype != prev_type:
                    raise IRError(f"{where}: input type {node.itype} != previous output {prev_type}")
                _check_activation(node, node is last, where)
            if prev_len is not None and node.in_len != prev_len:
                raise IRError(f"{where}: takes {self.layer_in_len(owner)} inputs per frame but the layer before "
                              f"gives {prev_len}")
            prev_len = node.out_len
            if isinstance(node, MatVec):
                prev_type = node.out_dtype if node.activation is None else node.activation.out_dtype
        if self.topk is not None:
            self.topk.check(last)
        return self

    def _owner(self, i: int) -> MatVec:
        """The layer node i belongs to: a window the MatVec after it, a pool the one before."""
        node = self.nodes[i]
        if isinstance(node, MatVec):
            return node
        j = i + 1 if isinstance(node, SlidingWindow) else i - 1
        if 0 <= j < len(self.nodes) and isinstance(self.nodes[j], MatVec):
            return self.nodes[j]
        raise IRError(f"{node.op} node {node.name!r} is not next to the matrix-vector layer it belongs to")

    # -- serialisation ------------------------------------------------------
    def save(self, out_dir: Path) -> Path:
        """Write ``lbgen.json`` and ``ir/<node>.<array>.npy``; return the json path."""
        out_dir = Path(out_dir)
        arr_dir = out_dir / "ir"
        arr_dir.mkdir(parents=True, exist_ok=True)
        nodes = []
        for node in self.nodes:
            d = node.to_json()
            arrays = {}
            for key in node.ARRAYS:
                value = getattr(node, key)
                if value is not None:
                    rel = f"ir/{node.name}.{key}.npy"
                    np.save(out_dir / rel, np.asarray(value), allow_pickle=False)
                    arrays[key] = rel
            if arrays:
                d["arrays"] = arrays
            nodes.append(d)
        doc = {"lbgen_ir": IR_VERSION, "name": self.name, "input": self.input.to_json(),
               "nodes": nodes, "meta": self.meta}
        if self.topk is not None:
            doc["topk"] = self.topk.to_json()      # optional: files without it load as before
        path = out_dir / "lbgen.json"
        path.write_text(json.dumps(doc, indent=2) + "\n")
        return path

    @staticmethod
    def load(out_dir: Path) -> "Graph":
        """Read a graph written by ``save`` (format 1 or 2); raise IRError naming what is wrong."""
        from .ir_load import load_graph

        return load_graph(Path(out_dir))


def layer_nodes(layer: MatVec, conv: Optional[ConvGeom] = None, pool: Optional[PoolGeom] = None) -> list[Node]:
    """The nodes of one layer: a sliding window of geometry ``conv`` in front
    of it (a convolution; the layer then takes ``conv.pixels`` vectors per
    frame), the layer, a max-pool ``pool`` after it. Windows and pools are
    named after their layer (``<layer>/window``, ``<layer>/pool``)."""
    nodes: list[Node] = []
    if conv is not None:
        nodes.append(SlidingWindow(f"{layer.name}/window", conv))
        if layer.pixels != conv.pixels:
            layer = dataclasses.replace(layer, pixels=conv.pixels)
    nodes.append(layer)
    if pool is not None:
        nodes.append(MaxPool(f"{layer.name}/pool", pool))
    return nodes


class _Link:
    """How the nodes of a graph link up, checked node by node: a window reads a
    feature map of its shape (the graph's input, or a convolution layer's
    output) and feeds a MatVec of its size; a pool follows a convolution layer
    and covers its output map."""

    def __init__(self) -> None:
        self.fmap: Optional[tuple[int, int, int]] = None     # (C, H, W) of the stream so far, None: flat
        self.layer: Optional[MatVec] = None                  # the last layer seen

    def check(self, graph: "Graph", i: int, where: str, itype: DType) -> None:
        node = graph.nodes[i]
        if isinstance(node, SlidingWindow):
            self._window(node, graph.nodes[i + 1], where, itype)
        elif isinstance(node, MaxPool):
            self._pool(node, graph.nodes[i - 1], where)
        elif isinstance(node, MatVec):
            conv = graph.conv(node)
            if conv is None and node.pixels != 1:
                raise IRError(f"{where}: {node.pixels} vectors per frame without a sliding window")
            self.fmap = (node.mh, conv.out_h, conv.out_w) if conv else None
            self.layer = node

    def _window(self, window: SlidingWindow, consumer: Node, where: str, itype: DType) -> None:
        conv = window.geom
        conv.check_pad(itype, where)
        if self.layer is not None and self.fmap is None:
            raise IRError(f"{where}: a convolution must follow a convolution (or be the first layer), "
                          f"not the fully connected layer {self.layer.name!r}")
        if self.layer is not None and (conv.in_ch, conv.in_h, conv.in_w) != self.fmap:
            c, h, w = self.fmap
            raise IRError(f"{where}: expects a {conv.in_ch}x{conv.in_h}x{conv.in_w} (CxHxW) input but "
                          f"{self.layer.name!r} gives {c}x{h}x{w}")
        assert isinstance(consumer, MatVec)                     # Graph._owner made sure
        if consumer.mw != conv.window:
            raise IRError(f"{where}: {consumer.mw} weight columns but a {conv.k_h}x{conv.k_w} window over "
                          f"{conv.in_ch} channels has {conv.window}")
        if consumer.pixels != conv.pixels:
            raise IRError(f"{where}: {consumer.pixels} vectors per frame but its window gives {conv.pixels}")
        if conv.in_ch % consumer.simd:
            raise IRError(f"{where}: SIMD={consumer.simd} must divide the input channels ({conv.in_ch}) of a "
                          "convolution, so that a beat stays within one pixel")

    def _pool(self, pool: MaxPool, producer: Node, where: str) -> None:
        q = pool.geom
        if self.fmap is None or not isinstance(producer, MatVec):
            raise IRError(f"{where}: max-pool needs a feature map (a convolution layer)")
        if (q.ch, q.in_h, q.in_w) != self.fmap:
            c, h, w = self.fmap
            raise IRError(f"{where}: max-pool over {q.ch}x{q.in_h}x{q.in_w} but the convolution "
                          f"gives {c}x{h}x{w}")
        self.fmap = (q.ch, q.out_h, q.out_w)


def _check_activation(layer: MatVec, last: bool, where: str) -> None:
    """A hidden layer has an activation; a thresholded output layer streams levels."""
    if not last and layer.thresholds is None and layer.activation is None:
        raise IRError(f"{where}: a hidden layer needs an activation")
    if last and layer.activation is not None and layer.activation.out_dtype.kind not in ("uint", "bipolar"):
        raise IRError(f"{where}: a thresholded output layer streams uint or bipolar levels, "
                      f"not {layer.activation.out_dtype}")


@dataclass(frozen=True)
class PaddingCorrection:
    """What a bipolar-input convolution adds to the accumulator of a border pixel.

    The hardware pads with code 0, which is the value -1 for bipolar inputs, so
    at a border pixel it sums w * (-1) over the padded window positions where
    torch (and the golden model) sums nothing. Adding back the sum of those
    weights makes it exact: acc = acc_hw + offsets[row_class[oy], col_class[ox], c].
    Which window rows (columns) are padded depends only on oy (ox), so the
    distinct patterns are few: the interior plus at most p top and bottom
    rows, and likewise for columns.
    """

    row_class: np.ndarray     # (out_h,) index into offsets' first axis
    col_class: np.ndarray     # (out_w,) index into offsets' second axis
    offsets: np.ndarray       # (row classes, column classes, mh) int64

    def per_pixel(self) -> np.ndarray:
        """(pixels, mh) correction of every output pixel, row-major."""
        rc = np.repeat(self.row_class, len(self.col_class))
        cc = np.tile(self.col_class, len(self.row_class))
        return self.offsets[rc, cc]


def pad_code(layer: MatVec, conv: Optional[ConvGeom]) -> int:
    """The code a convolution's sliding-window unit sends at a padded position:
    the input format's code of ``conv.pad`` (the value 0 in torch's terms), or 0
    for a bipolar input, whose border pixels ``padding_corrections`` fixes."""
    if conv is None or layer.itype.kind == "bipolar":
        return 0
    return int(layer.itype.encode(np.array([conv.pad]))[0])


def padding_corrections(layer: MatVec, conv: Optional[ConvGeom]) -> Optional[PaddingCorrection]:
    """The border corrections of a bipolar-input convolution (``layer`` behind
    a window of geometry ``conv``) with padding, else None."""
    if conv is None or layer.itype.kind != "bipolar" or (conv.p_h == 0 and conv.p_w == 0):
        return None

    def classes(out: int, stride: int, pad: int, k: int, size: int):
        padded = [tuple(j for j in range(k) if not 0 <= o * stride - pad + j < size) for o in range(out)]
        uniq = sorted(set(padded))
        return np.array([uniq.index(t) for t in padded], dtype=np.int64), uniq

    row_class, rows = classes(conv.out_h, conv.s_h, conv.p_h, conv.k_h, conv.in_h)
    col_class, cols = classes(conv.out_w, conv.s_w, conv.p_w, conv.k_w, conv.in_w)
    # per kernel position (ky, kx): the sum of the weights over the input channels
    w = layer.weights.astype(np.int64).reshape(layer.mh, conv.k_h, conv.k_w, conv.in_ch).sum(axis=3)
    offsets = np.zeros((len(rows), len(cols), layer.mh), dtype=np.int64)
    for r, ry in enumerate(rows):
        for c, rx in enumerate(cols):
            mask = np.zeros((conv.k_h, conv.k_w), dtype=bool)
            mask[list(ry), :] = True
            mask[:, list(rx)] = True
            offsets[r, c] = (w * mask[None]).sum(axis=(1, 2))
    return PaddingCorrection(row_class, col_class, offsets)


def _huffman_from_json(d: dict) -> "HuffmanCode":
    from .huffman import HuffmanCode, HuffmanError

    try:
        return HuffmanCode.from_json(d["huffman"])
    except (HuffmanError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise IRError(f"layer {d.get('name')!r}: bad Huffman code ({exc})") from None


def _check_channel_bits(layer: MatVec, where: str) -> None:
    """Per-channel widths: int weights only, 2..wtype.bits, every weight inside its channel's range."""
    cb = layer.channel_bits
    if cb is None:
        return
    cb = np.asarray(cb)
    if layer.wtype.kind != "int":
        raise IRError(f"{where}: channel_bits need int weights, not {layer.wtype}")
    if cb.shape != (layer.mh,) or cb.dtype.kind not in "iu":
        raise IRError(f"{where}: channel_bits must be {layer.mh} integers (one per output channel)")
    if cb.min() < 2 or cb.max() > layer.wtype.bits:
        raise IRError(f"{where}: channel_bits must be 2..{layer.wtype.bits}")
    q = (1 << (cb.astype(np.int64) - 1)) - 1
    bad = np.abs(layer.weights) > q[:, None]
    if bad.any():
        c, k = np.argwhere(bad)[0]
        raise IRError(f"{where}: weight [{c}, {k}] = {int(layer.weights[c, k])} is outside channel {c}'s "
                      f"{int(cb[c])} bits (+-{int(q[c])})")


def _check_huffman(layer: MatVec, where: str) -> None:
    """A Huffman-coded layer's streams are exactly its weights, lane by lane, in its code."""
    from .huffman import HuffmanError, lane_sequences

    code, stream, lane_bits = layer.huffman, layer.huffman_stream, layer.huffman_lane_bits
    if code is None:
        if stream is not None or lane_bits is not None:
            raise IRError(f"{where}: Huffman streams without a code")
        return
    if stream is None or lane_bits is None:
        raise IRError(f"{where}: a Huffman code without its streams")
    if code.sym_bits != layer.wtype.bits:
        raise IRError(f"{where}: the Huffman code is over {code.sym_bits}-bit symbols, the weights are "
                      f"{layer.wtype.bits}-bit codes")
    lanes = layer.pe * layer.simd
    lane_bits = np.asarray(lane_bits)
    if lane_bits.shape != (lanes,) or lane_bits.dtype.kind not in "ui" or (lane_bits.size and lane_bits.min() < 1):
        raise IRError(f"{where}: huffman_lane_bits must be {lanes} positive integers (one per PE x SIMD lane)")
    stream = np.asarray(stream)
    if stream.ndim != 1 or stream.size != int(lane_bits.sum()) or (stream.size and stream.max() > 1):
        raise IRError(f"{where}: huffman_stream must hold {int(lane_bits.sum())} bits (0 or 1)")
    try:
        want = [code.encode(seq) for seq in lane_sequences(layer.codes(), layer.pe, layer.simd)]
    except HuffmanError as exc:
        raise IRError(f"{where}: the weights do not fit the Huffman code ({exc})") from None
    start = 0
    for lane, (bits, n) in enumerate(zip(want, lane_bits.tolist())):
        got = stream[start:start + n]
        if len(bits) != n or not np.array_equal(got, bits):
            at = int(np.argmax(got[:len(bits)] != bits[:n])) if min(n, len(bits)) else 0
            raise IRError(f"{where}: the Huffman stream of lane {lane} does not encode its weights "
                          f"(first difference at bit {at} of {n})")
        start += n


def _check_weight_codes(layer: MatVec, where: str) -> None:
    """Weights and their codes agree, and every code is canonical."""
    wt = layer.wtype
    codes = layer.weight_codes
    if wt.kind == "hetero" and codes is None:
        raise IRError(f"{where}: hetero weights need weight_codes (plane signs and masks)")
    if codes is None:
        try:
            wt.encode(layer.weights)
        except IRError as exc:
            raise IRError(f"{where}: weights are not {wt} values: {exc}") from None
        return
    codes = np.asarray(codes)
    if codes.shape != (layer.mh, layer.mw) or codes.dtype.kind not in "ui":
        raise IRError(f"{where}: weight_codes must be ({layer.mh}, {layer.mw}) integers, "
                      f"got {codes.shape} {codes.dtype}")
    if codes.size and codes.min() < 0:
        raise IRError(f"{where}: a weight code is negative")
    try:
        wt.check_codes(codes)
    except IRError as exc:
        raise IRError(f"{where}: {exc}") from None
    decoded = wt.decode(codes)
    if not np.array_equal(decoded, layer.weights):
        r, c = np.argwhere(decoded != layer.weights)[0]
        raise IRError(f"{where}: weight [{r}, {c}] is {layer.weights[r, c]} but its code "
                      f"{int(codes[r, c])} means {decoded[r, c]}")


def check_thresholds_shape(graph: Graph) -> None:
    """Hidden layers (and a thresholded output layer) need (mh, 2^bits-1) ascending thresholds
    that fit acc_bits; an unthresholded output layer needs out_scale and out_bias."""
    out = graph.layers[-1]
    for layer in graph.layers:
        if layer is out and layer.thresholds is None:
            break
        where = f"layer {layer.name!r}"
        t = layer.thresholds
        od = layer.odtype
        if t is None or od is None or layer.threshold_invert is None:
            raise IRError(f"{where}: missing thresholds")
        if od.kind not in ("uint", "bipolar"):
            raise IRError(f"{where}: a {'hidden' if layer is not out else 'thresholded output'} layer outputs "
                          f"threshold levels (uint or bipolar), not {od}")
        n = (1 << od.bits) - 1
        if t.shape != (layer.mh, n) or layer.threshold_invert.shape != (layer.mh,):
            raise IRError(f"{where}: thresholds shape {t.shape}, expected ({layer.mh}, {n})")
        if np.any(t[:, 1:] < t[:, :-1]):  # not np.diff: it overflows at the int64 ends
            raise IRError(f"{where}: thresholds are not ascending")
        lo, hi = -(1 << (layer.acc_bits - 1)), (1 << (layer.acc_bits - 1)) - 1
        if t.size and (t.min() < lo or t.max() > hi):
            raise IRError(f"{where}: a threshold does not fit acc_bits={layer.acc_bits}")
    if out.thresholds is None and (out.out_scale is None or out.out_bias is None):
        raise IRError(f"layer {out.name!r}: the output layer needs out_scale and out_bias")
    if (out.out_scale is None) != (out.out_bias is None):
        raise IRError(f"layer {out.name!r}: out_scale and out_bias come together")
    for key in ("out_scale", "out_bias"):
        if getattr(out, key) is None:
            continue
        value = np.asarray(getattr(out, key))
        if value.shape != (out.mh,) or not np.all(np.isfinite(value)):
            raise IRError(f"layer {out.name!r}: {key} must be {out.mh} finite numbers (one per output channel), "
                          f"got shape {value.shape}")
    if out.out_zero is not None and np.asarray(out.out_zero).shape != (out.mh,):
        raise IRError(f"layer {out.name!r}: out_zero must be {out.mh} integers, got shape "
                      f"{np.asarray(out.out_zero).shape}")
