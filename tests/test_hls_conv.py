"""HLS kernels of convolutional networks (hls/lbgen_conv.hpp) in g++ C-simulation.

One testbench translation unit instantiates lbgen::sliding_window and
lbgen::maxpool for every configuration below, feeds each several frames read
from a hex file (one frame per call, as the generated top calls its layers) and
writes the output beats and the loop iterations of every frame. The outputs
must equal a numpy reference bit for bit (im2col with code 0 at the padding;
max-pool with floor), and the iteration counts must equal the schedule stated
in the header and stay near max(input beats, output beats).
"""

from __future__ import annotations

import importlib.resources
import math
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from lbgen.csim import CXX_STD, ap_types_include

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")

HLS_DIR = Path(str(importlib.resources.files("lbgen.hls")))


@dataclass(frozen=True)
class Swu:
    c: int
    in_h: int
    in_w: int
    k_h: int
    k_w: int
    s_h: int
    s_w: int
    p_h: int
    p_w: int
    simd: int
    e: int
    frames: int = 5
    pad: int = 0          # CFG::PAD, the code of a padded element (0: the configuration has no PAD)

    @property
    def out_h(self) -> int:
        return (self.in_h + 2 * self.p_h - self.k_h) // self.s_h + 1

    @property
    def out_w(self) -> int:
        return (self.in_w + 2 * self.p_w - self.k_w) // self.s_w + 1

    @property
    def cf(self) -> int:
        return self.c // self.simd

    @property
    def row_beats(self) -> int:
        return self.in_w * self.cf

    @property
    def out_row_beats(self) -> int:
        return self.out_w * self.k_h * self.k_w * self.cf

    @property
    def in_beats(self) -> int:
        return self.in_h * self.row_beats

    @property
    def out_beats(self) -> int:
        return self.out_h * self.out_row_beats

    @property
    def warmup_rows(self) -> int:
        return min(self.k_h - self.p_h, self.in_h)

    def iterations(self) -> int:
        """The schedule of lbgen_conv.hpp, recomputed: warm-up rows, then per output row
        max(its output beats, the input beats read meanwhile)."""
        def target(oy: int) -> int:  # rows read by the end of output row oy's block; the last reads all
            return self.in_h if oy + 1 >= self.out_h else min((oy + 1) * self.s_h + self.k_h - self.p_h, self.in_h)
        read = target(-1)
        total = read * self.row_beats
        for oy in range(self.out_h):
            total += max((target(oy) - read) * self.row_beats, self.out_row_beats)
            read = target(oy)
        return total

    def cpp(self, name: str) -> str:
        return (f"struct {name} {{ static const unsigned C = {self.c}, IN_H = {self.in_h}, IN_W = {self.in_w}, "
                f"K_H = {self.k_h}, K_W = {self.k_w}, S_H = {self.s_h}, S_W = {self.s_w}, P_H = {self.p_h}, "
                f"P_W = {self.p_w}, SIMD = {self.simd}, E = {self.e}"
                + (f", PAD = {self.pad}" if self.pad else "") + "; };\n")

    def call(self, name: str) -> str:
        return f'    bad |= run_swu<{name}>(dir, "{name}");\n'

    def frame_shape(self) -> tuple[int, int, int]:
        return (self.in_h, self.in_w, self.c)

    def lanes(self) -> int:
        return self.simd

    def reference(self, x: np.ndarray) -> np.ndarray:
        return im2col(x, self.k_h, self.k_w, self.s_h, self.s_w, self.p_h, self.p_w, self.pad)


