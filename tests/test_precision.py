"""lbgen.precision: the --w / --a / --hetero-dist options (no torch needed)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lbgen.errors import UsageError
from lbgen.precision import (
    HETERO_MAX_PLANES,
    WeightSpec,
    check_act_bits,
    check_dist,
    check_hetero_dist,
    check_hetero_option,
    coerce_weight_spec,
    default_hetero_dist,
    dist_mean,
    parse_hetero_dist,
    parse_weight_spec,
    same_dist,
)


@pytest.mark.parametrize("text,kind,bits", [
    ("1", "bipolar", 1), ("2", "int", 2), ("4", "int", 4), ("8", "int", 8), (" 3 ", "int", 3),
    ("log2:2", "log2", 2), ("log2:4", "log2", 4), ("LOG2:6", "log2", 6), ("log2: 5", "log2", 5),
    ("1.4", "hetero", 1.4), ("1.5", "hetero", 1.5), ("2.0", "hetero", 2.0), ("3.0", "hetero", 3.0),
    ("2.75", "hetero", 2.75), ("hetero:1.4", "hetero", 1.4), ("hetero:2", "hetero", 2.0), ("1.01", "hetero", 1.01),
    ("ternary", "ternary", 2), (" Ternary ", "ternary", 2),
])
def test_parse_weight_spec(text, kind, bits):
    spec = parse_weight_spec(text)
    assert spec == WeightSpec(kind, bits)
    assert spec.kind == kind and spec.bits == bits
    # str() gives back a --w text that parses to the same spec
    assert parse_weight_spec(str(spec)) == spec


def test_weight_spec_text_and_descriptions():
    assert [str(parse_weight_spec(t)) for t in ("1", "4", "log2:4", "1.4", "2.0")] == ["1", "4", "log2:4", "1.4", "2.0"]
    assert parse_weight_spec("1").describe() == "1-bit binary"
    assert parse_weight_spec("5").describe() == "5-bit integer"
    assert parse_weight_spec("log2:3").describe() == "3-bit log2"
    assert parse_weight_spec("1.4").describe() == "1.4-bit heterogeneous binarized"
    assert parse_weight_spec("1").short() == "1-bit" and parse_weight_spec("4").short() == "4-bit"
    assert isinstance(parse_weight_spec("4").bits, int)
    assert parse_weight_spec("1.4").width == 1.4 and parse_weight_spec("log2:4").width == 4
    ternary = parse_weight_spec("ternary")
    assert (str(ternary), ternary.describe(), ternary.short(), ternary.width) == ("ternary", "2-bit ternary",
                                                                                  "2-bit ternary", 2)
    assert not ternary.matches(WeightSpec("int", 2))


@pytest.mark.parametrize("text,needle", [
    ("0", "weight bits must be 1..8"), ("9", "weight bits must be 1..8"), ("16", "weight bits must be 1..8"),
    ("log2:1", "2..6 bits"), ("log2:7", "2..6 bits"), ("log2:", "log2:K"), ("log2:x", "log2:K"), ("log2:4.5", "log2:K"),
    ("1.0", "use --w 1 for binary"), ("0.5", "(1, 3]"), ("3.5", "(1, 3]"), ("8.0", "(1, 3]"), ("hetero:1", "(1, 3]"),
    ("", "expected 1 (binary)"), ("abc", "expected 1 (binary)"), ("-1", "expected 1 (binary)"),
    ("1.4.2", "expected 1 (binary)"), ("nan", "expected 1 (binary)"), ("inf", "expected 1 (binary)"),
    ("int8", "expected 1 (binary)"), ("hetero:log2:4", "expected 1 (binary)"), ("ternary:2", "ternary (-1, 0, +1), log2:K"),
])
def test_parse_weight_spec_errors_name_the_option_and_value(text, needle):
    with pytest.raises(UsageError) as err:
        parse_weight_spec(text)
    msg = str(err.value)
    assert msg.startswith(f"--w {text}:"), msg
    assert needle in msg


def test_coerce_weight_spec():
    assert coerce_weight_spec(None) is None
    spec = WeightSpec("log2", 4)
    assert coerce_weight_spec(spec) is spec
    assert coerce_weight_spec(1) == WeightSpec("bipolar", 1)
    assert coerce_weight_spec(4) == WeightSpec("int", 4)
    assert coerce_weight_spec(1.4) == WeightSpec("hetero", 1.4)
    assert coerce_weight_spec("log2:3") == WeightSpec("log2", 3)
    for bad in (0, 9, -2, True, 1.0, 3.5, float("nan"), [1]):
        with pytest.raises(UsageError, match="--w"):
            coerce_weight_spec(bad)


def test_weight_spec_rejects_invalid_direct_construction():
    for kind, bits in (("int", 1), ("int", 9), ("int", 2.5), ("bipolar", 2), ("log2", 7), ("hetero", 1.0),
                       ("hetero", 3.5), ("ternary", 1), ("ternary", 3), ("ternary", 2.5), ("tern", 2)):
        with pytest.raises(ValueError):
            WeightSpec(kind, bits)


def test_weight_spec_matches():
    assert parse_weight_spec("1.4").matches(WeightSpec("hetero", 1.4000000001))
    assert not parse_weight_spec("1.4").matches(WeightSpec("hetero", 1.5))
    assert not parse_weight_spec("4").matches(WeightSpec("log2", 4))
    assert parse_weight_spec("log2:4").matches(WeightSpec("log2", 4))


def test_ternary_dtype_codes():
    """DType("ternary", 2): values -1..1, codes the 2-bit two's complement; 10 is no code."""
    import numpy as np

    from lbgen.ir import DType, IRError

    t = DType("ternary", 2)
    assert (str(t), t.min, t.max) == ("ternary", -1, 1)
    assert t.encode(np.array([-1, 0, 1])).tolist() == [3, 0, 1]
    assert t.decode(np.array([0, 1, 3], dtype=np.uint64)).tolist() == [0, 1, -1]
    assert t.decode(np.array([2], dtype=np.uint64)).tolist() == [0]        # as the PE reads it
    t.check_codes(np.array([0, 1, 3]))
    with pytest.raises(IRError, match="10 is not a ternary code"):
        t.check_codes(np.array([[1, 2]]))
    with pytest.raises(IRError, match="out of range"):
        t.encode(np.array([2]))
    with pytest.raises(IRError, match="a ternary value is 2 bits wide"):
        DType("ternary", 1)
    with pytest.raises(IRError, match="a bipolar value is 1 bit wide"):
        DType("bipolar", 2)
    assert DType.from_json(t.to_json()) == t


