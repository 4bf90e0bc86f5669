"""Convolutional networks in RTL: lb_swu -> lb_mvau -> lb_maxpool chains emitted
by lbgen, bit-exact against the golden model on Icarus and Verilator under
random back-pressure, at the folding bound's rate.

The shapes cover stride 2, padding 0 and 1 (and 2), kernels 1, 3 and 5,
non-square kernels, channel counts that are not powers of two, bipolar inputs
with padding (the border corrections), max-pool with a map that does not
divide, and every output format of the threshold units.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from lbgen import golden
from lbgen.emitters.rtl import emit_rtl
from lbgen.ir import DType
from lbgen.native_tb import run_native
from lbgen.simulate import toolchain_env

from lbgen_testing.graphs import ConvSpec, random_cnn, random_inputs

B, U2, U3, U4 = DType("bipolar", 1), DType("uint", 2), DType("uint", 3), DType("uint", 4)
I3, I4, I8 = DType("int", 3), DType("int", 4), DType("int", 8)

CNNS = {
    # 8x8 digits-like: int8 first conv, binary conv with padding on bipolar input, pool, strided conv
    "bin_pad_pool_stride2": ((1, 8, 8), U4, [ConvSpec(8, 3, 1, 1, 0, I8, B, (4, 1)),
                                             ConvSpec(12, 3, 1, 1, 2, B, U2, (3, 4)),
                                             ConvSpec(6, 3, 2, 1, 0, I3, U2, (2, 6))], I4, (5, 4)),
    # kernel 5 with padding 2, kernel 1 stride 2, 3 input channels, pool 3 on a 7x7 map
    "k5_k1_pool3": ((3, 7, 7), U2, [ConvSpec(10, 5, 1, 2, 3, I4, U3, (5, 3)),
                                    ConvSpec(6, 1, 2, 0, 0, B, B, (2, 5))], I4, (2, 6)),
    # no padding, non-square kernel (3x5), bipolar everywhere (xnor)
    "valid_nonsquare_xnor": ((2, 6, 9), B, [ConvSpec(12, 3, 1, 0, 0, B, B, (6, 2), k_w=5),
                                            ConvSpec(7, 3, 2, 1, 2, B, B, (7, 6))], I4, (1, 7)),
}


#: the cases simulated by default; the third runs in make test-all (non-square kernels and XNOR
#: convolutions run in every executor by default through tests/test_property.py's random CNNs)
DEFAULT_RUN = ("bin_pad_pool_stride2", "k5_k1_pool3")
SIM_CASES = [n if n in DEFAULT_RUN else pytest.param(n, marks=pytest.mark.slow) for n in CNNS]


def _graph(name: str):
    chw, itype, convs, fc_w, fc_fold = CNNS[name]
    return random_cnn(sum(map(ord, name)), chw, itype, convs, 10, fc_w, fc_fold)


def _have(tool: str) -> bool:
    return shutil.which(tool, path=toolchain_env("verilator")["PATH"]) is not None


@pytest.fixture(scope="module")
def designs(tmp_path_factory):
    cache = {}

    def get(name: str):
        if name not in cache:
            graph = _graph(name)
            out = tmp_path_factory.mktemp(name) / "out"
            graph.save(out)
            emit_rtl(graph, out / "rtl")
            cache[name] = (graph, out)
        return cache[name]

    return get


@pytest.mark.parametrize("name", list(CNNS))
def test_geometry_is_what_the_case_claims(name):
    graph = _graph(name)
    convs = [graph.conv(l) for l in graph.layers if graph.conv(l)]
    assert len(convs) == len(CNNS[name][2])
    if name == "bin_pad_pool_stride2":
        assert graph.layers[1].itype.kind == "bipolar" and convs[1].p_h == 1      # border corrections
        assert convs[2].s_h == 2 and graph.pool(graph.layers[1]) is not None
    if name == "k5_k1_pool3":
        assert convs[0].k_h == 5 and convs[0].p_h == 2 and convs[1].k_h == 1 and convs[1].s_h == 2
        assert graph.pool(graph.layers[0]).in_h % 3 != 0
    if name == "valid_nonsquare_xnor":
        assert (convs[0].k_h, convs[0].k_w, convs[0].p_h) == (3, 5, 0)


@pytest.mark.skipif(not _have("verilator"), reason="verilator not installed")
@pytest.mark.parametrize("name", list(CNNS))
def test_verilator_lint_is_clean(name, designs):
    _, out = designs(name)
    env = toolchain_env("verilator")
    res = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", "lbgen_top", "-f", "filelist.f"],
                         cwd=out / "rtl", env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "%Warning" not in res.stderr, res.stderr


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
@pytest.mark.parametrize("name", SIM_CASES)
def test_cnn_rtl_bit_exact_under_backpressure_at_the_folding_bound(name, simulator, designs):
    graph, out = designs(name)
    x = random_inputs(graph, 6, seed=2)
    res = run_native(out, x, simulator=simulator, seed=5, backpressure=0.3, gaps=0.3, throughput_frames=4)
    assert res.passed, res.mismatches[:5]
    assert np.array_equal(res.outputs, golden.run(graph, x).result)
    assert res.expected_cycles_per_frame == max(l.cycles for l in graph.layers)
    bound = max(l.cycles for l in graph.layers)
    assert res.throughput_ok(), (res.cycles_per_frame, bound)


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
@pytest.mark.parametrize("native", [True, False], ids=["native", "ap_int"])
@pytest.mark.parametrize("name", SIM_CASES)
def test_cnn_hls_csim_bit_exact(name, native, tmp_path):
    """The same CNNs through the HLS C++ (sliding_window -> mvau -> maxpool in a
    DATAFLOW top), every layer's output stream compared."""
    from lbgen.csim import run_csim
    from lbgen.emitters.hls import emit_hls

    graph = _graph(name)
    out = tmp_path / "out"
    graph.save(out)
    emit_hls(graph, out / "hls")
    x = random_inputs(graph, 5, seed=1)
    trace = golden.run(graph, x)
    res = run_csim(out, x, graph=graph, native=native)
    assert np.array_equal(res.result, trace.result)
    for layer in graph.layers:
        assert np.array_equal(res.layers[layer.name], trace.outputs[layer.name]), layer.name
