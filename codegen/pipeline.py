"""The compile pipeline: model passes, lowering, IR passes -- each a small named
step, run in the order the tuples below list.

* :data:`MODEL_PASSES` (``(model, opts) -> model``) transform the torch model
  before it is lowered: the Brevitas translation, post-training quantization
  (``--calib``), the input quantizer of a float input (``--input-format``),
  per-channel widths (``--bits-budget``). The torch check of ``lbgen emit``
  runs on the model they return.
* :func:`lower` builds the IR (:mod:`lbgen.frontend.torch_frontend`).
* :data:`GRAPH_PASSES` (``(graph, opts) -> graph``) make it hardware-ready.
  The cheap structural ones come first, so a bad folding is reported before
  the slow threshold fold; compression comes after folding, since the weight
  streams are cut into the folded engine's PE x SIMD lanes.

Each step binds the parsed options (:class:`lbgen.options.EmitOptions`) to the
pass that does the work, in :mod:`lbgen.passes` (IR) or
:mod:`lbgen.passes.model` and the frontends (model); a step whose option is
not given returns its input unchanged.
"""

from __future__ import annotations

from typing import Any, Callable

from .errors import UsageError
from .huffman import DEFAULT_MAX_LEN
from .ir import Graph
from .options import EmitOptions
from .passes import accumulators, compress, folding, pe, thresholds, topk

ModelPass = Callable[[Any, EmitOptions], Any]
GraphPass = Callable[[Graph, EmitOptions], Graph]


# -- model passes (before lowering) -------------------------------------------------

def translate_brevitas(model, opts: EmitOptions):
    """A Brevitas model -> the same network in lbgen's imported form (others unchanged)."""
    from .frontend.brevitas_frontend import is_brevitas, translate

    if not is_brevitas(model):
        return model
    if opts.calib is not None:
        raise UsageError("--calib quantizes a float model; this is a Brevitas model, already quantized")
    return translate(model, opts.input_shape)


def quantize_post_training(model, opts: EmitOptions):
    """--calib: the float model quantized post-training to --w/--a (:mod:`lbgen.passes.model.ptq`)."""
    if opts.calib is None:
        return model
    from .frontend.torch_frontend import check_tensors
    from .inputs import read_calibration
    from .passes.model.ptq import PTQError, quantize_float_model

    check_tensors(model)    # a NaN weight would otherwise poison the calibration silently
    try:
        return quantize_float_model(model, read_calibration(opts.calib), w_bits=int(opts.w.bits),
                                    a_bits=int(opts.a), clip=opts.clip, bias_correction=opts.bias_correction)
    except PTQError as exc:
        raise UsageError(f"--calib: {exc}") from None


def quantize_input(model, opts: EmitOptions):
    """A float input with no quantizer gets one: --input-format or the input's
    finn_datatype annotation (:func:`lbgen.frontend.input_format.add_input_quantizer`).
    Post-training quantization (--calib) puts its own there."""
    if opts.calib is not None:
        return model
    from .frontend.input_format import add_input_quantizer

    return add_input_quantizer(model, opts.input_format)


def allocate_channel_bits(model, opts: EmitOptions):
    """--bits-budget: hidden int layers get per-channel widths (:mod:`lbgen.passes.model.bits_budget`)."""
    if opts.bits_budget is None:
        return model
    from .passes.model.bits_budget import allocate_channel_bits as allocate

    return allocate(model, float(opts.bits_budget))


MODEL_PASSES: tuple[ModelPass, ...] = (translate_brevitas, quantize_post_training, quantize_input,
                                       allocate_channel_bits)


# -- lowering --------------------------------------------------------------------

def lower(model, opts: EmitOptions, name: str = "model") -> Graph:
    """A prepared model -> the IR, its precision checked against --w/--a/--hetero-dist."""
    from .frontend.torch_frontend import lower as lower_model

    return lower_model(model, w=opts.w, a=opts.a, name=name, hetero_dist=opts.hetero_dist,
                       input_shape=opts.input_shape)


# -- IR passes -------------------------------------------------------------------

def apply_folding(graph: Graph, opts: EmitOptions) -> Graph:
    """PE and SIMD of every layer: --folding entries, --pe/--simd, or --target-cycles."""
    per_layer = opts.folding.layers if opts.folding is not None else None
    return folding.apply_folding(graph, opts.pe, opts.simd, per_layer, target_cycles=opts.target_cycles)


def assign_pe(graph: Graph, opts: EmitOptions) -> Graph:
    """The processing-element kind of every layer (:mod:`lbgen.passes.pe`)."""
    return pe.assign_pe(graph)


def fold_thresholds(graph: Graph, opts: EmitOptions) -> Graph:
    """Each layer's activation becomes integer thresholds on its accumulator."""
    return thresholds.fold_thresholds(graph)


def size_accumulators(graph: Graph, opts: EmitOptions) -> Graph:
    """Accumulator widths: --acc bits, or "auto" (the exact range)."""
    return accumulators.size_accumulators(graph, opts.acc)


def compress_weights(graph: Graph, opts: EmitOptions) -> Graph:
    """--compress huffman: a canonical Huffman code per layer, one stream per PE x SIMD lane."""
    if opts.compress == "none":
        return graph
    return compress.compress_weights(graph, opts.compress, opts.huffman_max_len or DEFAULT_MAX_LEN)


def add_topk(graph: Graph, opts: EmitOptions) -> Graph:
    """--topk K: a top-K unit after the last layer."""
    if opts.topk is None:
        return graph
    return topk.add_topk(graph, opts.topk)


def validate(graph: Graph, opts: EmitOptions) -> Graph:
    """Last: the IR's invariants hold (IRError otherwise: a bug)."""
    return graph.validate()


GRAPH_PASSES: tuple[GraphPass, ...] = (apply_folding, assign_pe, fold_thresholds, size_accumulators,
                                       compress_weights, add_topk, validate)


# -- running them ----------------------------------------------------------------

def prepare_model(model, opts: EmitOptions):
    """The model the IR is built from (the torch check then runs on it too): the
    :data:`MODEL_PASSES` in order."""
    for step in MODEL_PASSES:
        model = step(model, opts)
    return model


def lower_and_fold(model, opts: EmitOptions, name: str = "model") -> Graph:
    """A prepared model (:func:`prepare_model`) -> the folded, hardware-ready IR."""
    graph = lower(model, opts, name)
    for step in GRAPH_PASSES:
        graph = step(graph, opts)
    return graph


def build_graph(model, opts: EmitOptions, name: str = "model") -> Graph:
    """An in-memory module -> the folded, hardware-ready IR."""
    return lower_and_fold(prepare_model(model, opts), opts, name)