def test_check_act_bits():
    assert check_act_bits(None) is None
    assert [check_act_bits(a) for a in range(1, 9)] == list(range(1, 9))
    for bad in (0, 9, -1, True, 2.0, "2"):
        with pytest.raises(UsageError, match=r"--a .*activation bits must be 1\.\.8"):
            check_act_bits(bad)


# -- --hetero-dist ----------------------------------------------------------------

def test_parse_hetero_dist():
    assert parse_hetero_dist("0.7,0.2,0.1") == (0.7, 0.2, 0.1)
    assert parse_hetero_dist(" 0.6 , 0.4 ") == (0.6, 0.4)
    assert parse_hetero_dist("0.6,0.4,0") == (0.6, 0.4)  # trailing zeros dropped
    assert parse_hetero_dist("1") == (1.0,)
    assert dist_mean(parse_hetero_dist("0.7,0.2,0.1")) == pytest.approx(1.4)


@pytest.mark.parametrize("text,needle", [
    ("", "comma-separated"), ("0.7,,0.3", "comma-separated"), ("0.7,x,0.3", "'x' is not a number"),
    ("0.5,0.2,0.1", "sums to 0.8, not 1"), ("0.7,0.2,0.2", "sums to 1.1"), ("1.2,-0.2", "negative"),
    ("0.4,0.3,0.2,0.1", "has 4 entries"), ("nan,1", "non-finite"),
])
def test_parse_hetero_dist_errors(text, needle):
    with pytest.raises(UsageError) as err:
        parse_hetero_dist(text)
    msg = str(err.value)
    assert msg.startswith(f"--hetero-dist {text}:"), msg
    assert needle in msg


def test_check_hetero_option():
    check_hetero_option(None, None)
    check_hetero_option(parse_weight_spec("1.4"), (0.7, 0.2, 0.1))
    check_hetero_option(parse_weight_spec("1.4"), (0.6, 0.4))
    check_hetero_option(None, (0.6, 0.4))  # checked later against the model's layers
    with pytest.raises(UsageError, match=r"--hetero-dist 0.5,0.3,0.2 averages 1.7 .* cannot give the 1.4 bits of --w 1.4"):
        check_hetero_option(parse_weight_spec("1.4"), (0.5, 0.3, 0.2))
    with pytest.raises(UsageError, match=r"--hetero-dist .* --w 4 asks for 4-bit integer"):
        check_hetero_option(parse_weight_spec("4"), (0.7, 0.2, 0.1))


# -- the bit distribution helpers (ValueError, shared with lbgen.quant) -------------

@pytest.mark.parametrize("b", [1.01, 1.2, 1.4, 1.5, 1.8, 2.0, 2.3, 2.5, 2.9, 3.0])
def test_default_hetero_dist_averages_b(b):
    p = default_hetero_dist(b)
    assert len(p) == HETERO_MAX_PLANES
    assert all(x >= 0 for x in p)
    assert sum(p) == pytest.approx(1.0, abs=1e-9)
    assert dist_mean(p) == pytest.approx(b, abs=1e-9)
    assert check_hetero_dist(b, p)  # accepted as is


def test_default_hetero_dist_is_the_papers_for_1_4_bits():
    assert default_hetero_dist(1.4) == (0.7, 0.2, 0.1)
    assert default_hetero_dist(2.0) == (0.25, 0.5, 0.25)
    assert default_hetero_dist(3.0)[:2] == (0.0, 0.0)


def test_check_hetero_dist_errors():
    with pytest.raises(ValueError, match=r"P=\[0\.5, 0\.3, 0\.2\] averages 1\.7 .* not the target B=1\.4"):
        check_hetero_dist(1.4, (0.5, 0.3, 0.2))
    with pytest.raises(ValueError, match="has 4 entries"):
        check_hetero_dist(1.4, (0.6, 0.2, 0.1, 0.1))
    for b in (1.0, 0.5, 3.01, float("nan"), True, "x"):
        with pytest.raises(ValueError, match=r"average bits B must be in \(1, 3\]"):
            check_hetero_dist(b, (0.7, 0.2, 0.1))
    with pytest.raises(ValueError, match="sequence of numbers"):
        check_dist(3)
    assert check_dist([0.6, 0.4, 0.0]) == (0.6, 0.4)
    assert same_dist((0.6, 0.4), (0.6, 0.4, 0.0)) and not same_dist((0.6, 0.4), (0.7, 0.2, 0.1))


def test_precision_imports_neither_torch_nor_numpy():
    code = "import sys, lbgen.precision; print('torch' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
