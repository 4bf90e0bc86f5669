"""The pipeline behind ``lbgen emit``: frontend -> passes -> golden check -> emitters.

Everything is computed and checked before the first file is written; the
output directory is built in a temporary sibling and moved into place, so a
failure leaves no half-written ``out/``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from . import golden
from .errors import UsageError
from .frontend.qonnx_oracle import oracle_check
from .ir import Graph, IRError, TopK
from .huffman import DEFAULT_MAX_LEN
from .passes.accumulators import size_accumulators
from .passes.compress import compress_weights
from .passes.folding import apply_folding, folding_doc, read_folding
from .passes.pe import assign_pe
from .passes.thresholds import fold_thresholds

#: vectors written when the user gives no --inputs
DEFAULT_RANDOM_VECTORS = 32


@dataclass
class EmitOptions:
    w: Optional[str] = None       # --w text: "1", "4", "log2:4", "1.4" (lbgen.precision)
    a: Optional[int] = None
    acc: str = "32"
    pe: Optional[int] = None
    simd: Optional[int] = None
    folding: Optional[Path] = None
    trust: bool = False
    hetero_dist: Optional[str] = None  # --hetero-dist text: "0.7,0.2,0.1"
    input_shape: Optional[str] = None  # --input-shape text: "C,H,W" (a CNN that takes (N, C, H, W))
    target_cycles: Optional[int] = None  # --target-cycles: cheapest folding within this many cycles/frame
    compress: str = "none"        # --compress: none | huffman (weight streams)
    huffman_max_len: Optional[int] = None  # --huffman-max-len: longest code (default lbgen.huffman.DEFAULT_MAX_LEN)
    bits_budget: Optional[float] = None  # --bits-budget: average bits per weight of hidden int layers, per channel
    calib: Optional[Path] = None  # --calib: calibration inputs; the model is float, quantized post-training
    clip: str = "aciq"            # --clip: aciq | minmax | percentile (with --calib)
    bias_correction: bool = True  # --no-bias-correction turns it off (with --calib)
    input_format: Optional[str] = None  # --input-format: fixed<16,6> etc., a float input's number format
    topk: Optional[int] = None    # --topk K: a hardware top-K unit streams the K largest class indices


@dataclass
class Vectors:
    """Test vectors: float features (if any), integer input values, labels."""

    values: np.ndarray
    features: Optional[np.ndarray] = None
    labels: Optional[np.ndarray] = None


@dataclass
class EmitResult:
    graph: Graph
    vectors: Vectors
    checks: list[str] = field(default_factory=list)


def parse_acc(acc: str) -> str | int:
    if str(acc) == "auto":
        return "auto"
    try:
        bits = int(acc)
    except ValueError:
        raise UsageError(f"--acc {acc!r}: expected 'auto' or a bit width such as 32") from None
    if not 2 <= bits <= 64:
        raise UsageError(f"--acc {bits}: the accumulator width must be 2..64")
    return bits


def parse_precision(opts: EmitOptions):
    """--w and --hetero-dist -> (WeightSpec or None, distribution or None)."""
    from .precision import parse_hetero_dist, parse_weight_spec

    spec = parse_weight_spec(str(opts.w)) if opts.w is not None else None
    dist = parse_hetero_dist(opts.hetero_dist) if opts.hetero_dist is not None else None
    if dist is not None and (spec is None or spec.kind != "hetero"):
        raise UsageError("--hetero-dist needs a heterogeneous --w such as --w 1.4")
    return spec, dist


def parse_input_shape(text: Optional[str]) -> Optional[tuple[int, int, int]]:
    if text is None:
        return None
    try:
        shape = tuple(int(v) for v in str(text).split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise UsageError(f"--input-shape {text!r}: expected C,H,W, three positive integers such as 1,8,8")
    return shape


def check_options(opts: EmitOptions) -> str | int:
    """Every option that needs no model; returns the parsed --acc."""
    parse_precision(opts)
    parse_input_shape(opts.input_shape)
    if opts.input_format is not None:
        from .frontend.input_format import parse_input_format
        parse_input_format(opts.input_format)
    if opts.folding is not None:
        read_folding(opts.folding)   # its syntax; the layers it names are checked against the model later
    if opts.a is not None and not 1 <= opts.a <= 8:
        raise UsageError(f"--a {opts.a}: activation bits must be 1..8")
    if opts.target_cycles is not None and (opts.pe is not None or opts.simd is not None):
        raise UsageError("--target-cycles chooses PE and SIMD itself; leave out --pe/--simd "
                         "(a --folding entry still fixes its layer)")
    if opts.topk is not None and (isinstance(opts.topk, bool) or not isinstance(opts.topk, (int, np.integer))
                                  or opts.topk < 1):
        raise UsageError(f"--topk {opts.topk!r}: must be a positive integer (the number of class indices "
                         "per frame, at most the number of classes)")
    for flag, value in (("--pe", opts.pe), ("--simd", opts.simd), ("--target-cycles", opts.target_cycles)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} {value}: must be a positive integer")
    from .huffman import MAX_LEN_LIMIT
    from .passes.compress import COMPRESS_CHOICES

    if opts.compress not in COMPRESS_CHOICES:
        raise UsageError(f"--compress {opts.compress!r}: expected one of {', '.join(COMPRESS_CHOICES)}")
    if opts.huffman_max_len is not None:
        if opts.compress != "huffman":
            raise UsageError("--huffman-max-len needs --compress huffman")
        if not 1 <= opts.huffman_max_len <= MAX_LEN_LIMIT:
            raise UsageError(f"--huffman-max-len {opts.huffman_max_len}: must be 1..{MAX_LEN_LIMIT}")
    if opts.calib is None and (opts.clip != "aciq" or not opts.bias_correction):
        raise UsageError("--clip and --no-bias-correction apply to post-training quantization: add --calib")
    if opts.calib is not None:
        from .quant.clipping import CLIP_METHODS    # imports torch: only when it is needed

        if opts.clip not in CLIP_METHODS:
            raise UsageError(f"--clip {opts.clip!r}: expected one of {', '.join(CLIP_METHODS)}")
        spec, _ = parse_precision(opts)
        if spec is None or spec.kind != "int" or opts.a is None:
            raise UsageError("--calib quantizes a float model post-training to --w k --a k: give both, "
                             "with --w an integer width 2..8")
    if opts.bits_budget is not None:
        b = opts.bits_budget
        if not (isinstance(b, (int, float)) and math.isfinite(b) and BITS_BUDGET_MIN <= b <= BITS_BUDGET_MAX):
            raise UsageError(f"--bits-budget {b!r}: the average bits per weight must be "
                             f"{BITS_BUDGET_MIN}..{BITS_BUDGET_MAX}")
    return parse_acc(opts.acc)


#: --bits-budget range: a channel gets 2..8 bits (2: the ternary grid -1, 0, +1)
BITS_BUDGET_MIN, BITS_BUDGET_MAX = 2, 8


def read_calibration(path: Path) -> np.ndarray:
    """--calib: a .npy array (N, features) or an .npz with ``x``."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--calib file {str(path)!r} not found")
    try:
        obj = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--calib file {str(path)!r} cannot be read as .npy or .npz: {exc}") from None
    if isinstance(obj, np.lib.npyio.NpzFile):
        with obj:
            if "x" not in obj.files:
                raise UsageError(f"--calib file {str(path)!r}: an .npz needs an array 'x'")
            x = obj["x"]
    else:
        x = obj
    x = np.asarray(x)
    if x.dtype.kind not in "fiu" or x.ndim != 2:
        raise UsageError(f"--calib file {str(path)!r}: expected a 2-d numeric array (N, features), "
                         f"got {x.dtype} {x.shape}")
    return x.astype(np.float32)


