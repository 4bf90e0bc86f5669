"""The options of ``lbgen emit``, parsed once into types.

:class:`EmitOptions` is the one place where option text becomes values: the
command line builds it from its strings (``--w 1.4``, ``--input-shape
1,8,8``, ``--acc auto`` ...), :func:`lbgen.emit` from Python values (``w=1``,
``input_shape=(1, 8, 8)``); either way its fields hold the parsed types
afterwards and every option that needs no model has been checked. A bad value
raises :class:`lbgen.errors.UsageError` naming the option (exit code 2 at the
command line) when the options are built -- before a model is loaded and
before anything is written. The pipeline (:mod:`lbgen.pipeline`) only reads
the fields.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal, Mapping, Optional, Union

import numpy as np

from .errors import UsageError
from .frontend.input_format import InputFormat, parse_input_format
from .precision import WeightSpec, parse_hetero_dist, parse_weight_spec

#: --bits-budget range: a channel gets 2..8 bits (2: the ternary grid -1, 0, +1)
BITS_BUDGET_MIN, BITS_BUDGET_MAX = 2, 8

Acc = Union[int, Literal["auto"]]


@dataclass(frozen=True)
class FoldingFile:
    """``--folding folding.json``, read: the file and its ``{layer: {pe, simd}}``
    entries (their syntax checked; the layers they name are checked against the
    model by :func:`lbgen.passes.folding.apply_folding`)."""

    path: Path
    layers: Mapping[str, Mapping[str, int]]

    @classmethod
    def read(cls, path) -> "FoldingFile":
        from .passes.folding import read_folding

        return cls(Path(path), read_folding(Path(path)))


def parse_acc(acc) -> Acc:
    """``--acc``: ``auto`` or a bit width 2..64."""
    if str(acc) == "auto":
        return "auto"
    try:
        bits = int(acc)
    except ValueError:
        raise UsageError(f"--acc {acc!r}: expected 'auto' or a bit width such as 32") from None
    if not 2 <= bits <= 64:
        raise UsageError(f"--acc {bits}: the accumulator width must be 2..64")
    return bits


def parse_input_shape(shape) -> Optional[tuple[int, int, int]]:
    """``--input-shape`` text ``C,H,W`` (or a sequence of three ints) -> (C, H, W)."""
    if shape is None:
        return None
    if isinstance(shape, str):
        try:
            values = tuple(int(v) for v in shape.split(","))
        except ValueError:
            values = ()
    else:
        try:
            values = tuple(int(v) for v in shape)
        except (TypeError, ValueError):
            values = ()
        shape = ",".join(map(str, shape)) if len(values) else shape
    if len(values) != 3 or min(values) < 1:
        raise UsageError(f"--input-shape {str(shape)!r}: expected C,H,W, three positive integers such as 1,8,8")
    return values


@dataclass(frozen=True)
class EmitOptions:
    """What ``lbgen emit`` was asked for, parsed and checked.

    Build it with the parsed types or with the command line's text (``w="1.4"``,
    ``hetero_dist="0.7,0.2,0.1"``, ``input_shape="1,8,8"``, ``acc="32"``,
    ``folding=Path("folding.json")``, ``input_format="fixed<16,6>"``): the
    constructor parses each text once into the field's type and checks every
    option that needs no model (``UsageError`` naming the option otherwise).
    """

    w: Optional[WeightSpec] = None          # --w: 1, 4, log2:4, 1.4 (lbgen.precision)
    a: Optional[int] = None                 # --a: activation bits 1..8
    acc: Acc = 32                           # --acc: a width 2..64 or "auto"
    pe: Optional[int] = None
    simd: Optional[int] = None
    folding: Optional[FoldingFile] = None   # --folding folding.json, read
    trust: bool = False
    hetero_dist: Optional[tuple[float, ...]] = None  # --hetero-dist 0.7,0.2,0.1
    input_shape: Optional[tuple[int, int, int]] = None  # --input-shape C,H,W (a CNN that takes (N, C, H, W))
    target_cycles: Optional[int] = None     # --target-cycles: cheapest folding within this many cycles/frame
    compress: str = "none"                  # --compress: none | huffman (weight streams)
    huffman_max_len: Optional[int] = None   # --huffman-max-len: longest code (default lbgen.huffman.DEFAULT_MAX_LEN)
    bits_budget: Optional[float] = None     # --bits-budget: average bits per weight of hidden int layers, per channel
    calib: Optional[Path] = None            # --calib: calibration inputs; the model is float, quantized post-training
    clip: str = "aciq"                      # --clip: aciq | minmax | percentile (with --calib)
    bias_correction: bool = True            # --no-bias-correction turns it off (with --calib)
    input_format: Optional[InputFormat] = None  # --input-format fixed<16,6> etc., a float input's number format
    topk: Optional[int] = None              # --topk K: a hardware top-K unit streams the K largest class indices

    def __post_init__(self) -> None:
        # the order of the checks is the order of their messages when several options are wrong
        self._parse_precision()
        self._set("input_shape", parse_input_shape(self.input_shape))
        if self.input_format is not None and not isinstance(self.input_format, InputFormat):
            self._set("input_format", parse_input_format(self.input_format))
        if self.folding is not None and not isinstance(self.folding, FoldingFile):
            self._set("folding", FoldingFile.read(self.folding))
        if self.calib is not None:
            self._set("calib", Path(self.calib))
        self._check_numbers()
        self._check_compress()
        self._check_calib()
        self._check_bits_budget()
        self._set("acc", parse_acc(self.acc))

    def _set(self, name: str, value) -> None:
        object.__setattr__(self, name, value)

    def _parse_precision(self) -> None:
        """--w and --hetero-dist."""
        if self.w is not None and not isinstance(self.w, WeightSpec):
            self._set("w", parse_weight_spec(str(self.w)))
        if self.hetero_dist is not None:
            dist = self.hetero_dist
            if not isinstance(dist, str):       # fractions given as numbers: the same checks as the text
                try:
                    dist = ",".join(repr(float(v)) for v in dist)
                except (TypeError, ValueError):
                    dist = str(dist)
            self._set("hetero_dist", parse_hetero_dist(dist))
            if self.w is None or self.w.kind != "hetero":
                raise UsageError("--hetero-dist needs a heterogeneous --w such as --w 1.4")

    def _check_numbers(self) -> None:
        """--a, --topk, --pe, --simd, --target-cycles."""
        if self.a is not None and not 1 <= self.a <= 8:
            raise UsageError(f"--a {self.a}: activation bits must be 1..8")
        if self.target_cycles is not None and (self.pe is not None or self.simd is not None):
            raise UsageError("--target-cycles chooses PE and SIMD itself; leave out --pe/--simd "
                             "(a --folding entry still fixes its layer)")
        if self.topk is not None and (isinstance(self.topk, bool) or not isinstance(self.topk, (int, np.integer))
                                      or self.topk < 1):
            raise UsageError(f"--topk {self.topk!r}: must be a positive integer (the number of class indices "
                             "per frame, at most the number of classes)")
        for flag, value in (("--pe", self.pe), ("--simd", self.simd), ("--target-cycles", self.target_cycles)):
            if value is not None and value < 1:
                raise UsageError(f"{flag} {value}: must be a positive integer")

    def _check_compress(self) -> None:
        """--compress and --huffman-max-len."""
        from .huffman import MAX_LEN_LIMIT
        from .passes.compress import COMPRESS_CHOICES

        if self.compress not in COMPRESS_CHOICES:
            raise UsageError(f"--compress {self.compress!r}: expected one of {', '.join(COMPRESS_CHOICES)}")
        if self.huffman_max_len is not None:
            if self.compress != "huffman":
                raise UsageError("--huffman-max-len needs --compress huffman")
            if not 1 <= self.huffman_max_len <= MAX_LEN_LIMIT:
                raise UsageError(f"--huffman-max-len {self.huffman_max_len}: must be 1..{MAX_LEN_LIMIT}")

    def _check_calib(self) -> None:
        """--calib, --clip, --no-bias-correction (post-training quantization)."""
        if self.calib is None and (self.clip != "aciq" or not self.bias_correction):
            raise UsageError("--clip and --no-bias-correction apply to post-training quantization: add --calib")
        if self.calib is None:
            return
        from .passes.model.clipping import CLIP_METHODS

        if self.clip not in CLIP_METHODS:
            raise UsageError(f"--clip {self.clip!r}: expected one of {', '.join(CLIP_METHODS)}")
        if self.w is None or self.w.kind != "int" or self.a is None:
            raise UsageError("--calib quantizes a float model post-training to --w k --a k: give both, "
                             "with --w an integer width 2..8")

    def _check_bits_budget(self) -> None:
        b = self.bits_budget
        if b is not None and not (isinstance(b, (int, float)) and math.isfinite(b)
                                  and BITS_BUDGET_MIN <= b <= BITS_BUDGET_MAX):
            raise UsageError(f"--bits-budget {b!r}: the average bits per weight must be "
                             f"{BITS_BUDGET_MIN}..{BITS_BUDGET_MAX}")


def option_names() -> list[str]:
    """The options by their Python names (``lbgen.emit``'s keyword arguments)."""
    return [f.name for f in fields(EmitOptions)]
