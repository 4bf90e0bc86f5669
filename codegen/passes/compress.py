"""Huffman-code every layer's weight stream (``--compress huffman``).

Runs after folding, because the streams are cut into the PE*SIMD lanes that
feed the engine (``lbgen.huffman.lane_sequences``). Each layer gets its own
canonical code, built from the histogram of its weight codes and limited to
``max_len`` bits; the stream is what the decoders read, so the IR keeps it
(and ``Graph.validate`` checks it still encodes the weights).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..errors import UsageError
from ..huffman import (DEFAULT_MAX_LEN, MAX_LEN_LIMIT, HuffmanCode, HuffmanError, entropy_bits,
                       histogram, huffman_mean_length, lane_sequences, word_bits)
from ..ir import Graph, MatVec

COMPRESS_CHOICES = ("none", "huffman")


def compress_layer(layer: MatVec, max_len: int = DEFAULT_MAX_LEN) -> MatVec:
    codes = layer.codes()
    try:
        code = HuffmanCode.for_symbols(codes, layer.wtype.bits, max_len)
    except HuffmanError as exc:
        raise UsageError(f"layer {layer.source or layer.name}: {exc} (raise --huffman-max-len)") from None
    lanes = [code.encode(seq) for seq in lane_sequences(codes, layer.pe, layer.simd)]
    return dataclasses.replace(
        layer, huffman=code,
        huffman_stream=np.concatenate(lanes).astype(np.uint8),
        huffman_lane_bits=np.array([len(b) for b in lanes], dtype=np.int64))


def compress_weights(graph: Graph, method: str = "huffman", max_len: int = DEFAULT_MAX_LEN) -> Graph:
    if method not in COMPRESS_CHOICES:
        raise UsageError(f"--compress {method!r}: expected one of {', '.join(COMPRESS_CHOICES)}")
    if method == "none":
        return graph
    if not 1 <= max_len <= MAX_LEN_LIMIT:
        raise UsageError(f"--huffman-max-len {max_len}: must be 1..{MAX_LEN_LIMIT}")
    return graph.replace(layers=[compress_layer(layer, max_len) for layer in graph.layers])


@dataclass(frozen=True)
class CompressionStats:
    """The figures ``lbgen report`` prints for one layer's weights."""

    weights: int            # number of weights
    raw_bits: int           # weights x code width (the plain ROM)
    huffman_bits: int       # the encoded streams, all lanes
    stored_bits: int        # the lane ROMs as stored (whole words of word_bits)
    entropy_bits: float     # Shannon bound: entropy of the weight codes x weights
    mean_len: float         # mean code length, bits per weight
    optimal_mean_len: float  # mean length of an unconstrained Huffman code
    max_len: int            # longest code of the (length-limited) code
    symbols: int            # weight codes that occur


def layer_stats(layer: MatVec) -> CompressionStats:
    """Compression figures of a layer; without a code, what Huffman coding would give."""
    codes = layer.codes()
    counts = histogram(codes, layer.wtype.bits)
    code = layer.huffman or HuffmanCode.from_counts(counts, layer.wtype.bits)
    n = int(codes.size)
    mean = code.mean_length(counts)
    fw = word_bits(code.max_len)
    if layer.huffman_lane_bits is not None:
        lane_bits = np.asarray(layer.huffman_lane_bits, dtype=np.int64)
    else:
        lane_bits = np.array([len(code.encode(s)) for s in lane_sequences(codes, layer.pe, layer.simd)])
    stored = int((-(-lane_bits // fw)).sum() * fw)
    return CompressionStats(
        weights=n, raw_bits=n * layer.wtype.bits, huffman_bits=int(lane_bits.sum()), stored_bits=stored,
        entropy_bits=entropy_bits(counts) * n, mean_len=mean, optimal_mean_len=huffman_mean_length(counts),
        max_len=code.max_len, symbols=int(sum(1 for c in counts if c)))


@dataclass(frozen=True)
class ActivationStats:
    """Huffman figures of one layer's output values over a batch of frames: what the
    streaming dataflow would spend per value if it stored activations Huffman-coded
    (the figure the post-training 4-bit work reports per activation)."""

    layer: str
    values: int             # output values counted (frames x out_len)
    raw_bits: int           # bits per value on the stream (the output type; the last layer: acc bits)
    symbols: int            # distinct values seen
    entropy: float          # Shannon bound, bits per value
    huffman: float          # mean length of an unconstrained Huffman code over these values, bits per value


def activation_stats(graph: Graph, values: np.ndarray) -> list[ActivationStats]:
    """Per layer: the Huffman bits per output value when the graph runs on ``values``
    (test or calibration vectors, (N, in_len) input values)."""
    from .. import golden

    trace = golden.run(graph, np.asarray(values, dtype=np.int64))
    out = []
    for layer in graph.layers:
        v = np.asarray(trace.outputs[layer.name]).ravel()
        _, counts = np.unique(v, return_counts=True)
        counts = counts.tolist()
        out.append(ActivationStats(
            layer=layer.name, values=int(v.size), raw_bits=layer.out_dtype.bits,
            symbols=len(counts), entropy=entropy_bits(counts), huffman=huffman_mean_length(counts)))
    return out
