"""QONNX / ONNX frontend: a ``.onnx`` file -> an :class:`ImportedModel`.

The graph is first put through the ``qonnx`` package's own cleanup (shape
inference, constant folding, unique names, topological order), so what lbgen
reads is what qonnx and FINN would read. It must then be one chain from the
graph input to the graph output; weights are initializers behind a ``Quant`` /
``BipolarQuant`` node, or integer initializers annotated with a QONNX integer
data type (a FINN-streamlined graph). Every node lbgen cannot translate is
named, all at once, before anything is built.
"""

from __future__ import annotations

from pathlib import Path
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from ..errors import UsageError
from ..precision import ACT_BITS, INPUT_BITS
from .imported import (ROUNDING, AffineQuant, ChannelAffine, FixedConv2d, FixedLinear, HostOutput, ImportedModel,
                       ThresholdQuant,
                       int_range)

#: ONNX ops lbgen translates (besides the qonnx custom ops Quant, BipolarQuant, MultiThreshold)


def _onnx():
    try:
        import onnx
        from qonnx.core.modelwrapper import ModelWrapper  # noqa: F401
    except ImportError:  # pragma: no cover - the set-up installs both
        raise UsageError("reading a .onnx model needs the onnx and qonnx packages (pip install qonnx)") from None
    return onnx


def load_onnx(path: Path) -> ImportedModel:
    """Read, clean up (qonnx) and translate ``path``; UsageError naming the problem."""
    onnx = _onnx()
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.general import SortGraph
    from qonnx.util.cleanup import cleanup_model

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"model file {str(path)!r} not found")
    try:
        proto = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - protobuf raises DecodeError and friends
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UsageError(f"model file {str(path)!r} cannot be read as ONNX ({type(exc).__name__}: {first})") from None
    if not proto.graph.node:
        raise UsageError(f"model file {str(path)!r}: the ONNX graph has no nodes")
    for node in proto.graph.node:
        # qonnx's cleanup renames every node; errors name the user's own nodes
        if node.name:
            node.doc_string = _NAME_TAG + node.name
    _fix_batch(proto)
    # before the cleanup, whose constant folding could saturate an Inf weight through its Quant
    bad = _initializer_problems(_Graph(ModelWrapper(proto), str(path)))
    if bad:
        raise UsageError(f"model file {str(path)!r}: " + "; ".join(bad))
    try:
        model = cleanup_model(ModelWrapper(proto))
        model = model.transform(SortGraph())
    except Exception as exc:  # noqa: BLE001 - qonnx's transforms raise anything on a malformed graph
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UsageError(f"model file {str(path)!r}: qonnx cannot clean up the graph ({type(exc).__name__}: "
                         f"{first})") from None
    return translate_graph(model, str(path))


def _fix_batch(proto) -> None:
    """A symbolic or unknown batch dimension of the graph's inputs and outputs
    becomes 1, as FINN requires: shapes are then static, so the cleanup's shape
    inference and constant folding resolve a ``Shape``/``Gather``/``Concat``
    batch reshape, and qonnx's executor (the oracle) accepts one vector."""
    consts = {t.name for t in proto.graph.initializer}
    for vi in list(proto.graph.input) + list(proto.graph.output):
        if vi.name in consts or not vi.type.HasField("tensor_type"):
            continue
        dims = vi.type.tensor_type.shape.dim
        if len(dims) and (dims[0].HasField("dim_param") or dims[0].dim_value <= 0):
            dims[0].Clear()
            dims[0].dim_value = 1
    del proto.graph.value_info[:]       # re-inferred from the static input by the cleanup


_NAME_TAG = "lbgen-original-name:"


def _name(node) -> str:
    """The node's name in the user's file (before qonnx's cleanup renamed it)."""
    doc = node.doc_string or ""
    return doc[len(_NAME_TAG):] if doc.startswith(_NAME_TAG) else node.name


def _attrs(node) -> dict:
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


