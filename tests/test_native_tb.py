"""The native bulk testbench (lbgen.native_tb): Icarus and Verilator, no Python per clock.

It must say what the cocotb testbench (lbgen.simulate.run_rtl) says: bit-exact
outputs, the same per-layer observed values, the same cycles per frame, and
for a flipped ROM bit the same first message (layer, frame, channel, expected
and observed value); a stalled design ends in a timeout message. Designs: the
MLP of test_sim (every PE kind, both threshold units) and a small CNN with a
top-K unit. Builds go to the module-private cache (sim_cache); a flipped .mem
bit reuses the build (ROMs are read at run time).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lbgen import golden
from lbgen.emitters.rtl import emit_rtl, library_files
from lbgen.ir import DType, TopK
from lbgen.native_tb import render_tb, run_native, shard_frames, tb_library
from lbgen.simulate import run_rtl, toolchain_env

from lbgen_testing.common import assert_usage_error, run_cli
from lbgen_testing.graphs import ConvSpec, random_cnn, random_graph, random_inputs
from lbgen_testing.mutation import flip_mem_bit, rtl_rom_flip

B, U2, U3, U4, I3, I4 = (DType("bipolar", 1), DType("uint", 2), DType("uint", 3), DType("uint", 4),
                         DType("int", 3), DType("int", 4))
SIMULATORS = ["icarus", "verilator"]


def _mlp():
    return random_graph(11, [24, 16, 12, 8, 6], [B, B, I3, I4], [U3, B, U2, U2], [(4, 4), (3, 8), (2, 4), (3, 2)])


def _cnn():
    g = random_cnn(11, (2, 6, 6), U4, [ConvSpec(4, 3, 1, 1, 2, I3, B, (2, 2)), ConvSpec(3, 3, 1, 1, 0, B, U2, (3, 4))],
                   3, I4, (3, 1))
    return g.replace(topk=TopK(2)).validate()


def _emit(graph, root: Path, frames: int):
    out = root / "out"
    graph.save(out)
    emit_rtl(graph, out / "rtl")
    inputs = random_inputs(graph, frames, seed=5)
    return out, graph, inputs, golden.run(graph, inputs)


@pytest.fixture(scope="module")
def designs(tmp_path_factory, sim_cache):
    return {"mlp": _emit(_mlp(), tmp_path_factory.mktemp("mlp"), 24),
            "cnn": _emit(_cnn(), tmp_path_factory.mktemp("cnn"), 6)}


@pytest.fixture(scope="module")
def mlp_runs(designs):
    """The MLP on the native testbench (both simulators) and on cocotb (Icarus), one seed."""
    out, _, inputs, _ = designs["mlp"]
    runs = {sim: run_native(out, inputs, simulator=sim, seed=3) for sim in SIMULATORS}
    runs["cocotb"] = run_rtl(out, inputs, simulator="icarus", seed=3)
    return runs


# --------------------------------------------------------------------------- no simulator

def test_testbench_cores_stay_out_of_the_design(designs):
    """The lb_tb_* cores are not design sources: not in library_files, not in filelist.f."""
    out = designs["mlp"][0]
    names = {p.name for p in tb_library()}
    assert names == {"lb_tb_probe.v", "lb_tb_rand.v", "lb_tb_sink.v", "lb_tb_source.v"}
    assert not names & set(library_files())
    assert not names & set((out / "rtl" / "filelist.f").read_text().split())
    assert not any(p.name.startswith("lb_tb") or p.name.startswith("lbgen_tb") for p in (out / "rtl").iterdir())


def test_rendered_top_probes_every_stream_by_hierarchical_name(designs):
    _, graph, _, _ = designs["cnn"]
    text = render_tb(graph)
    for ident in ("conv0", "conv1", "fc2", "topk"):
        assert f".tdata(dut.{ident}_out_tdata)" in text
    assert "stream_3.hex" in text and "stream_4.hex" not in text
    bare = render_tb(graph, probes=False)
    assert "dut.conv0_out_tdata" not in bare and 'FILE("m_axis.hex")' in bare


def test_a_bad_core_parameter_names_its_value(tmp_path):
    toolchain_env("icarus")
    top = tmp_path / "t.v"
    top.write_text("module t; wire f; lb_tb_probe #(.W(0), .FILE(\"x.hex\")) p (.clk(1'b0), .rst_n(1'b0), "
                   ".tdata(1'b0), .tvalid(1'b0), .tready(1'b0), .tlast(1'b0), .cycle(64'd0), .fire(f)); endmodule\n")
    probe = [p for p in tb_library() if p.name == "lb_tb_probe.v"][0]
    proc = subprocess.run(["iverilog", "-g2012", "-o", str(tmp_path / "t.vvp"), str(top), str(probe)],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "lb_tb_probe_error_W_or_LAST" in proc.stdout + proc.stderr


def test_bad_harness_is_a_usage_error(tmp_path):
    assert_usage_error(run_cli("sim", tmp_path, "--harness", "python"), "--harness")


# --------------------------------------------------------------------------- runs

@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_native_equals_golden(designs, mlp_runs, name, simulator):
    out, graph, inputs, trace = designs[name]
    res = mlp_runs[simulator] if name == "mlp" else run_native(out, inputs, simulator=simulator, seed=1,
                                                               throughput_frames=5)
    assert res.passed and res.mismatches == [], res.summary() + "\n" + res.log_tail
    np.testing.assert_array_equal(res.outputs, trace.result)
    for layer in graph.layers:
        np.testing.assert_array_equal(res.layer_outputs[layer.name], trace.outputs[layer.name])
    assert res.cycles_per_frame == res.expected_cycles_per_frame, res.summary()
    # phase 1 ends, settles, then phase 2 starts; the run ends after phase 2
    assert 0 < res.stress["phase1_cycles"] < res.stress["phase2_start_cycle"] < res.cycles


def test_native_and_cocotb_agree(mlp_runs):
    nat, coco = mlp_runs["icarus"], mlp_runs["cocotb"]
    assert nat.passed == coco.passed is True
    assert set(nat.layer_outputs) == set(coco.layer_outputs)
    for name, values in coco.layer_outputs.items():
        np.testing.assert_array_equal(nat.layer_outputs[name], values)
    np.testing.assert_array_equal(nat.outputs, coco.outputs)
    assert nat.cycles_per_frame == coco.cycles_per_frame
    # the same seeded pattern in both simulators: the same clock count
    assert nat.cycles == mlp_runs["verilator"].cycles > 0


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("rom,layer", [("weights", "fc1"), ("thresholds", "fc0")])
def test_flipped_rom_bit_is_pinned_like_cocotb(designs, mlp_runs, tmp_path, simulator, rom, layer):
    out, graph, inputs, _ = designs["mlp"]
    flip, mem, word, bit = rtl_rom_flip(graph, inputs, layer, rom)
    mutant = tmp_path / "mutant"
    shutil.copytree(out, mutant)
    flip_mem_bit(mutant / "rtl" / mem, word, bit)
    res = run_native(mutant, inputs, simulator=simulator, seed=3, throughput_frames=0)
    assert res.build_reused and not res.passed
    want = f"layer '{layer}' frame {flip.frame} channel {flip.channel}: expected {flip.expected}, got {flip.got}"
    assert res.mismatches[0] == want
    if simulator == "icarus" and rom == "weights":
        coco = run_rtl(mutant, inputs, simulator="icarus", seed=3, throughput_frames=0)
        assert coco.mismatches[0] == res.mismatches[0]


def test_a_stalled_design_times_out(designs, tmp_path):
    out, _, inputs, _ = designs["mlp"]
    mutant = tmp_path / "mutant"
    shutil.copytree(out, mutant)
    top = mutant / "rtl" / "lbgen_top.v"
    text = re.sub(r"assign\s+fc3_out_tready\s*=\s*m_axis_tready;", "assign fc3_out_tready = 1'b0;",
                  top.read_text())
    text = re.sub(r"assign\s+m_axis_tvalid\s*=\s*fc3_out_tvalid;", "assign m_axis_tvalid = 1'b0;", text)
    assert text != top.read_text()
    top.write_text(text)
    res = run_native(mutant, inputs[:4], simulator="icarus", throughput_frames=0, stall_cycles=200)
    assert not res.passed
    assert any(m.startswith("timeout: no handshake on any stream for 200 cycles") for m in res.mismatches), \
        res.mismatches
    assert any("only 0 of" in m for m in res.mismatches), res.mismatches


def test_missing_layer_wire_is_a_contract_error_like_cocotb(designs, tmp_path):
    out, _, inputs, _ = designs["mlp"]
    mutant = tmp_path / "mutant"
    shutil.copytree(out, mutant)
    top = mutant / "rtl" / "lbgen_top.v"
    top.write_text(top.read_text().replace("fc1_out_tvalid", "fc1_o_tvalid"))
    res = run_native(mutant, inputs[:2], simulator="icarus", throughput_frames=0)
    assert not res.passed and res.build_dir is None
    assert res.mismatches[0] == ("layer 'fc1': lbgen_top has no wire fc1_out_tvalid (docs/emit-contract.md: "
                                 "every layer's output stream is visible in the top)")


def test_probe_words_with_x_reach_the_scoreboard_as_unknown():
    from lbgen.native_tb import _beat
    from lbgen.simlib.streams import StreamSpec, decode_beats

    assert _beat("3f") == 0x3F
    spec = StreamSpec("fc0", "uint", 4, per_beat=2, beats=1)
    values, known = decode_beats([_beat("x5")], spec)
    assert values.tolist() == [[5, 0]] and known.tolist() == [[True, False]]


def test_lbgen_sim_runs_the_native_testbench_unless_told_cocotb(tmp_path):
    from lbgen_testing.common import DIGITS

    out = tmp_path / "out"
    proc = run_cli("emit", DIGITS / "digits_w1a2.pt", "--target", "fpga", "--w", "1", "--a", "2", "-o", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for extra, harness in (((), "native"), (("--harness", "cocotb"), "cocotb")):
        proc = run_cli("sim", out, "--simulator", "icarus", "--frames", 3, *extra)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert re.search(rf"icarus: 3 frames bit-exact vs golden; 256.0 cycles/frame measured, folding bound 256 "
                         rf"\({harness} testbench\)", proc.stdout), proc.stdout


def test_a_multithreaded_verilator_model_gives_the_same_run(designs, tmp_path):
    """verilator --threads 2: its own build (not the one-thread model's), every layer equal
    to golden and the same cycles/frame; Icarus and a thread count below 1 are refused by name."""
    out, graph, inputs, trace = designs["cnn"]
    res = run_native(out, inputs, simulator="verilator", seed=1, throughput_frames=5, threads=2)
    assert res.passed, res.summary() + "\n" + res.log_tail
    one = run_native(out, inputs, simulator="verilator", seed=1, throughput_frames=5)
    assert one.build_dir != res.build_dir
    np.testing.assert_array_equal(res.outputs, trace.result)
    for layer in graph.layers:
        np.testing.assert_array_equal(res.layer_outputs[layer.name], one.layer_outputs[layer.name])
    assert res.cycles_per_frame == one.cycles_per_frame == res.expected_cycles_per_frame
    with pytest.raises(ValueError, match="only Verilator builds a multithreaded model, not icarus"):
        run_native(out, inputs, simulator="icarus", threads=2)
    with pytest.raises(ValueError, match="threads=0: must be an integer >= 1"):
        run_native(out, inputs, simulator="verilator", threads=0)
    for args, needle in ((("--threads", "0"), "--threads 0: must be at least 1"),
                         (("--threads", "2", "--simulator", "icarus"), "--threads 2: only the native testbench"),
                         (("--threads", "2", "--simulator", "verilator", "--harness", "cocotb"),
                          "--threads 2: only the native testbench")):
        assert_usage_error(run_cli("sim", tmp_path, *args), needle)


@pytest.mark.parametrize("frames, shards, throughput", [(100, 2, 20), (10, 2, 20), (2, 2, 20), (5, 3, 0),
                                                        (7, 4, 20), (100, 4, 20), (1, 3, 20), (9, 1, 20)])
def test_shards_cover_every_frame_once_and_balance_the_throughput_phase(frames, shards, throughput):
    pieces = shard_frames(frames, shards, throughput)
    assert np.concatenate(pieces).tolist() == list(range(frames)) and all(len(p) for p in pieces)
    assert len(pieces) == min(shards, frames)
    if len(pieces) > 1 and len(pieces[0]) > 1:    # shard 0 was not cut to its minimum of one frame
        others = [len(p) for p in pieces[1:]]
        assert max(others) - min(others) <= 1
        assert abs(len(pieces[0]) + throughput - np.mean(others)) <= 1, pieces


def test_lbgen_sim_fails_a_design_slower_than_its_folding_bound(tmp_path):
    """A top whose input handshake is gated to every other cycle still computes every bit
    right, but its 16-cycle bottleneck (fc0: NF 1, SF 16, one input element a beat) takes
    32 cycles a frame: lbgen sim prints bit-exact and the throughput line, and exits 1."""
    from lbgen.flow import EmitOptions, emit
    from lbgen_testing.common import small_mlp

    out = tmp_path / "out"
    emit(small_mlp(1, dims=(16, 4, 4)), out, EmitOptions(pe=4, simd=1), name="small")
    top = out / "rtl" / "lbgen_top.v"
    text = top.read_text()
    handshake = "  assign fc0_in_tvalid = s_axis_tvalid;\n  assign s_axis_tready = fc0_in_tready;\n"
    assert handshake in text
    top.write_text(text.replace(handshake, "  reg half_rate;\n  always @(posedge clk) half_rate <= rst_n & ~half_rate;\n"
                                           "  assign fc0_in_tvalid = s_axis_tvalid & half_rate;\n"
                                           "  assign s_axis_tready = fc0_in_tready & half_rate;\n"))
    proc = run_cli("sim", out, "--simulator", "icarus", "--frames", 4, "--allow-modified")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "icarus: 4 frames bit-exact vs golden; 32.0 cycles/frame measured, folding bound 16" in proc.stdout
    assert "throughput: 32.0 cycles/frame is more than 2% above the folding bound 16" in proc.stdout, proc.stdout
