"""The LUT-per-lane benchmark's synthesis path (bench/lut_per_lane.py), on its smallest configuration."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

needs_yosys = pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not installed")


def _bench():
    spec = importlib.util.spec_from_file_location("lut_per_lane", ROOT / "bench" / "lut_per_lane.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["lut_per_lane"] = mod
    spec.loader.exec_module(mod)
    return mod


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
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        spec = importlib.util.spec_from_file_location("cnn_layers", ROOT / "bench" / "cnn_layers.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(ROOT / "bench"))
    rows, jobs = mod.plan_jobs(ROOT / "examples" / "digits" / "digits_cnn_w1a2.pt", 1152, str(tmp_path))
    assert [r["units"] for r in rows] == [["lb_swu", "lb_mvau"], ["lb_swu", "lb_mvau", "lb_maxpool"],
                                         ["lb_swu", "lb_mvau"], ["lb_mvau"]]
    assert all(r["cycles"] <= 1152 for r in rows) and max(r["cycles"] for r in rows) == 1152
    mvau = [p for js in jobs for (u, p, _) in js if u == "lb_mvau"]
    assert all(p["WEIGHT_FILE"] == '"rom0_0000.mem"' for p in mvau)