class _Graph:
    """The cleaned-up graph: constants, producers, and the problems found."""

    def __init__(self, model, source: str):
        self.model = model
        self.source = source
        self.consts = {t.name: model.get_initializer(t.name) for t in model.graph.initializer}
        self.problems: list[str] = []

    def const(self, name: str) -> Optional[np.ndarray]:
        v = self.consts.get(name)
        return None if v is None else np.asarray(v)

    def is_weight_quant(self, node) -> bool:
        return node.op_type in ("Quant", "BipolarQuant") and all(i in self.consts for i in node.input if i)

    def value(self, name: str) -> Optional[np.ndarray]:
        """A constant operand: an initializer, or a ``Quant``/``BipolarQuant`` of
        initializers (a quantized bias, QKeras style) as qonnx computes it, in
        float32; None if the tensor depends on the graph input."""
        v = self.const(name)
        if v is not None:
            return v
        node = self.model.find_producer(name)
        if node is None or not self.is_weight_quant(node):
            return None
        x, scale = self.const(node.input[0]).astype(np.float32), self.const(node.input[1]).astype(np.float32)
        if node.op_type == "BipolarQuant":
            return np.where(x >= 0, np.float32(1), np.float32(-1)) * scale
        zp, bits = self.const(node.input[2]).astype(np.float32), float(self.const(node.input[3]).reshape(-1)[0])
        a = _attrs(node)
        rounding = str(a.get("rounding_mode", "ROUND")).upper()
        if rounding not in ROUNDING or bits != int(bits) or not 1 <= bits <= 32:
            self.problems.append(f"{_name(node)} (Quant): a constant quantized to {bits:g} bits, {rounding}")
            return None
        q = _quant_ints(x, scale, zp, bits, bool(a.get("signed", 1)), bool(a.get("narrow", 0)), rounding)
        return ((q - zp) * scale).astype(np.float32)


def _scalar(g: _Graph, node, name: str, what: str) -> Optional[float]:
    v = g.const(name)
    if v is None:
        g.problems.append(f"{_name(node)} ({node.op_type}): its {what} is not a constant")
        return None
    if v.size != 1:
        g.problems.append(f"{_name(node)} ({node.op_type}): its {what} has shape {tuple(v.shape)}; lbgen needs one "
                          "per-tensor value for an activation")
        return None
    return float(v.reshape(()))


def _act_quant(g: _Graph, node, top: int = ACT_BITS[1]) -> Optional[AffineQuant]:
    """An activation ``Quant``/``BipolarQuant`` as an AffineQuant of at most ``top`` bits
    (the graph's input quantizer: ``INPUT_BITS[1]``), or None (problems filled)."""
    where = f"{_name(node)} ({node.op_type})"
    scale = _scalar(g, node, node.input[1], "scale")
    if node.op_type == "BipolarQuant":
        return None if scale is None else AffineQuant(1, scale, bipolar=True)
    zero_point = _scalar(g, node, node.input[2], "zero point")
    bits = _scalar(g, node, node.input[3], "bit width")
    if None in (scale, zero_point, bits):
        return None
    a = _attrs(node)
    signed, narrow = bool(a.get("signed", 1)), bool(a.get("narrow", 0))
    rounding = str(a.get("rounding_mode", "ROUND")).upper()
    bad = []
    if bits != int(bits) or not (2 if signed else 1) <= bits <= top:
        bad.append(f"{bits:g}-bit {'signed' if signed else 'unsigned'} (lbgen takes 1..{ACT_BITS[1]} bits, "
                   f"signed 2..{ACT_BITS[1]}"
                   + (f"; the graph's input quantizer 1..{top}, signed 2..{top})" if top > ACT_BITS[1] else ")"))
    if zero_point != round(zero_point):
        bad.append(f"zero point {zero_point!r} is not an integer")
    if rounding not in ROUNDING:
        bad.append(f"rounding_mode {rounding} (lbgen takes {', '.join(ROUNDING)})")
    if not (np.isfinite(scale) and scale > 0):
        bad.append(f"scale {scale!r} is not positive and finite")
    if bad:
        g.problems.append(f"{where}: " + "; ".join(bad))
        return None
    return AffineQuant(int(bits), scale, zero_point, signed=signed, narrow=narrow, rounding=rounding)


