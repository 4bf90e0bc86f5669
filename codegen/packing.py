"""Bit packing shared by every emitter, so RTL, HLS and the testbenches agree.

Conventions (docs/emit-contract.md, "Folding and order"): element i of a word sits at bits [i*W +: W].

* Weight ROM of a layer: address a = nf*SF + sf; lane (p, s) at element
  index p*SIMD + s holds the code of W[nf*PE + p, sf*SIMD + s].
* Threshold ROM: address nf; element index p*T + j (width acc_bits) holds
  threshold j of channel nf*PE + p; above them, bit PE*T*acc_bits + p is the
  invert flag of that channel.
* Streams: a frame of L elements is L/n beats of n elements, in order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .ir import DType, MatVec


def pack_elements(codes: np.ndarray, width: int) -> int:
    """Pack unsigned codes (element 0 lowest) into one Python integer."""
    word = 0
    for i, c in enumerate(np.asarray(codes).ravel().tolist()):
        word |= (int(c) & ((1 << width) - 1)) << (i * width)
    return word


def unpack_elements(word: int, width: int, count: int) -> np.ndarray:
    mask = (1 << width) - 1
    return np.array([(int(word) >> (i * width)) & mask for i in range(count)], dtype=np.uint64)


def weight_words(layer: MatVec) -> list[int]:
    codes = layer.codes()  # (mh, mw)
    # (nf, pe, sf, simd) -> (nf, sf, pe, simd)
    tiles = codes.reshape(layer.nf, layer.pe, layer.sf, layer.simd).transpose(0, 2, 1, 3)
    return [pack_elements(tiles[nf, sf], layer.wtype.bits)
            for nf in range(layer.nf) for sf in range(layer.sf)]


def threshold_words(layer: MatVec) -> list[int]:
    assert layer.thresholds is not None and layer.threshold_invert is not None
    acc = DType("int", layer.acc_bits)
    t = layer.thresholds.shape[1]
    codes = acc.encode(layer.thresholds).reshape(layer.nf, layer.pe * t)
    inv = layer.threshold_invert.astype(np.uint64).reshape(layer.nf, layer.pe)
    base = layer.pe * t * layer.acc_bits
    return [pack_elements(codes[nf], layer.acc_bits) | (pack_elements(inv[nf], 1) << base)
            for nf in range(layer.nf)]


def threshold_search_words(layer: MatVec) -> list[list[list[int]]]:
    """ROM contents of lb_thresh_search, ``[stage][pe] -> words``.

    Stage k of PE p holds, at address nf * 2^k + q, the threshold that the
    binary search compares against when the first k level bits are q:
    t_j with j = q * 2^(B-k) + 2^(B-k-1) - 1 (B = output bits) of channel
    nf*PE + p. Stage 0 words carry the channel's invert flag above the
    threshold. Needs ascending thresholds, 2^B - 1 per channel (the IR's
    invariant).
    """
    assert layer.thresholds is not None and layer.threshold_invert is not None
    bits = layer.out_dtype.bits
    acc = DType("int", layer.acc_bits)
    codes = acc.encode(layer.thresholds).reshape(layer.nf, layer.pe, -1)
    assert codes.shape[2] == (1 << bits) - 1
    inv = layer.threshold_invert.astype(np.uint64).reshape(layer.nf, layer.pe)
    stages = []
    for k in range(bits):
        q = np.arange(1 << k)
        j = q * (1 << (bits - k)) + (1 << (bits - k - 1)) - 1
        rom = codes[:, :, j]                                   # (nf, pe, 2^k)
        if k == 0:
            rom = rom | (inv[:, :, None] << np.uint64(layer.acc_bits))
        stages.append([[int(v) for v in rom[:, pe, :].reshape(-1)] for pe in range(layer.pe)])
    return stages


def threshold_word_bits(layer: MatVec) -> int:
    assert layer.thresholds is not None
    return layer.pe * (layer.thresholds.shape[1] * layer.acc_bits + 1)


def pack_stream(values: np.ndarray, dtype: DType, per_beat: int) -> list[list[int]]:
    """(N, L) values -> N frames of L/per_beat beat integers."""
    values = np.asarray(values)
    n, length = values.shape
    if length % per_beat:
        raise ValueError(f"frame of {length} elements is not a whole number of {per_beat}-element beats")
    codes = dtype.encode(values).reshape(n, length // per_beat, per_beat)
    return [[pack_elements(beat, dtype.bits) for beat in frame] for frame in codes]


def unpack_stream(frames: list[list[int]], dtype: DType, per_beat: int) -> np.ndarray:
    """Inverse of pack_stream: beat integers -> (N, L) values."""
    out = [np.concatenate([dtype.decode(unpack_elements(b, dtype.bits, per_beat)) for b in frame])
           for frame in frames]
    return np.array(out, dtype=np.int64)


def write_mem(path: Path, words: list[int], width: int) -> None:
    """A $readmemh file: one word per line, hex, zero-padded to the width."""
    digits = max(1, (width + 3) // 4)
    Path(path).write_text("".join(f"{w:0{digits}x}\n" for w in words))
