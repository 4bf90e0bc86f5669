"""The golden model: the integer IR executed in numpy. It is the specification.

Torch must agree with it on every integer level; HLS C-simulation and RTL
simulation must equal it bit for bit. It needs nothing but numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .ir import Graph, IRError, MatVec, SlidingWindow, topk_terms


class OverflowError_(IRError):
    """An accumulator left the range of its acc_bits: the IR is wrong."""


@dataclass
class Trace:
    """Every layer's accumulators and output values for a batch of frames."""

    inputs: np.ndarray                  # (N, in_len of the first layer) input values
    acc: dict[str, np.ndarray]          # layer -> (N, pixels*mh) accumulators (NHWC)
    outputs: dict[str, np.ndarray]      # layer -> (N, out_len) output values (bipolar as -1/+1)
    logits: np.ndarray                  # (N, classes) float64
    output: Optional[np.ndarray] = None  # the model's output: the logits, or its host op's result
    topk: Optional[np.ndarray] = None   # (N, K) class indices, largest first (graph.topk set)

    @property
    def result(self) -> np.ndarray:
        """What the hardware emits: the top-K indices with a top-K unit, else the last
        layer's output (raw accumulators, or levels of a thresholded output layer)."""
        if self.topk is not None:
            return self.topk
        return self.outputs[list(self.outputs)[-1]]


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


#: ops the host applies to the logits (``graph.meta["host_output"]``): the model
#: ends in one, the hardware streams what comes before it
HOST_OUTPUT_OPS = {
    "Softmax": _softmax,
    "LogSoftmax": lambda z: np.log(_softmax(z)),
    "ArgMax": lambda z: np.argmax(z, axis=1),
}


def host_output(graph: Graph, logits: np.ndarray) -> np.ndarray:
    """The model's output from the golden logits: its trailing host op applied, if any."""
    op = graph.meta.get("host_output")
    return HOST_OUTPUT_OPS[op](logits) if op else logits


def accumulate(layer: MatVec, x: np.ndarray) -> np.ndarray:
    """acc[n, p*mh + c] = sum_i W[c, i] * x[n, p*mw + i], exact in int64, range-checked.

    ``x`` holds the layer's ``pixels`` input vectors per frame back to back:
    one for a fully connected layer, the windows of every output pixel behind
    a sliding window (whose padded positions already carry the value 0, as
    torch pads: ``SlidingWindow.golden``).
    """
    w = layer.weights.astype(np.int64)
    x = np.asarray(x, dtype=np.int64)
    acc = (x.reshape(x.shape[0], layer.pixels, layer.mw) @ w.T).reshape(x.shape[0], -1)
    lo, hi = -(1 << (layer.acc_bits - 1)), (1 << (layer.acc_bits - 1)) - 1
    if acc.size and (acc.min() < lo or acc.max() > hi):
        raise OverflowError_(f"layer {layer.name!r}: accumulator [{acc.min()}, {acc.max()}] "
                             f"overflows acc_bits={layer.acc_bits}")
    return acc


def threshold_levels(layer: MatVec, acc: np.ndarray) -> np.ndarray:
    """Multi-threshold unit: level = count(acc >= t), inverted per channel.

    acc is (N, pixels*mh), channel fastest (NHWC); each pixel's channels use
    the channel's thresholds."""
    assert layer.thresholds is not None and layer.threshold_invert is not None
    n = acc.shape[0]
    a = acc.reshape(n, -1, layer.mh)
    count = (a[:, :, :, None] >= layer.thresholds[None, None, :, :]).sum(axis=3).astype(np.int64)
    top = layer.thresholds.shape[1]
    return np.where(layer.threshold_invert[None, None, :], top - count, count).reshape(n, -1)


def level_values(layer: MatVec, levels: np.ndarray) -> np.ndarray:
    """Output levels -> the values the next layer multiplies (bipolar 0/1 -> -1/+1)."""
    assert layer.odtype is not None
    return 2 * levels - 1 if layer.odtype.kind == "bipolar" else levels


def run(graph: Graph, inputs: np.ndarray) -> Trace:
    """Run integer input values (N, in_len) through the graph, node by node.

    The trace keeps, per layer, its accumulators and its output values (after
    its pool): what the hardware's per-layer streams carry."""
    x = np.asarray(inputs, dtype=np.int64)
    if x.ndim != 2 or x.shape[1] != graph.in_len:
        raise IRError(f"golden: inputs of shape {x.shape}, expected (N, {graph.in_len})")
    it = graph.input.dtype
    if x.size and (x.min() < it.min or x.max() > it.max or (it.kind == "bipolar" and np.any(x == 0))):
        raise IRError(f"golden: input values outside {it}")
    trace = Trace(inputs=x, acc={}, outputs={}, logits=np.zeros(0))
    layer = None
    for node in graph.nodes:
        if isinstance(node, MatVec):
            layer = node
            acc = accumulate(node, x)
            trace.acc[node.name] = acc
            x = acc if node.is_output else level_values(node, threshold_levels(node, acc))
        else:
            x = node.golden(x)
        if layer is not None and not isinstance(node, SlidingWindow):
            trace.outputs[layer.name] = x
    trace.logits = logits(graph, x)
    trace.output = host_output(graph, trace.logits)
    if graph.topk is not None:
        trace.topk = rank(topk_scores(graph, x), int(graph.topk.k))
    return trace


