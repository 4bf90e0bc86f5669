"""Length-limited canonical Huffman codes for weight streams, and their layout.

Why canonical and length-limited: a canonical code is described by the number
of codes of each length and the symbols in code order, so the hardware decoder
needs no tree, only one comparison per code length ("limit" of each length,
as in DEFLATE decoders). Its cost grows with the longest code L: L
comparators of up to L+1 bits, an L-bit look-ahead and refill words of at
least L bits. ``DEFAULT_MAX_LEN`` bounds it; the optimal code under that
bound comes from the package-merge algorithm (Larmore and Hirschberg), so the
bound only costs bits where the unconstrained Huffman code would need longer
codes.

Bits of a code are sent most significant first. A layer's weight stream is
split into ``lanes`` = PE*SIMD interleaved streams, one per element of the
engine's weight word (``lane_sequences``): lane p*SIMD + s carries, in weight
ROM address order nf*SF + sf, the codes of W[nf*PE + p][sf*SIMD + s]. One
decoder per lane gives the engine its PE*SIMD weights in every cycle
(``docs/emit-contract.md``, "Huffman-coded weights").
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

#: Default longest code. 12 bits: every weight format lbgen has (at most 8-bit
#: codes, 256 symbols) fits, and on the shipped digits models (4-bit, 2-bit,
#: log2:4, 8-bit) the length-limited code stays within 1 % of the
#: unconstrained Huffman code (``lbgen report`` and the tests show the
#: figures), while the decoder's comparators and refill words stay 12-16
#: bits wide. A longer limit buys nothing measurable there and widens every
#: lane decoder.
DEFAULT_MAX_LEN = 12
#: Longest code lbgen accepts (--huffman-max-len).
MAX_LEN_LIMIT = 24
#: Bits of the per-lane checksum: the sum of the decoded symbol codes of a
#: pass, modulo 2^CHECKSUM_BITS.
CHECKSUM_BITS = 16


class HuffmanError(ValueError):
    """A code that cannot be built, or a stream that does not decode."""


def entropy_bits(counts: Sequence[int]) -> float:
    """Shannon entropy in bits per symbol of a histogram (the lower bound of any prefix code)."""
    c = np.asarray([x for x in counts if x > 0], dtype=np.float64)
    if c.size <= 1:
        return 0.0
    p = c / c.sum()
    return float(-(p * np.log2(p)).sum())


def huffman_lengths(counts: Sequence[int]) -> list[int]:
    """Code lengths of an unconstrained optimal (Huffman) code; 0 for unused symbols.

    A single used symbol gets length 1 (a prefix code needs one bit per symbol).
    """
    used = [i for i, c in enumerate(counts) if c > 0]
    lengths = [0] * len(counts)
    if not used:
        return lengths
    if len(used) == 1:
        lengths[used[0]] = 1
        return lengths
    # heap of (weight, tie-break, symbols under this node)
    heap = [(int(counts[i]), k, [i]) for k, i in enumerate(used)]
    heapq.heapify(heap)
    tie = len(heap)
    while len(heap) > 1:
        w1, _, s1 = heapq.heappop(heap)
        w2, _, s2 = heapq.heappop(heap)
        for i in s1 + s2:
            lengths[i] += 1
        heapq.heappush(heap, (w1 + w2, tie, s1 + s2))
        tie += 1
    return lengths


def huffman_mean_length(counts: Sequence[int]) -> float:
    """Mean code length, bits per symbol, of the unconstrained optimal code for ``counts``."""
    n = sum(int(c) for c in counts)
    return sum(int(c) * x for c, x in zip(counts, huffman_lengths(counts))) / n if n else 0.0


def limited_lengths(counts: Sequence[int], max_len: int) -> list[int]:
    """Code lengths of the optimal prefix code whose longest code is at most ``max_len``
    (package-merge); 0 for unused symbols."""
    used = [i for i, c in enumerate(counts) if c > 0]
    lengths = [0] * len(counts)
    n = len(used)
    if n == 0:
        return lengths
    if n == 1:
        lengths[used[0]] = 1
        return lengths
    if (1 << max_len) < n:
        raise HuffmanError(f"{n} symbols need codes of at least {math.ceil(math.log2(n))} bits; "
                           f"the limit is {max_len}")
    # an item is (weight, counts of each used symbol inside it); leaves sorted by weight
    order = sorted(range(n), key=lambda k: (counts[used[k]], k))
    leaves = [(int(counts[used[k]]), np.eye(1, n, k, dtype=np.int64)[0]) for k in order]
    current = list(leaves)
    for _ in range(max_len - 1):
        packages = [(current[j][0] + current[j + 1][0], current[j][1] + current[j + 1][1])
                    for j in range(0, len(current) - 1, 2)]
        # merge, leaves first among equal weights (a stable, deterministic order)
        merged = sorted([(w, 0, j, v) for j, (w, v) in enumerate(leaves)]
                        + [(w, 1, j, v) for j, (w, v) in enumerate(packages)], key=lambda t: t[:3])
        current = [(w, v) for w, _, _, v in merged]
    total = np.zeros(n, dtype=np.int64)
    for _, v in current[:2 * n - 2]:
        total += v
    for k in range(n):
        lengths[used[k]] = int(total[k])
    return lengths


@dataclass(frozen=True)
class HuffmanCode:
    """A canonical prefix code over the symbols 0 .. 2^sym_bits - 1.

    ``lengths[s]`` is the code length of symbol s (0: the symbol has no code).
    Codes are assigned in order of (length, symbol): the first code of each
    length is the previous length's next code shifted left, so the code is
    fully described by ``count``/``first``/``limit``/``base`` and the symbols
    in code order (``order``), which is what the decoders hold.
    """

    sym_bits: int
    lengths: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "lengths", tuple(int(x) for x in self.lengths))
        if len(self.lengths) != 1 << self.sym_bits:
            raise HuffmanError(f"a code over {self.sym_bits}-bit symbols has {1 << self.sym_bits} lengths, "
                               f"not {len(self.lengths)}")
        if any(x < 0 or x > MAX_LEN_LIMIT for x in self.lengths):
            raise HuffmanError(f"code lengths must be 0..{MAX_LEN_LIMIT}")
        if not any(self.lengths):
            raise HuffmanError("a code needs at least one symbol")
        kraft = sum(2.0 ** -x for x in self.lengths if x)
        if kraft > 1.0:
            raise HuffmanError(f"code lengths violate the Kraft inequality (sum 2^-len = {kraft:.4f})")

    # -- construction ---------------------------------------------------------
    @staticmethod
    def from_counts(counts: Sequence[int], sym_bits: int, max_len: int = DEFAULT_MAX_LEN) -> "HuffmanCode":
        counts = [int(c) for c in counts]
        if len(counts) != 1 << sym_bits:
            raise HuffmanError(f"{len(counts)} counts for {sym_bits}-bit symbols")
        if not 1 <= max_len <= MAX_LEN_LIMIT:
            raise HuffmanError(f"the longest code must be 1..{MAX_LEN_LIMIT} bits, not {max_len}")
        return HuffmanCode(sym_bits, tuple(limited_lengths(counts, max_len)))

    @staticmethod
    def for_symbols(symbols: np.ndarray, sym_bits: int, max_len: int = DEFAULT_MAX_LEN) -> "HuffmanCode":
        return HuffmanCode.from_counts(histogram(symbols, sym_bits), sym_bits, max_len)

    # -- canonical tables -----------------------------------------------------
    @property
    def max_len(self) -> int:
        return max(self.lengths)

    @property
    def order(self) -> list[int]:
        """Symbols in code order: by length, then by value."""
        return sorted((s for s, x in enumerate(self.lengths) if x), key=lambda s: (self.lengths[s], s))

    @property
    def count(self) -> list[int]:
        """count[l]: codes of length l, l = 0 .. max_len (count[0] = 0)."""
        c = [0] * (self.max_len + 1)
        for x in self.lengths:
            if x:
                c[x] += 1
        return c

    @property
    def first(self) -> list[int]:
        """first[l]: the first (smallest) code of length l, l = 0 .. max_len."""
        count = self.count
        first = [0] * (self.max_len + 1)
        code = 0
        for ln in range(1, self.max_len + 1):
            code = (code + count[ln - 1]) << 1
            first[ln] = code
        return first

    @property
    def limit(self) -> list[int]:
        """limit[l] = first[l] + count[l]: an l-bit prefix v is a whole code iff v < limit[l]
        (and no shorter prefix was)."""
        return [f + c for f, c in zip(self.first, self.count)]

    @property
    def base(self) -> list[int]:
        """base[l]: index in ``order`` of the first symbol of length l."""
        count = self.count
        return [sum(count[:ln]) for ln in range(self.max_len + 1)]

    def codewords(self) -> dict[int, tuple[int, int]]:
        """symbol -> (code, length)."""
        first, base = self.first, self.base
        out = {}
        for k, s in enumerate(self.order):
            ln = self.lengths[s]
            out[s] = (first[ln] + k - base[ln], ln)
        return out

    @property
    def complete(self) -> bool:
        """Every bit string starts with a code (Kraft sum 1); else some prefixes are invalid."""
        return sum(1 << (self.max_len - x) for x in self.lengths if x) == 1 << self.max_len

    def mean_length(self, counts: Sequence[int]) -> float:
        total = sum(int(c) for c in counts)
        if total == 0:
            return 0.0
        return sum(int(c) * x for c, x in zip(counts, self.lengths)) / total

    # -- coding -----------------------------------------------------------------
    def encode(self, symbols: Iterable[int]) -> np.ndarray:
        """Symbols -> bits (uint8 array, first bit first; each code most significant bit first)."""
        seq = np.asarray(symbols if isinstance(symbols, np.ndarray) else list(symbols), dtype=np.int64).ravel()
        if seq.size and (seq.min() < 0 or seq.max() >= len(self.lengths)):
            raise HuffmanError(f"a symbol does not fit {self.sym_bits} bits")
        lens = np.asarray(self.lengths, dtype=np.int64)
        codes = np.zeros(len(self.lengths), dtype=np.int64)
        for s, (code, _) in self.codewords().items():
            codes[s] = code
        ln = lens[seq]
        if np.any(ln == 0):
            raise HuffmanError(f"symbol {int(seq[np.argmax(ln == 0)])} has no code")
        owner = np.repeat(np.arange(seq.size), ln)                   # symbol of every output bit
        start = np.repeat(np.cumsum(ln) - ln, ln)
        shift = ln[owner] - 1 - (np.arange(owner.size) - start)      # MSB first
        return ((codes[seq][owner] >> shift) & 1).astype(np.uint8)

    def decode(self, bits: Sequence[int], n: int) -> tuple[np.ndarray, int]:
        """Decode ``n`` symbols from the front of ``bits``; return (symbols, bits used).

        Raises HuffmanError on a prefix that is no code, or when the bits run out.
        """
        limit, first, base, order = self.limit, self.first, self.base, self.order
        bits = np.asarray(bits, dtype=np.uint8)
        pos = 0
        out = np.empty(n, dtype=np.int64)
        for k in range(n):
            v = 0
            for ln in range(1, self.max_len + 1):
                if pos + ln > len(bits):
                    raise HuffmanError(f"the stream ends inside symbol {k} (bit {pos})")
                v = (v << 1) | int(bits[pos + ln - 1])
                if v < limit[ln]:
                    out[k] = order[base[ln] + v - first[ln]]
                    pos += ln
                    break
            else:
                raise HuffmanError(f"bits {pos}..{pos + self.max_len - 1}: no code of up to {self.max_len} "
                                   f"bits starts there (symbol {k})")
        return out, pos

    # -- serialisation ------------------------------------------------------------
    def to_json(self) -> dict:
        return {"sym_bits": self.sym_bits,
                "lengths": {str(s): x for s, x in enumerate(self.lengths) if x}}

    @staticmethod
    def from_json(d: dict) -> "HuffmanCode":
        sym_bits = int(d["sym_bits"])
        if not 1 <= sym_bits <= 16:
            raise HuffmanError(f"symbols of {sym_bits} bits")
        lengths = [0] * (1 << sym_bits)
        for s, x in dict(d["lengths"]).items():
            s = int(s)
            if not 0 <= s < len(lengths):
                raise HuffmanError(f"symbol {s} does not fit {sym_bits} bits")
            lengths[s] = int(x)
        return HuffmanCode(sym_bits, tuple(lengths))


def histogram(symbols: np.ndarray, sym_bits: int) -> list[int]:
    s = np.asarray(symbols).astype(np.int64).ravel()
    if s.size and (s.min() < 0 or s.max() >= 1 << sym_bits):
        raise HuffmanError(f"a symbol does not fit {sym_bits} bits")
    return np.bincount(s, minlength=1 << sym_bits).astype(np.int64).tolist()


# -----------------------------------------------------------------------------
# Lane streams: what the per-lane decoders read
# -----------------------------------------------------------------------------

def word_bits(max_len: int) -> int:
    """Refill word of a lane decoder: at least the longest code (one word per cycle then
    outruns one symbol per cycle), rounded up to a multiple of 4 for readable .mem files."""
    return max(4, -(-max_len // 4) * 4)


def lane_sequences(codes: np.ndarray, pe: int, simd: int) -> np.ndarray:
    """(mh, mw) weight codes -> (pe*simd, nf*sf) symbol sequence of every lane.

    Lane p*SIMD + s carries W[nf*PE + p][sf*SIMD + s] at position nf*SF + sf:
    the element the weight ROM word nf*SF + sf holds at index p*SIMD + s.
    """
    mh, mw = codes.shape
    nf, sf = mh // pe, mw // simd
    tiles = np.asarray(codes).reshape(nf, pe, sf, simd)          # [nf, p, sf, s]
    return tiles.transpose(1, 3, 0, 2).reshape(pe * simd, nf * sf)


def checksum(symbols: np.ndarray) -> int:
    return int(np.asarray(symbols, dtype=np.int64).sum() % (1 << CHECKSUM_BITS))


@dataclass(frozen=True)
class LaneStream:
    """One lane's encoded pass: ``bits`` (uint8, the codes back to back) stored as
    ``words`` of ``fw`` bits, stream bit i at bit fw-1 - i % fw of word i // fw (first
    bit on top); the last word is padded with zeros below its ``last_bits`` stream
    bits, which the decoder never reads."""

    bits: np.ndarray
    fw: int
    checksum: int

    @property
    def n_bits(self) -> int:
        return int(len(self.bits))

    @property
    def depth(self) -> int:
        return max(1, -(-self.n_bits // self.fw))

    @property
    def last_bits(self) -> int:
        """Valid bits of the last word (1 .. fw)."""
        return self.n_bits - (self.depth - 1) * self.fw

    @property
    def words(self) -> list[int]:
        padded = np.zeros(self.depth * self.fw, dtype=np.int64)
        padded[:self.n_bits] = self.bits
        rows = padded.reshape(self.depth, self.fw)
        return [int("".join(str(int(b)) for b in row), 2) for row in rows]   # first bit on top


def encode_lanes(code: HuffmanCode, sequences: np.ndarray, fw: int) -> list[LaneStream]:
    return [LaneStream(code.encode(seq), fw, checksum(seq)) for seq in sequences]


def huffman_lanes(layer) -> list[LaneStream]:
    """The lane streams of a Huffman-coded layer (an IR MatVec) as the RTL and HLS decoders read them."""
    code = layer.huffman
    assert code is not None and layer.huffman_stream is not None and layer.huffman_lane_bits is not None
    fw = word_bits(code.max_len)
    bounds = np.concatenate([[0], np.cumsum(layer.huffman_lane_bits)])
    seqs = lane_sequences(layer.codes(), layer.pe, layer.simd)
    return [LaneStream(np.asarray(layer.huffman_stream[a:b], dtype=np.uint8), fw, checksum(seq))
            for a, b, seq in zip(bounds[:-1], bounds[1:], seqs)]


@dataclass
class LaneTrace:
    symbols: np.ndarray      # decoded symbols, in the order the engine took them
    cycles: int              # cycles from reset to the last symbol taken (2 fill the window)
    error: bool              # the sticky error flag at the end


def simulate_lane(code: HuffmanCode, stream: LaneStream, n_symbols: int, pass_len: int,
                  words: Sequence[int] | None = None) -> LaneTrace:
    """Cycle model of one lane decoder of ``lb_huff_lane`` (the RTL is written to match it).

    The engine takes one symbol per cycle whenever the lanes have one. The
    decoder reads its codes from a window of two ROM words, ``cur`` and the
    registered ROM output ``q`` (the word after it), starting ``p`` bits in
    (0 <= p <= fw); a code that ends at or beyond the end of ``cur`` moves
    ``q`` in and reads the next word in the same cycle, and the last code of
    a pass moves on to the start of the word after the pass's last word.
    ``words`` overrides the ROM content (to model a corrupted stream).
    A symbol is decoded in every cycle, so the engine never waits on a lane.
    Returns the symbols taken, the cycles and the error flag: L bits that start no code, a pass whose last code does not
    end at bit ``last_bits`` of the pass's last word, or whose symbols do not
    sum to the lane's checksum.
    """
    L = code.max_len
    fw = stream.fw
    limit, first, base, order = code.limit, code.first, code.base, code.order
    rom = list(stream.words if words is None else words)
    depth, last_bits = stream.depth, stream.last_bits
    mask = (1 << (2 * fw)) - 1
    # two cycles fill the window: word 0 is read, then moves into cur while word 1 is read
    cur, curlast = rom[0], depth == 1
    q, qlast = rom[1 % depth], 1 % depth == depth - 1
    ra = 2 % depth
    p = 0
    head = None
    k = 0                   # symbol of the pass decoded next
    acc = 0                 # checksum of this pass so far
    err = False
    taken: list[int] = []
    cycles = 2
    while len(taken) < n_symbols:
        cycles += 1
        take = head is not None
        if take:
            taken.append(head)
        # step: decode one code from the window into the head register
        peek = ((((cur << fw) | q) << p) & mask) >> (2 * fw - L)
        length = next((ln for ln in range(1, L + 1) if (peek >> (L - ln)) < limit[ln]), 0)
        if length:
            v = peek >> (L - length)
            sym = order[base[length] + v - first[length]]
        else:
            err = True              # no code starts here: the first symbol, skip L bits
            sym = order[0]
        np_ = p + (length or L)
        inq = np_ > fw
        last = k == pass_len - 1
        acc = (acc + sym) % (1 << CHECKSUM_BITS)
        if last:
            if not (qlast if inq else curlast) or (np_ - fw if inq else np_) != last_bits \
                    or acc != stream.checksum:
                err = True
            p_next = fw if inq else 0
            k, acc = 0, 0
        else:
            p_next = np_ - fw if np_ >= fw else np_
            k += 1
        if last or np_ >= fw:       # q moves into cur, the next word is read
            cur, curlast = q, qlast
            q, qlast = rom[ra], ra == depth - 1
            ra = 0 if ra == depth - 1 else ra + 1
        p = p_next
        head = sym
    return LaneTrace(np.asarray(taken, dtype=np.int64), cycles, err)
