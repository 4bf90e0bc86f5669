"""Brevitas frontend: a Brevitas model (in memory) -> an :class:`ImportedModel`.

Brevitas modules do not pickle, so they arrive as a live module (``lbgen.emit``)
or as a state_dict loaded into the user's own factory (``--arch``). Each
quantizer's parameters are read off its proxy at eval time (scale, zero
point, bit width, signedness, narrow range, rounding) and each layer's
integer weights off ``quant_weight()``; the translation then runs the same
lowering as lbgen's own modules. Everything Brevitas does that this does not
reproduce is named, all at once, before anything is built.
"""

from __future__ import annotations

import copy
import warnings
from typing import Optional

import numpy as np

from ..errors import UsageError
from ..golden import argmax_disagreements
from ..precision import ACT_BITS, INPUT_BITS
from .imported import AffineQuant, FixedConv2d, FixedLinear, ImportedModel

#: tensor_quant classes of Brevitas' binary quantizers (value +-scale, 0 -> +scale)
_BINARY_QUANTS = ("BinaryQuant", "ClampedBinaryQuant")
#: tensor_quant classes of Brevitas' integer quantizers
_INT_QUANTS = ("RescalingIntQuant", "IntQuant", "TruncIntQuant")


def is_brevitas(model) -> bool:
    """Whether any submodule of ``model`` is a Brevitas module."""
    return any(type(m).__module__.startswith("brevitas.") for m in model.modules())


def _is_brevitas_layer(m) -> bool:
    return type(m).__module__.startswith("brevitas.nn")


def _is_leaf(m) -> bool:
    """Modules torch.fx must not trace into: Brevitas layers and the foreign
    modules lbgen translates whole (``imported.FOREIGN_MODULES``)."""
    from .imported import FOREIGN_MODULES
    return _is_brevitas_layer(m) or type(m).__name__ in FOREIGN_MODULES


#: how far value / scale + zero_point may sit from an integer in a quantized tensor:
#: float32 rounding of int * scale leaves ~2^-24 relative, far below this
INT_TOLERANCE = 1e-3


def int_levels(qt):
    """The integers of a Brevitas QuantTensor, ``round(value / scale + zero_point)``.

    Brevitas' own ``QuantTensor.int()`` refuses a 1-bit tensor whose batch holds
    only one of the two values (its validity check wants both), which a binary
    weight of one element, or a 1-bit activation that is 0 everywhere on the
    vectors, legitimately is; so lbgen computes the same integers itself and
    checks only that they are integers."""
    import torch

    pre = qt.value.detach().double() / torch.as_tensor(qt.scale).detach().double() \
        + torch.as_tensor(qt.zero_point).detach().double()
    levels = torch.round(pre)
    dev = float((pre - levels).abs().max()) if pre.numel() else 0.0
    if not dev < INT_TOLERANCE:
        raise ValueError(f"value / scale + zero_point is {dev:.3g} away from an integer: not a quantized tensor")
    return levels


def _scalar(t, what: str, problems: list[str]) -> Optional[float]:
    import torch

    if t is None:
        return 0.0
    t = torch.as_tensor(t).detach().double()
    if t.numel() != 1:
        problems.append(f"{what} is per-channel ({tuple(t.shape)}); lbgen needs one per-tensor value")
        return None
    return float(t.reshape(()))