def prepare_model(model, opts: EmitOptions):
    """The model the IR is built from (the torch check then runs on it too): with
    --calib, the float model quantized post-training; with --bits-budget, a copy
    whose hidden int layers have per-channel widths."""
    check_options(opts)
    from .frontend.brevitas_frontend import is_brevitas, translate

    if is_brevitas(model):
        if opts.calib is not None:
            raise UsageError("--calib quantizes a float model; this is a Brevitas model, already quantized")
        model = translate(model, parse_input_shape(opts.input_shape))
    if opts.calib is not None:
        from .frontend.torch_frontend import check_tensors
        from .quant.ptq import PTQError, quantize_float_model

        check_tensors(model)    # a NaN weight would otherwise poison the calibration silently

        spec, _ = parse_precision(opts)
        try:
            model = quantize_float_model(model, read_calibration(opts.calib), w_bits=int(spec.bits),
                                         a_bits=int(opts.a), clip=opts.clip,
                                         bias_correction=opts.bias_correction)
        except PTQError as exc:
            raise UsageError(f"--calib: {exc}") from None
    if opts.calib is None:
        from .frontend.input_format import add_input_quantizer
        model = add_input_quantizer(model, opts.input_format)
    if opts.bits_budget is None:
        return model
    from .frontend.torch_frontend import allocate_channel_bits

    return allocate_channel_bits(model, float(opts.bits_budget))


