"""``lbgen emit``: options -> model passes -> lowering -> IR passes -> checks -> out/.

Everything is computed and checked before the first file is written; the
output directory is built in a temporary sibling and moved into place, so a
failure leaves no half-written ``out/``. The pieces:

* :mod:`lbgen.options` -- :class:`EmitOptions`, the options parsed once;
* :mod:`lbgen.pipeline` -- the passes, in order (:func:`build_graph`);
* :mod:`lbgen.inputs` -- test vectors, calibration inputs, the host stream;
* :mod:`lbgen.checks` -- torch (and Brevitas, QONNX) against the golden model;
* :mod:`lbgen.output` -- the output directory, written safely.

Their public names are importable from here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from . import golden
from .checks import compare_source, compare_torch_golden, run_checks
from .inputs import DEFAULT_RANDOM_VECTORS, Vectors, host_doc, host_stream, read_calibration, read_vectors
from .ir import Graph
from .options import EmitOptions
from .output import check_output, load_output, write_design, write_output
from .pipeline import build_graph, lower_and_fold, prepare_model

__all__ = ["DEFAULT_RANDOM_VECTORS", "EmitOptions", "EmitResult", "Vectors", "build_graph", "check_output",
           "compare_source", "compare_torch_golden", "emit", "host_doc", "host_stream", "load_output",
           "prepare_model", "read_calibration", "read_vectors", "write_output"]


@dataclass
class EmitResult:
    graph: Graph
    vectors: Vectors
    checks: list[str] = field(default_factory=list)


def emit(model, out: Path, opts: EmitOptions, inputs: Optional[Path] = None, force: bool = False,
         name: str = "model", targets: tuple[str, ...] = ("rtl", "hls")) -> EmitResult:
    """Compile ``model`` and write ``out/``: IR, RTL, HLS, vectors, folding."""
    source = model
    model = prepare_model(model, opts)      # the checks below run on the same module
    graph = lower_and_fold(model, opts, name)
    vectors = read_vectors(inputs, graph)
    trace = golden.run(graph, vectors.values)  # also asserts that no accumulator overflows
    checks = run_checks(source, model, graph, vectors, trace)
    write_output(out, force, lambda tmp: write_design(tmp, graph, vectors, trace, targets))
    return EmitResult(graph=graph, vectors=vectors, checks=checks)