def _proxy_quant(path: str, proxy, problems: list[str], top: int = ACT_BITS[1]) -> Optional[AffineQuant]:
    """The AffineQuant of an activation quant proxy, or None (problems filled); ``top``:
    the most bits it may have (the model's input quantizer: ``INPUT_BITS[1]``)."""
    where = f"{path} ({type(proxy).__name__})"
    inner = getattr(proxy, "fused_activation_quant_proxy", None)
    tq = type(getattr(inner, "tensor_quant", None)).__name__
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            scale = _scalar(proxy.scale(), f"{where}: the scale", problems)
            zero_point = _scalar(proxy.zero_point(), f"{where}: the zero point", problems)
            bits = _scalar(proxy.bit_width(), f"{where}: the bit width", problems)
        except Exception as exc:  # noqa: BLE001 - a proxy that cannot report its parameters
            problems.append(f"{where}: cannot read its scale, zero point and bit width ({exc})")
            return None
    if None in (scale, zero_point, bits):
        return None
    if tq in _BINARY_QUANTS:
        return AffineQuant(1, scale, bipolar=True)
    if tq not in _INT_QUANTS:
        problems.append(f"{where}: quantizer {tq or type(proxy).__name__} (lbgen takes Brevitas' integer and "
                        "binary quantizers)")
        return None
    if bits != int(bits) or not 1 <= bits <= top:
        problems.append(f"{where}: {bits:g}-bit activations (lbgen takes 1..{ACT_BITS[1]} bits"
                        + (f"; the model's input quantizer 1..{top})" if top > ACT_BITS[1] else ")"))
        return None
    if zero_point != round(zero_point):
        problems.append(f"{where}: zero point {zero_point!r} is not an integer")
        return None
    rounding = str(getattr(proxy, "rounding_mode", "ROUND") or "ROUND").upper()
    from .imported import ROUNDING

    if rounding not in ROUNDING:
        problems.append(f"{where}: rounding mode {rounding} (lbgen takes {', '.join(ROUNDING)})")
        return None
    if not (np.isfinite(scale) and scale > 0):
        problems.append(f"{where}: scale {scale!r} is not positive and finite")
        return None
    return AffineQuant(int(bits), scale, zero_point, signed=bool(proxy.is_signed),
                       narrow=bool(getattr(proxy, "is_narrow_range", False)), rounding=rounding)


def _activation_impl(path: str, proxy, problems: list[str]) -> list:
    """The float function a Brevitas activation applies before quantizing, as torch modules."""
    import torch.nn as nn

    impl = getattr(getattr(proxy, "fused_activation_quant_proxy", None), "activation_impl", None)
    if impl is None or isinstance(impl, nn.Identity) or type(impl).__name__ == "Identity":
        return []
    if isinstance(impl, (nn.ReLU, nn.ReLU6, nn.Hardtanh)):
        return [copy.deepcopy(impl)]
    problems.append(f"{path}: activation function {type(impl).__name__} before the quantizer (lbgen takes "
                    "ReLU, ReLU6, Hardtanh or none)")
    return []


def _act_modules(path: str, module, problems: list[str], top: int = ACT_BITS[1]) -> list[tuple[str, object]]:
    proxy = module.act_quant
    if not getattr(proxy, "is_quant_enabled", False):
        problems.append(f"{path} ({type(module).__name__}): quantization is disabled (a float activation)")
        return []
    pre = _activation_impl(path, proxy, problems)
    q = _proxy_quant(path, proxy, problems, top)
    return [(f"{path}.act", m) for m in pre] + ([(path, q)] if q is not None else [])


def _bias(where: str, module, quant_weight, in_quant, problems: list[str]):
    """The layer's bias as Brevitas adds it: the float bias, or, under a
    ``bias_quant`` (Int8Bias, Int16Bias, Int32Bias, ...), its quantized value,
    which the proxy computes from the input's scale (``in_quant``, the
    quantizer in front of the layer) and the weights' scale."""
    import torch

    if module.bias is None:
        return None
    proxy = getattr(module, "bias_quant", None)
    if proxy is None or not getattr(proxy, "is_quant_enabled", False):
        return module.bias.detach()
    from brevitas.quant_tensor import IntQuantTensor

    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            quant_input = None
            if in_quant is not None:
                signed = in_quant.kind == "bipolar" or in_quant.signed
                shape = (1, module.in_channels, 1, 1) if hasattr(module, "in_channels") else (1, module.in_features)
                quant_input = IntQuantTensor(torch.zeros(shape), in_quant.scale.detach().clone(),
                                             torch.tensor(float(in_quant.zero_point)),
                                             torch.tensor(float(in_quant.bits)), signed, False)
            qb = proxy(module.bias, quant_input, quant_weight)
            return getattr(qb, "value", qb).detach().float()
    except Exception as exc:  # noqa: BLE001 - a proxy that cannot quantize without what it needs
        problems.append(f"{where}: cannot read its quantized bias ({type(proxy).__name__}: {exc})")
        return None


