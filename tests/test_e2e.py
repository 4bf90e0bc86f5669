"""End to end on the shipped digits models: golden = C-sim = Icarus = Verilator.

Every one of the 360 test images, under random tvalid gaps and tready
back-pressure, bit for bit; and the measured cycles per frame against the
folding bound for two different foldings.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from lbgen import golden
from lbgen.csim import run_csim
from lbgen.flow import EmitOptions, emit
from lbgen.frontend.torch_frontend import load_module
from lbgen.passes.folding import folding_bound
from lbgen.simulate import run_rtl

from conftest import DIGITS

TEST_SET = DIGITS / "digits_test.npz"


@pytest.fixture(scope="module", params=[("w1a2", 2), ("w1a1", 1)], ids=["w1a2", "w1a1"])
def digits_out(request, tmp_path_factory):
    name, a = request.param
    out = tmp_path_factory.mktemp(name) / "out"
    model = load_module(DIGITS / f"digits_{name}.pt")
    result = emit(model, out, EmitOptions(w=1, a=a), inputs=TEST_SET, name=f"digits_{name}")
    values = result.vectors.values
    assert values.shape == (360, 64)
    return out, result.graph, values, golden.run(result.graph, values)


def test_csim_equals_golden_on_all_test_images(digits_out):
    out, graph, values, trace = digits_out
    res = run_csim(out, values, native=False)  # the ap_int code that HLS synthesises
    np.testing.assert_array_equal(res.result, trace.result)


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_rtl_equals_golden_on_all_test_images_under_backpressure(digits_out, simulator):
    out, graph, values, trace = digits_out
    res = run_rtl(out, values, simulator=simulator, seed=7, backpressure=0.3, gaps=0.3)
    assert res.mismatches == [] and res.passed
    np.testing.assert_array_equal(res.result, trace.result)
    bound = folding_bound(graph)
    assert abs(res.cycles_per_frame - bound) <= 0.02 * bound, (res.cycles_per_frame, bound)


@pytest.mark.parametrize("folding", [
    {"fc0": {"pe": 8, "simd": 8}, "fc1": {"pe": 8, "simd": 32}, "fc2": {"pe": 5, "simd": 32}},
    {"fc0": {"pe": 8, "simd": 16}, "fc1": {"pe": 16, "simd": 32}, "fc2": {"pe": 5, "simd": 32}},
], ids=["bound-256", "bound-128"])
def test_cycles_per_frame_within_2_percent_of_folding_bound(folding, tmp_path):
    path = tmp_path / "folding.json"
    path.write_text(json.dumps(folding))
    model = load_module(DIGITS / "digits_w1a2.pt")
    out = tmp_path / "out"
    result = emit(model, out, EmitOptions(w=1, a=2, acc="auto", folding=path), inputs=TEST_SET)
    graph = result.graph
    assert json.loads((out / "folding.json").read_text()) == folding
    bound = folding_bound(graph)
    assert bound == max((l.mh // l.pe) * (l.mw // l.simd) for l in graph.layers)
    values = result.vectors.values[:24]
    res = run_rtl(out, values, simulator="verilator", seed=1, backpressure=0.2, throughput_frames=24)
    np.testing.assert_array_equal(res.result, golden.run(graph, values).result)
    assert abs(res.cycles_per_frame - bound) <= 0.02 * bound, (res.cycles_per_frame, bound)


def test_cli_sim_reports_accuracy_and_cycles(digits_out):
    out, graph, values, trace = digits_out
    proc = subprocess.run([sys.executable, "-m", "lbgen.cli", "sim", str(out), "--simulator", "csim"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    labels = np.load(out / "sim" / "labels.npy")
    accuracy = 100 * np.mean(np.argmax(trace.logits, 1) == labels)
    assert "csim: 360 frames bit-exact vs golden" in proc.stdout
    assert f"hardware (csim) accuracy on 360 frames: {accuracy:.2f}%" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "lbgen.cli", "report", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and f"bottleneck {folding_bound(graph)} cycles/frame" in proc.stdout
