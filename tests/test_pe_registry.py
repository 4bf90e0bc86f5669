"""The processing-element registry (lbgen.pe) against the hardware libraries and the formats."""

import re
from pathlib import Path

import pytest

from lbgen import pe
from lbgen.ir import DType, IRError, MatVec
from lbgen.passes.pe import PE_KINDS, choose_pe

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

B, U2, I4, L3 = DType("bipolar", 1), DType("uint", 2), DType("int", 4), DType("log2", 3)
H = DType("hetero", 3, (2, 1))
T = DType("ternary", 2)


def test_every_pe_has_its_rtl_core_and_hls_functor():
    hpp = (ROOT / "hls" / "lbgen_pe.hpp").read_text()
    core = (ROOT / "templates" / "rtl" / "lb_mvau_core.v").read_text()
    codes = [p.code for p in pe.REGISTRY.values()]
    assert codes == sorted(set(codes)), codes
    for p in pe.REGISTRY.values():
        src = ROOT / "templates" / "rtl" / f"{p.rtl_core}.v"
        assert src.is_file(), f"{p.name}: no {src}"
        assert re.search(rf"\bmodule\s+{p.rtl_core}\b", src.read_text()), p.rtl_core
        assert re.search(rf"\b{p.rtl_core}\b", core), f"lb_mvau_core.v does not instantiate {p.rtl_core}"
        assert re.search(rf"struct\s+{p.hls_functor}\b", hpp), f"lbgen_pe.hpp has no {p.hls_functor}"
    assert PE_KINDS == tuple(pe.REGISTRY)


@pytest.mark.parametrize("wtype, itype, kind", [
    (B, B, "xnor"), (B, U2, "addsub"), (B, I4, "addsub"), (I4, B, "mac"), (I4, U2, "mac"), (I4, I4, "mac"),
    (L3, U2, "shift"), (L3, B, "shift"), (H, B, "planes"), (H, U2, "planes"),
    (T, B, "masked"), (T, U2, "masked"), (T, I4, "masked")])
def test_exactly_one_pe_fits_each_format_pair(wtype, itype, kind):
    assert [p.name for p in pe.REGISTRY.values() if p.fits(wtype, itype)] == [kind]


def _layer(wtype, itype, weights, pe_kind=""):
    w = np.asarray(weights)
    return MatVec(name="fc0", mw=w.shape[1], mh=w.shape[0], weights=w, wtype=wtype, itype=itype, pe_kind=pe_kind)


def test_a_layer_is_built_as_the_pe_it_names_or_refused():
    layer = _layer(B, B, [[1, -1]])
    assert pe.of(layer).name == "xnor" and choose_pe(layer) == "xnor"
    layer.pe_kind = "mac"               # a bipolar-weight layer is never built as mac
    with pytest.raises(IRError, match=r"layer 'fc0': PE kind 'mac' does not fit .*expected 'xnor'"):
        pe.of(layer)
    layer.pe_kind = "systolic"
    with pytest.raises(IRError, match="unknown processing element 'systolic'"):
        pe.of(layer)


def test_rtl_cores_take_only_their_inputs():
    layer = _layer(L3, I4, [[2, -1]])
    assert pe.of(layer).name == "shift"                    # the HLS functor takes a signed input
    with pytest.raises(IRError, match="shift processing element takes bipolar or uint inputs, not int4"):
        pe.of(layer, rtl=True)


@pytest.mark.parametrize("itype", [B, U2, I4, DType("uint", 1), DType("int", 2)], ids=str)
def test_ternary_heap_plus_offsets_is_the_dot_product(itype):
    """The masked PE's heap in numpy, bit for bit as lb_pe_masked builds it (per lane and
    input bit nz & (neg ^ x_j), a signed x's top bit complemented, bipolar x as its bit, the
    fold doubled), plus heap_offsets, is the exact dot product."""
    rng = np.random.default_rng(7)
    weights = rng.integers(-1, 2, size=(6, 11))
    weights[0] = 0                                  # a row of zero weights leaves no offset
    layer = _layer(T, itype, weights)
    p = pe.of(layer, rtl=True)
    assert p.name == "masked" and p.lane_weight_bits(T) == 1.5
    codes = T.encode(weights).astype(np.int64)
    nz, neg = codes & 1, codes >> 1
    for _ in range(20):
        x = rng.choice([-1, 1], size=11) if itype.kind == "bipolar" else rng.integers(itype.min, itype.max + 1, 11)
        xc = itype.encode(x).astype(np.int64)
        bits = 1 if itype.kind == "bipolar" else itype.bits
        if itype.kind == "int":
            xc ^= 1 << (bits - 1)
        heap = sum((nz & (neg ^ ((xc >> j) & 1))) << j for j in range(bits)).sum(axis=1)
        fold = heap << 1 if itype.kind == "bipolar" else heap
        np.testing.assert_array_equal(fold + p.heap_offsets(layer), weights @ x)
