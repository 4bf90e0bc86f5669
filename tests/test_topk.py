"""--topk K: the hardware top-K unit after the last layer, bit-exact in every executor.

* A copy of the shipped digits w1a2 model whose last layer is made exact
  (weight scale 1/64, input step 1/2, biases on a 1/64 grid, so torch's own
  logits are exact: asserted) and whose classes 3 and 7 have identical weight
  rows and biases, so they tie on every vector: golden's indices equal
  torch's (the top-K values of torch.topk, the stable descending sort,
  argmax), and golden = C-sim = Icarus = Verilator on frames where the tie
  decides, for K = 1 and 3 (the two digits Verilator runs, about 90 s each
  with their build, are marked slow; the IR designs run on Verilator by default).
* IR graphs with per-channel scales and biases of mixed sign (the accumulator
  order differs from the logit order: the exact integer score is exercised)
  and with a whole output that ties (all-zero frames, equal biases).
* A property test: the exact scores reproduce the float64 logits and the
  order of exact rational logits; random graphs (raw accumulators or a
  thresholded output layer) through C-sim and Icarus, and resets, stalls and
  gaps around the unit.
* The checks can fail: golden patched to prefer the higher index on a tie
  is caught by C-sim and Icarus, naming the topk stage, frame and position.
* Bad --topk values exit 2 naming the option, writing nothing.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lbgen import golden
from lbgen.csim import run_csim
from lbgen.emitters.hls import emit_hls
from lbgen.emitters.rtl import emit_rtl
from lbgen.flow import load_output
from lbgen.frontend.torch_frontend import load_module
from lbgen.ir import DType, Graph, IRError, TopK, dyadic_terms, topk_terms
from lbgen.packing import pack_stream
from lbgen.native_tb import run_native
from lbgen.simulate import run_rtl

from lbgen_testing.common import DIGITS, assert_usage_error, run_cli
from lbgen_testing.graphs import random_graph, random_inputs

pytestmark = pytest.mark.usefixtures("sim_cache")

TIE = (3, 7)             # classes with identical weight rows and biases in the tie model
RTL_FRAMES = 32
I4, U3, B = DType("int", 4), DType("uint", 3), DType("bipolar", 1)


# --------------------------------------------------------------------------- the digits tie model

def exact_tie_copy(path: Path) -> Path:
    """digits_w1a2 with an exact last layer and classes 3 and 7 tied (see the module doc).

    IntLinear's per-row scale is max|w_c| / 127 and the largest weight of a row
    quantizes to +-127, so weights w_int / 64 keep the integers and make the
    scale exactly 1/64; the 2-bit input quantizer with clip 1.5 has step 1/2.
    The epilogue is then exact in float64 and its float32 cast exact too."""
    model = load_module(DIGITS / "digits_w1a2.pt")
    act, lin = model[6], model[7]
    with torch.no_grad():
        act.clip.fill_(1.5)
        w_int, _ = lin.quant_weight()
        w = w_int / 64
        b = torch.round(lin.bias * 64) / 64
        w[TIE[1]], b[TIE[1]] = w[TIE[0]], b[TIE[0]]
        lin.weight.copy_(w)
        lin.bias.copy_(b)
    torch.save(model, path)
    return path


@pytest.fixture(scope="module")
def tie_model(tmp_path_factory):
    path = exact_tie_copy(tmp_path_factory.mktemp("tie") / "digits_tie.pt")
    with np.load(DIGITS / "digits_test.npz") as z:
        x = z["x"].astype(np.float32)
    model = load_module(path)
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).double()
    return path, x, logits


@pytest.fixture(scope="module", params=[1, 3], ids=["k1", "k3"])
def tie_design(request, tie_model, tmp_path_factory):
    """The tie model emitted with --topk K, its golden trace and the frames where the tie decides."""
    path, x, logits = tie_model
    k = request.param
    out = tmp_path_factory.mktemp(f"topk{k}") / "out"
    proc = run_cli("emit", path, "--topk", k, "--inputs", DIGITS / "digits_test.npz", "-o", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"the hardware streams the top-{k} class indices of 10" in proc.stdout
    graph = load_output(out)
    values = np.load(out / "sim" / "inputs.npy")
    trace = golden.run(graph, values)
    # frames where class 3 (and so its twin 7, right behind it, or just outside the K) is in the top K
    decides = np.flatnonzero((trace.topk == TIE[0]).any(axis=1))
    others = np.setdiff1d(np.arange(len(values)), decides)
    sel = np.concatenate([decides[:RTL_FRAMES - 8], others[:8]])
    return k, out, graph, values, trace, sel, logits


def test_torch_logits_are_exact_and_golden_indices_are_torchs(tie_design):
    k, _, graph, _, trace, sel, logits = tie_design
    terms = topk_terms(graph)
    assert terms.use_scale and graph.topk == TopK(k)
    scores = golden.topk_scores(graph, trace.outputs[graph.output.name])
    # torch's logits are the exact rational logits score / 2^E: every one of them
    exact = np.array([[Fraction(float(v)) * (1 << terms.shift) == int(s) for v, s in zip(lr, sr)]
                      for lr, sr in zip(logits.numpy(), scores)])
    assert exact.all()
    assert np.array_equal(logits[:, TIE[0]], logits[:, TIE[1]])          # the twins tie on every vector
    idx = torch.from_numpy(trace.topk)
    assert torch.equal(torch.topk(logits, k).values, logits.gather(1, idx))  # the same K largest values
    stable = torch.sort(logits, dim=1, descending=True, stable=True).indices[:, :k]
    assert torch.equal(stable, idx)                                         # ties to the lowest index
    assert torch.equal(torch.argmax(logits, dim=1), idx[:, 0])
    assert len(sel) == RTL_FRAMES and (trace.topk[sel] == TIE[0]).any(axis=1).sum() >= 8


def test_vendor_vectors_are_the_indices(tie_design):
    k, out, graph, values, trace, _, _ = tie_design
    want = pack_stream(trace.topk, DType("uint", 4), k)
    got = [int(line, 16) for line in (out / "hls" / "tb_expected.hex").read_text().split()]
    assert got == [b for frame in want for b in frame]
    top = (out / "rtl" / "lbgen_top.v").read_text()
    assert "lb_topk #(" in top and '.SCORE_FILE("topk_scores.mem")' in top and f".K({k})" in top


def test_csim_equals_golden(tie_design):
    k, out, graph, values, trace, _, _ = tie_design
    res = run_csim(out, values, graph=graph, native=False)
    assert res.mismatch(trace) is None
    assert np.array_equal(res.result, trace.topk)


@pytest.mark.parametrize("simulator", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_rtl_equals_golden(tie_design, simulator):
    k, out, graph, values, trace, sel, _ = tie_design
    res = run_native(out, values[sel], simulator=simulator, throughput_frames=6)
    assert res.passed, res.summary()
    assert np.array_equal(res.outputs, trace.topk[sel])
    assert res.throughput_ok(), res.summary()


@pytest.mark.parametrize("tie_design", [3], indirect=True, ids=["k3"])
def test_lbgen_sim_and_report(tie_design):
    k, out, *_ = tie_design
    proc = run_cli("sim", out, "--simulator", "icarus", "--frames", 8)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "icarus: 8 frames bit-exact vs golden" in proc.stdout
    assert "hardware (icarus) accuracy on 8 frames" in proc.stdout
    proc = run_cli("report", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "top-K unit: the 3 largest of 10 classes" in " ".join(proc.stdout.split())
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["output"].startswith("top-K unit")


@pytest.mark.parametrize("tie_design", [3], indirect=True, ids=["k3"])
def test_broken_tie_rule_is_caught(tie_design, monkeypatch):
    """golden preferring the higher index on a tie: C-sim and Icarus both disagree, and say where."""
    k, out, graph, values, trace, sel, _ = tie_design

    def higher_first(scores, k):
        rows = [sorted(range(len(r)), key=lambda c: (-int(r[c]), -c))[:k] for r in np.asarray(scores)]
        return np.array(rows, dtype=np.int64)

    monkeypatch.setattr(golden, "rank", higher_first)
    broken = golden.run(graph, values[sel])
    assert not np.array_equal(broken.topk, trace.topk[sel])
    res = run_csim(out, values[sel], graph=graph)
    msg = res.mismatch(broken)
    assert msg is not None and msg.startswith("topk stage:") and "frame" in msg and "position" in msg, msg
    rtl = run_native(out, values[sel[:8]], simulator="icarus", throughput_frames=0)
    assert not rtl.passed
    assert any(m.startswith("topk stage frame") and "position" in m and "expected" in m
               for m in rtl.mismatches), rtl.mismatches


# --------------------------------------------------------------------------- bad options, the IR

@pytest.mark.parametrize("k", ["0", "11", "-2"])
def test_bad_topk_is_a_usage_error(tmp_path, k):
    out = tmp_path / "out"
    proc = run_cli("emit", DIGITS / "digits_w1a2.pt", "--topk", k, "-o", out)
    assert_usage_error(proc, "--topk", out=out)


def test_topk_round_trips_and_old_files_load(tmp_path):
    graph = random_graph(2, [8, 6], [I4], [U3], [(2, 4)])
    graph.topk = TopK(4)
    graph.validate().save(tmp_path)
    assert Graph.load(tmp_path).topk == TopK(4)
    doc = json.loads((tmp_path / "lbgen.json").read_text())
    del doc["topk"]
    (tmp_path / "lbgen.json").write_text(json.dumps(doc))
    assert Graph.load(tmp_path).topk is None
    for bad in ({"k": 0}, {"k": 7}, {"k": "3"}, {"K": 3}):
        doc["topk"] = bad
        (tmp_path / "lbgen.json").write_text(json.dumps(doc))
        with pytest.raises(IRError, match="topk"):
            Graph.load(tmp_path)


# --------------------------------------------------------------------------- integer scores

def scaled_graph(case: str, k: int) -> tuple[Graph, np.ndarray]:
    """One int4 x uint3 layer of 6 classes, PE 2, with per-channel scales (and biases) of mixed sign.

    "mixed": biases of mixed sign too; "alltie": one bias for all, and all-zero
    frames (every accumulator 0, so every class ties and the answer is 0..K-1);
    "plain": one positive scale and one bias, so the unit compares the signed
    accumulators directly (no multiplier)."""
    graph = random_graph(11, [12, 6], [I4], [U3], [(2, 3)])
    rng = np.random.default_rng(5)
    out = graph.output
    out.out_scale = rng.uniform(0.01, 0.2, size=6) * np.array([1, -1, 1, -1, 1, -1]) * (2.0 ** -rng.integers(0, 9, 6))
    out.out_bias = rng.uniform(-1, 1, size=6) if case == "mixed" else np.full(6, 0.375)
    if case == "plain":
        out.out_scale = np.full(6, 0.125)
    graph.topk = TopK(k)
    x = random_inputs(graph.validate(), 20, seed=3)
    if case == "alltie":
        x[::4] = 0
    return graph, x


@pytest.mark.parametrize("case,k", [("mixed", 3), pytest.param("alltie", 6, marks=pytest.mark.slow),
                                    pytest.param("plain", 2, marks=pytest.mark.slow)])
def test_scores_with_mixed_signs(tmp_path, case, k):
    graph, x = scaled_graph(case, k)
    trace = golden.run(graph, x)
    acc = trace.outputs[graph.output.name]
    acc_order = np.argsort(-acc, axis=1, kind="stable")[:, :k]
    t = topk_terms(graph)
    if case == "mixed":
        assert (acc_order != trace.topk).any(axis=1).sum() >= 5     # the scores, not the accumulators, decide
    elif case == "alltie":
        assert np.array_equal(trace.topk[::4], np.tile(np.arange(k), (5, 1)))
    if case == "plain":
        assert not t.use_scale and np.array_equal(acc_order, trace.topk) and acc.min() < 0
    else:
        assert t.use_scale and min(t.scale) < 0 < max(t.scale)
    graph.save(tmp_path)
    emit_rtl(graph, tmp_path / "rtl")
    emit_hls(graph, tmp_path / "hls")
    for native in (False, True):
        res = run_csim(tmp_path, x, graph=graph, native=native)
        assert res.mismatch(trace) is None and np.array_equal(res.result, trace.topk)
    res = run_native(tmp_path, x, simulator="icarus", throughput_frames=6)
    assert res.passed, res.summary()
    # the last layer takes 12 cycles/frame for 6 classes: the unit (one class per cycle) keeps up
    assert res.throughput_ok() and res.expected_cycles_per_frame == graph.output.cycles, res.summary()


def test_topk_under_resets_stalls_and_gaps(tmp_path):
    """A reset in the middle of a frame (and one while the output beat waits) empties the
    unit: after it exactly the frames sent again come out, bit-exact, tlast right."""
    from lbgen.simulate import ResetPoint

    graph, x = scaled_graph("mixed", 3)
    graph.save(tmp_path)
    emit_rtl(graph, tmp_path / "rtl")
    res = run_rtl(tmp_path, x, simulator="icarus", throughput_frames=0, stall_bursts=(0.05, (3, 12)),
                  gap_bursts=(0.05, (3, 12)),
                  reset_at=[ResetPoint("fc0", 7, hold=0), ResetPoint("m_axis", 3, hold=5),
                            ResetPoint("fc0", 2, hold=2, cycles=3)])
    assert res.passed, res.summary()
    assert len(res.stress["resets"]) == 3


@pytest.mark.parametrize("case,k", [("mixed", 3), pytest.param("alltie", 6, marks=pytest.mark.slow)])
def test_scores_with_mixed_signs_verilator(tmp_path, case, k):
    graph, x = scaled_graph(case, k)
    graph.save(tmp_path)
    emit_rtl(graph, tmp_path / "rtl")
    res = run_native(tmp_path, x, simulator="verilator", throughput_frames=6)
    assert res.passed, res.summary()


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False), min_size=4, max_size=4),
       st.lists(st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False), min_size=4, max_size=4),
       st.integers(1, 4), st.integers(0, 2 ** 16))
def test_exact_scores_order_like_exact_logits(scale, bias, k, seed):
    """S_c / 2^E and B_c / 2^E are the float64 values exactly, and golden's order is the
    order of the exact rational logits, ties to the lowest index."""
    s, b, e = dyadic_terms(np.array(scale), np.array(bias))
    assert all(Fraction(v) == Fraction(si, 1 << e) for v, si in zip(scale, s))
    assert all(Fraction(v) == Fraction(bi, 1 << e) for v, bi in zip(bias, b))
    graph = random_graph(seed % 97, [8, 4], [I4], [U3], [(1, 1)])
    graph.output.out_scale, graph.output.out_bias = np.array(scale), np.array(bias)
    graph.topk = TopK(k)
    x = random_inputs(graph.validate(), 8, seed=seed)
    x[0] = 0
    trace = golden.run(graph, x)
    for acc, got in zip(trace.outputs[graph.output.name], trace.topk):
        logit = [int(a) * Fraction(sc) + Fraction(bc) for a, sc, bc in zip(acc, scale, bias)]
        want = sorted(range(4), key=lambda c: (-logit[c], c))[:k]
        assert list(got) == want


@pytest.mark.parametrize("seed,fold,k,levels", [(1, (2, 1), 3, False),
                                               pytest.param(2, (1, 4), 8, True, marks=pytest.mark.slow),
                                               pytest.param(3, (4, 2), 1, True, marks=pytest.mark.slow)])
def test_random_graphs_topk_csim_icarus(tmp_path, seed, fold, k, levels):
    """Random two-layer graphs (raw accumulators with random scales, or a thresholded output
    layer ordered by its levels) with a top-K unit: golden = C-sim = Icarus."""
    out_t = DType("uint", 2) if levels else None
    graph = random_graph(seed, [16, 8, 8], [B, I4], [B, U3], [(2, 4), fold])
    if out_t is not None:          # thresholds on the last layer too: it streams levels
        from lbgen_testing.graphs import random_layer

        rng = np.random.default_rng(seed)
        last = random_layer(rng, "fc1", 8, 8, I4, U3, out_t, *fold)
        graph = Graph(graph.name, graph.input, [graph.layers[0], last])
    graph.topk = TopK(k)
    graph.validate()
    x = random_inputs(graph, 10, seed=seed)
    trace = golden.run(graph, x)
    out = tmp_path
    graph.save(out)
    emit_rtl(graph, out / "rtl")
    emit_hls(graph, out / "hls")
    res = run_csim(out, x, graph=graph, native=False)
    assert res.mismatch(trace) is None
    rtl = run_native(out, x, simulator="icarus", throughput_frames=6)
    assert rtl.passed, rtl.summary()
    # one class per cycle: with (4, 2) the last layer's 8 cycles/frame meet the unit's 8 classes
    assert rtl.throughput_ok(), rtl.summary()
