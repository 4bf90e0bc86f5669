"""What the default run's designs exercise, counted from the designs themselves.

A *combination* is what one MVAU layer instantiates: its weight kind, its
input kind, its threshold unit (``parallel``: one comparator bank, a 1-bit
output; ``search``: the binary-search unit, 2 bits and up; ``output``: raw
accumulators, the last layer) and the PE that kind pair selects.
:func:`all_combinations` derives the set the RTL can build from the product's
own tables (``ir.KINDS``, the hidden-stream kinds, the PE registry and each
PE's RTL input kinds), so a new PE or number format grows it without an edit
here. Required: every hidden combination, and every PE as an output layer
(one design has one output layer; every (weight, input) pair there would be a
design and a Verilator build each).

:func:`coverage_designs` chains every combination into a few deterministic
MLPs (each layer's output kind is the next layer's input kind), which
``tests/test_coverage.py`` runs in every executor. :func:`record` appends what
a test ran to ``$LBGEN_COVERAGE_LOG`` so that the session prints the default
run's table (tests/conftest.py).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Iterable, Optional

from lbgen import pe as processing_elements
from lbgen.emitters.rtl import threshold_unit
from lbgen.ir import KINDS, STREAM_KINDS, DType, Graph, IRError, MatVec

from .graphs import random_graph

HIDDEN_UNITS = ("parallel", "search")

#: one weight format per kind (int8: the widest mac weights a layer here has)
WEIGHT_OF = {"bipolar": DType("bipolar", 1), "uint": DType("uint", 3), "int": DType("int", 8),
             "log2": DType("log2", 4), "hetero": DType("hetero", 3, (1, 5)), "ternary": DType("ternary", 2)}
#: a hidden layer's output format for each (kind, unit): parallel is a 1-bit output, search wider;
#: one uint output is 8 bits (255 thresholds a channel, an 8-stage search)
#: (a hidden layer outputs threshold levels, uint or bipolar: an int stream is only the network's input,
#: so every int-input combination starts a design)
OUTPUT_OF = {("bipolar", "parallel"): DType("bipolar", 1), ("uint", "parallel"): DType("uint", 1),
             ("uint", "search"): DType("uint", 2)}
WIDE_OUTPUT = DType("uint", 8)
FIRST_INPUT = {"bipolar": DType("bipolar", 1), "uint": DType("uint", 4), "int": DType("int", 4)}
MAX_LAYERS = 10


def layer_combination(layer: MatVec) -> tuple[str, str, str, str]:
    """(weight kind, input kind, threshold unit, PE) of one layer."""
    unit = "output" if layer.is_output else threshold_unit(layer)
    return layer.wtype.kind, layer.itype.kind, unit, processing_elements.of(layer).name


def graph_combinations(graph: Graph) -> set[tuple[str, str, str, str]]:
    return {layer_combination(layer) for layer in graph.layers}


def all_combinations(units=HIDDEN_UNITS + ("output",)) -> set[tuple[str, str, str, str]]:
    """Every combination the RTL builds: each (weight kind, stream kind) pair whose
    PE's core takes that input, with each of ``units``."""
    combos = set()
    for wkind in KINDS:
        if wkind not in WEIGHT_OF:
            raise AssertionError(f"lbgen_testing.coverage: no weight format for the new kind {wkind!r}")
        for xkind in STREAM_KINDS:
            try:
                chosen = processing_elements.choose(WEIGHT_OF[wkind], FIRST_INPUT[xkind])
            except IRError:
                continue
            if chosen.rtl_input_problem(FIRST_INPUT[xkind]):
                continue
            combos |= {(wkind, xkind, unit, chosen.name) for unit in units}
    return combos


def required() -> tuple[set, set]:
    """(every hidden combination, every PE name): what the coverage designs must have,
    the PEs as output layers."""
    return all_combinations(HIDDEN_UNITS), set(processing_elements.names())


def missing(covered: set) -> list[str]:
    """What ``covered`` (combinations) lacks of :func:`required`, as lines."""
    hidden, pes = required()
    out_pes = {c[3] for c in covered if c[2] == "output"}
    return ([f"hidden {c}" for c in sorted(hidden - covered)]
            + [f"output layer with the {p} PE" for p in sorted(pes - out_pes)])


def _out_kinds(unit: str) -> list[str]:
    return [kind for (kind, u) in OUTPUT_OF if u == unit]


