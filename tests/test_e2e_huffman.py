"""End to end with Huffman-coded weights (--compress huffman) on shipped digits models.

A 4-bit, a 2-bit and a log2 model: the code of every layer is within 1 % of
the unconstrained Huffman code and above the entropy; C-sim, Icarus and
Verilator are bit-exact with the golden model, and the RTL runs at the same
cycles per frame as the same folding without compression (the folding bound,
within 2 %). C-sim runs the whole test set in the default run; Verilator and
Icarus run it under ``make test-all`` (Icarus interprets every lane decoder
every cycle: about 3 s per frame of the 672-lane w4a4 design).
"""

from __future__ import annotations

import numpy as np
import pytest

from lbgen import golden
from lbgen.csim import run_csim
from lbgen.flow import EmitOptions, emit
from lbgen.frontend.torch_frontend import load_module
from lbgen.passes.compress import layer_stats
from lbgen.passes.folding import folding_bound
from lbgen.native_tb import run_native

from lbgen_testing.common import DIGITS

TEST_SET = DIGITS / "digits_test.npz"
MODELS = ["w4a4", "w2a2", "wlog4a4"]


@pytest.fixture(scope="module", params=MODELS)
def huff_out(request, tmp_path_factory):
    name = request.param
    out = tmp_path_factory.mktemp(name) / "out"
    model = load_module(DIGITS / f"digits_{name}.pt")
    result = emit(model, out, EmitOptions(compress="huffman"), inputs=TEST_SET, name=f"digits_{name}")
    values = result.vectors.values
    return out, result.graph, values, golden.run(result.graph, values)


def test_codes_within_one_percent_of_huffman_and_above_entropy(huff_out):
    _, graph, _, _ = huff_out
    for layer in graph.layers:
        s = layer_stats(layer)
        assert s.optimal_mean_len <= s.mean_len <= 1.01 * s.optimal_mean_len, layer.name
        assert s.mean_len * s.weights >= s.entropy_bits - 1e-6, layer.name
        assert s.max_len <= 12


def test_csim_huffman_on_all_test_images(huff_out):
    out, _, values, trace = huff_out
    res = run_csim(out, values, native=False)     # the ap_int code HLS synthesises
    assert res.mismatch(trace) is None
    np.testing.assert_array_equal(res.result, trace.result)


@pytest.mark.slow
@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_rtl_huffman_bit_exact_at_the_uncompressed_rate(huff_out, simulator):
    out, graph, values, trace = huff_out
    res = run_native(out, values, simulator=simulator, seed=5, backpressure=0.3)
    assert res.passed, res.summary()
    assert len(res.result) == len(values) == 360
    np.testing.assert_array_equal(res.result, trace.result)
    bound = folding_bound(graph)          # the same folding without compression has this bound
    assert res.throughput_ok()