def build_graph(model, opts: EmitOptions, name: str = "model") -> Graph:
    """An in-memory module -> the folded, hardware-ready IR."""
    return _lower_and_fold(prepare_model(model, opts), opts, name)


def _lower_and_fold(model, opts: EmitOptions, name: str) -> Graph:
    """A prepared module (``prepare_model``) -> the folded, hardware-ready IR."""
    from .frontend.torch_frontend import lower

    acc = check_options(opts)
    per_layer = read_folding(opts.folding) if opts.folding else None
    spec, dist = parse_precision(opts)
    graph = lower(model, w=spec, a=opts.a, name=name, hetero_dist=dist,
                  input_shape=parse_input_shape(opts.input_shape))
    # cheap structural passes first, so a bad folding is reported before the slow fold
    graph = apply_folding(graph, opts.pe, opts.simd, per_layer, target_cycles=opts.target_cycles)
    graph = assign_pe(graph)
    graph = fold_thresholds(graph)
    graph = size_accumulators(graph, acc)
    if opts.compress != "none":
        # last: the streams are cut into the folded engine's PE x SIMD lanes
        graph = compress_weights(graph, opts.compress, opts.huffman_max_len or DEFAULT_MAX_LEN)
    if opts.topk is not None:
        classes = graph.output.mh
        if opts.topk > classes:
            raise UsageError(f"--topk {opts.topk}: the model has {classes} classes (output layer "
                             f"{graph.output.source or graph.output.name}); K must be 1..{classes}")
        graph = graph.replace(topk=TopK(int(opts.topk)))
    graph.validate()
    return graph


def read_vectors(path: Optional[Path], graph: Graph, seed: int = 0) -> Vectors:
    """--inputs: .npy float features or .npz with x (and y); none: random input values."""
    if path is None:
        rng = np.random.default_rng(seed)
        it = graph.layers[0].itype
        shape = (DEFAULT_RANDOM_VECTORS, graph.layers[0].in_len)
        values = rng.choice([-1, 1], size=shape) if it.kind == "bipolar" else rng.integers(it.min, it.max + 1, size=shape)
        return Vectors(values=values.astype(np.int64))
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--inputs file {str(path)!r} not found")
    labels = None
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                if "x" not in z:
                    raise UsageError(f"--inputs file {str(path)!r}: an .npz needs an array 'x' (and optionally 'y')")
                x = z["x"]
                labels = z["y"] if "y" in z else None
        else:
            x = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--inputs file {str(path)!r} cannot be read: {exc}") from None
    x = np.asarray(x)
    if x.ndim < 2 or x.shape[0] == 0 or int(np.prod(x.shape[1:])) != graph.layers[0].in_len:
        raise UsageError(f"--inputs file {str(path)!r}: shape {x.shape}, expected (N, {graph.layers[0].in_len})")
    x = x.reshape(x.shape[0], -1).astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise UsageError(f"--inputs file {str(path)!r}: contains NaN or Inf")
    if labels is not None:
        labels = np.asarray(labels).astype(np.int64).reshape(-1)
        if labels.shape[0] != x.shape[0]:
            raise UsageError(f"--inputs file {str(path)!r}: {labels.shape[0]} labels for {x.shape[0]} inputs")
    values = host_stream(graph, x)
    chw = graph.meta.get("input_chw")
    if chw is not None and not graph.meta.get("input_flat", False):
        x = x.reshape(-1, *chw)       # features stay as torch takes them
    return Vectors(values=values, features=x, labels=labels)


