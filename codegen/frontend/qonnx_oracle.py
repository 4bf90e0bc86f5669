"""qonnx's reference executor as an independent oracle on every ONNX import.

lbgen translates a QONNX graph into its own modules and lowers those to the
integer IR; a mistake in that translation would be checked only against
itself. So every ONNX emit also runs the *original* (cleaned-up) graph in
``qonnx.core.onnx_exec.execute_onnx`` -- code nobody on this project wrote --
on a few raw input vectors (:func:`oracle_vectors`), and compares:

* every quantized tensor lbgen streams (the input levels and each hidden
  layer's output levels), as integers: the ONNX value ``v`` of a quantizer's
  output is ``(u - zero) * step``, so its level ``u`` is recovered exactly;
* the graph's output against the golden model's logits (after the host
  output op, if any) within float32 rounding, which the ONNX graph computes
  in: a bound from the summed magnitudes of each logit's terms; and the
  class the golden model picks must be one the ONNX output ranks first
  within that bound (ties may break either way).

The executor runs one vector at a time in numpy (about 0.5 s for FINN's CNV),
so the comparison is bounded by the network's multiply-accumulates. A
disagreement is an error that names the first ONNX node that differs.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import UsageError
from ..golden import EPS32, logit_rounding_bound

#: vectors the executor runs per emit, at most and at least; in between, as many
#: as :data:`ORACLE_MACS` multiply-accumulates allow (FINN's CNV: 59 M per vector)
ORACLE_VECTORS = 8
ORACLE_MIN_VECTORS = 2
ORACLE_MACS = 200_000_000


def oracle_vectors(graph) -> int:
    """How many vectors the executor runs for ``graph``."""
    macs = sum(layer.pixels * layer.mh * layer.mw for layer in graph.layers)
    return int(min(ORACLE_VECTORS, max(ORACLE_MIN_VECTORS, ORACLE_MACS // max(macs, 1))))


def oracle_features(graph, n: int, seed: int = 0) -> np.ndarray:
    """Raw float32 features spanning the input quantizer's range (for an emit
    with random integer vectors): levels drawn uniformly, their real values
    pushed back through the inverse of the preprocessing, plus a little noise
    so that rounding is exercised."""
    rng = np.random.default_rng(seed)
    q = graph.input
    n_feat = graph.in_len
    if q.dtype.kind == "bipolar":
        v = rng.uniform(-1.0, 1.0, size=(n, n_feat))
    else:
        lo, hi = (q.qmin, q.qmax) if q.rule == "affine" else (0, q.dtype.max)
        v = (rng.integers(lo, hi + 1, size=(n, n_feat)) - q.zero_point + rng.uniform(-0.6, 0.6, (n, n_feat))) * q.step
    for op in reversed(q.pre):
        c = np.asarray(op.const, dtype=np.float64)
        if c.size > 1:
            c = c[(np.arange(n_feat) // op.repeat) % c.size]
        v = {"Mul": lambda a: a / c, "Div": lambda a: a * c, "Add": lambda a: a - c, "Sub": lambda a: a + c,
             "RSub": lambda a: c - a}[op.op](v)
    return v.astype(np.float32)


def _onnx_levels(value: np.ndarray, quantizer) -> np.ndarray:
    """An ONNX quantizer output (float32) -> the levels lbgen streams."""
    v = np.asarray(value, dtype=np.float64)
    if quantizer.kind == "bipolar":
        return (v >= 0).astype(np.int64)
    return np.rint(v / float(quantizer.scale) + quantizer.zero).astype(np.int64)


def _stream_order(a: np.ndarray) -> np.ndarray:
    """An NCHW (or N, features) tensor -> (N, -1) in lbgen's NHWC stream order."""
    a = np.asarray(a)
    if a.ndim == 4:
        a = a.transpose(0, 2, 3, 1)
    return a.reshape(a.shape[0], -1)


def _tap_quantizers(imported, paths) -> dict:
    """Each tap's quantizer: the module itself, or for a max-pool of levels the
    quantizer in front of it."""
    mods = list(imported)
    out = {}
    for path in paths:
        i = imported.paths.index(path)
        while i > 0 and not hasattr(mods[i], "levels"):
            i -= 1
        out[path] = mods[i]
    return out


def _golden_levels(graph, trace) -> dict[str, np.ndarray]:
    out = {"input": trace.inputs}
    for layer in graph.layers:
        if not layer.is_output:         # hidden layers, and an output layer thresholded in hardware
            out[layer.name] = trace.outputs[layer.name]
    for key, v in out.items():
        kind = graph.input.dtype.kind if key == "input" else graph.layer(key).odtype.kind
        out[key] = (v + 1) // 2 if kind == "bipolar" else v
    return out