def _weight_layer(path: str, module, problems: list[str], in_quant=None):
    """A FixedLinear / FixedConv2d carrying the layer's integer weights, scales and bias."""
    import torch
    import torch.nn as nn

    where = f"{path} ({type(module).__name__})"
    n_before = len(problems)
    wq = module.weight_quant
    tq = type(getattr(wq, "tensor_quant", None)).__name__
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            qw = module.quant_weight()
            w_int = int_levels(qw)
            scale = torch.as_tensor(qw.scale).detach().double()
            zp = torch.as_tensor(qw.zero_point).detach().double()
            bits = float(torch.as_tensor(qw.bit_width).reshape(-1)[0])
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{where}: cannot read its quantized weights ({exc})")
            return None
    out = w_int.shape[0]
    if tq in _BINARY_QUANTS:
        kind, bits = "bipolar", 1
    elif tq in _INT_QUANTS:
        kind = "int"
        if not bool(wq.is_signed):
            problems.append(f"{where}: unsigned weights (lbgen takes signed integer or binary weights)")
        if bits != int(bits) or not 2 <= bits <= 8:
            problems.append(f"{where}: {bits:g}-bit weights (lbgen takes 2..8-bit integer weights, or Brevitas' "
                            "binary weight quantizers such as SignedBinaryWeightPerTensorConst for 1 bit)")
    else:
        problems.append(f"{where}: weight quantizer {tq or type(wq).__name__} (lbgen takes Brevitas' integer and "
                        "binary weight quantizers)")
        return None
    if torch.any(zp != 0):
        problems.append(f"{where}: weights with a zero point (lbgen takes symmetric weights)")
    if scale.numel() not in (1, out):
        problems.append(f"{where}: a weight scale of shape {tuple(scale.shape)} (per-tensor or per-output-channel "
                        "only)")
    if not torch.all(torch.isfinite(w_int)) or not torch.all(torch.isfinite(scale)):
        problems.append(f"{where}: weights or weight scales are NaN or Inf")
    if len(problems) > n_before:
        return None
    w_scale = scale.reshape(-1).expand(out) if scale.numel() == 1 else scale.reshape(-1)
    bias = _bias(where, module, qw, in_quant, problems)
    if len(problems) > n_before:
        return None
    if isinstance(module, nn.Conv2d):
        if module.groups != 1 or tuple(module.dilation) != (1, 1) or module.padding_mode != "zeros" \
                or isinstance(module.padding, str):
            problems.append(f"{where}: groups={module.groups}, dilation={module.dilation}, padding="
                            f"{module.padding!r}, padding_mode={module.padding_mode!r} (lbgen takes groups 1, "
                            "dilation 1 and integer zero padding)")
            return None
        return FixedConv2d(w_int, w_scale, bias, kind, int(bits), module.kernel_size, module.stride, module.padding)
    if w_int.dim() != 2:
        problems.append(f"{where}: weights of shape {tuple(w_int.shape)}")
        return None
    return FixedLinear(w_int, w_scale, bias, kind, int(bits))


def _layer_modules(path: str, module, problems: list[str], in_quant=None) -> list[tuple[str, object]]:
    """The layer's own input quantizer (if enabled), the layer, its output quantizer;
    ``in_quant``: the quantizer in front of it otherwise (for a bias that takes its scale)."""
    out = []
    proxy = getattr(module, "input_quant", None)
    if proxy is not None and getattr(proxy, "is_quant_enabled", False):
        q = _proxy_quant(f"{path}.input_quant", proxy, problems)
        out += [(f"{path}.input_quant", q)] if q is not None else []
        in_quant = q
    layer = _weight_layer(path, module, problems, in_quant)
    out += [(path, layer)] if layer is not None else []
    proxy = getattr(module, "output_quant", None)
    if proxy is not None and getattr(proxy, "is_quant_enabled", False):
        q = _proxy_quant(f"{path}.output_quant", proxy, problems)
        out += [(f"{path}.output_quant", q)] if q is not None else []
    return out


#: Brevitas layer classes (by name) and how they translate
_ACT_LAYERS = ("QuantIdentity", "QuantReLU", "QuantHardTanh")
_WEIGHT_LAYERS = ("QuantLinear", "QuantConv2d")


