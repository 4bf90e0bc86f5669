"""End to end on the shipped digits models: golden = C-sim = Icarus = Verilator.

Every one of the 360 test images, under random tvalid gaps and tready
back-pressure, bit for bit; and the measured cycles per frame against the
folding bound for two different foldings.

Every model listed in examples/digits/results.json is covered: each number
format (binary, k-bit, log2, heterogeneous planes, mixed precision) is
emitted with the model's own precision, torch is checked against golden on
every integer level, and C-sim runs the whole test set in the default run;
by default Verilator runs the whole test set for w1a2 and w1a1 (Icarus 64
images) and 32 images for one model per further processing element, and
both simulators run the whole test set for every model in ``make test-all``.
"""

from __future__ import annotations

import re

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
from lbgen.native_tb import run_native

from lbgen_testing.common import DIGITS
from lbgen_testing.executors import check_executors

TEST_SET = DIGITS / "digits_test.npz"
#: every shipped model: name -> results.json entry
SHIPPED = {name: entry for name, entry in json.loads((DIGITS / "results.json").read_text())["models"].items()
           if "file" in entry}
#: the models whose whole-test-set RTL runs are in the default run
RTL_DEFAULT = {"w1a2", "w1a1"}
#: shipped models with 32 RTL frames in the default run: none since issue 18 (w4a4 and wh14a2
#: were, for the mac and planes engines, which the property tests' pinned and drawn networks
#: run in Verilator by default); every shipped model runs whole in ``make test-all``: w8a8
#: (255 comparators per channel build slowly in Verilator), w1a3 (addsub on a k-bit input,
#: as w1a2 above), wlog4a4, wh14a1 and mixed (shift and planes on bipolar inputs, which
#: tests/test_sim.py's random log2/hetero graphs run in Verilator by default)
RTL_SHORT: set[str] = set()


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


@pytest.mark.parametrize("simulator,frames", [
    ("verilator", None), ("icarus", 64), pytest.param("icarus", None, marks=pytest.mark.slow)],
    ids=["verilator-all", "icarus-64", "icarus-all"])
def test_rtl_equals_golden_on_all_test_images_under_backpressure(digits_out, simulator, frames):
    """Verilator on every test image; Icarus (which takes a minute for all 360) on 64 by default."""
    out, graph, values, trace = digits_out
    values, trace = values[:frames], golden.run(graph, values[:frames])
    res = run_native(out, values, simulator=simulator, seed=7, backpressure=0.3, gaps=0.3)
    assert res.mismatches == [] and res.passed
    np.testing.assert_array_equal(res.result, trace.result)
    bound = folding_bound(graph)
    assert res.throughput_ok(), (res.cycles_per_frame, bound)


@pytest.mark.parametrize("folding", [
    {"fc0": {"pe": 8, "simd": 8}, "fc1": {"pe": 8, "simd": 32}, "fc2": {"pe": 5, "simd": 32}},
    pytest.param({"fc0": {"pe": 8, "simd": 16}, "fc1": {"pe": 16, "simd": 32}, "fc2": {"pe": 5, "simd": 32}},
                 marks=pytest.mark.slow),
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
    res = run_native(out, values, simulator="verilator", seed=1, backpressure=0.2, throughput_frames=24)
    np.testing.assert_array_equal(res.result, golden.run(graph, values).result)
    assert res.throughput_ok(), (res.cycles_per_frame, bound)


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


#: every shipped model, w8a8 too (its emit checks 255 thresholds per channel exhaustively: about a
#: minute with its C-sim), in the default run
@pytest.fixture(scope="module", params=sorted(SHIPPED))
def shipped_out(request, tmp_path_factory):
    """Emit a shipped model with its own precision (no --w/--a), as a user of a mixed model would."""
    name = request.param
    out = tmp_path_factory.mktemp(name) / "out"
    model = load_module(DIGITS / SHIPPED[name]["file"])
    result = emit(model, out, EmitOptions(), inputs=TEST_SET, name=f"digits_{name}")
    return name, out, result


def test_shipped_model_torch_equals_golden_and_accuracy_as_recorded(shipped_out):
    name, out, result = shipped_out
    assert re.search(r"every hidden level equal, output accumulators equal \((\d+) of \1 recovered exactly",
                     result.checks[0]), result.checks
    trace = golden.run(result.graph, result.vectors.values)
    accuracy = float(np.mean(np.argmax(trace.logits, 1) == result.vectors.labels))
    assert round(accuracy, 6) == SHIPPED[name]["test_accuracy"]


def test_shipped_model_csim_equals_golden_on_all_test_images(shipped_out):
    name, out, result = shipped_out
    values = result.vectors.values
    res = run_csim(out, values, native=False)
    np.testing.assert_array_equal(res.result, golden.run(result.graph, values).result)


def _rtl_cases(slow: bool) -> list:
    """(model, simulator) pairs; w1a2 and w1a1 run whole in the default run already (digits_out).
    The default run's short checks use Verilator; both simulators run the bit-level heaps that
    synthesis sees (BEHAVIORAL = 0); Icarus runs every model on the whole test set under -m slow."""
    names = [n for n in sorted(SHIPPED) if n not in RTL_DEFAULT and (slow or n in RTL_SHORT)]
    marks = (pytest.mark.slow,) if slow else ()
    sims = ("icarus", "verilator") if slow else ("verilator",)
    return [pytest.param(n, sim, marks=marks, id=f"{n}-{sim}") for n in names for sim in sims]


def _check_rtl(out, result, simulator: str, frames: int | None) -> None:
    values = result.vectors.values[:frames]
    res = run_native(out, values, simulator=simulator, seed=3, backpressure=0.3, gaps=0.3)
    assert res.mismatches == [] and res.passed
    np.testing.assert_array_equal(res.result, golden.run(result.graph, values).result)


@pytest.mark.parametrize("shipped_out,simulator", _rtl_cases(slow=False), indirect=["shipped_out"])
def test_shipped_model_rtl_equals_golden_on_32_images(shipped_out, simulator):
    _check_rtl(shipped_out[1], shipped_out[2], simulator, 32)


@pytest.mark.parametrize("shipped_out,simulator", _rtl_cases(slow=True), indirect=["shipped_out"])
def test_shipped_model_rtl_equals_golden_on_all_test_images(shipped_out, simulator):
    _check_rtl(shipped_out[1], shipped_out[2], simulator, None)


def test_ternary_digits_every_executor_on_16_images(tmp_path):
    """The ternary PE end to end on digits_wta2 emitted with --w ternary --a 2: torch = golden on
    the whole test set (emit's check), and golden = C-sim = Icarus = Verilator on every layer's
    output for 16 images under gaps and back-pressure, at the folding bound. The whole test set:
    C-sim in test_shipped_model_csim_equals_golden_on_all_test_images, both simulators under -m slow."""
    model = load_module(DIGITS / "digits_wta2.pt")
    out = tmp_path / "out"
    result = emit(model, out, EmitOptions(w="ternary", a=2), inputs=TEST_SET, name="digits_wta2")
    assert re.search(r"every hidden level equal, output accumulators equal \((\d+) of \1 recovered exactly",
                     result.checks[0]), result.checks
    assert [layer.pe_kind for layer in result.graph.layers] == ["mac", "masked", "mac"]
    check_executors(out, result.graph, result.vectors.values[:16], seed=11, gaps=0.3, backpressure=0.3)


def test_shipped_model_report(shipped_out):
    from lbgen_testing.report import report_shipped

    name, out, result = shipped_out
    report_shipped(out, result.graph)