def _threshold_quant(g: _Graph, node) -> Optional[ThresholdQuant]:
    import torch

    where = f"{_name(node)} (MultiThreshold)"
    thr = g.const(node.input[1])
    a = _attrs(node)
    if thr is None or thr.ndim != 2:
        g.problems.append(f"{where}: thresholds must be a constant (channels, T) matrix")
        return None
    if str(a.get("data_layout", "NCHW")) != "NCHW":
        g.problems.append(f"{where}: data_layout {a.get('data_layout')} (lbgen takes NCHW, as qonnx writes it)")
        return None
    if not np.all(np.isfinite(thr)) and not np.all(np.isfinite(thr) | np.isinf(thr)):
        g.problems.append(f"{where}: thresholds are NaN")
        return None
    out_scale, out_bias = float(a.get("out_scale", 1.0)), float(a.get("out_bias", 0.0))
    dtype = str(a.get("out_dtype", ""))
    t = thr.shape[1]
    if dtype == "BIPOLAR" or (t == 1 and out_scale > 0 and out_bias == -out_scale / 2):
        if t != 1:
            g.problems.append(f"{where}: a BIPOLAR output takes one threshold, not {t}")
            return None
        return ThresholdQuant(torch.from_numpy(thr.astype(np.float32)), out_scale, out_bias, 1, bipolar=True)
    bits = max(1, int(np.ceil(np.log2(t + 1))))
    zero = -out_bias / out_scale if out_scale else float("nan")
    if not (np.isfinite(out_scale) and out_scale > 0) or zero != round(zero) or bits > 8:
        g.problems.append(f"{where}: out_scale {out_scale:g}, out_bias {out_bias:g} with {t} thresholds (lbgen "
                          "takes a positive out_scale, out_bias an integer multiple of it, at most 255 thresholds)")
        return None
    return ThresholdQuant(torch.from_numpy(thr.astype(np.float32)), out_scale, out_bias, bits)


def _quant_ints(x: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, bits: float, signed: bool, narrow: bool,
                rounding: str) -> np.ndarray:
    """QONNX ``Quant``'s integers, in float32 as qonnx computes them."""
    x = x.astype(np.float32)
    y = x / scale.astype(np.float32) + zero_point.astype(np.float32)
    from ..ir import ROUNDING_MODES

    q = ROUNDING_MODES[rounding](y)
    return np.clip(q, *int_range(int(bits), signed, narrow))


