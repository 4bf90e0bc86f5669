"""The LUT-per-lane benchmark's synthesis path (bench/lut_per_lane.py), on its smallest configuration."""

from __future__ import annotations

import shutil
import sys

import pytest

from lbgen_testing.common import ROOT, load_script

needs_yosys = pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not installed")


def _bench():
    return load_script(ROOT / "bench" / "lut_per_lane.py", "lut_per_lane")


def test_finn_r_reference_numbers():
    bench = _bench()
    ref = {f.name: f.finn_r() for f in bench.FORMATS}
    assert ref["W1A1"] == pytest.approx(6.6)
    assert ref["W1A2"] == pytest.approx(9.9)
    assert ref["W2A2"] == pytest.approx(13.2)
    assert ref["W4A4"] == pytest.approx(44.0)
    assert ref["log2-4b x A4"] == pytest.approx(44.0)


def test_parameters_are_lbgens():
    bench = _bench()
    fmt = next(f for f in bench.FORMATS if f.name == "W1A2")
    params = bench.lb_mvau_params(fmt, 16, 4)
    assert (params["PE"], params["SIMD"], params["MW"], params["PE_KIND"]) == ("4", "16", str(bench.MW), "1")
    assert params["N_THRESH"] == "3" and params["USE_THRESH"] == "1"
    assert int(params["ACC_BITS"]) == bench.worst_acc_bits(fmt) == 11    # +-3*256 and one above


@needs_yosys
def test_synthesis_of_the_smallest_engine(tmp_path):
    bench = _bench()
    row = bench.run_one(("W1A1", 16, 1, str(tmp_path), "auto"))
    assert not row["cached"]
    assert row["dsp"] == 0 and row["bram"] == 0            # -nodsp, ROMs are black boxes
    assert 16 < row["lut"] < 16 * 6.6                      # some logic, and below the FINN-R estimate
    assert row["ff"] > 0 and row["carry4"] > 0
    again = bench.run_one(("W1A1", 16, 1, str(tmp_path), "auto"))  # cached per configuration
    assert again["cached"] and again["lut"] == row["lut"]


def test_cnn_bench_plans_the_units_lbgen_emits(tmp_path):
    """bench/cnn_layers.py: one unit list per layer (window unit, engine, max-pool),
    every layer within the target, lb_mvau's ROM names black-boxed."""
    mod = load_script(ROOT / "bench" / "cnn_layers.py", "cnn_layers")
    rows, jobs = mod.plan_jobs(ROOT / "examples" / "digits" / "digits_cnn_w1a2.pt", 1152, str(tmp_path))
    assert [r["units"] for r in rows] == [["lb_swu", "lb_mvau"], ["lb_swu", "lb_mvau", "lb_maxpool"],
                                         ["lb_swu", "lb_mvau"], ["lb_mvau"]]
    assert all(r["cycles"] <= 1152 for r in rows) and max(r["cycles"] for r in rows) == 1152
    mvau = [p for js in jobs for (u, p, _) in js if u == "lb_mvau"]
    assert all(p["WEIGHT_FILE"] == '"rom0_0000.mem"' for p in mvau)


def test_width_sweep_quick(tmp_path):
    """bench/width_sweep.py --quick: the JSON it writes, and the golden model (the hardware)
    agreeing with the torch model it was compiled from on all but at most one test image."""
    import json
    import subprocess

    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "width_sweep.py"), "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((tmp_path / "width_sweep.json").read_text())
    assert (tmp_path / "width_sweep.png").stat().st_size > 0
    assert {"question", "settings", "summary", "rows", "seconds", "n_test"} <= set(doc)
    assert doc["n_test"] == 360 and doc["settings"]["widths"] == [1, 2] and doc["settings"]["quick"]
    assert "estimate_luts" in doc["settings"]["luts"] and "target-cycles" in doc["settings"]["folding_policy"]
    assert {(s["kind"], s["width"]) for s in doc["summary"]} == {("mlp", 1), ("mlp", 2), ("cnn", 1), ("cnn", 2)}
    for s in doc["summary"]:
        assert {"parameters", "torch_accuracy", "golden_accuracy", "float_accuracy", "bitops", "est_luts",
                "cycles_per_frame"} <= set(s)
        assert s["cycles_per_frame"] <= doc["settings"]["target_cycles"]
    binary = [r for r in doc["rows"] if r["format"] == "w1a1"]
    assert len(binary) == 4 and len(doc["rows"]) == 8
    for r in binary:
        assert abs(r["golden_accuracy"] - r["torch_accuracy"]) <= 1 / 360 + 1e-12, r
        assert r["bitops"] > 0 and r["est_luts"] > 0
    for kind in ("mlp", "cnn"):   # twice the width: more bit-operations and more area at the same rate
        s1, s2 = (next(s for s in doc["summary"] if (s["kind"], s["width"]) == (kind, k)) for k in (1, 2))
        assert s2["bitops"] > s1["bitops"] and s2["est_luts"] > s1["est_luts"] and s2["parameters"] > s1["parameters"]