#: the unit roundoff of float32 and float64
EPS32 = 2.0 ** -24
EPS64 = 2.0 ** -53


def logit_rounding_bound(graph: Graph, trace: Trace, eps: float = EPS32) -> np.ndarray:
    """(N, classes) bound on |a float32 (``eps=EPS64``: float64) framework's logit - the
    exact logit| for a fully connected output layer: its products and sums (K + a few
    roundings of each term's magnitude) and the few ops after it (batch norm, a scale)."""
    out = graph.output
    x = trace.inputs if len(graph.layers) == 1 else trace.outputs[graph.layers[-2].name]
    w = np.abs(out.weights.astype(np.float64))
    # sum |w| |x - zero| <= sum |w| (|x| + the largest level), the zero level being a level
    top = float(max(abs(out.itype.min), abs(out.itype.max)))
    mag = np.abs(x).astype(np.float64) @ w.T + top * w.sum(axis=1)[None, :]
    scale = np.ones(out.mh) if out.out_scale is None else np.abs(np.asarray(out.out_scale, dtype=np.float64))
    bias = np.zeros(out.mh) if out.out_bias is None else np.abs(np.asarray(out.out_bias, dtype=np.float64))
    terms = mag * scale[None, :] + bias[None, :]
    return (out.mw + 16) * eps * terms + 1e-300


def logits(graph: Graph, out: np.ndarray) -> np.ndarray:
    """The last layer's stream (raw accumulators, or level values of a thresholded
    output layer) -> float64 logits: (x - out_zero) * out_scale + out_bias (levels
    without a dequantization: the values themselves); see MatVec.logits."""
    return graph.output.logits(out)


def topk_scores(graph: Graph, out: np.ndarray) -> np.ndarray:
    """(N, classes) exact integer scores the top-K unit orders by (lbgen.ir.topk_terms):
    Python ints (an object array) when the unit multiplies, else the values themselves."""
    terms = topk_terms(graph)
    x = np.asarray(out, dtype=np.int64)
    if not terms.use_scale:
        return x
    s = np.array(terms.scale, dtype=object)
    b = np.array(terms.bias, dtype=object)
    return x.astype(object) * s[None, :] + b[None, :]


def rank(scores: np.ndarray, k: int) -> np.ndarray:
    """(N, classes) scores -> (N, k) int64 indices of the k largest, largest first,
    ties to the lowest index (as torch.argmax; torch.topk on CPU does not promise it). Exact:
    Python ints."""
    rows = [sorted(range(len(row)), key=lambda c: (-int(row[c]), c))[:k] for row in np.asarray(scores)]
    return np.array(rows, dtype=np.int64).reshape(len(rows), k)


def argmax_disagreements(theirs: np.ndarray, ours: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows where a float model's class (``theirs``: (N, classes) logits, or (N,)
    class indices) differs from the argmax of golden's logits ``ours``.

    Returns (real, ties): boolean masks of the rows that differ although golden's
    logits do not tie there (a bug), and of the rows where golden's two logits
    are equal to within 2^-40 of their magnitude: an exact tie, which the float
    model's rounding may break either way, so it is not a disagreement."""
    ours = np.asarray(ours, dtype=np.float64)
    theirs = np.asarray(theirs)
    t_arg = theirs.reshape(-1).astype(np.int64) if theirs.ndim == 1 else np.argmax(theirs, axis=1)
    g_arg = np.argmax(ours, axis=1)
    rows = np.arange(len(g_arg))
    scale = np.abs(ours).max(axis=1) + 1e-30
    tied = np.abs(ours[rows, t_arg] - ours[rows, g_arg]) <= 2.0 ** -40 * scale
    differ = t_arg != g_arg
    return differ & ~tied, differ & tied


def predicted(graph: Graph, result: np.ndarray) -> np.ndarray:
    """Class per frame from what the hardware emits (``Trace.result``): index 0 of
    the top-K indices, else the argmax of the logits."""
    if graph.topk is not None:
        return np.asarray(result)[:, 0]
    return np.argmax(logits(graph, result), axis=1)


def predict(graph: Graph, inputs: np.ndarray) -> np.ndarray:
    """Class index per frame from the golden logits."""
    return np.argmax(run(graph, inputs).logits, axis=1)