@dataclass(frozen=True)
class Pool:
    c: int
    in_h: int
    in_w: int
    k: int
    pe: int
    e: int
    frames: int = 5

    @property
    def in_beats(self) -> int:
        return self.in_h * self.in_w * self.c // self.pe

    @property
    def out_beats(self) -> int:
        return (self.in_h // self.k) * (self.in_w // self.k) * self.c // self.pe

    def iterations(self) -> int:
        return self.in_beats

    def cpp(self, name: str) -> str:
        return (f"struct {name} {{ static const unsigned C = {self.c}, IN_H = {self.in_h}, IN_W = {self.in_w}, "
                f"K = {self.k}, S = {self.k}, PE = {self.pe}, E = {self.e}; }};\n")

    def call(self, name: str) -> str:
        return f'    bad |= run_pool<{name}>(dir, "{name}");\n'

    def frame_shape(self) -> tuple[int, int, int]:
        return (self.in_h, self.in_w, self.c)

    def lanes(self) -> int:
        return self.pe

    def reference(self, x: np.ndarray) -> np.ndarray:
        return maxpool(x, self.k)


# name -> Swu(C, IN_H, IN_W, K_H, K_W, S_H, S_W, P_H, P_W, SIMD, E)
SWU = {
    "k1s1": Swu(3, 5, 7, 1, 1, 1, 1, 0, 0, 3, 4),          # pointwise, one beat per pixel
    "k1s2": Swu(4, 5, 7, 1, 1, 2, 2, 0, 0, 2, 1),          # stride > kernel: rows and columns skipped
    "k3s1p1": Swu(4, 5, 7, 3, 3, 1, 1, 1, 1, 2, 4),        # "same" 3x3, two beats per pixel
    "k3s1p0": Swu(1, 5, 7, 3, 3, 1, 1, 0, 0, 1, 4),        # one channel
    "k3s2p1": Swu(2, 7, 5, 3, 3, 2, 2, 1, 1, 1, 1),        # 7x5, binary codes
    "k3s2p2": Swu(3, 5, 7, 3, 3, 2, 2, 2, 2, 3, 4),        # padding 2 with a 3x3 kernel
    "k3s3": Swu(2, 7, 8, 3, 3, 3, 3, 0, 0, 2, 4),          # stride == kernel, trailing row/columns dropped
    "k5s1p2": Swu(2, 5, 7, 5, 5, 1, 1, 2, 2, 2, 4),
    "k5s2p1": Swu(6, 5, 7, 5, 5, 2, 2, 1, 1, 3, 1),
    "k7s1p2": Swu(1, 5, 7, 7, 7, 1, 1, 2, 2, 1, 4),        # the first window needs the whole image
    "k7s2p1": Swu(2, 5, 7, 7, 7, 2, 2, 1, 1, 1, 1),        # one output row, warm-up clipped to the image
    "rect": Swu(4, 6, 9, 3, 5, 1, 2, 0, 2, 4, 1),          # 3x5 kernel, strides 1x2, padding 0x2
    "k2s3p1": Swu(2, 8, 7, 2, 2, 3, 3, 1, 1, 1, 4),        # stride > kernel with padding
    "wide": Swu(24, 4, 4, 3, 3, 1, 1, 1, 1, 24, 4),        # 96-bit beats
    "row": Swu(2, 1, 3, 3, 3, 1, 1, 1, 1, 1, 4),           # a one-row image: windows mostly padding
    "col": Swu(3, 6, 1, 3, 1, 2, 1, 1, 0, 1, 4),           # a one-column image, 3x1 kernel
    "pad9": Swu(4, 5, 7, 3, 3, 1, 1, 1, 1, 2, 4, pad=9),    # padded with the zero level of a signed input
    "pad_e16": Swu(2, 5, 4, 3, 2, 2, 1, 2, 1, 2, 16, pad=1 << 15),  # a wide (16-bit) input's zero level
    "big_k3": Swu(16, 32, 32, 3, 3, 1, 1, 1, 1, 4, 4, 2),  # output-bound iteration geometry
    "big_k1s2": Swu(8, 31, 24, 1, 1, 2, 2, 0, 0, 4, 4, 2),  # input-bound iteration geometry
}

# name -> Pool(C, IN_H, IN_W, K, PE, E); S == K
POOL = {
    "p2": Pool(4, 5, 7, 2, 2, 4),          # last row and column dropped
    "p3": Pool(3, 5, 7, 3, 1, 1),          # 1x2 output, binary codes
    "p2_exact": Pool(8, 4, 4, 2, 8, 4),    # one beat per pixel, nothing dropped
    "p3_cf1": Pool(2, 7, 8, 3, 2, 4),      # rows 6, columns 6..7 dropped
    "p2_e1": Pool(6, 6, 5, 2, 3, 1),
    "p3_cf3": Pool(6, 7, 7, 3, 2, 4),      # three beats per pixel
    "p2_big": Pool(16, 32, 30, 2, 4, 4, 2),
    "p1": Pool(4, 3, 5, 1, 2, 4),          # K == 1: a copy
}

KERNELS = {**SWU, **POOL}


# ----------------------------------------------------------------------------- references

def im2col(x: np.ndarray, k_h: int, k_w: int, s_h: int, s_w: int, p_h: int, p_w: int, pad: int = 0) -> np.ndarray:
    """(N, H, W, C) codes -> (N, OUT_H*OUT_W*K_H*K_W*C): per output pixel (row-major) its window,
    element (ky*K_W + kx)*C + c; code ``pad`` at padded positions."""
    n, h, w, c = x.shape
    xp = np.full((n, h + 2 * p_h, w + 2 * p_w, c), pad, dtype=x.dtype)
    xp[:, p_h:p_h + h, p_w:p_w + w] = x
    oh, ow = (h + 2 * p_h - k_h) // s_h + 1, (w + 2 * p_w - k_w) // s_w + 1
    out = np.empty((n, oh, ow, k_h, k_w, c), dtype=x.dtype)
    for ky in range(k_h):
        for kx in range(k_w):
            out[:, :, :, ky, kx, :] = xp[:, ky:ky + s_h * (oh - 1) + 1:s_h, kx:kx + s_w * (ow - 1) + 1:s_w, :]
    return out.reshape(n, -1)


def maxpool(x: np.ndarray, k: int) -> np.ndarray:
    """(N, H, W, C) codes -> (N, OUT_H*OUT_W*C) NHWC, window k, stride k, floor."""
    n, h, w, c = x.shape
    oh, ow = h // k, w // k
    return x[:, :oh * k, :ow * k].reshape(n, oh, k, ow, k, c).max(axis=(2, 4)).reshape(n, -1)


def pack(elems: np.ndarray, lanes: int, e: int) -> list[int]:
    """Element codes in stream order -> beats of ``lanes`` elements, element i at bits [i*e +: e]."""
    rows = elems.reshape(-1, lanes)
    return [sum(int(v) << (i * e) for i, v in enumerate(row)) for row in rows]


def unpack(beats: list[int], lanes: int, e: int) -> np.ndarray:
    mask = (1 << e) - 1
    return np.array([(b >> (i * e)) & mask for b in beats for i in range(lanes)], dtype=np.int64)


def frames_for(cfg, rng: np.random.Generator) -> np.ndarray:
    """All-max, random, random..., all-max frames: padding and dropped positions must never show stale data."""
    top = (1 << cfg.e) - 1
    x = rng.integers(0, top + 1, size=(cfg.frames,) + cfg.frame_shape(), dtype=np.int64)
    x[0] = top
    x[-1] = top
    return x


# ----------------------------------------------------------------------------- testbench

TB = r"""
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "lbgen.hpp"
#include "lbgen_csim.hpp"

// dir/NAME.in: input beats (hex, one per line, frames back to back). Writes the
// output beats to dir/NAME.out and each frame's loop iterations to dir/NAME.iter.
template <int W, class KERNEL>
static int run(KERNEL kernel, const std::string &dir, const char *name, unsigned in_beats, unsigned out_beats) {
    std::ifstream fin((dir + "/" + name + ".in").c_str());
    std::vector<ap_uint<W> > beats;
    std::string line;
    while (std::getline(fin, line)) {
        if (line.empty()) continue;
        bool ok = false;
        beats.push_back(lbgen::csim::from_hex<W>(line.data(), line.size(), ok));
        if (!ok) { std::fprintf(stderr, "%s: bad beat %s\n", name, line.c_str()); return 1; }
    }
    if (beats.empty() || beats.size() % in_beats) { std::fprintf(stderr, "%s: not whole frames\n", name); return 1; }
    FILE *fo = std::fopen((dir + "/" + name + ".out").c_str(), "w");
    FILE *fi = std::fopen((dir + "/" + name + ".iter").c_str(), "w");
    hls::stream<ap_uint<W> > in("in"), out("out");
    for (size_t f = 0; f < beats.size() / in_beats; f++) {
        for (unsigned b = 0; b < in_beats; b++) in.write(beats[f * in_beats + b]);
        lbgen::loop_iterations() = 0;
        kernel(in, out);
        if (!in.empty()) {
            std::fprintf(stderr, "%s frame %u: %u input beats unread\n", name, (unsigned)f, (unsigned)in.size());
            return 1;
        }
        if (out.size() != out_beats) {
            std::fprintf(stderr, "%s frame %u: %u output beats\n", name, (unsigned)f, (unsigned)out.size());
            return 1;
        }
        while (!out.empty()) { std::fputs(lbgen::csim::to_hex(out.read()).c_str(), fo); std::fputc('\n', fo); }
        std::fprintf(fi, "%llu\n", lbgen::loop_iterations());
    }
    std::fclose(fo);
    std::fclose(fi);
    return 0;
}

template <class CFG>
static int run_swu(const std::string &dir, const char *name) {
    typedef lbgen::sliding_window_shape<CFG> G;
    return run<CFG::SIMD * CFG::E>(lbgen::sliding_window<CFG>, dir, name, G::IN_BEATS, G::OUT_BEATS);
}

template <class CFG>
static int run_pool(const std::string &dir, const char *name) {
    typedef lbgen::maxpool_shape<CFG> G;
    return run<CFG::PE * CFG::E>(lbgen::maxpool<CFG>, dir, name, G::IN_BEATS, G::OUT_BEATS);
}

%CONFIGS%
int main(int argc, char **argv) {
    if (argc != 2) return 2;
    const std::string dir = argv[1];
    int bad = 0;
%CALLS%
    std::printf("bad=%d\n", bad);
    return bad;
}
"""


def compile_cpp(src: Path, exe: Path, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run(["g++", CXX_STD, "-O1", "-w", "-DLBGEN_COUNT_ITERATIONS", *extra,
                           f"-I{ap_types_include()}", f"-I{HLS_DIR}", str(src), "-o", str(exe)],
                          capture_output=True, text=True)


@dataclass
class Run:
    inputs: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]     # name -> (frames, elements) codes
    iterations: dict[str, list[int]]   # name -> per frame
    stdout: str


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Run:
    tmp = tmp_path_factory.mktemp("hls_conv")
    rng = np.random.default_rng(2024)
    configs = "".join(cfg.cpp(name) for name, cfg in KERNELS.items())
    calls = "".join(cfg.call(name) for name, cfg in KERNELS.items())
    src = tmp / "tb_conv.cpp"
    src.write_text(TB.replace("%CONFIGS%", configs).replace("%CALLS%", calls))
    inputs = {}
    for name, cfg in KERNELS.items():
        x = frames_for(cfg, rng)
        inputs[name] = x
        digits = max(1, (cfg.lanes() * cfg.e + 3) // 4)
        (tmp / f"{name}.in").write_text("".join(f"{b:0{digits}x}\n" for b in pack(x.reshape(-1), cfg.lanes(), cfg.e)))
    exe = tmp / "tb_conv"
    proc = compile_cpp(src, exe)
    assert proc.returncode == 0, proc.stderr[-4000:]
    run = subprocess.run([str(exe), str(tmp)], capture_output=True, text=True)
    assert run.returncode == 0 and "bad=0" in run.stdout, run.stdout[-2000:] + run.stderr[-2000:]
    outputs, iterations = {}, {}
    for name, cfg in KERNELS.items():
        beats = [int(t, 16) for t in (tmp / f"{name}.out").read_text().split()]
        assert len(beats) == cfg.frames * cfg.out_beats, name
        outputs[name] = unpack(beats, cfg.lanes(), cfg.e).reshape(cfg.frames, -1)
        iterations[name] = [int(t) for t in (tmp / f"{name}.iter").read_text().split()]
    return Run(inputs, outputs, iterations, run.stdout)


def first_difference(name: str, cfg, got: np.ndarray, want: np.ndarray) -> str:
    f, i = (int(v) for v in np.argwhere(got != want)[0])
    if isinstance(cfg, Swu):
        k_elems = cfg.k_h * cfg.k_w * cfg.c
        pix, r = divmod(i, k_elems)
        (ky, kx), c = divmod(r // cfg.c, cfg.k_w), r % cfg.c
        oy, ox = divmod(pix, cfg.out_w)
        where = f"output pixel ({oy}, {ox}) window ky={ky} kx={kx} channel {c}"
    else:
        pix, c = divmod(i, cfg.c)
        where = f"output pixel {divmod(pix, cfg.in_w // cfg.k)} channel {c}"
    return (f"{name}: {int((got != want).sum())} elements differ; first in frame {f} at {where}: "
            f"C-sim {got[f, i]}, reference {want[f, i]}")


@pytest.mark.parametrize("name", list(SWU))
def test_sliding_window_bit_exact(bench, name):
    cfg = SWU[name]
    want = cfg.reference(bench.inputs[name])
    got = bench.outputs[name]
    assert got.shape == want.shape
    assert np.array_equal(got, want), first_difference(name, cfg, got, want)


@pytest.mark.parametrize("name", list(POOL))
def test_maxpool_bit_exact(bench, name):
    cfg = POOL[name]
    want = cfg.reference(bench.inputs[name])
    got = bench.outputs[name]
    assert got.shape == want.shape
    assert np.array_equal(got, want), first_difference(name, cfg, got, want)


def test_no_empty_stream_reads(bench):
    # hls_stream.h prints a warning (and returns 0) when a kernel reads an empty stream
    assert "WARNING" not in bench.stdout, bench.stdout[:2000]


def test_iterations_follow_the_schedule(bench):
    """Every frame of every kernel runs exactly the iterations the header states."""
    for name, cfg in KERNELS.items():
        assert bench.iterations[name] == [cfg.iterations()] * cfg.frames, name
        # not the sum of reads and writes (what a read-then-write design needs), unless the first
        # window needs the whole image (k7s1p2: 7x7 "same" windows on a 5-row image)
        if isinstance(cfg, Swu) and cfg.warmup_rows == cfg.in_h:
            assert cfg.iterations() <= cfg.in_beats + cfg.out_beats, name
        else:
            assert cfg.iterations() < cfg.in_beats + cfg.out_beats, name


def test_iterations_output_bound(bench):
    """3x3 'same' conv on 32x32x16, SIMD 4: 36864 output beats, 4096 input beats. The iterations are
    the output beats plus a warm-up of K_H - P_H = 2 input rows (the rows of output row 0, read
    before its first window: any in-order design waits for K_H - 1 - P_H rows and K_W - P_W pixels),
    under 1 % of the frame."""
    cfg = SWU["big_k3"]
    assert (cfg.in_beats, cfg.out_beats) == (4096, 36864)
    warmup = (cfg.k_h - cfg.p_h) * cfg.row_beats
    assert warmup == 2 * 32 * 4
    for n in bench.iterations["big_k3"]:
        assert n <= max(cfg.in_beats, cfg.out_beats) + warmup
        assert n == cfg.out_beats + warmup and n < 1.01 * cfg.out_beats


def test_iterations_input_bound(bench):
    """1x1 stride-2 conv on 31x24x8, SIMD 4: 1488 input beats, 384 output beats. The iterations are
    the input beats plus a tail of one output row (OUT_W*CF = 24 beats): the rows of the last output
    row are read in the block before, so the last block only writes (with an even IN_H it would
    read the trailing row meanwhile, and the tail would vanish)."""
    cfg = SWU["big_k1s2"]
    assert (cfg.in_beats, cfg.out_beats) == (1488, 384)
    tail = cfg.out_row_beats
    assert tail == 12 * 2
    for n in bench.iterations["big_k1s2"]:
        assert n <= max(cfg.in_beats, cfg.out_beats) + tail
        assert n == cfg.in_beats + tail
    # max-pool: exactly one iteration per input beat
    assert bench.iterations["p2_big"] == [POOL["p2_big"].in_beats] * POOL["p2_big"].frames


def test_iteration_bound_holds_generally():
    """The bounds stated in lbgen_conv.hpp, over many geometries of the schedule (whose C++
    iteration counts equal this model's, test_iterations_follow_the_schedule):
    iterations <= max(IN + (ceil(P_H/S_H) + 1)*OB, OUT + WARMUP_ROWS*RB); == OUT + warm-up when
    the output is the bottleneck in every row (OB >= S_H*RB); < IN + OUT unless warm-up == IN_H."""
    for in_h in range(1, 12):
        for k in range(1, 8):
            for s in range(1, 4):
                for p in range(0, k):
                    if in_h + 2 * p < k:
                        continue
                    for in_w, cf in ((1, 1), (5, 2), (9, 1)):
                        if in_w + 2 * p < k:
                            continue
                        cfg = Swu(cf, in_h, in_w, k, k, s, s, p, p, 1, 1)
                        n, ob, rb = cfg.iterations(), cfg.out_row_beats, cfg.row_beats
                        warm = cfg.warmup_rows * rb
                        assert n <= max(cfg.in_beats + (math.ceil(p / s) + 1) * ob, cfg.out_beats + warm), cfg
                        if ob >= s * rb:
                            assert n == cfg.out_beats + warm, cfg
                        if cfg.warmup_rows < in_h:
                            assert n < cfg.in_beats + cfg.out_beats, cfg


def test_coverage():
    swu = list(SWU.values())
    assert {c.k_h for c in swu} >= {1, 3, 5, 7} and {c.s_h for c in swu} >= {1, 2} and {c.p_h for c in swu} >= {0, 1, 2}
    assert any(c.in_h != c.in_w for c in swu) and any(c.k_h != c.k_w for c in swu)
    assert {c.cf == 1 for c in swu} == {True, False} and {c.e for c in swu} >= {1, 4}
    assert any(c.s_h > c.k_h for c in swu)  # rows inside no window
    assert any(c.pad and c.e == 16 for c in swu) and any(c.pad and c.e == 4 for c in swu)
    pool = list(POOL.values())
    assert {c.k for c in pool} >= {2, 3} and any(c.in_h % c.k and c.in_w % c.k for c in pool)
    assert {c.pe == c.c for c in pool} == {True, False} and {c.e for c in pool} == {1, 4}
    assert all(c.frames >= 2 for c in KERNELS.values())


def test_references_agree_with_torch():
    """The numpy references against torch's unfold (channel-major windows) and max_pool2d."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    for cfg in (SWU["k3s2p1"], SWU["rect"], SWU["k7s1p2"], SWU["k2s3p1"]):
        x = rng.integers(1, 16, size=(2,) + cfg.frame_shape())
        t = torch.nn.functional.unfold(torch.tensor(x, dtype=torch.float64).permute(0, 3, 1, 2),
                                       (cfg.k_h, cfg.k_w), padding=(cfg.p_h, cfg.p_w), stride=(cfg.s_h, cfg.s_w))
        t = t.reshape(2, cfg.c, cfg.k_h, cfg.k_w, cfg.out_h, cfg.out_w).permute(0, 4, 5, 2, 3, 1)
        assert np.array_equal(t.reshape(2, -1).numpy().astype(np.int64), cfg.reference(x))
    for cfg in POOL.values():
        x = rng.integers(0, 16, size=(2,) + cfg.frame_shape())
        t = torch.nn.functional.max_pool2d(torch.tensor(x, dtype=torch.float64).permute(0, 3, 1, 2), cfg.k)
        assert np.array_equal(t.permute(0, 2, 3, 1).reshape(2, -1).numpy().astype(np.int64), cfg.reference(x))


BAD_CONFIGS = {
    "SIMD must divide C":
        "struct bad { static const unsigned C = 6, IN_H = 5, IN_W = 5, K_H = 3, K_W = 3, "
        "S_H = 1, S_W = 1, P_H = 1, P_W = 1, SIMD = 4, E = 2; };\n"
        "void f(hls::stream<ap_uint<8> > &a, hls::stream<ap_uint<8> > &b) { lbgen::sliding_window<bad>(a, b); }",
    "padding must be smaller than the kernel":
        "struct bad { static const unsigned C = 2, IN_H = 5, IN_W = 5, K_H = 3, K_W = 3, "
        "S_H = 1, S_W = 1, P_H = 1, P_W = 3, SIMD = 2, E = 2; };\n"
        "void f(hls::stream<ap_uint<4> > &a, hls::stream<ap_uint<4> > &b) { lbgen::sliding_window<bad>(a, b); }",
    "the kernel does not fit":
        "struct bad { static const unsigned C = 2, IN_H = 2, IN_W = 5, K_H = 5, K_W = 3, "
        "S_H = 1, S_W = 1, P_H = 1, P_W = 0, SIMD = 2, E = 2; };\n"
        "void f(hls::stream<ap_uint<4> > &a, hls::stream<ap_uint<4> > &b) { lbgen::sliding_window<bad>(a, b); }",
    "PAD must be a code of E bits":
        "struct bad { static const unsigned C = 2, IN_H = 5, IN_W = 5, K_H = 3, K_W = 3, "
        "S_H = 1, S_W = 1, P_H = 1, P_W = 1, SIMD = 2, E = 2, PAD = 4; };\n"
        "void f(hls::stream<ap_uint<4> > &a, hls::stream<ap_uint<4> > &b) { lbgen::sliding_window<bad>(a, b); }",
    "stride must equal the kernel":
        "struct bad { static const unsigned C = 2, IN_H = 6, IN_W = 6, K = 3, S = 2, PE = 2, E = 2; };\n"
        "void f(hls::stream<ap_uint<4> > &a, hls::stream<ap_uint<4> > &b) { lbgen::maxpool<bad>(a, b); }",
    "PE must divide C":
        "struct bad { static const unsigned C = 3, IN_H = 6, IN_W = 6, K = 2, S = 2, PE = 2, E = 2; };\n"
        "void f(hls::stream<ap_uint<4> > &a, hls::stream<ap_uint<4> > &b) { lbgen::maxpool<bad>(a, b); }",
}


def test_bad_configs_fail_to_compile(tmp_path):
    """Each broken configuration stops the compile with its own static_assert message."""
    for i, (message, code) in enumerate(BAD_CONFIGS.items()):
        src = tmp_path / f"bad{i}.cpp"
        src.write_text('#include "lbgen.hpp"\n' + code + "\n")
        proc = subprocess.run(["g++", CXX_STD, "-fsyntax-only", f"-I{ap_types_include()}", f"-I{HLS_DIR}",
                               str(src)], capture_output=True, text=True)
        assert proc.returncode != 0 and message in proc.stderr, (message, proc.stderr[-2000:])
