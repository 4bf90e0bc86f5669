"""End to end on the shipped digits CNNs (examples/digits/train_cnn.py).

Each is emitted with its own precision; torch = golden on every integer
level (feature maps NHWC, after max-pool) and argmax on the whole test set;
C-sim on the whole test set; RTL on 32 images by default and on the whole
test set on Icarus and Verilator under ``make test-all``, under random
back-pressure. The auto folding (--target-cycles) is checked at three rates:
every layer meets the target and the measured cycles per frame are within 2%
of the bottleneck layer's bound.
"""

from __future__ import annotations

import re

import json

import numpy as np
import pytest

from lbgen import golden
from lbgen.csim import run_csim
from lbgen.flow import EmitOptions, emit
from lbgen.frontend.torch_frontend import load_module
from lbgen.passes.folding import folding_bound
from lbgen.native_tb import run_native

from lbgen_testing.common import DIGITS

TEST_SET = DIGITS / "digits_test.npz"
CNNS = json.loads((DIGITS / "cnn_results.json").read_text())["models"]


@pytest.fixture(scope="module", params=sorted(CNNS))
def cnn_out(request, tmp_path_factory):
    name = request.param
    out = tmp_path_factory.mktemp(name) / "out"
    model = load_module(DIGITS / CNNS[name]["file"])
    result = emit(model, out, EmitOptions(input_shape="1,8,8"), inputs=TEST_SET, name=f"digits_{name}")
    return name, out, result


def test_cnn_torch_equals_golden_and_accuracy_as_recorded(cnn_out):
    name, out, result = cnn_out
    assert re.search(r"every hidden level equal, output accumulators equal \((\d+) of \1 recovered exactly",
                     result.checks[0]), result.checks
    assert [result.graph.conv(l) is not None for l in result.graph.layers] == [True, True, True, False]
    assert sum(result.graph.pool(l) is not None for l in result.graph.layers) == 1
    trace = golden.run(result.graph, result.vectors.values)
    accuracy = float(np.mean(np.argmax(trace.logits, 1) == result.vectors.labels))
    assert round(accuracy, 6) == CNNS[name]["test_accuracy"]


def test_cnn_csim_equals_golden_on_all_test_images(cnn_out):
    name, out, result = cnn_out
    values = result.vectors.values
    res = run_csim(out, values, native=False)
    trace = golden.run(result.graph, values)
    np.testing.assert_array_equal(res.result, trace.result)
    for layer in result.graph.layers:
        np.testing.assert_array_equal(res.layers[layer.name], trace.outputs[layer.name])


def _check_rtl(out, result, simulator: str, frames: int | None) -> None:
    values = result.vectors.values[:frames]
    res = run_native(out, values, simulator=simulator, seed=3, backpressure=0.3, gaps=0.3)
    assert res.mismatches == [] and res.passed
    np.testing.assert_array_equal(res.outputs, golden.run(result.graph, values).result)


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
@pytest.mark.parametrize("cnn_out", ["cnn_w1a2"], indirect=True)
def test_cnn_rtl_equals_golden_on_32_images(cnn_out, simulator):
    """One CNN in the default run (a Verilator build per model is the cost); all
    three on the whole test set under make test-all."""
    _check_rtl(cnn_out[1], cnn_out[2], simulator, 32)


@pytest.mark.slow
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_cnn_rtl_equals_golden_on_all_test_images(cnn_out, simulator):
    _check_rtl(cnn_out[1], cnn_out[2], simulator, None)


@pytest.mark.parametrize("target", [2304, 1152, 576])
def test_auto_folding_meets_the_target_and_rtl_runs_at_the_bound(target, tmp_path):
    model = load_module(DIGITS / CNNS["cnn_w1a2"]["file"])
    out = tmp_path / "out"
    result = emit(model, out, EmitOptions(input_shape="1,8,8", target_cycles=target), inputs=TEST_SET)
    graph = result.graph
    assert all(l.cycles <= target for l in graph.layers)
    bound = folding_bound(graph)
    assert bound > target // 2            # balanced: the slowest layer uses the time it is given
    folding = json.loads((out / "folding.json").read_text())
    assert folding == {l.name: {"pe": l.pe, "simd": l.simd} for l in graph.layers}
    values = result.vectors.values[:6]
    res = run_native(out, values, simulator="icarus", seed=1, backpressure=0.0, gaps=0.0, throughput_frames=6)
    assert res.passed, res.mismatches[:3]
    assert res.throughput_ok(), (res.cycles_per_frame, bound)


def test_cnn_report(cnn_out):
    from lbgen_testing.report import report_shipped

    name, out, result = cnn_out
    report_shipped(out, result.graph)
