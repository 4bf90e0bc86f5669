"""The checks ``lbgen emit`` runs before it writes anything: the model's own
forward against the golden model of the IR it was compiled to.

* :func:`compare_torch_golden`: torch on the float features vs golden on
  their levels -- every hidden level, the output layer's accumulators
  (recovered from torch's float logits), every argmax;
* :func:`compare_source`: a translated model's original (Brevitas) forward
  vs the translation;
* the QONNX oracle (:func:`lbgen.frontend.qonnx_oracle.oracle_check`) for an
  ONNX import.

Each returns the line ``lbgen emit`` prints, or raises UsageError ("internal
check failed: ...") naming the first layer, frame and channel that differ.
"""

from __future__ import annotations

import copy
from typing import Optional

import numpy as np

from . import golden
from .errors import UsageError
from .ir import Graph
from .inputs import Vectors, host_stream


def compare_torch_golden(model, graph: Graph, vectors: Vectors, trace: golden.Trace) -> str:
    """Torch on the float features vs golden (``trace``) on their levels: every level, the
    output layer's accumulators, every argmax."""
    from .frontend.torch_frontend import reference_levels

    if vectors.features is None:
        return "torch vs golden: skipped (random integer vectors, no float features)"
    flat_chw = graph.meta.get("input_chw") if graph.meta.get("input_flat") else None
    ref = reference_levels(model, vectors.features, input_chw=flat_chw)
    if not np.array_equal(ref["input"], np.where(vectors.values < 0, 0, vectors.values)
                          if graph.input.dtype.kind == "bipolar" else vectors.values):
        raise UsageError("internal check failed: torch's input levels differ from lbgen's input quantizer")
    _compare_levels(graph, ref, trace)
    host = graph.meta.get("host_output")
    theirs = np.asarray(ref["logits"])
    _compare_argmax(host, theirs, trace)
    if graph.output.is_output:
        out_logits, eps = _output_logits(model, vectors.features, flat_chw, ref)
        which = f"every hidden level equal, {compare_output_accumulators(graph, out_logits, trace, eps)}"
    else:
        which = "every level (output levels too) equal"
    what = "logit" if host is None else f"{host} output"
    diff = 0.0 if host == "ArgMax" else float(np.max(np.abs(theirs - trace.output)))
    return (f"torch vs golden on {len(vectors.values)} vectors: {which}, "
            f"argmax equal, max |{what} difference| {diff:.3g}")


def _output_logits(model, features: np.ndarray, input_chw, ref: dict) -> tuple[np.ndarray, float]:
    """The float logits the model's output layer computed, and the unit roundoff they carry.

    A float64 copy of the model rounds far below an accumulator step, so its
    logits give every accumulator exactly; it is used when it runs and reaches
    the float32 run's levels on every layer (float64 may break an exact tie of
    an input quantizer the other way). Otherwise, the float32 run's logits."""
    from .frontend.torch_frontend import reference_levels
    from .quant.modules import float64_outputs

    theirs32 = ref.get("pre_host", ref["logits"])
    try:
        with float64_outputs():
            ref64 = reference_levels(copy.deepcopy(model).double(), features, input_chw=input_chw,
                                     dtype=np.float64)
    except (RuntimeError, TypeError, ValueError, AttributeError, NotImplementedError):
        return theirs32, golden.EPS32        # a module that does not run in float64
    if all(np.array_equal(ref64[k], ref[k]) for k in ref if k not in ("logits", "pre_host")):
        return ref64.get("pre_host", ref64["logits"]), golden.EPS64
    return theirs32, golden.EPS32