def _weights(g: _Graph, node, name: str, out_axis: int):
    """(w_int, per-output-channel scale, kind, bits) of a weight input, or None;
    ``out_axis``: the axis of the weight tensor that indexes output channels."""
    where = f"{_name(node)} ({node.op_type})"
    producer = g.model.find_producer(name)
    datatype = None
    if producer is not None and g.is_weight_quant(producer):
        x = g.const(producer.input[0])
        scale = g.const(producer.input[1]).astype(np.float64)
        if producer.op_type == "BipolarQuant":
            w, kind, bits = np.where(x >= 0, 1.0, -1.0), "bipolar", 1
            zp = np.zeros(1)
        else:
            zp, bits = g.const(producer.input[2]), float(g.const(producer.input[3]).reshape(-1)[0])
            a = _attrs(producer)
            signed, narrow = bool(a.get("signed", 1)), bool(a.get("narrow", 0))
            rounding = str(a.get("rounding_mode", "ROUND")).upper()
            if not signed or bits != int(bits) or not 2 <= bits <= 8 or rounding not in ROUNDING:
                g.problems.append(f"{where}: weights quantized by {_name(producer)} as {bits:g}-bit "
                                  f"{'signed' if signed else 'unsigned'}, {rounding} (lbgen takes signed 2..8-bit "
                                  "integer weights, ROUND, or BipolarQuant)")
                return None
            if np.any(zp != 0):
                g.problems.append(f"{where}: weights with a zero point (lbgen takes symmetric weights)")
                return None
            w = _quant_ints(x, scale, zp, bits, signed, narrow, rounding)
            kind, bits = "int", int(bits)
    elif name in g.consts:
        w = g.const(name).astype(np.float64)
        datatype = g.model.get_tensor_datatype(name)
        dt = getattr(datatype, "name", str(datatype))
        if dt == "BIPOLAR":
            kind, bits = "bipolar", 1
        elif dt.startswith("INT") and dt[3:].isdigit() and 2 <= int(dt[3:]) <= 8:
            kind, bits = "int", int(dt[3:])
        else:
            g.problems.append(f"{where}: its weights are not quantized (a {dt} initializer without a Quant "
                              "or BipolarQuant node; lbgen takes quantized weights, or a float model via --calib "
                              "as a .pt)")
            return None
        if not np.array_equal(w, np.rint(w)):
            g.problems.append(f"{where}: its weights are annotated {dt} but are not integers")
            return None
        scale = np.ones(1)
    else:
        g.problems.append(f"{where}: its weights are not a constant")
        return None
    if not np.all(np.isfinite(w)) or not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        g.problems.append(f"{where}: weights or weight scales are NaN, Inf or not positive")
        return None
    full = np.broadcast_to(scale, w.shape) if scale.size > 1 else np.full(w.shape, float(scale.reshape(-1)[0]))
    per_out = np.moveaxis(full, out_axis, 0).reshape(w.shape[out_axis], -1)
    if not np.all(per_out == per_out[:, :1]):
        g.problems.append(f"{where}: the weight scale varies along the input axis (lbgen takes per-tensor or "
                          "per-output-channel scales)")
        return None
    return w, per_out[:, 0], kind, bits


def _channel_const(g: _Graph, node, value: np.ndarray, channels: Optional[int]) -> Optional[np.ndarray]:
    v = np.asarray(value, dtype=np.float64)
    if v.size == 1:
        return v.reshape(1)
    squeezed = [d for d in v.shape if d != 1]
    if len(squeezed) == 1 and (channels is None or squeezed[0] == channels) and \
            (v.ndim < 2 or v.shape[1] == squeezed[0] or v.ndim == 1):
        return v.reshape(-1)
    g.problems.append(f"{_name(node)} ({node.op_type}): a constant of shape {tuple(v.shape)} (lbgen takes a scalar "
                      "or one value per channel)")
    return None


def _initializer_problems(g: _Graph) -> list[str]:
    """NaN or Inf in any float initializer, each named with the nodes that read
    it: a weight of Inf would otherwise be saturated silently by its Quant.
    A MultiThreshold's thresholds may be +-Inf ("never", "always"), not NaN."""
    readers: dict[str, list] = {}
    for node in g.model.graph.node:
        for i in node.input:
            readers.setdefault(i, []).append(node)
    out = []
    for name, value in g.consts.items():
        v = np.asarray(value)
        if v.dtype.kind != "f":
            continue
        nodes = readers.get(name, [])
        thresholds = nodes and all(n.op_type == "MultiThreshold" and n.input[1] == name for n in nodes)
        bad = np.isnan(v) if thresholds else ~np.isfinite(v)
        if bad.any():
            who = ", ".join(f"{_name(n)} ({n.op_type})" for n in nodes) or "no node"
            out.append(f"initializer {name!r} (read by {who}) holds NaN{'' if thresholds else ' or Inf'} "
                       f"({int(bad.sum())} of {v.size} values)")
    return out


@dataclass
class _Chain:
    """Where the walk along the chain stands: the tensor it is at, and the
    rank and channels of that tensor (constants are checked against them)."""

    g: _Graph
    cur: str
    rank: int
    channels: int
    has_modules: bool = False


