"""The number format of a model input that no quantizer describes.

QKeras models converted to QONNX feed a float input straight into the first
MatMul (hls4ml picks the input's fixed-point type itself); FINN graphs give
the input's format only as a ``finn_datatype`` annotation (``BIPOLAR``,
``INT8``, ``UINT4``, ...), sometimes with preprocessing behind it (FINN's
cybersecurity MLP: a bipolar input, then ``(x + 1) / 2``). Neither has a
quantizer lbgen could read, so the format comes from the annotation or from
``--input-format`` (hls4ml's spelling), and this module turns it into the
input quantizer the model lacks:

* without preprocessing, the quantizer *is* the format: ``fixed<W,I>`` is a
  W-bit signed value with I integer bits (step ``2^(I-W)``), ``ufixed<W,I>``
  unsigned, ``int<W>``/``uint<W>`` integers; rounding and overflow as
  ``ap_fixed``/``ap_int`` do by default (``fixed``: truncation toward minus
  infinity and wrap-around; ``int``: truncation toward zero and wrap-around),
  or as named: ``fixed<16,6,RND_CONV,SAT>`` (``TRN``, ``TRN_ZERO``, ``RND``
  = half up, ``RND_CONV`` = half to even; ``WRAP``, ``SAT``);
* with preprocessing (scalar ``x * c``, ``x + c``, ... in front of the first
  layer), every value of the format is pushed through it in float32, as the
  model computes; the results must lie on one evenly spaced grid, which
  becomes the quantizer in front of the first layer (round half to even,
  saturating), while the host replays the preprocessing.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Optional

import numpy as np

from ..errors import UsageError
from ..precision import INPUT_BITS

#: ap_fixed quantization modes -> lbgen rounding modes (imported.ROUNDING)
_QUANT_MODES = {"TRN": "FLOOR", "TRN_ZERO": "ROUND_TO_ZERO", "RND": "HALF_UP", "RND_CONV": "ROUND"}
_OVERFLOW_MODES = ("WRAP", "SAT")
#: widest input format (the first layer multiplies that many bits)
MAX_INPUT_BITS = INPUT_BITS[1]
#: values enumerated through preprocessing at most (a 16-bit format has 65536)
_MAX_ENUMERATED = 1 << 16
SPELLINGS = "fixed<W,I>, ufixed<W,I>, int<W>, uint<W> (optionally fixed<W,I,RND_CONV,SAT>), or BIPOLAR"


@dataclass(frozen=True)
class InputFormat:
    """A number format of raw input values: ``bits`` wide, ``frac`` fraction bits."""

    signed: bool
    bits: int
    frac: int = 0
    rounding: str = "FLOOR"
    wrap: bool = True
    bipolar: bool = False
    text: str = ""
    given: str = field(default="", compare=False)   # the option's text as the user wrote it (messages)

    @property
    def step(self) -> float:
        return 2.0 ** -self.frac

    def int_range(self) -> tuple[int, int]:
        if self.bipolar:
            return -1, 1
        return (-(1 << (self.bits - 1)), (1 << (self.bits - 1)) - 1) if self.signed else (0, (1 << self.bits) - 1)

    def values(self) -> np.ndarray:
        """Every value of the format, ascending (float64, exact)."""
        if self.bipolar:
            return np.array([-1.0, 1.0])
        lo, hi = self.int_range()
        return np.arange(lo, hi + 1, dtype=np.float64) * self.step

    def quantizer(self):
        """The AffineQuant that puts raw values on this format."""
        from .imported import AffineQuant

        if self.bipolar:
            return AffineQuant(1, 1.0, bipolar=True)
        return AffineQuant(self.bits, self.step, 0.0, signed=self.signed, rounding=self.rounding, wrap=self.wrap)


def parse_input_format(text: str) -> InputFormat:
    """``--input-format`` (hls4ml spelling) or a FINN DataType name -> InputFormat;
    UsageError naming the option otherwise."""
    return replace(_parse_input_format(text), given=str(text))


def _parse_input_format(text: str) -> InputFormat:
    t = str(text).strip()
    finn = _finn_datatype(t)
    if finn is not None:
        return finn
    m = re.fullmatch(r"(u?)(fixed|int)<\s*(\d+)\s*(?:,\s*(-?\d+)\s*)?(?:,\s*([A-Z_]+)\s*)?(?:,\s*([A-Z_]+)\s*)?>",
                     t.replace(" ", ""), flags=re.IGNORECASE)
    if m is None:
        raise UsageError(f"--input-format {text!r}: expected {SPELLINGS}")
    unsigned, kind, width, integer, qmode, omode = m.groups()
    bits = int(width)
    if kind.lower() == "fixed" and integer is None:
        raise UsageError(f"--input-format {text!r}: fixed<W,I> needs the integer bits I")
    if kind.lower() == "int" and integer is not None:
        raise UsageError(f"--input-format {text!r}: int<W> takes one width")
    frac = bits - int(integer) if integer is not None else 0
    default_q = "TRN" if kind.lower() == "fixed" else "TRN_ZERO"
    qmode, omode = (qmode or default_q).upper(), (omode or "WRAP").upper()
    signed = not unsigned
    problems = []
    if not (1 + signed) <= bits <= MAX_INPUT_BITS:
        problems.append(f"{bits} bits ({'signed 2' if signed else 'unsigned 1'}..{MAX_INPUT_BITS})")
    if qmode not in _QUANT_MODES:
        problems.append(f"quantization mode {qmode} ({', '.join(_QUANT_MODES)})")
    if omode not in _OVERFLOW_MODES:
        problems.append(f"overflow mode {omode} ({', '.join(_OVERFLOW_MODES)})")
    if abs(frac) > 64:
        problems.append(f"{frac} fraction bits")
    if problems:
        raise UsageError(f"--input-format {text!r}: " + "; ".join(problems))
    return InputFormat(signed, bits, frac, _QUANT_MODES[qmode], omode == "WRAP", text=t)


def _finn_datatype(name: str) -> Optional[InputFormat]:
    """FINN/QONNX DataType names: BIPOLAR, BINARY, INTk, UINTk; None for others."""
    n = name.upper()
    if n == "BIPOLAR":
        return InputFormat(True, 1, bipolar=True, text=n)
    if n == "BINARY":
        return InputFormat(False, 1, rounding="ROUND", wrap=False, text=n)
    m = re.fullmatch(r"(U?)INT(\d+)", n)
    if m is None:
        return None
    signed, bits = not m.group(1), int(m.group(2))
    if not (1 + signed) <= bits <= MAX_INPUT_BITS:
        raise UsageError(f"input format {name}: {bits} bits ({'signed 2' if signed else 'unsigned 1'}.."
                         f"{MAX_INPUT_BITS})")
    return InputFormat(signed, bits, rounding="ROUND", wrap=False, text=n)


def implied_quantizer(fmt: InputFormat, preprocessing: list) -> object:
    """The quantizer in front of the first layer: the format itself, or, behind
    preprocessing, the evenly spaced grid the format's values land on."""
    if not preprocessing:
        return fmt.quantizer()
    import torch

    from .imported import AffineQuant

    raw = fmt.values()
    if raw.size > _MAX_ENUMERATED:
        raise UsageError(f"input format {fmt.text}: too many values to push through the preprocessing")
    x = torch.from_numpy(raw.astype(np.float32)).reshape(-1, 1)
    for m in preprocessing:
        if getattr(m, "const", None) is not None and m.const.numel() > 1:
            raise UsageError(f"input format {fmt.text}: per-channel preprocessing ({type(m).__name__} {m.op}) "
                             "gives each channel its own grid; lbgen needs one grid for the first layer's input")
        with torch.no_grad():
            x = m(x)
    v = np.unique(x.double().numpy().reshape(-1))
    steps = np.diff(v)
    if v.size < 2 or not np.all(steps == steps[0]):
        raise UsageError(f"input format {fmt.text}: the preprocessing maps its values onto an uneven grid "
                         f"({', '.join(f'{a:g}' for a in v[:4])}, ...); lbgen needs evenly spaced levels")
    step = float(steps[0])
    zero = -float(v[0]) / step
    if zero != math.floor(zero) or v.size > (1 << MAX_INPUT_BITS):
        raise UsageError(f"input format {fmt.text}: after the preprocessing, 0 is not a level of the grid "
                         f"{v[0]:g} + k * {step:g}")
    bits = max(1, int(v.size - 1).bit_length())
    return AffineQuant(bits, step, zero, signed=False, rounding="ROUND")