def compare_output_accumulators(graph: Graph, theirs: np.ndarray, trace: golden.Trace,
                                eps: float = golden.EPS32) -> str:
    """The output layer's integer accumulators, recovered from a framework's float logits
    (``theirs``, computed with unit roundoff ``eps``): acc = (logit - out_bias) / out_scale + out_zero.

    Where the rounding (``golden.logit_rounding_bound``) is below half an
    accumulator step, the recovered value rounds to one integer, which must be
    golden's; elsewhere it must lie within the rounding bound of golden's. A
    wrong bias, scale or zero point, or one accumulator off by one, fails here
    even when every argmax agrees. Returns the phrase for the emit line."""
    out = graph.output
    acc = trace.outputs[out.name]
    if graph.conv(out) is not None:
        return "output accumulators not compared (a convolutional output layer)"
    theirs = np.asarray(theirs, dtype=np.float64).reshape(acc.shape)
    scale = np.ones(out.mh) if out.out_scale is None else np.asarray(out.out_scale, dtype=np.float64)
    bias = np.zeros(out.mh) if out.out_bias is None else np.asarray(out.out_bias, dtype=np.float64)
    zero = np.zeros(out.mh, np.int64) if out.out_zero is None else np.asarray(out.out_zero, dtype=np.int64)
    usable = scale != 0
    recovered = np.where(usable, (theirs - bias) / np.where(usable, scale, 1.0) + zero, acc)
    slack = golden.logit_rounding_bound(graph, trace, eps) / np.where(usable, np.abs(scale), 1.0)
    exact = slack < 0.5
    wrong = np.where(exact, np.rint(recovered) != acc, np.abs(recovered - acc) > slack) & usable
    if wrong.any():
        n, c = (int(v) for v in np.argwhere(wrong)[0])
        raise UsageError(f"internal check failed: output layer {out.name} ({out.source}) frame {n} channel {c}: "
                         f"torch's logit {theirs[n, c]!r} is accumulator {recovered[n, c]:.6g}, golden's "
                         f"{int(acc[n, c])} (out_scale {scale[c]!r}, out_bias {bias[c]!r}, out_zero {int(zero[c])})")
    n_exact = int((exact & usable).sum())
    kind = "float64" if eps == golden.EPS64 else "float32"
    phrase = f"output accumulators equal ({n_exact} of {acc.size} recovered exactly from torch's {kind} logits"
    if n_exact < acc.size:
        phrase += f"; {acc.size - n_exact} within float32 rounding"
    return phrase + ")"


def _compare_levels(graph: Graph, ref: dict, trace: golden.Trace) -> None:
    """Every thresholded layer's output levels: torch's (``ref``) = golden's."""
    for layer in graph.layers:
        if layer.thresholds is None:      # the output layer's raw accumulators: compared as logits
            continue
        want = ref[layer.name]
        got = trace.outputs[layer.name]
        got = (got + 1) // 2 if layer.odtype.kind == "bipolar" else got
        if not np.array_equal(want, got):
            n, c = np.argwhere(want != got)[0]
            raise UsageError(f"internal check failed: layer {layer.name} ({layer.source}) frame {n} "
                             f"channel {c}: torch level {want[n, c]}, golden {got[n, c]}")


def _compare_argmax(host: Optional[str], theirs: np.ndarray, trace: golden.Trace) -> None:
    """The class of every frame: torch's = golden's.

    A class picked differently is a bug unless golden's logits tie there (an exact
    tie, which torch's float rounding may break either way); an ArgMax output gives
    classes, not logits."""
    classes = theirs.reshape(-1) if host == "ArgMax" else theirs
    real, _ = golden.argmax_disagreements(classes, trace.logits)
    if real.any():
        bad = int(np.argmax(real))
        t_bad = int(classes[bad]) if host == "ArgMax" else int(np.argmax(theirs[bad]))
        raise UsageError(f"internal check failed: frame {bad}: torch argmax {t_bad}, "
                         f"golden {int(np.argmax(trace.logits[bad]))}")


def compare_source(source, model, vectors: Vectors, trace: Optional[golden.Trace] = None) -> list[str]:
    """The original model's own forward against the translated one, when the
    frontend translated it (Brevitas; a QONNX graph is checked in the tests
    against qonnx's executor, which is too slow for every emit)."""
    from .frontend.brevitas_frontend import compare_with_brevitas, is_brevitas

    if vectors.features is None or source is model or not is_brevitas(source):
        return []
    return [compare_with_brevitas(source, model, vectors.features, None if trace is None else trace.logits)]


def run_checks(source, model, graph: Graph, vectors: Vectors, trace: golden.Trace) -> list[str]:
    """Every check of an emit, in order: torch vs golden, the source's forward
    (Brevitas), the QONNX oracle (an ONNX import). Their lines, for the user."""
    from .frontend.qonnx_oracle import oracle_check

    checks = [compare_torch_golden(model, graph, vectors, trace)]
    checks += compare_source(source, model, vectors, trace)
    checks += oracle_check(model, graph, vectors.features, lambda x: host_stream(graph, x))
    return checks
