"""The modules a Brevitas model or a QONNX graph is translated into.

Brevitas and QONNX describe the same few things -- an affine quantizer
(scale, zero point, bit width, signedness, narrow range, rounding), a
threshold quantizer (QONNX ``MultiThreshold``), a linear or convolution layer
with integer weights times a scale, per-channel affine ops -- each in its own
way. Both frontends translate into these modules, which speak the protocol
the torch frontend lowers (``quant_weight``/``epilogue`` of a layer,
``bits``/``kind``/``step``/``zero``/``levels`` of a quantizer), so one lowering
folds all three sources into thresholds.

Levels are what the hardware streams: ``u`` in ``0 .. 2**bits - 1`` (bipolar:
the bit ``b``). A signed or zero-pointed quantizer's real value is
``(u - zero) * step``; the layer behind it subtracts ``zero * sum(w)`` per
output channel from its integer accumulator before its epilogue, so the
datapath stays unsigned and the offset folds into the thresholds.

A quantizer's ``forward`` returns that value exactly in float64 (an 8-bit level
times a float32 step needs at most 32 mantissa bits), and a layer sums exact
multiples of its input step in float64, so the translated model's forward is
the integer model the hardware runs (while ``|acc| * step mantissa`` fits 53
bits, which the frontend checks). The source's own float32 forward may differ
from it by a rounding at a threshold; the flow reports that comparison.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..quant.modules import QuantConv2dMixin

#: rounding modes of an affine quantizer (Brevitas ``rounding_mode``, QONNX ``Quant``)
ROUNDING = {"ROUND": torch.round, "FLOOR": torch.floor, "CEIL": torch.ceil, "ROUND_TO_ZERO": torch.trunc,
            "HALF_UP": lambda y: torch.floor(y + 0.5)}     # ap_fixed AP_RND (--input-format)


def int_range(bits: int, signed: bool, narrow: bool) -> tuple[int, int]:
    """(qmin, qmax) of a ``bits``-bit integer quantizer (Brevitas, QONNX ``Quant``)."""
    if signed:
        return -(1 << (bits - 1)) + int(narrow), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1 - int(narrow)


def _channel_view(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A per-channel vector (C,) shaped to broadcast over dim 1 of ``x``."""
    return t.reshape((1, -1) + (1,) * (x.dim() - 2)) if t.numel() > 1 else t.reshape(())


