"""Random, already-folded graphs for testing emitters and simulators.

They exercise what a trained model rarely does: thresholds at the ends of
the accumulator range, inverted channels, every PE kind, uneven foldings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ir import ConvGeom, DType, Graph, InputQuant, MatVec, PoolGeom, signed_bits_for
from .passes.pe import choose_pe


def random_layer(rng: np.random.Generator, name: str, mw: int, mh: int, wtype: DType, itype: DType,
                 odtype: DType | None, pe: int, simd: int, acc_bits: int | None = None,
                 extremes: float = 0.0) -> MatVec:
    """``extremes``: the share of thresholds put exactly at an end of the channel's
    reachable range (lo - 1, lo, lo + 1, hi - 1, hi, hi + 1) or of the accumulator
    type (its most negative and its largest value), where an off-by-one or a
    sign-extension slip shows."""
    codes = None
    if wtype.kind == "bipolar":
        w = rng.choice([-1, 1], size=(mh, mw))
    elif wtype.kind in ("log2", "hetero"):
        codes = random_codes(rng, wtype, (mh, mw))
        w = wtype.decode(codes)
        codes = codes if wtype.kind == "hetero" else None
    else:
        w = rng.integers(wtype.min, wtype.max + 1, size=(mh, mw))
    layer = MatVec(name=name, mw=mw, mh=mh, weights=w.astype(np.int64), wtype=wtype, itype=itype,
                   source=name, pe=pe, simd=simd, weight_codes=codes)
    lo, hi = layer.acc_range()
    layer.acc_bits = acc_bits or signed_bits_for(int(lo.min()), int(hi.max()) + 1)
    if odtype is not None:
        n = (1 << odtype.bits) - 1
        # thresholds mostly inside the reachable range, some at or beyond its ends
        span_lo, span_hi = lo[:, None] - 1, hi[:, None] + 1
        t = rng.integers(span_lo, span_hi + 1, size=(mh, n))
        amax = (1 << (layer.acc_bits - 1)) - 1
        if extremes:
            ends = np.concatenate([lo[:, None] + np.array([-1, 0, 1]), hi[:, None] + np.array([-1, 0, 1]),
                                   np.full((mh, 1), -amax - 1), np.full((mh, 1), amax)], axis=1)
            pick = rng.integers(0, ends.shape[1], size=(mh, n))
            t = np.where(rng.random((mh, n)) < extremes, np.take_along_axis(ends, pick, axis=1), t)
        layer.thresholds = np.sort(np.clip(t, -amax - 1, amax), axis=1).astype(np.int64)
        layer.threshold_invert = rng.random(mh) < 0.3
        layer.odtype = odtype
    else:
        layer.out_scale = rng.uniform(0.01, 0.1, size=mh)
        layer.out_bias = rng.uniform(-1, 1, size=mh)
    layer.pe_kind = choose_pe(layer)
    return layer


def random_codes(rng: np.random.Generator, wtype: DType, shape: tuple[int, ...]) -> np.ndarray:
    """Uniformly random canonical codes of a log2 or hetero format."""
    if wtype.kind == "log2":
        field = rng.integers(0, 1 << (wtype.bits - 1), size=shape).astype(np.uint64)
        sign = (rng.random(shape) < 0.5) & (field > 0)
        return field | (sign.astype(np.uint64) << np.uint64(wtype.bits - 1))
    assert wtype.kind == "hetero"
    n = wtype.planes
    count = rng.integers(1, n + 1, size=shape)              # planes used, 1..n
    used = np.arange(n)[None, :] < count.reshape(-1, 1)     # (size, n)
    signs = (rng.random(used.shape) < 0.5) & used
    bits = np.concatenate([signs, used[:, 1:]], axis=1).astype(np.uint64)
    return (bits << np.arange(2 * n - 1, dtype=np.uint64)).sum(axis=1).astype(np.uint64).reshape(shape)


def random_graph(seed: int, dims: list[int], wtypes: list[DType], atypes: list[DType],
                 folding: list[tuple[int, int]], acc_bits: int | None = None, extremes: float = 0.0) -> Graph:
    """dims: [in, h1, ..., out]; atypes: input type then one per hidden output."""
    rng = np.random.default_rng(seed)
    layers = []
    for i in range(len(dims) - 1):
        last = i == len(dims) - 2
        layers.append(random_layer(rng, f"fc{i}", dims[i], dims[i + 1], wtypes[i], atypes[i],
                                   None if last else atypes[i + 1], *folding[i], acc_bits=acc_bits,
                                   extremes=extremes))
    step = 1.0 / max(1, atypes[0].max)
    return Graph(name=f"random{seed}", input=InputQuant(atypes[0], step), layers=layers).validate()


@dataclass(frozen=True)
class ConvSpec:
    """One convolution of ``random_cnn``: out channels, kernel, stride, padding,
    max-pool size (0: none), weight type, output type, (pe, simd); ``pad_level``:
    the input value of its padded positions (``ConvGeom.pad``: the zero level of
    a signed or zero-pointed input; 0 for bipolar inputs)."""

    out_ch: int
    k: int
    s: int = 1
    p: int = 0
    pool: int = 0
    wtype: DType = DType("bipolar", 1)
    otype: DType = DType("bipolar", 1)
    fold: tuple[int, int] = (1, 1)
    k_w: int = 0            # a non-square kernel: its width (0: square)
    pad_level: int = 0


def random_cnn(seed: int, in_chw: tuple[int, int, int], itype: DType, convs: list[ConvSpec],
               classes: int, fc_wtype: DType, fc_fold: tuple[int, int] = (1, 1),
               acc_bits: int | None = None, extremes: float = 0.0) -> Graph:
    """Convolutions (each optionally max-pooled) and a fully connected classifier."""
    rng = np.random.default_rng(seed)
    layers = []
    c, h, w = in_chw
    t = itype
    for i, spec in enumerate(convs):
        kw = spec.k_w or spec.k
        geom = ConvGeom(c, h, w, spec.k, kw, spec.s, spec.s, spec.p, min(spec.p, kw - 1), pad=spec.pad_level)
        layer = random_layer(rng, f"conv{i}", geom.window, spec.out_ch, spec.wtype, t, spec.otype,
                             *spec.fold, acc_bits=acc_bits, extremes=extremes)
        layer.conv = geom
        c, h, w = spec.out_ch, geom.out_h, geom.out_w
        if spec.pool:
            layer.pool = PoolGeom(c, h, w, spec.pool, spec.pool)
            h, w = layer.pool.out_h, layer.pool.out_w
        layers.append(layer)
        t = spec.otype
    layers.append(random_layer(rng, f"fc{len(convs)}", c * h * w, classes, fc_wtype, t, None, *fc_fold,
                               acc_bits=acc_bits, extremes=extremes))
    step = 1.0 / max(1, itype.max)
    return Graph(name=f"random_cnn{seed}", input=InputQuant(itype, step), layers=layers).validate()


def random_inputs(graph: Graph, n: int, seed: int = 0, ends: float = 0.0) -> np.ndarray:
    """``n`` uniformly random input frames; ``ends``: the share of elements put at
    the input format's smallest or largest value, which a wide (9..16-bit) input
    would hardly ever draw, and where a sign or width slip shows."""
    rng = np.random.default_rng(seed)
    it = graph.layers[0].itype
    shape = (n, graph.layers[0].in_len)
    if it.kind == "bipolar":
        return rng.choice([-1, 1], size=shape).astype(np.int64)
    x = rng.integers(it.min, it.max + 1, size=shape)
    if ends:
        x = np.where(rng.random(shape) < ends, rng.choice([it.min, it.max], size=shape), x)
    return x.astype(np.int64)


# --------------------------------------------------------------------------- mutations

@dataclass(frozen=True)
class Flip:
    """One flipped bit of a layer's weight or threshold, and the first output it changes.

    ``index`` is the weight's input column, or the threshold's position j in
    its channel; ``bit`` the bit of the weight code or of the threshold's
    two's-complement accumulator word. ``frame, channel, expected, got`` are
    the first output of ``layer`` (frame order, then channel) that differs:
    what golden gives for the emitted design and what the mutant computes.
    """

    layer: str
    channel: int
    index: int
    bit: int
    frame: int
    expected: int
    got: int


def _first_change(graph: Graph, mutated: Graph, inputs: np.ndarray, layer: str):
    from . import golden
    a = golden.run(graph, inputs).outputs[layer]
    b = golden.run(mutated, inputs).outputs[layer]
    diff = np.argwhere(a != b)
    if not len(diff):
        return None
    f, c = (int(v) for v in diff[0])
    return f, int(a[f, c]), int(b[f, c]), c


def _with(graph: Graph, layer: MatVec) -> Graph:
    return graph.replace(layers=[layer if l.name == layer.name else l for l in graph.layers])


def weight_flip(graph: Graph, inputs: np.ndarray, name: str, seed: int = 0) -> Flip:
    """A flip of a weight's top code bit (the sign, or the only bit) that changes ``name``'s output on ``inputs``."""
    import dataclasses
    layer = graph.layer(name)
    wt = layer.wtype
    b = wt.bits - 1
    rng = np.random.default_rng(seed)
    for c, i in rng.permutation([(c, i) for c in range(layer.mh) for i in range(layer.mw)]):
        code = int(wt.encode(np.array([layer.weights[c, i]]))[0]) ^ (1 << b)
        w = layer.weights.copy()
        w[c, i] = int(wt.decode(np.array([code], dtype=np.uint64))[0])
        change = _first_change(graph, _with(graph, dataclasses.replace(layer, weights=w)), inputs, name)
        if change:
            return Flip(name, int(c), int(i), b, *change[:3])
    raise ValueError(f"layer {name!r}: no weight flip changes its output on these inputs")


def threshold_flip(graph: Graph, inputs: np.ndarray, name: str, seed: int = 1) -> Flip:
    """A flip of one threshold bit that changes ``name``'s output on ``inputs`` and keeps
    the channel's thresholds ascending (the IR's invariant, which the binary-search unit needs);
    low bits first: the smallest change that shows."""
    import dataclasses
    layer = graph.layer(name)
    t = layer.thresholds
    acc = DType("int", layer.acc_bits)
    rng = np.random.default_rng(seed)
    for c, j in rng.permutation([(c, j) for c in range(layer.mh) for j in range(t.shape[1])]):
        for b in range(layer.acc_bits - 1):
            code = int(acc.encode(np.array([t[c, j]]))[0]) ^ (1 << b)
            tt = t.copy()
            tt[c, j] = int(acc.decode(np.array([code], dtype=np.uint64))[0])
            if np.any(np.diff(tt[c]) < 0):
                continue
            change = _first_change(graph, _with(graph, dataclasses.replace(layer, thresholds=tt)), inputs, name)
            if change:
                return Flip(name, int(c), int(j), b, *change[:3])
    raise ValueError(f"layer {name!r}: no threshold flip changes its output on these inputs")


def weight_word(layer: MatVec, flip: Flip) -> tuple[int, int]:
    """(word, bit) of a weight flip in the packed weight ROM, RTL ``<layer>_weights.mem`` and
    HLS ``<layer>_weights[]`` alike: word nf*SF + sf, element p*SIMD + s."""
    nf, p = divmod(flip.channel, layer.pe)
    sf, s = divmod(flip.index, layer.simd)
    return nf * layer.sf + sf, (p * layer.simd + s) * layer.wtype.bits + flip.bit


def rtl_threshold_word(layer: MatVec, flip: Flip) -> tuple[str, int, int]:
    """(file suffix, word, bit) of a threshold flip in the RTL threshold ROMs."""
    from .emitters.rtl import threshold_unit
    nf, p = divmod(flip.channel, layer.pe)
    n_t = layer.thresholds.shape[1]
    j = flip.index
    if threshold_unit(layer) == "parallel":
        return "thresholds", nf, (p * n_t + j) * layer.acc_bits + flip.bit
    # binary search: j + 1 = (2q + 1) * 2^(B-k-1) at stage k, prefix q
    low = ((j + 1) & -(j + 1)).bit_length() - 1
    k = layer.out_dtype.bits - 1 - low
    q = (j + 1) >> (low + 1)
    return f"thr{k}_{p:04d}", (nf << k) + q, flip.bit


def rtl_rom_flip(graph: Graph, inputs: np.ndarray, name: str, rom: str) -> tuple[Flip, str, int, int]:
    """A weight (``rom="weights"``) or threshold flip of layer ``name`` that shows on
    ``inputs``, with the RTL ROM image it is in and its word and bit there:
    (flip, ``<layer>_<suffix>.mem``, word, bit)."""
    layer = graph.layer(name)
    if rom == "weights":
        flip = weight_flip(graph, inputs, name)
        suffix, (word, bit) = "weights", weight_word(layer, flip)
    else:
        flip = threshold_flip(graph, inputs, name)
        suffix, word, bit = rtl_threshold_word(layer, flip)
    return flip, f"{name}_{suffix}.mem", word, bit


def hls_threshold_word(layer: MatVec, flip: Flip) -> tuple[int, int, int]:
    """(PE lane, word, bit) of a threshold flip in the HLS ``<layer>_thresholds[PE][NF]`` ROM."""
    nf, p = divmod(flip.channel, layer.pe)
    return p, nf, flip.index * layer.acc_bits + flip.bit


def flip_mem_bit(path, word: int, bit: int) -> None:
    """Flip one bit of one word of a ``$readmemh`` image in place."""
    from pathlib import Path
    path = Path(path)
    lines = path.read_text().split("\n")
    digits = len(lines[word])
    lines[word] = f"{int(lines[word], 16) ^ (1 << bit):0{digits}x}"
    path.write_text("\n".join(lines))


def flip_hls_rom_bit(params_h, array: str, word: int, bit: int, lane: int | None = None) -> None:
    """Flip one bit of one word of a ROM array in ``lbgen_params.h`` (the ap_int one that C-sim
    without LBGEN_CSIM_NATIVE compiles): ``array[word]``, or ``array[lane][word]``."""
    import re
    from pathlib import Path
    path = Path(params_h)
    text = path.read_text()
    head = re.search(rf"static const \S+ {re.escape(array)}\[[^=]*= \{{\n", text)
    if head is None:
        raise ValueError(f"{path}: no ROM array {array!r}")
    pos = head.end()
    if lane is not None:
        pos = text.index(f"// PE {lane}\n", pos)
    literals = re.compile(r'0x([0-9a-f]+)(ULL|", 16\))')      # word_literal's two forms
    for n, m in enumerate(literals.finditer(text, pos)):
        if n == word:
            digits = len(m.group(1))
            new = f"0x{int(m.group(1), 16) ^ (1 << bit):0{digits}x}{m.group(2)}"
            path.write_text(text[:m.start()] + new + text[m.end():])
            return
    raise ValueError(f"{path}: {array} has no word {word}")