def host_stream(graph: Graph, features: np.ndarray) -> np.ndarray:
    """Raw float features (N, ...) as the model takes them -> the integer input
    values the host streams into the hardware, in stream order: the model's
    preprocessing and input quantizer (``graph.input``), then, for a feature
    map, NHWC order (pixels row-major, each pixel's channels together)."""
    x = np.asarray(features, dtype=np.float32)
    x = x.reshape(x.shape[0], -1)
    values = graph.input.quantize(x)
    chw = graph.meta.get("input_chw")
    if chw is not None:
        c, h, w = chw
        values = values.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(len(values), -1)
    return values


def host_doc(graph: Graph) -> dict:
    """``out/host.json``: what the host computes from raw features and streams in."""
    first = graph.layers[0]
    return {"stream": graph.input.describe(),
            "values_per_frame": first.in_len,
            "order": "NHWC (pixels row-major, channels together)" if first.conv is not None else "features",
            "element_bits": first.itype.bits,
            "elements_per_beat": first.simd,
            "python": "lbgen.host_stream(lbgen.load(OUT_DIR), features)",
            "preprocessing": [op.to_json() for op in graph.input.pre]}


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
    for layer in graph.layers:
        if layer.thresholds is None:      # the output layer's raw accumulators: compared as logits below
            continue
        want = ref[layer.name]
        got = trace.outputs[layer.name]
        got = (got + 1) // 2 if layer.odtype.kind == "bipolar" else got
        if not np.array_equal(want, got):
            n, c = np.argwhere(want != got)[0]
            raise UsageError(f"internal check failed: layer {layer.name} ({layer.source}) frame {n} "
                             f"channel {c}: torch level {want[n, c]}, golden {got[n, c]}")
    host = graph.meta.get("host_output")
    theirs = np.asarray(ref["logits"])
    # a class picked differently is a bug unless golden's logits tie there (an exact tie, which
    # torch's float rounding may break either way); an ArgMax output gives classes, not logits
    classes = theirs.reshape(-1) if host == "ArgMax" else theirs
    real, _ = golden.argmax_disagreements(classes, trace.logits)
    if real.any():
        bad = int(np.argmax(real))
        t_bad = int(classes[bad]) if host == "ArgMax" else int(np.argmax(theirs[bad]))
        raise UsageError(f"internal check failed: frame {bad}: torch argmax {t_bad}, "
                         f"golden {int(np.argmax(trace.logits[bad]))}")
    what = "logit" if host is None else f"{host} output"
    diff = 0.0 if host == "ArgMax" else float(np.max(np.abs(theirs - trace.output)))
    which = "every level (output levels too)" if not graph.output.is_output else "every hidden level"
    return (f"torch vs golden on {len(vectors.values)} vectors: {which} equal, "
            f"argmax equal, max |{what} difference| {diff:.3g}")


def compare_source(source, model, vectors: Vectors, trace: Optional[golden.Trace] = None) -> list[str]:
    """The original model's own forward against the translated one, when the
    frontend translated it (Brevitas; a QONNX graph is checked in the tests
    against qonnx's executor, which is too slow for every emit)."""
    from .frontend.brevitas_frontend import compare_with_brevitas, is_brevitas

    if vectors.features is None or source is model or not is_brevitas(source):
        return []
    return [compare_with_brevitas(source, model, vectors.features, None if trace is None else trace.logits)]


