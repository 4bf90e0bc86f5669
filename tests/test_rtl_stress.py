"""RTL stress in cocotb (issue 9, point 2), on Icarus and Verilator, bit-exact against golden.

Through run_rtl's stress options (lbgen.simulate.ResetPoint, ``reset_at``,
``stall_bursts``, ``gap_bursts``), on three small designs:

* ``mlp``: every PE kind (addsub, xnor, mac, shift, planes) and both threshold
  units (parallel for binary outputs, binary search for 2 and 3 bits);
* ``cnn``: convolutions with padding (bipolar input: border corrections),
  a max-pool on a map it does not divide, line buffers that keep state
  across a frame;
* ``huff``: Huffman-coded weights (int, bipolar and log2), whose lane
  decoders run ahead of the engine and must restart after a reset.

The stresses:

1. resets in the middle of a frame: after a few input beats, while a layer
   has produced part of its output, while the last layer is mid-output with
   m_axis held low long enough for the pipeline to fill up, with rst_n low
   for one rising edge and for eight, and one rising edge after a reset
   (weight decoders still filling); after each, all frames again, and
   exactly those must come out (nothing stale, nothing lost or doubled,
   tlast right), and no stream may be valid in reset;
2. long m_axis tready stalls (hundreds to thousands of cycles, far beyond
   every FIFO; one longer than the no-progress timeout, which must not fire);
3. s_axis tvalid gaps, short and long;
4. frames back to back with no gap (at the folding bound);
5. one frame alone.

One emitted design and one build per simulator and design, shared by the
module (a module-private build cache); larger variants are marked slow.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from lbgen import golden
from lbgen.emitters.rtl import emit_rtl
from lbgen.ir import DType, Graph
from lbgen.passes.compress import compress_weights
from lbgen.simulate import ResetPoint, RtlResult, run_rtl

from lbgen_testing.graphs import ConvSpec, random_cnn, random_graph, random_inputs

B, U2, U3 = DType("bipolar", 1), DType("uint", 2), DType("uint", 3)
I3, I4 = DType("int", 3), DType("int", 4)
L2 = lambda k: DType("log2", k)                                          # noqa: E731
HET = lambda *s: DType("hetero", 2 * len(s) - 1, tuple(s))               # noqa: E731

SIMULATORS = ["icarus", "verilator"]


# --------------------------------------------------------------------------- designs

def _mlp() -> Graph:
    """addsub (B x U3) -> xnor (B x B) -> mac (int3 x U2) -> shift (log2 x U2) -> planes
    (hetero x U3); fc0 binary output (parallel threshold unit), fc1..fc3 2-3 bits
    (binary search); width converters between the foldings."""
    return random_graph(31, [16, 12, 12, 8, 8, 6],
                        [B, B, I3, L2(4), HET(4, 2, 1)],
                        [U3, B, U2, U2, U3],
                        [(4, 4), (3, 4), (4, 6), (2, 4), (3, 2)])


def _cnn() -> Graph:
    """5x5 input, conv 3x3 pad 1 + max-pool 2 (5x5 -> 2x2: the pool does not divide),
    conv 3x3 pad 1 on bipolar input (border corrections), fully connected."""
    return random_cnn(32, (1, 5, 5), U2,
                      [ConvSpec(4, 3, 1, 1, 2, I3, B, (4, 1)),
                       ConvSpec(6, 3, 1, 1, 0, B, U2, (3, 4))], 4, I4, (2, 4))


def _huff() -> Graph:
    """Huffman-coded weights: int4 (skewed towards small values, so code lengths
    differ, 2 to 7 bits), bipolar and log2, 8 to 12 decoder lanes per layer."""
    graph = random_graph(33, [12, 12, 8, 6], [I4, B, L2(3)], [U2, B, U2], [(4, 2), (2, 4), (3, 4)])
    fc0 = graph.layers[0]
    rng = np.random.default_rng(33)
    # smaller magnitudes only narrow the accumulator range, so acc_bits stays valid
    w = np.clip(np.round(rng.laplace(0, 1.2, size=fc0.weights.shape)), -7, 7).astype(np.int64)
    layers = [dataclasses.replace(fc0, weights=w)] + graph.layers[1:]
    return compress_weights(graph.replace(layers=layers).validate())


DESIGNS = {"mlp": _mlp, "cnn": _cnn, "huff": _huff}


@pytest.fixture(scope="module")
def designs(tmp_path_factory, sim_cache):
    """name -> (out dir, graph), emitted once per module."""
    cache: dict[str, tuple[Path, Graph]] = {}

    def get(name: str) -> tuple[Path, Graph]:
        if name not in cache:
            graph = DESIGNS[name]()
            out = tmp_path_factory.mktemp(name) / "out"
            graph.save(out)
            emit_rtl(graph, out / "rtl")
            cache[name] = (out, graph)
        return cache[name]

    return get


def _fifo_depths(out: Path) -> list[int]:
    """DEPTH of every FIFO between layers (and of nothing else) in the emitted top."""
    top = (out / "rtl" / "lbgen_top.v").read_text()
    return [int(d) for d in re.findall(r"FIFO of (\d+) beats", top)]


def _check(res: RtlResult, graph: Graph, inputs: np.ndarray) -> None:
    """Passed, and every layer's output (not only m_axis) equals golden, frame for frame."""
    assert res.passed, res.summary() + "\n" + res.log_tail
    trace = golden.run(graph, inputs)
    np.testing.assert_array_equal(res.outputs, trace.result)
    assert set(res.layer_outputs) == {l.name for l in graph.layers}
    for layer in graph.layers:
        np.testing.assert_array_equal(res.layer_outputs[layer.name], trace.outputs[layer.name])


