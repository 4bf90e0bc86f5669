"""emit's torch = golden check covers the output layer exactly, not only its argmax.

The output layer streams raw accumulators; torch gives float logits
``(acc - out_zero) * out_scale + out_bias``. ``lbgen.checks`` recovers the
accumulators from torch's logits (a float64 copy of the model where it runs in
float64, whose rounding is far below one accumulator step) and compares them
with golden's, integer for integer. These tests show it catches one
accumulator off by one where every argmax still agrees.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lbgen import golden
from lbgen.checks import compare_output_accumulators, compare_torch_golden
from lbgen.errors import UsageError
from lbgen.flow import EmitOptions
from lbgen.pipeline import lower_and_fold
from lbgen.inputs import read_vectors

from lbgen_testing.common import DIGITS, small_mlp


@pytest.fixture(scope="module")
def digits():
    """The shipped w1a2 MLP: its graph, vectors, golden trace and torch's float64 logits."""
    model = torch.load(DIGITS / "digits_w1a2.pt", weights_only=False)
    graph = lower_and_fold(model, EmitOptions(w="1", a=2), "digits")
    vectors = read_vectors(DIGITS / "digits_test.npz", graph)
    trace = golden.run(graph, vectors.values)
    return model, graph, vectors, trace


def test_emit_line_says_every_accumulator_was_recovered_exactly(digits):
    model, graph, vectors, trace = digits
    line = compare_torch_golden(model, graph, vectors, trace)
    n = trace.result.size
    assert f"output accumulators equal ({n} of {n} recovered exactly from torch's float64 logits)" in line, line


def _logits(graph, acc):
    return graph.output.logits(acc)


def test_one_accumulator_off_by_one_is_named_though_argmax_agrees(digits):
    _, graph, _, trace = digits
    acc = trace.result
    logits = _logits(graph, acc)
    # a frame and a class that is not the frame's argmax: +1 there leaves every argmax as it was
    frame = 7
    cls = int(np.argmin(logits[frame]))
    bumped = acc.copy()
    bumped[frame, cls] += 1
    theirs = _logits(graph, bumped)
    assert (np.argmax(theirs, axis=1) == np.argmax(logits, axis=1)).all()
    with pytest.raises(UsageError, match=rf"output layer {graph.output.name} .* frame {frame} channel {cls}: "
                                         rf".* is accumulator {bumped[frame, cls]}, golden's {acc[frame, cls]}"):
        compare_output_accumulators(graph, theirs, trace, golden.EPS64)
    # float64 noise far below a step is not a difference
    noisy = logits * (1 + 4 * golden.EPS64)
    assert "recovered exactly" in compare_output_accumulators(graph, noisy, trace, golden.EPS64)


def test_a_wrong_output_bias_is_caught(digits):
    """A bias off by a fraction of a step moves no argmax here, and no accumulator recovers."""
    _, graph, _, trace = digits
    theirs = _logits(graph, trace.result)
    theirs[:, 2] += 0.75 * float(graph.output.out_scale[2])
    with pytest.raises(UsageError, match=r"channel 2: torch's logit"):
        compare_output_accumulators(graph, theirs, trace, golden.EPS64)


def test_float32_logits_are_checked_within_their_rounding():
    """A model whose float64 copy does not run (or differs) falls back to its float32
    logits: exact where float32 rounding stays below half a step, within it elsewhere."""
    model = small_mlp(5, dims=(12, 8, 4), w_hidden=2, a_hidden=2)
    graph = lower_and_fold(model, EmitOptions(), "small")
    x = np.random.default_rng(1).uniform(-1, 1, (32, 12)).astype(np.float32)
    with torch.no_grad():
        theirs32 = model(torch.from_numpy(x)).double().numpy()
    from lbgen.frontend.torch_frontend import reference_levels

    trace = golden.run(graph, reference_levels(model, x)["input"])
    line = compare_output_accumulators(graph, theirs32, trace, golden.EPS32)
    assert "output accumulators equal" in line and "float32" in line
    off = theirs32.copy()
    off[3, 1] += 3 * float(graph.output.out_scale[1])
    with pytest.raises(UsageError, match="frame 3 channel 1"):
        compare_output_accumulators(graph, off, trace, golden.EPS32)