#: ONNX op type -> handler(chain, node, where, attrs) -> module or None (an
#: identity, or a problem appended to ``chain.g.problems``)
_HANDLERS: dict[str, Callable] = {}


def _handles(*ops: str):
    def register(fn):
        for op in ops:
            _HANDLERS[op] = fn
        return fn
    return register


@_handles("Quant", "BipolarQuant")
def _on_quant(c: _Chain, node, where: str, a: dict):
    # before any module it is the graph's input quantizer, which may be wider
    return _act_quant(c.g, node, ACT_BITS[1] if c.has_modules else INPUT_BITS[1])


@_handles("MultiThreshold")
def _on_multithreshold(c: _Chain, node, where: str, a: dict):
    return _threshold_quant(c.g, node)


@_handles("MatMul", "Gemm")
def _on_matmul(c: _Chain, node, where: str, a: dict):
    """Gemm: alpha * (A B) + beta * C, B transposed with transB; MatMul: A B."""
    import torch

    g, gemm = c.g, node.op_type == "Gemm"
    alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
    if gemm and int(a.get("transA", 0)) != 0:
        g.problems.append(f"{where}: transA 1 (lbgen takes the input as (N, features), transA 0)")
    trans_b = gemm and int(a.get("transB", 0)) == 1
    got = _weights(g, node, node.input[1], 0 if trans_b else 1)
    bias = None
    if gemm and len(node.input) > 2 and node.input[2]:
        bias = g.value(node.input[2])
        if bias is None:
            g.problems.append(f"{where}: its bias is not a constant")
    if got is None:
        return None
    w, scale, kind, bits = got
    w = w if trans_b else w.T
    scale = scale * np.float64(np.float32(alpha))
    if bias is not None:
        bias = _channel_const(g, node, bias, w.shape[0])
        bias = None if bias is None else bias * np.float64(np.float32(beta))
    c.channels, c.rank = w.shape[0], 2
    return FixedLinear(torch.from_numpy(np.array(w)), torch.from_numpy(np.array(scale)),
                       None if bias is None else torch.from_numpy(np.array(bias)), kind, bits)