def compare_with_qonnx(imported, graph, features: np.ndarray, host_values) -> str:
    """Run qonnx's executor on ``features`` (raw, as the model takes them) and
    compare with the golden model; UsageError naming the first node that
    differs. ``host_values``: features -> the integer input stream."""
    from qonnx.core.onnx_exec import execute_onnx

    from .. import golden

    model = imported.onnx
    x = np.asarray(features, dtype=np.float32)[:oracle_vectors(graph)]
    consts = {t.name for t in model.graph.initializer}
    in_name = next(i.name for i in model.graph.input if i.name not in consts)
    in_shape = [d if isinstance(d, int) and d > 0 else 1 for d in (model.get_tensor_shape(in_name) or [1, -1])]
    in_shape[0] = 1
    trace = golden.run(graph, host_values(x))
    ours = _golden_levels(graph, trace)
    taps = graph.meta.get("taps", {})
    quants = _tap_quantizers(imported, taps.values())
    out_name = model.graph.output[0].name
    onnx_out = []
    for i in range(len(x)):
        ctx = execute_onnx(model, {in_name: x[i].reshape(in_shape)}, return_full_exec_context=True)
        for key, path in taps.items():
            if path not in imported.tensors:      # a quantizer lbgen added (--input-format): no ONNX tensor
                continue
            got = _onnx_levels(_stream_order(ctx[imported.tensors[path]]), quants[path])[0]
            want = ours[key][i]
            if not np.array_equal(got, want):
                j = int(np.argmax(got != want))
                raise UsageError(f"qonnx's executor disagrees with lbgen at ONNX node {path!r} (tensor "
                                 f"{imported.tensors[path]!r}, lbgen {key}): vector {i}, element {j} (stream "
                                 f"order): qonnx level {int(got[j])}, lbgen {int(want[j])}")
        onnx_out.append(np.asarray(ctx[out_name], dtype=np.float64).reshape(-1))
    return _compare_output(graph, trace, np.stack(onnx_out), out_name, len(x))


def _compare_output(graph, trace, onnx_out: np.ndarray, out_name: str, n: int) -> str:
    host = graph.meta.get("host_output")
    if host == "ArgMax":
        pick = np.argmax(trace.logits, axis=1)
        if not np.array_equal(onnx_out.reshape(-1).astype(np.int64), pick):
            i = int(np.argmax(onnx_out.reshape(-1) != pick))
            raise UsageError(f"qonnx's executor disagrees with lbgen at the graph output {out_name!r} (ArgMax): "
                             f"vector {i}: qonnx {int(onnx_out.reshape(-1)[i])}, lbgen {int(pick[i])}")
        return f"qonnx executor vs lbgen on {n} vectors: every quantized tensor equal, ArgMax equal"
    if host is not None:
        # a softmax moves by at most twice the largest logit error; a log-softmax by twice that too
        bound = np.repeat(2 * logit_rounding_bound(graph, trace).max(axis=1, keepdims=True), trace.logits.shape[1],
                          axis=1)
        bound = bound + 8 * EPS32 * (1.0 + np.abs(trace.output))     # the op's own float32 rounding
        return _within(trace.output, onnx_out, bound, out_name, n, host)
    return _within(trace.logits, onnx_out, logit_rounding_bound(graph, trace), out_name, n, "output")


def _within(ref: np.ndarray, onnx_out: np.ndarray, bound: np.ndarray, out_name: str, n: int, what: str) -> str:
    if onnx_out.shape != ref.shape:
        raise UsageError(f"qonnx's executor gives the graph output {out_name!r} of {onnx_out.shape[1:]} per vector, "
                         f"lbgen {ref.shape[1:]} logits")
    diff = np.abs(onnx_out - ref)
    if np.any(diff > bound):
        i, c = (int(v) for v in np.argwhere(diff > bound)[0])
        raise UsageError(f"qonnx's executor disagrees with lbgen at the graph output {out_name!r}: vector {i}, "
                         f"class {c}: qonnx {onnx_out[i, c]!r}, lbgen {ref[i, c]!r} (beyond float32 rounding, "
                         f"{bound[i, c]:.3g})")
    pick = np.argmax(ref, axis=1)
    rows = np.arange(len(pick))
    if np.any(onnx_out[rows, pick] < onnx_out.max(axis=1) - 2 * bound.max(axis=1)):
        i = int(np.argmax(onnx_out[rows, pick] < onnx_out.max(axis=1) - 2 * bound.max(axis=1)))
        raise UsageError(f"qonnx's executor disagrees with lbgen at the graph output {out_name!r}: vector {i}: "
                         f"qonnx ranks class {int(np.argmax(onnx_out[i]))} first, lbgen {int(pick[i])}")
    return (f"qonnx executor vs lbgen on {n} vectors: every quantized tensor equal, {what} within float32 "
            f"rounding (max |difference| {float(diff.max()):.3g}), argmax equal")


def oracle_check(imported, graph, features: Optional[np.ndarray], host_values) -> list[str]:
    """The oracle line for an emit of an ONNX import, else nothing."""
    if getattr(imported, "onnx", None) is None:
        return []
    if features is None:
        features = oracle_features(graph, ORACLE_VECTORS)
        chw = graph.meta.get("input_chw")
        if chw is not None and not graph.meta.get("input_flat", False):
            features = features.reshape(-1, *chw)
    return [compare_with_qonnx(imported, graph, features, host_values)]
