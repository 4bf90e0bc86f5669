"""bench/mutation.py's mutant list is well-formed on the current sources (no mutant is run).

Every mutant's ``old`` text occurs exactly once in its file, so a source
change that moves it makes this test fail instead of the bench silently
mutating nothing; there are at least 30 mutants, spread over the RTL and HLS
libraries, the golden model and the packing/threshold passes; every test
selection names existing, default-run test files.
"""

from __future__ import annotations

from collections import Counter

from lbgen_testing.common import ROOT, load_script


def _bench():
    return load_script(ROOT / "bench" / "mutation.py", "lbgen_mutation_bench")


def test_every_old_text_occurs_exactly_once():
    bench = _bench()
    assert bench.check_list() == []


def test_at_least_30_mutants_spread_over_the_layers():
    bench = _bench()
    layers = Counter(m.layer for m in bench.MUTANTS)
    assert len(bench.MUTANTS) >= 30
    assert layers["rtl"] >= 12 and layers["hls"] >= 6 and layers["golden"] >= 5 and layers["passes"] >= 5, layers
    files = {m.file for m in bench.MUTANTS}
    assert any(f.startswith("templates/rtl/lb_") for f in files)
    assert any(f.startswith("hls/lbgen_") for f in files)
    assert "codegen/golden.py" in files and "codegen/packing.py" in files
    assert any(f.startswith("codegen/passes/") for f in files)
    assert len({m.id for m in bench.MUTANTS}) == len(bench.MUTANTS)


def test_selections_name_default_run_test_files():
    bench = _bench()
    for m in bench.MUTANTS:
        paths = [a for a in m.tests if a.startswith("tests/")]
        assert paths, m.id
        for a in paths:
            assert (ROOT / a.split("::")[0]).is_file(), (m.id, a)
        assert "-m" not in m.tests and "--runslow" not in m.tests, m.id   # the default run only


def test_check_list_reports_a_stale_mutant():
    bench = _bench()
    stale = bench.Mutant("stale", "rtl", "templates/rtl/lb_thresh.v", "no such text", "x", "d", ("tests/x.py",))
    twice = bench.Mutant("twice", "rtl", "templates/rtl/lb_thresh.v", "assign", "x", "d", ("tests/x.py",))
    problems = bench.check_list((stale, twice))
    assert any("stale" in p and "0 times" in p for p in problems)
    assert any("twice" in p and "exactly once" in p for p in problems)
