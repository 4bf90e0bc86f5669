"""Mutation helpers: one flipped bit of a layer's weight or threshold, found so
that it changes the layer's output on given inputs, and where that bit sits in
the emitted ROM images (RTL ``.mem`` files, HLS ``lbgen_params.h``)."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lbgen import golden
from lbgen.emitters.rtl import threshold_unit
from lbgen.ir import DType, Graph, MatVec


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
    path = Path(path)
    lines = path.read_text().split("\n")
    digits = len(lines[word])
    lines[word] = f"{int(lines[word], 16) ^ (1 << bit):0{digits}x}"
    path.write_text("\n".join(lines))


def flip_hls_rom_bit(params_h, array: str, word: int, bit: int, lane: int | None = None) -> None:
    """Flip one bit of one word of a ROM array in ``lbgen_params.h`` (the ap_int one that C-sim
    without LBGEN_CSIM_NATIVE compiles): ``array[word]``, or ``array[lane][word]``."""
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