def _frame_beats(graph: Graph) -> dict[str, int]:
    """Beats per frame of s_axis, every layer's output and m_axis."""
    first, last = graph.layers[0], graph.layers[-1]
    beats = {"s_axis": graph.in_len // first.simd, "m_axis": last.out_len // last.pe}
    beats.update({l.name: graph.layer_out_len(l) // l.pe for l in graph.layers})
    return beats


# --------------------------------------------------------------------------- 1. resets

def _reset_points(graph: Graph) -> list[ResetPoint]:
    """Five resets (rst_n low for one rising edge but in one): early in the first
    layer's input frame; while the second layer has produced part of a frame; with
    the last layer mid-output and m_axis held low for 400 cycles (every FIFO full,
    s_axis back-pressured); in the middle of the second output frame, rst_n low for
    8 rising edges; and after a single rising edge out of that one (the Huffman
    decoders are still filling their windows)."""
    beats = _frame_beats(graph)
    nb = beats["m_axis"]
    mid_layer = graph.layers[1].name
    return [ResetPoint("s_axis", max(1, beats["s_axis"] // 2)),
            ResetPoint(mid_layer, beats[mid_layer] + max(1, beats[mid_layer] // 2)),
            ResetPoint("m_axis", 1, hold=400),
            ResetPoint("m_axis", nb + max(1, nb // 2), cycles=8),
            ResetPoint("s_axis", 0, hold=1)]


#: frames per run: more than the pipeline holds, so that while m_axis is held low
#: before reset 2 the input stops too (the MLP's layers hold 16 frames between them)
RESET_FRAMES = {"mlp": 24, "cnn": 6, "huff": 16}


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("name", list(DESIGNS))
def test_reset_mid_frame_then_all_frames_exact(designs, name, simulator):
    out, graph = designs(name)
    inputs = random_inputs(graph, RESET_FRAMES[name], seed=1)
    points = _reset_points(graph)
    res = run_rtl(out, inputs, simulator=simulator, seed=2, backpressure=0.3, gaps=0.2, throughput_frames=4,
                  reset_at=points)
    _check(res, graph, inputs)
    assert res.throughput_ok(), (res.cycles_per_frame, res.expected_cycles_per_frame)
    log = res.stress["resets"]
    assert len(log) == len(points)
    beats = _frame_beats(graph)
    for point, entry in zip(points[:4], log):
        seen = entry["beats_seen"]
        assert seen[point.stream] >= point.beats
        # in the middle of a frame: of the stream that triggered it, and work in flight
        assert seen["s_axis"] % beats["s_axis"] or seen["m_axis"] % beats["m_axis"] or any(
            seen[l.name] % beats[l.name] for l in graph.layers), entry
    # reset 0: inside the first input frame, before any output; reset 1: that layer mid-frame
    assert 0 < log[0]["beats_seen"]["s_axis"] < beats["s_axis"] and log[0]["beats_seen"]["m_axis"] == 0
    assert log[1]["beats_seen"][points[1].stream] % beats[points[1].stream]
    # reset 2: output back-pressured with a beat on offer, and the input stopped by a full pipeline
    held = log[2]
    assert (held["m_axis_tvalid"], held["m_axis_tready"]) == ("1", "0"), held
    assert held["s_axis_tready"] == "0", held
    # reset 3: the last layer in the middle of an output frame
    assert log[3]["beats_seen"]["m_axis"] % beats["m_axis"]
    # reset 4: one rising edge after reset 3's last one (rst_n low for 8 rising edges)
    assert log[4]["cycle"] == log[3]["cycle"] + 8 + 1
    assert all(not entry["valid_in_reset"] for entry in log)


# --------------------------------------------------------------------------- 2.-3. stalls and gaps

@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("name", list(DESIGNS))
def test_long_tready_stalls_and_tvalid_gaps(designs, name, simulator):
    out, graph = designs(name)
    inputs = random_inputs(graph, 16 if name != "cnn" else 6, seed=3)
    res = run_rtl(out, inputs, simulator=simulator, seed=4, backpressure=0.2, gaps=0.2, throughput_frames=4,
                  stall_bursts=(0.03, (200, 1500)), gap_bursts=(0.03, (1, 600)))
    _check(res, graph, inputs)
    assert res.throughput_ok(), (res.cycles_per_frame, res.expected_cycles_per_frame)
    stalls, gaps = res.stress["stall_bursts"], res.stress["gap_bursts"]
    assert stalls["count"] >= 2 and gaps["count"] >= 2, res.stress
    assert stalls["longest"] > 20 * max(_fifo_depths(out) + [2]), (stalls, _fifo_depths(out))
    assert gaps["longest"] > 100


@pytest.mark.parametrize("simulator", SIMULATORS)
def test_a_stall_longer_than_the_timeout_is_not_a_timeout(designs, simulator):
    out, graph = designs("mlp")
    inputs = random_inputs(graph, 3, seed=5)
    res = run_rtl(out, inputs, simulator=simulator, seed=6, backpressure=0.0, gaps=0.0, throughput_frames=0,
                  stall_bursts=(0.05, 2500), gap_bursts=(0.05, 2500))
    _check(res, graph, inputs)
    timeout = res.stress["timeout_cycles"]
    assert res.stress["stall_bursts"]["longest"] > timeout and res.stress["gap_bursts"]["longest"] > timeout


# --------------------------------------------------------------------------- 4.-5. back to back, one frame

@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("name", list(DESIGNS))
def test_back_to_back_frames_at_the_folding_bound(designs, name, simulator):
    out, graph = designs(name)
    inputs = random_inputs(graph, 4, seed=7)
    res = run_rtl(out, inputs, simulator=simulator, seed=8, backpressure=0.0, gaps=0.0, throughput_frames=6)
    _check(res, graph, inputs)
    assert res.throughput_ok(), (res.cycles_per_frame, res.expected_cycles_per_frame)


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("name", list(DESIGNS))
def test_one_frame_alone(designs, name, simulator):
    out, graph = designs(name)
    inputs = random_inputs(graph, 1, seed=9)
    res = run_rtl(out, inputs, simulator=simulator, seed=10, backpressure=0.0, gaps=0.0, throughput_frames=0)
    _check(res, graph, inputs)
    assert res.outputs.shape == (1, graph.layers[-1].mh)
    assert res.cycles_per_frame is None


# --------------------------------------------------------------------------- the checks themselves

def test_stress_options_are_checked(designs):
    out, graph = designs("mlp")
    x = random_inputs(graph, 1)
    with pytest.raises(ValueError, match="stream 'fcx'"):
        run_rtl(out, x, reset_at=[("fcx", 1)])
    with pytest.raises(ValueError, match="beats >= 0"):
        run_rtl(out, x, reset_at=[ResetPoint("m_axis", -1)])
    with pytest.raises(ValueError, match="cycles >= 1"):
        run_rtl(out, x, reset_at=[ResetPoint("m_axis", 1, cycles=0)])
    with pytest.raises(ValueError, match="needs monitor_layers"):
        run_rtl(out, x, reset_at=[("fc1", 1)], monitor_layers=False)
    with pytest.raises(ValueError, match="stall_bursts must be in"):
        run_rtl(out, x, stall_bursts=(1.0, 10))
    with pytest.raises(ValueError, match="gap_bursts: burst length"):
        run_rtl(out, x, gap_bursts=(0.1, (10, 5)))


def test_a_reset_point_not_reached_is_a_mismatch(designs):
    out, graph = designs("mlp")
    x = random_inputs(graph, 2, seed=11)
    res = run_rtl(out, x, simulator="icarus", throughput_frames=0, reset_at=[("m_axis", 1000)])
    assert not res.passed
    assert any("reset point 0 (m_axis after 1000 beats) was not reached" in m for m in res.mismatches), \
        res.mismatches


def _copy(out: Path, dst: Path) -> Path:
    shutil.copytree(out, dst)
    return dst


def test_a_fifo_that_ignores_a_later_reset_is_caught(designs, tmp_path):
    """The check has teeth: a FIFO that is reset at power-up only keeps the beats it
    held at a mid-frame reset, and they come out as stale beats afterwards."""
    out, graph = designs("mlp")
    mutant = _copy(out, tmp_path / "mutant")
    top = mutant / "rtl" / "lbgen_top.v"
    text = top.read_text()
    src = graph.layers[1].name
    marker = f"u_{src}_fifo ("
    assert marker in text
    text = text.replace("endmodule", "  reg por_done = 1'b0;\n  always @(posedge clk) if (!rst_n) por_done <= 1'b1;\n"
                                     "endmodule")
    head, tail = text.split(marker)
    tail = tail.replace(".rst_n(rst_n)", ".rst_n(rst_n | por_done)", 1)
    top.write_text(head + marker + tail)
    x = random_inputs(graph, RESET_FRAMES["mlp"], seed=12)
    res = run_rtl(mutant, x, simulator="icarus", seed=2, throughput_frames=0,
                  reset_at=[ResetPoint("m_axis", 1, hold=300, cycles=1)])
    assert not res.passed
    assert res.stress["resets"] and res.stress["resets"][0]["m_axis_tready"] == "0"
    # the first wrong beat is downstream of the FIFO
    assert res.mismatches[0].startswith(f"layer '{graph.layers[2].name}'"), res.mismatches[:3]


def test_the_timeout_still_fires_under_bursts(designs, tmp_path):
    out, graph = designs("mlp")
    mutant = _copy(out, tmp_path / "stuck")
    top = mutant / "rtl" / "lbgen_top.v"
    last = graph.layers[-1].name
    text = re.sub(rf"assign\s+m_axis_tvalid\s*=\s*{last}_out_tvalid;", "assign m_axis_tvalid = 1'b0;",
                  top.read_text())
    top.write_text(text)
    res = run_rtl(mutant, random_inputs(graph, 2), simulator="icarus", throughput_frames=0,
                  stall_bursts=(0.002, (100, 400)), gap_bursts=(0.002, (100, 400)))
    assert not res.passed
    assert any(m.startswith("timeout: no handshake") for m in res.mismatches), res.mismatches


# --------------------------------------------------------------------------- slow

def _sweep_points(graph: Graph, n: int, seed: int) -> list[ResetPoint]:
    """n resets at random streams and beat counts, some holding m_axis low first, some
    a few rising edges after the previous one."""
    rng = np.random.default_rng(seed)
    beats = _frame_beats(graph)
    streams = list(beats)
    points = []
    for _ in range(n):
        s = streams[int(rng.integers(len(streams)))]
        if rng.random() < 0.25:
            points.append(ResetPoint(s, 0, hold=int(rng.integers(0, 4)), cycles=int(rng.choice([1, 2]))))
        else:
            points.append(ResetPoint(s, int(rng.integers(1, 2 * beats[s] + 1)),
                                     hold=int(rng.choice([0, 0, 50, 700])), cycles=int(rng.choice([1, 2, 8]))))
    return points


@pytest.mark.slow
@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("name", list(DESIGNS))
def test_many_resets_stalls_and_gaps_together(designs, name, simulator):
    out, graph = designs(name)
    inputs = random_inputs(graph, 12, seed=13)
    points = _sweep_points(graph, 12, seed=sum(map(ord, name)))
    res = run_rtl(out, inputs, simulator=simulator, seed=14, backpressure=0.4, gaps=0.3, throughput_frames=8,
                  reset_at=points, stall_bursts=(0.005, (500, 3000)), gap_bursts=(0.005, (500, 3000)))
    _check(res, graph, inputs)
    assert len(res.stress["resets"]) == len(points)
    assert res.throughput_ok(), (res.cycles_per_frame, res.expected_cycles_per_frame)


@pytest.mark.slow
@pytest.mark.parametrize("simulator", SIMULATORS)
def test_larger_cnn_with_huffman_weights_under_resets(tmp_path, sim_cache, simulator):
    """A larger CNN (test_rtl_cnn's first shape), Huffman-coded, reset at every layer."""
    graph = compress_weights(random_cnn(34, (1, 8, 8), DType("uint", 4),
                                        [ConvSpec(8, 3, 1, 1, 0, DType("int", 8), B, (4, 1)),
                                         ConvSpec(12, 3, 1, 1, 2, B, U2, (3, 4)),
                                         ConvSpec(6, 3, 2, 1, 0, I3, U2, (2, 6))], 10, I4, (5, 4)))
    out = tmp_path / "out"
    graph.save(out)
    emit_rtl(graph, out / "rtl")
    beats = _frame_beats(graph)
    points = [ResetPoint(l.name, beats[l.name] // 2 + 1, hold=h) for l, h in zip(graph.layers, (0, 300, 0, 900))]
    inputs = random_inputs(graph, 6, seed=15)
    res = run_rtl(out, inputs, simulator=simulator, seed=16, backpressure=0.3, gaps=0.3, throughput_frames=4,
                  reset_at=points, stall_bursts=(0.002, (1000, 3000)), gap_bursts=(0.002, (200, 2000)))
    _check(res, graph, inputs)
    assert len(res.stress["resets"]) == len(points)
    assert res.throughput_ok(), (res.cycles_per_frame, res.expected_cycles_per_frame)