def check_output(out: Path, force: bool) -> Path:
    """Refuse an output that cannot be written -- a file, an existing directory
    without --force, a path below a file, a directory the user may not write
    into -- before the (slow) compile; return the parent directory. ``os.access``
    answers for the real user, so the check also holds under ``setpriv``/``su``."""
    out = Path(out)
    try:
        if out.exists() and not out.is_dir():
            raise UsageError(f"output {str(out)!r} exists and is not a directory")
        if out.is_dir() and any(out.iterdir()) and not force:
            raise UsageError(f"output directory {str(out)!r} exists; pass --force to replace it")
        parent = out.resolve().parent
        existing = parent
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
    except OSError as exc:
        raise UsageError(f"output {str(out)!r}: cannot be written ({exc.strerror or exc})") from None
    if not existing.is_dir():
        raise UsageError(f"output {str(out)!r}: cannot be written, {str(existing)!r} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"output {str(out)!r}: cannot be written, no write permission in {str(existing)!r}")
    return parent


def write_output(out: Path, force: bool, writer) -> Path:
    """Run ``writer(tmp_dir)`` and move the result to ``out`` atomically-ish; on
    any failure remove the temporary directory, so nothing half-written stays."""
    out = Path(out)
    parent = check_output(out, force)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.lbgen-", dir=parent))
    except OSError as exc:
        raise UsageError(f"output {str(out)!r}: cannot be written ({exc.strerror or exc})") from None
    try:
        writer(tmp)
        if out.exists():
            old = parent / f".{out.name}.lbgen-old-{os.getpid()}"
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno is None:       # not the file system's answer (e.g. a missing template): a bug, shown as one
            raise
        raise UsageError(f"output {str(out)!r}: cannot be written ({exc.strerror})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def emit(model, out: Path, opts: EmitOptions, inputs: Optional[Path] = None, force: bool = False,
         name: str = "model", targets: tuple[str, ...] = ("rtl", "hls")) -> EmitResult:
    """Compile ``model`` and write ``out/``: IR, RTL, HLS, vectors, folding."""
    from .emitters.hls import emit_hls
    from .emitters.rtl import emit_rtl
    from .emitters.vendor import emit_vendor
    from .integrity import write_manifest

    source = model
    model = prepare_model(model, opts)      # the torch check below runs on the same module
    graph = _lower_and_fold(model, opts, name)
    vectors = read_vectors(inputs, graph)
    trace = golden.run(graph, vectors.values)  # also asserts that no accumulator overflows
    checks = [compare_torch_golden(model, graph, vectors, trace)]
    checks += compare_source(source, model, vectors, trace)
    checks += oracle_check(model, graph, vectors.features, lambda x: host_stream(graph, x))

    def writer(tmp: Path) -> None:
        graph.save(tmp)
        (tmp / "folding.json").write_text(json.dumps(folding_doc(graph), indent=2) + "\n")
        (tmp / "host.json").write_text(json.dumps(host_doc(graph), indent=2) + "\n")
        (tmp / "sim").mkdir()
        np.save(tmp / "sim" / "inputs.npy", vectors.values, allow_pickle=False)
        if vectors.labels is not None:
            np.save(tmp / "sim" / "labels.npy", vectors.labels, allow_pickle=False)
        if "rtl" in targets:
            emit_rtl(graph, tmp / "rtl")
        if "hls" in targets:
            emit_hls(graph, tmp / "hls")
        # vendor-flow files (Vitis HLS script + test vectors, FuseSoC core) of those targets
        emit_vendor(graph, tmp, targets, vectors.values, trace.result)
        write_manifest(tmp)     # last: the sha256 of everything above, checked by lbgen sim

    write_output(out, force, writer)
    return EmitResult(graph=graph, vectors=vectors, checks=checks)


def load_output(out: Path) -> Graph:
    out = Path(out)
    if not out.is_dir():
        raise UsageError(f"{str(out)!r} is not an lbgen output directory")
    try:
        return Graph.load(out)
    except IRError as exc:
        raise UsageError(str(exc)) from None