def test_vs_hls4ml_lbgen_side_on_32_frames(tmp_path):
    """bench/vs_hls4ml.py, lbgen's side on 32 test images of the Brevitas w1a2 model: one emit,
    a fresh ap_int C-sim build and one run, bit-exact against golden and on every argmax of Brevitas."""
    pytest.importorskip("brevitas")
    pytest.importorskip("hls4ml")          # the ap_types headers of the C-simulation
    import numpy as np

    mod = load_script(ROOT / "bench" / "vs_hls4ml.py", "vs_hls4ml")
    model = mod.load_w1a2()
    with np.load(mod.TEST_SET) as z:
        x, y = z["x"][:32], z["y"][:32]
    ref = mod.torch_logits(model, x)
    (row,) = mod.run_lbgen("w1a2", model, x, y, ref, tmp_path, w=1, a=2, natives=(False,), repeats=1)
    assert row["side"] == "lbgen" and row["config"] == "ap_int C-sim"
    assert row["bit_exact"] and row["argmax_agreement"] == 1.0 and row["max_abs_logit_diff"] < 1e-4
    assert row["build_s"] > 0 and row["throughput_fps"] > 0
    assert row["total_s"] == pytest.approx(row["generation_s"] + row["build_s"] + row["verify_s"])
    assert any(c.startswith("Brevitas forward vs lbgen on 32 vectors") for c in row["checks"])


def test_vs_hls4ml_ratios_of_stated_figures():
    """bench/vs_hls4ml.py's ratio bookkeeping on rows whose figures are stated here, so each
    ratio has a value known beforehand (hls4ml over lbgen for times, lbgen over hls4ml for
    throughput) and a swapped or self-divided ratio shows; error rows and same-side pairs
    give no entry, a zero lbgen build time gives no build ratio."""
    mod = load_script(ROOT / "bench" / "vs_hls4ml.py", "vs_hls4ml")
    hls = {"side": "hls4ml", "config": "io_stream", "throughput_fps": 250.0, "total_s": 60.0,
           "generation_s": 12.0, "build_s": 40.0}
    lb = {"side": "lbgen", "config": "ap_int C-sim", "throughput_fps": 1000.0, "total_s": 15.0,
          "generation_s": 0.5, "build_s": 8.0}
    cached = {**lb, "config": "native", "build_s": 0.0}
    broken = {"side": "hls4ml", "config": "io_parallel", "error": "csynth failed"}
    pairs = mod.ratios([hls, broken, lb, cached])
    assert pairs == {
        "hls4ml io_stream vs lbgen ap_int C-sim": {"csim_throughput_ratio": 4.0, "total_time_ratio": 4.0,
                                                   "generation_ratio": 24.0, "build_ratio": 5.0},
        "hls4ml io_stream vs lbgen native": {"csim_throughput_ratio": 4.0, "total_time_ratio": 4.0,
                                             "generation_ratio": 24.0, "build_ratio": None},
    }


@needs_yosys
def test_rom_style_rule_as_docs_state_it():
    """docs/user-guide.md's rule for the ROMs' storage, on its edges: Yosys maps an lb_rom to
    block RAM from 256 words and 16 Kbit up, to LUTs below (2048x8 block, 1024x8 and
    128x144 LUT)."""
    mod = load_script(ROOT / "bench" / "rom_style.py", "rom_style")
    got = {shape: mod.synth_rom(*shape) for shape in ((2048, 8), (1024, 8), (128, 144), (256, 72))}
    assert {shape: r["style"] for shape, r in got.items()} == {(2048, 8): "block", (1024, 8): "lut",
                                                              (128, 144): "lut", (256, 72): "block"}
    assert got[(2048, 8)]["ramb18"] == 1 and got[(256, 72)]["ramb36"] == 1
    assert got[(1024, 8)]["lut"] == 154 and got[(128, 144)]["lut"] == 288