def translate(model, input_chw: Optional[tuple[int, int, int]] = None) -> ImportedModel:
    """The model as an :class:`ImportedModel` of lbgen's imported modules and
    plain torch modules; UsageError naming every unsupported module at once."""
    import torch.nn as nn

    from .torch_frontend import _kind_of, _walk, _type_name

    model = copy.deepcopy(model)
    model.eval()
    from .imported import foreign_translation

    steps = _walk(model, leaf=_is_leaf)
    problems: list[str] = []
    modules: list[tuple[str, object]] = []
    for st in steps:
        m = st.module
        name = type(m).__name__
        foreign = foreign_translation(m)
        if foreign is not None:
            modules += [(f"{st.path}.{i}", op) for i, op in enumerate(foreign)]
        elif _is_brevitas_layer(m):
            if name in _ACT_LAYERS:           # before any layer: the model's input quantizer
                modules += _act_modules(st.path, m, problems, ACT_BITS[1] if modules else INPUT_BITS[1])
            elif name in _WEIGHT_LAYERS:
                quants = [q for _, q in modules if isinstance(q, AffineQuant)]
                modules += _layer_modules(st.path, m, problems, quants[-1] if quants else None)
            else:
                problems.append(f"{st.path} ({_type_name(m)}): lbgen takes Brevitas' "
                                f"{', '.join(_ACT_LAYERS + _WEIGHT_LAYERS)}")
        elif type(m).__module__.startswith("brevitas"):
            problems.append(f"{st.path} ({_type_name(m)})")
        elif _kind_of(m) in ("elementwise", "pool", "shape", "host_output"):
            modules.append((st.path, m))
        elif isinstance(m, (nn.Linear, nn.Conv2d)):
            problems.append(f"{st.path} ({_type_name(m)}): a float layer in a Brevitas model (use QuantLinear/"
                            "QuantConv2d)")
        else:
            problems.append(f"{st.path} ({_type_name(m)})")
    if problems:
        raise UsageError("Brevitas model: unsupported modules or quantizers: " + "; ".join(problems))
    return ImportedModel(modules, source="brevitas", input_chw=input_chw)


def brevitas_levels(model, x) -> dict[str, np.ndarray]:
    """Brevitas' own forward on ``x``: the integers of every activation layer's
    output (by module path, as Brevitas gives them: signed, zero-pointed, +-1
    for binary) and the logits, under ``logits``."""
    import torch

    model.eval()
    captured: dict[str, np.ndarray] = {}
    hooks = []
    for path, m in model.named_modules():
        if _is_brevitas_layer(m) and type(m).__name__ in _ACT_LAYERS:
            def hook(mod, inputs, output, path=path):
                captured[path] = int_levels(mod.act_quant(inputs[0])).numpy().astype(np.int64)
            hooks.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = model(torch.as_tensor(np.asarray(x, dtype=np.float32)))
    finally:
        for h in hooks:
            h.remove()
    captured["logits"] = getattr(out, "value", out).detach().double().numpy()
    return captured


def compare_with_brevitas(model, imported: ImportedModel, x, golden_logits=None) -> str:
    """Brevitas' forward against the translated model's on the features ``x``:
    every activation level, and the argmax of the logits (``golden_logits``,
    else the translated model's). The translated model equals the
    golden model (checked separately), so this closes Brevitas == golden. Its
    float32 arithmetic may round across a threshold where the integer hardware
    does not; that is reported, not hidden."""
    import torch

    ref = brevitas_levels(model, x)
    ours: dict[str, np.ndarray] = {}
    hooks = []
    for path, m in zip(imported.paths, imported):
        if isinstance(m, AffineQuant) and path in ref:
            def hook(mod, inputs, output, path=path):
                ours[path] = mod.levels(inputs[0]).detach().numpy().astype(np.int64)
            hooks.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            logits = imported(torch.as_tensor(np.asarray(x, dtype=np.float32))).double().numpy()
    finally:
        for h in hooks:
            h.remove()
    if golden_logits is not None:       # the golden model's, whose integer zero keeps exact ties tied
        logits = np.asarray(golden_logits, dtype=np.float64)
    total, bad, first = 0, 0, ""
    quants = dict(zip(imported.paths, imported))
    for path, u in ours.items():
        q = quants[path]
        want = (ref[path] + 1) // 2 if q.kind == "bipolar" else ref[path] + q.offset
        diff = want != u
        total += want.size
        if diff.any():
            bad += int(diff.sum())
            if not first:
                idx = tuple(int(v) for v in np.argwhere(diff)[0])
                first = f" (first: {path} at {idx}: Brevitas {int(want[idx])}, lbgen {int(u[idx])})"
    real, ties = argmax_disagreements(ref["logits"], logits)
    diff = float(np.max(np.abs(ref["logits"] - logits)))
    tie_note = f" ({int(ties.sum())} exact ties in lbgen broken the other way by float32)" if ties.any() else ""
    if bad or real.any():
        return (f"WARNING: Brevitas' float32 forward vs lbgen on {len(x)} vectors: {bad} of {total} activation "
                f"levels differ{first}, {int(real.sum())} argmax differ{tie_note}, max |logit difference| {diff:.3g}")
    return (f"Brevitas forward vs lbgen on {len(x)} vectors: all {total} activation levels equal, argmax equal"
            f"{tie_note}, max |logit difference| {diff:.3g}")