def add_input_quantizer(model, fmt: Optional[InputFormat] = None):
    """``model`` with an input quantizer in front of its first layer when it
    has none: from ``fmt`` (``--input-format``, parsed) or the graph input's
    ``finn_datatype`` annotation; UsageError naming the option when neither
    says what the float input is. Models that quantize their input come back
    unchanged (``--input-format`` then must not be given)."""
    from .imported import ChannelAffine, ImportedModel
    from .torch_frontend import Step, _kind_of, _walk

    steps = _walk(model)
    first = next((i for i, s in enumerate(steps) if _kind_of(s.module) in ("quantizer", "linear")), None)
    if first is None or _kind_of(steps[first].module) == "quantizer":
        if fmt is not None:
            raise UsageError(f"--input-format {fmt.given or fmt.text}: the model quantizes its input itself "
                             f"({steps[first].path if first is not None else 'no layer'}); leave the option out")
        return model
    annotation = getattr(model, "input_datatype", None)
    if fmt is None and annotation is None:
        raise UsageError(f"the model's input is float and reaches layer {steps[first].path} without a quantizer: "
                         f"give its number format with --input-format ({SPELLINGS}; e.g. --input-format "
                         "fixed<16,6>), as hls4ml's input precision")
    if fmt is None:
        fmt = parse_input_format(annotation)
    pre = [s.module for s in steps[:first] if isinstance(s.module, ChannelAffine)]
    steps = steps[:first] + [Step("input_format", implied_quantizer(fmt, pre))] + steps[first:]
    return ImportedModel([(s.path, s.module) for s in steps], source=getattr(model, "source", "torch"),
                         input_chw=getattr(model, "input_chw", None), onnx=getattr(model, "onnx", None),
                         tensors=getattr(model, "tensors", None))