class AffineQuant(nn.Module):
    """``q = clamp(rnd(x / scale + zero_point), qmin, qmax)``, value ``(q - zero_point) * scale``.

    The float32 op order is Brevitas' and QONNX ``Quant``'s, so the levels equal
    theirs bit for bit. The level streamed is ``u = q - qmin_full`` (``qmin_full``
    = ``-2**(bits-1)`` signed, 0 unsigned); ``zero = zero_point - qmin_full``.
    ``bipolar=True`` is a binary quantizer: value ``+scale`` where ``x >= 0``, else
    ``-scale`` (Brevitas' binary quantizers, QONNX ``BipolarQuant``).
    """

    def __init__(self, bits: int, scale: float, zero_point: float = 0.0, signed: bool = False,
                 narrow: bool = False, rounding: str = "ROUND", bipolar: bool = False, wrap: bool = False):
        super().__init__()
        self.wrap = bool(wrap)      # out-of-range values wrap around (ap_fixed AP_WRAP) instead of saturating
        self.bits = int(bits)
        self.kind = "bipolar" if bipolar else "uint"
        self.signed = bool(signed)
        self.narrow = bool(narrow)
        self.rounding = str(rounding)
        self.register_buffer("scale", torch.tensor(float(scale), dtype=torch.float32))
        self.zero_point = float(zero_point)
        if bipolar:
            self.qmin = self.qmax = self.offset = 0
            self.zero = 0
            return
        self.qmin, self.qmax = int_range(self.bits, self.signed, self.narrow)
        self.offset = (1 << (self.bits - 1)) if self.signed else 0    # u = q + offset: 0 .. 2**bits - 1
        self.zero = int(round(self.zero_point)) + self.offset

    def step(self) -> torch.Tensor:
        return self.scale

    def levels(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if self.kind == "bipolar":
            return (x >= 0).to(torch.float32)
        y = x / self.scale
        if self.zero_point != 0.0:
            y = y + self.zero_point
        q = ROUNDING[self.rounding](y)
        if self.wrap:
            span = self.qmax - self.qmin + 1
            q = torch.remainder(torch.clamp(q.double(), -2.0 ** 62, 2.0 ** 62) - self.qmin, span).float() + self.qmin
        q = torch.clamp(q, self.qmin, self.qmax)
        return q + self.offset

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.values(self.levels(x))

    def values(self, u: torch.Tensor) -> torch.Tensor:
        """Levels -> the real values they stand for, exact in float64."""
        u = torch.as_tensor(u).double()
        if self.kind == "bipolar":
            return (2.0 * u - 1.0) * self.scale.double()
        return (u - self.zero) * self.scale.double()

    def extra_repr(self) -> str:
        if self.kind == "bipolar":
            return f"bipolar, scale={float(self.scale):.6g}"
        return (f"bits={self.bits}, signed={self.signed}, narrow={self.narrow}, scale={float(self.scale):.6g}, "
                f"zero_point={self.zero_point:g}, rounding={self.rounding}")


class ThresholdQuant(nn.Module):
    """QONNX ``MultiThreshold``: ``u = #{t : x[c] >= thresholds[c, t]}``, value
    ``out_scale * u + out_bias``.

    The value is ``(u - zero) * step`` with ``step = out_scale`` and ``zero =
    -out_bias / out_scale``, which must be an integer (the translation checks);
    a single threshold with ``out_scale = 2, out_bias = -1`` is bipolar.
    """

    def __init__(self, thresholds: torch.Tensor, out_scale: float, out_bias: float, bits: int,
                 bipolar: bool = False):
        super().__init__()
        self.register_buffer("thresholds", thresholds.to(torch.float32))
        self.bits = int(bits)
        self.kind = "bipolar" if bipolar else "uint"
        self.register_buffer("scale", torch.tensor(float(out_scale), dtype=torch.float32))
        self.out_bias = float(out_bias)
        self.zero = 0 if bipolar else int(round(-self.out_bias / float(out_scale)))

    def step(self) -> torch.Tensor:
        return self.scale / 2 if self.kind == "bipolar" else self.scale

    def levels(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        thr = self.thresholds
        if x.dim() == 4:
            xe, te = x[:, :, :, :, None], thr.reshape(1, thr.shape[0], 1, 1, -1)
        else:
            xe, te = x[..., None], thr.reshape(1, thr.shape[0], -1)
        return (xe >= te).sum(dim=-1).to(torch.float32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.values(self.levels(x))

    def values(self, u: torch.Tensor) -> torch.Tensor:
        """Levels -> the real values they stand for, exact in float64."""
        u = torch.as_tensor(u).double()
        if self.kind == "bipolar":
            return (2.0 * u - 1.0) * self.step().double()
        return (u - self.zero) * self.scale.double()

    def extra_repr(self) -> str:
        return (f"{tuple(self.thresholds.shape)} thresholds, out_scale={float(self.scale):.6g}, "
                f"out_bias={self.out_bias:g}")


class ChannelAffine(nn.Module):
    """An element-wise ``x op c`` with a scalar or per-channel constant (an
    ONNX ``Mul``/``Add``/``Sub``/``Div`` by an initializer, a torch ``x * c``
    in a traced forward), in float32; ``RSub`` is ``c - x``.

    A per-channel constant applies along dim 1 (features of a vector, channels
    of a feature map). ``rank``: the tensor rank the constant was written for
    (2 or 4), when its shape only broadcasts that way (torch's ``(C,)`` is the
    last axis, ``(C, 1, 1)`` the channel axis); None: any."""

    OPS = {"Mul": torch.mul, "Add": torch.add, "Sub": torch.sub, "Div": torch.div,
           "RSub": lambda x, c: torch.sub(c, x)}

    def __init__(self, op: str, const: torch.Tensor, rank: Optional[int] = None):
        super().__init__()
        self.op = op
        self.rank = rank
        self.register_buffer("const", const.to(torch.float32).reshape(-1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.OPS[self.op](x.float(), _channel_view(self.const, x))

    def extra_repr(self) -> str:
        return f"{self.op} {tuple(self.const.shape)}"


class HostOutput(nn.Module):
    """A trailing ``Softmax``, ``LogSoftmax`` or ``ArgMax`` over the classes.

    The hardware streams the logits (their accumulators); the op is monotone
    or a pure selection, so the host applies it -- the golden model and
    ``lbgen sim`` too, for the comparison (``lbgen.golden.HOST_OUTPUT_OPS``)."""

    OPS = ("Softmax", "LogSoftmax", "ArgMax")

    def __init__(self, op: str):
        super().__init__()
        if op not in self.OPS:
            raise ValueError(f"unknown host output op {op!r}")
        self.op = op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.op == "Softmax":
            return torch.softmax(x, dim=1)
        if self.op == "LogSoftmax":
            return torch.log_softmax(x, dim=1)
        return torch.argmax(x, dim=1)

    def extra_repr(self) -> str:
        return self.op


def tensor_norm_ops(module) -> list[ChannelAffine]:
    """FINN's ``TensorNorm`` (``brevitas_examples.bnn_pynq``: one mean, variance,
    gain and bias for the whole tensor) at eval time, as the four float32 ops
    its forward runs: ``((x - mean) / (var + eps).pow(0.5)) * weight + bias``.
    The divisor is computed by torch itself, so it is the same float32 value."""
    with torch.no_grad():
        std = (module.running_var.detach().float() + module.eps).pow(0.5)
        return [ChannelAffine("Sub", module.running_mean.detach()), ChannelAffine("Div", std),
                ChannelAffine("Mul", module.weight.detach()), ChannelAffine("Add", module.bias.detach())]


#: modules of other projects that are not Brevitas layers, by class name, and
#: the imported modules each translates into (a frontend op per entry)
FOREIGN_MODULES = {"TensorNorm": tensor_norm_ops}


def foreign_translation(module) -> Optional[list[nn.Module]]:
    """The imported modules of a known foreign module, else None."""
    handler = FOREIGN_MODULES.get(type(module).__name__)
    return None if handler is None else handler(module)


class FixedLinear(nn.Module):
    """A linear layer whose integer weights and scales were fixed by another
    tool: ``y = (x @ w_int.T) * w_scale + bias``, the dot product in float64
    and the epilogue of :class:`lbgen.quant.QuantLinearBase`."""

    def __init__(self, w_int: torch.Tensor, w_scale: torch.Tensor, bias: Optional[torch.Tensor],
                 weight_kind: str, weight_bits: int):
        super().__init__()
        self.out_features, self.in_features = (int(v) for v in w_int.shape)
        self.register_buffer("w_int", w_int.to(torch.float32))
        self.register_buffer("w_scale", w_scale.to(torch.float32).reshape(-1))
        self.register_buffer("bias", None if bias is None else bias.to(torch.float32).reshape(-1))
        self.weight_kind = weight_kind
        self.weight_bits = int(weight_bits)

    def quant_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.w_int, self.w_scale

    def epilogue(self, s: torch.Tensor, w_scale: Optional[torch.Tensor] = None) -> torch.Tensor:
        y = s * (self.w_scale if w_scale is None else w_scale).double()
        if self.bias is not None:
            y = y + self.bias.double()
        return y.float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.epilogue(F.linear(x.double(), self.w_int.double()))

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"weights={self.weight_kind}{self.weight_bits}, bias={self.bias is not None}")


class FixedConv2d(QuantConv2dMixin, FixedLinear):
    """:class:`FixedLinear` as a 2-d convolution: ``w_int`` is ``(out, in*kh*kw)``
    in torch's ``(c, ky, kx)`` order, zero padding in value; the forward is
    lbgen.quant's convolution forward."""

    def __init__(self, w_int: torch.Tensor, w_scale: torch.Tensor, bias: Optional[torch.Tensor],
                 weight_kind: str, weight_bits: int, kernel_size: Sequence[int], stride: Sequence[int],
                 padding: Sequence[int]):
        out_ch, in_ch, kh, kw = (int(v) for v in w_int.shape)
        FixedLinear.__init__(self, w_int.reshape(out_ch, -1), w_scale, bias, weight_kind, weight_bits)
        self._conv_init(self._conv_geometry(type(self).__name__, in_ch, out_ch, (kh, kw), tuple(stride),
                                            tuple(padding), 1, 1, "zeros"))


class ImportedModel(nn.Sequential):
    """A translated model: a chain of the modules above and plain torch ones,
    each named by the module path or ONNX node it came from (``paths``), with
    the (C, H, W) its source takes when that is a feature map."""

    def __init__(self, modules: Sequence[tuple[str, nn.Module]], source: str,
                 input_chw: Optional[tuple[int, int, int]] = None, onnx=None,
                 tensors: Optional[dict[str, str]] = None, input_datatype: Optional[str] = None):
        super().__init__(*[m for _, m in modules])
        self.paths = [p for p, _ in modules]
        self.source = source
        self.input_chw = input_chw
        #: the cleaned-up QONNX ModelWrapper this came from (the oracle runs it), and
        #: the ONNX tensor each path's module produces
        self.onnx = onnx
        self.tensors = dict(tensors or {})
        #: the graph input's finn_datatype annotation (``INT8``, ``BIPOLAR``, ...), if not FLOAT32
        self.input_datatype = input_datatype


#: quantizer and layer classes of translated models, for the torch frontend
IMPORTED_QUANTIZERS = (AffineQuant, ThresholdQuant)
IMPORTED_LINEAR = (FixedLinear,)          # FixedConv2d is a FixedLinear
IMPORTED_ELEMENTWISE = (ChannelAffine,)
IMPORTED_HOST_OUTPUT = (HostOutput,)