@_handles("Conv")
def _on_conv(c: _Chain, node, where: str, a: dict):
    import torch

    g = c.g
    k = a.get("kernel_shape")
    pads = list(a.get("pads", [0, 0, 0, 0]))
    if int(a.get("group", 1)) != 1 or list(a.get("dilations", [1, 1])) != [1, 1] \
            or str(a.get("auto_pad", "NOTSET")) != "NOTSET" or len(pads) != 4 \
            or pads[0] != pads[2] or pads[1] != pads[3]:
        g.problems.append(f"{where}: group {a.get('group', 1)}, dilations {a.get('dilations')}, pads "
                          f"{pads}, auto_pad {a.get('auto_pad', 'NOTSET')} (lbgen takes group 1, "
                          "dilation 1, symmetric explicit pads)")
    got = _weights(g, node, node.input[1], 0)
    bias = g.value(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if got is None or g.problems:
        return None
    w, scale, kind, bits = got
    if w.ndim != 4 or (k is not None and list(k) != list(w.shape[2:])):
        g.problems.append(f"{where}: weights of shape {w.shape}")
        return None
    bias_t = None if bias is None else torch.from_numpy(np.array(bias).reshape(-1))
    c.channels, c.rank = w.shape[0], 4
    return FixedConv2d(torch.from_numpy(np.array(w)), torch.from_numpy(np.array(scale)), bias_t,
                       kind, bits, w.shape[2:], a.get("strides", [1, 1]), pads[:2])


@_handles("Add", "Sub", "Mul", "Div")
def _on_elementwise(c: _Chain, node, where: str, a: dict):
    """The chain and one constant (a scalar or one value per channel); Sub
    also as c - x."""
    import torch

    op = node.op_type
    values = {i: c.g.value(i) for i in node.input if i != c.cur}     # each operand evaluated once
    consts = [i for i, v in values.items() if v is not None]
    if len(consts) != 1 or (op == "Div" and node.input[1] != consts[0]):
        c.g.problems.append(f"{where}: lbgen takes {op} of the chain by one constant")
        return None
    const = _channel_const(c.g, node, values[consts[0]], c.channels)
    if const is None:
        return None
    rsub = op == "Sub" and node.input[0] == consts[0]
    return ChannelAffine("RSub" if rsub else op, torch.from_numpy(const))


@_handles("BatchNormalization")
def _on_batchnorm(c: _Chain, node, where: str, a: dict):
    import torch
    import torch.nn as nn

    vals = [c.g.const(i) for i in node.input[1:5]]
    if any(v is None for v in vals):
        c.g.problems.append(f"{where}: its parameters are not constants")
        return None
    bn = (nn.BatchNorm2d if c.rank == 4 else nn.BatchNorm1d)(int(vals[0].size), eps=float(a.get("epsilon", 1e-5)))
    with torch.no_grad():
        for t, v in zip((bn.weight, bn.bias, bn.running_mean, bn.running_var), vals):
            t.copy_(torch.from_numpy(np.array(v, dtype=np.float32).reshape(-1)))
    return bn.eval()


@_handles("Relu")
def _on_relu(c: _Chain, node, where: str, a: dict):
    import torch.nn as nn
    return nn.ReLU()


@_handles("Clip")
def _on_clip(c: _Chain, node, where: str, a: dict):
    import torch.nn as nn

    lo = c.g.const(node.input[1]) if len(node.input) > 1 and node.input[1] else None
    hi = c.g.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if lo is None or hi is None:
        c.g.problems.append(f"{where}: lbgen takes a Clip with constant min and max")
        return None
    return nn.Hardtanh(float(lo), float(hi))


@_handles("MaxPool")
def _on_maxpool(c: _Chain, node, where: str, a: dict):
    import torch.nn as nn

    k = list(a.get("kernel_shape", []))
    st = list(a.get("strides", [1] * len(k)))
    if len(k) != 2 or any(a.get("pads", [0, 0, 0, 0])) or int(a.get("ceil_mode", 0)) \
            or list(a.get("dilations", [1, 1])) != [1, 1]:
        c.g.problems.append(f"{where}: kernel {k}, pads {a.get('pads')}, ceil_mode {a.get('ceil_mode', 0)} "
                            "(lbgen takes 2-d max-pools without padding)")
        return None
    return nn.MaxPool2d(tuple(k), tuple(st))


@_handles("Flatten", "Reshape")
def _on_flatten(c: _Chain, node, where: str, a: dict):
    import torch.nn as nn

    out_shape = c.g.model.get_tensor_shape(node.output[0])
    if (node.op_type == "Flatten" and int(a.get("axis", 1)) != 1) or out_shape is None or len(out_shape) != 2:
        c.g.problems.append(f"{where}: only a flatten to (N, features) is supported")
        return None
    c.rank, c.channels = 2, int(out_shape[1])
    return nn.Flatten()


@_handles("Softmax", "LogSoftmax", "ArgMax")
def _on_host_output(c: _Chain, node, where: str, a: dict):
    op = node.op_type
    axis = int(a.get("axis", -1 if op != "ArgMax" else 0))
    if axis not in (1, -1) or c.rank != 2 or int(a.get("select_last_index", 0)) != 0:
        c.g.problems.append(f"{where}: axis {axis} of a rank-{c.rank} tensor (lbgen applies {op} over the "
                            "classes of the (N, classes) logits)")
        return None
    return HostOutput(op)


@_handles("Identity", "Dropout")
def _on_identity(c: _Chain, node, where: str, a: dict):
    return None


def _graph_input(model, g: _Graph, source: str):
    """The one graph input: (its ValueInfo, its (C, H, W) or None, its rank, its channels)."""
    inputs = [i for i in model.graph.input if i.name not in g.consts]
    if len(inputs) != 1 or len(model.graph.output) != 1:
        raise UsageError(f"{source}: lbgen takes a graph with one input and one output, not {len(inputs)} and "
                         f"{len(model.graph.output)}")
    shape = model.get_tensor_shape(inputs[0].name)
    if shape is None or len(shape) not in (2, 4):
        raise UsageError(f"{source}: input {inputs[0].name!r} of shape {shape}; lbgen takes (N, features) or "
                         "(N, C, H, W)")
    chw = tuple(int(v) for v in shape[1:]) if len(shape) == 4 else None
    return inputs[0], chw, len(shape), int(shape[1])


def _check_single_chain(c: _Chain, node, where: str, source: str) -> None:
    g = c.g
    dynamic = [i for i in node.input if i and i not in g.consts
               and not (g.model.find_producer(i) is not None and g.is_weight_quant(g.model.find_producer(i)))]
    if dynamic != [c.cur] and not (node.op_type in ("Add", "Mul") and sorted(dynamic) == [c.cur]):
        raise UsageError(f"{source}: node {where} is not part of a single chain from the input (it reads "
                         f"{dynamic}, the chain is at {c.cur!r}); branches and skips are not supported"
                         + (". Also: " + "; ".join(g.problems) if g.problems else ""))


def _check_host_output_last(g: _Graph) -> None:
    chain = [n for n in g.model.graph.node if not g.is_weight_quant(n) and n.op_type not in ("Identity", "Dropout")]
    for node, after in zip(chain, chain[1:]):
        if node.op_type in HostOutput.OPS:
            g.problems.append(f"{_name(node)} ({node.op_type}): only the graph's last op may be a {node.op_type} (the "
                              f"host applies it to the logits; {_name(after)} ({after.op_type}) follows)")


def translate_graph(model, source: str = "model.onnx") -> ImportedModel:
    """The ONNX graph as an ImportedModel: each node of the single chain from
    the input to the output goes to its op's handler (``_HANDLERS``); every
    problem of every node is collected and reported at once."""
    g = _Graph(model, source)
    bad = _initializer_problems(g)
    if bad:
        raise UsageError(f"{source}: " + "; ".join(bad))
    graph_input, input_chw, rank, channels = _graph_input(model, g, source)
    chain = _Chain(g, graph_input.name, rank, channels)
    modules: list[tuple[str, object]] = []
    tensors: dict[str, str] = {}
    for node in model.graph.node:
        if g.is_weight_quant(node):
            continue
        where = f"{_name(node)} ({node.op_type})"
        _check_single_chain(chain, node, where, source)
        handler = _HANDLERS.get(node.op_type)
        if handler is None:
            g.problems.append(f"{where}: unsupported op (lbgen takes {', '.join(SUPPORTED_OPS)})")
            mod = None
        else:
            mod = handler(chain, node, where, _attrs(node))
        if mod is not None:
            modules.append((_name(node), mod))
            tensors[_name(node)] = node.output[0]
            chain.has_modules = True
        chain.cur = node.output[0]
    _check_host_output_last(g)
    if g.problems:
        raise UsageError(f"{source}: cannot translate: " + "; ".join(g.problems))
    if chain.cur != model.graph.output[0].name:
        raise UsageError(f"{source}: the chain ends at {chain.cur!r}, not at the graph output "
                         f"{model.graph.output[0].name!r}")
    dt = str(getattr(model.get_tensor_datatype(graph_input.name), "name", "FLOAT32"))
    return ImportedModel(modules, source="qonnx", input_chw=input_chw, onnx=model, tensors=tensors,
                         input_datatype=None if dt == "FLOAT32" else dt)


#: the ONNX ops lbgen translates, in the order their handlers are defined
SUPPORTED_OPS = tuple(_HANDLERS)