def _chains() -> list[list[tuple[str, str, str, str]]]:
    """Greedy: start each chain at an input kind that still has work, pick a hidden
    combination whose output kind leads to more work, end with an output layer of a
    PE not yet an output layer."""
    hidden, pes = required()
    outputs = all_combinations(("output",))
    todo = set(hidden)
    chains = []
    hidden_kinds = {k for k, _ in OUTPUT_OF}
    while todo or pes:
        # an input kind no hidden layer outputs (int) can only start a design: those first
        firsts = sorted(todo, key=lambda c: (c[1] in hidden_kinds, c))
        start = firsts[0][1] if todo else next(c[1] for c in sorted(outputs) if c[3] in pes)
        chain, x = [], start
        while len(chain) < MAX_LAYERS - 1:
            options = sorted(c for c in todo if c[1] == x and c[2] != "output")
            if not options:
                break
            # prefer the combination whose possible output kinds still have the most work
            def work(c):
                return max(sum(1 for d in todo if d[1] == k and d != c) for k in _out_kinds(c[2]))
            pick = max(options, key=work)
            chain.append(pick)
            todo.discard(pick)
            x = max(_out_kinds(pick[2]), key=lambda k: sum(1 for d in todo if d[1] == k))
        ends = sorted((c for c in outputs if c[1] == x), key=lambda c: (c[3] not in pes, c))
        chain.append(ends[0])
        pes.discard(ends[0][3])
        chains.append(chain)
    return chains


def _next_kind(chain, i: int) -> Optional[str]:
    return chain[i + 1][1] if i + 1 < len(chain) else None


def coverage_designs(seed: int = 2100) -> list[Graph]:
    """MLPs that together have a layer of every combination of :func:`all_combinations`,
    an 8-bit hidden activation and int8 weights; deterministic."""
    graphs = []
    wide_done = False
    for n, chain in enumerate(_chains()):
        atypes = [FIRST_INPUT[chain[0][1]]]
        for i, (_, _, unit, _) in enumerate(chain[:-1]):
            out = OUTPUT_OF[(_next_kind(chain, i), unit)]
            if out.kind == "uint" and unit == "search" and not wide_done:
                out, wide_done = WIDE_OUTPUT, True
            atypes.append(out)
        dims = [8] * (len(chain) + 1)
        dims[-1] = 4
        folds = [((2, 4) if i % 2 == 0 else (4, 2)) for i in range(len(chain))]
        folds[-1] = (2, 2)
        wtypes = [WEIGHT_OF[c[0]] for c in chain]
        graphs.append(random_graph(seed + n, dims, wtypes, atypes, folds, extremes=0.3))
    return graphs


# --------------------------------------------------------------------------- the session's table

def record(graph: Graph, test: str) -> None:
    """Append ``graph``'s combinations, run by ``test`` in every executor, to $LBGEN_COVERAGE_LOG."""
    path = os.environ.get("LBGEN_COVERAGE_LOG")
    if not path:
        return
    line = json.dumps({"test": test, "combos": sorted(graph_combinations(graph))}) + "\n"
    with open(path, "a") as fh:
        fh.write(line)


def table(lines: Iterable[str]) -> tuple[list[str], int, int]:
    """The table the session prints: (rows, combinations covered, all) from the log lines;
    each row a combination with the number of designs that ran it, and how many of those
    came from files other than tests/test_coverage.py (what the run covered before it)."""
    every = sorted(all_combinations())
    hidden, pes = required()
    total: Counter = Counter()
    before: Counter = Counter()
    for line in lines:
        doc = json.loads(line)
        for combo in map(tuple, doc["combos"]):
            total[combo] += 1
            if "test_coverage.py" not in doc["test"]:
                before[combo] += 1
    rows = [f"{'weight':8} {'input':8} {'unit':8} {'PE':7} {'designs':>7} {'without test_coverage':>22}"]
    rows += [f"{w:8} {x:8} {u:8} {p:7} {total[c]:7d} {before[c]:22d}" for c in every for (w, x, u, p) in [c]]
    def count(counter):
        got = {c for c in every if counter[c]}
        return len(got & hidden) + len({c[3] for c in got if c[2] == "output"} & pes)

    need = len(hidden) + len(pes)
    rows.append(f"required (every hidden combination, every PE as an output layer): {count(total)} of {need} "
                f"covered; without tests/test_coverage.py {count(before)} of {need}")
    return rows, count(total), need
