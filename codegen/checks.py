"""The checks ``lbgen emit`` runs before it writes anything: the model's own
forward against the golden model of the IR it was compiled to.

* :func:`compare_torch_golden`: torch on the float features vs golden on
  their levels -- every hidden level, every argmax;
* :func:`compare_source`: a translated model's original (Brevitas) forward
  vs the translation;
* the QONNX oracle (:func:`lbgen.frontend.qonnx_oracle.oracle_check`) for an
  ONNX import.

Each returns the line ``lbgen emit`` prints, or raises UsageError ("internal
check failed: ...") naming the first layer, frame and channel that differ.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from . import golden
from .errors import UsageError
from .ir import Graph
from .inputs import Vectors, host_stream


def compare_torch_golden(model, graph: Graph, vectors: Vectors, trace: golden.Trace) -> str:
    """Torch on the float features vs golden (``trace``) on their levels: every level, every argmax."""
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
    what = "logit" if host is None else f"{host} output"
    diff = 0.0 if host == "ArgMax" else float(np.max(np.abs(theirs - trace.output)))
    which = "every level (output levels too)" if not graph.output.is_output else "every hidden level"
    return (f"torch vs golden on {len(vectors.values)} vectors: {which} equal, "
            f"argmax equal, max |{what} difference| {diff:.3g}")


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
