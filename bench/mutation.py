"""Mutation score of lbgen's checks (issue 21, item 5).

A check that never fails proves nothing. This bench plants small, realistic
bugs ("mutants") in the product's sources, one at a time, and asks whether
the default test run notices: for each mutant it applies one textual patch
(an exact ``old`` -> ``new`` replacement that must occur exactly once in its
file, so the list fails loudly when the sources move on), runs a documented
selection of default-run tests (not marked slow) that ought to catch that
kind of bug, records whether they failed, and restores the file byte for
byte (try/finally, verified; at the end ``git status`` of the product
directories must be clean).

The mutants are spread over the four layers that decide a design's bits:

* ``rtl``    -- the Verilog library ``templates/rtl/lb_*.v`` (comparators,
  fold/window counters, padding, sign extension, ready/valid, Huffman lanes,
  XNOR polarity, top-K);
* ``hls``    -- the HLS C++ library ``hls/lbgen_*.hpp`` (C-simulation paths,
  and the ``__SYNTHESIS__`` paths that tests/test_synthesis_paths.py runs);
* ``golden`` -- the numpy golden model (``codegen/golden.py`` and the golden
  methods of the IR nodes in ``codegen/ir.py``), which the checks anchor to
  torch, Brevitas and qonnx;
* ``passes`` -- ROM packing (``codegen/packing.py``) and the threshold and
  accumulator passes (``codegen/passes/``).

A mutant is *killed* when its test selection fails (pytest exit 1; exit 2,
an interrupted run or a collection error, also counts, e.g. when the mutated
module no longer imports: the ``note`` says so). A selection that runs past
``--timeout`` is killed only if the mutant documents that a hang is the
expected symptom (``timeout_kills``). A selection that collects no test is a
broken list and stops the bench. Before any mutant, every distinct selection
runs once on the unmutated sources (the *baseline*; ``--no-baseline`` skips
it): a selection that fails there would "kill" every mutant, so the bench
stops. The *mutation score* is killed / total: the
fraction of these planted bugs the default checks catch. The bench exits 0
when the score is at least ``TARGET`` (0.9) and every survivor carries a
written reason (``reason``: an equivalent mutant, or a known gap).

Output, ``bench/results/mutation.json``::

    {"killed": K, "total": N, "score": K/N, "target": 0.9, "seconds": ...,
     "baseline": [{"tests", "passed", "seconds"}],
     "mutants": [{"id", "layer", "file", "description", "tests": [pytest args],
                  "killed": bool, "status": "killed" | "survived" | "timeout" | "error",
                  "seconds", "evidence": first FAILED line (killed),
                  "reason": why it survives (survivors only), "note",
                  "history": how a mutant that once survived came to be killed}]}

and ``bench/results/mutation.png`` (killed / total per layer).

    .venv/bin/python bench/mutation.py                  # every mutant
    .venv/bin/python bench/mutation.py --list           # the list, nothing run
    .venv/bin/python bench/mutation.py --only rtl-thresh-ge,hls-maxpool --timeout 300
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
PRODUCT_DIRS = ("templates", "hls", "codegen", "sim")
TARGET = 0.9
DEFAULT_TIMEOUT = 600.0


@dataclass(frozen=True)
class Mutant:
    id: str
    layer: str                     # rtl | hls | golden | passes
    file: str                      # relative to the repository root
    old: str                       # must occur exactly once in file
    new: str
    description: str
    tests: tuple[str, ...]         # pytest arguments (paths, node ids, -k expressions)
    reason: str = ""               # why it is expected to survive (equivalent mutant, known gap)
    timeout_kills: bool = False    # a hang is the expected symptom: a timeout counts as killed
    history: str = ""              # how an earlier survivor came to be killed (test added, selection)


# Test selections (default-run tests only; see each test file's docstring).
NATIVE_MLP = ("tests/test_native_tb.py", "-k", "test_native_equals_golden and mlp and icarus")
NATIVE_CNN = ("tests/test_native_tb.py", "-k", "test_native_equals_golden and cnn and icarus")
NATIVE_BOTH = ("tests/test_native_tb.py", "-k", "test_native_equals_golden and icarus")
PE_CORES = ("tests/test_pe_cores.py",)
THRESH_CORES = ("tests/test_pe_cores.py", "-k", "thresh")
SWU_RTL = ("tests/test_rtl_conv_units.py", "-k", "test_swu_bit_exact and icarus")
POOL_RTL = ("tests/test_rtl_conv_units.py", "-k", "test_maxpool_bit_exact and icarus")
HLS_AP = ("tests/test_hls.py", "-k", "test_csim_bit_exact and ap_int")
HLS_NATIVE = ("tests/test_hls.py", "-k", "test_csim_bit_exact and native")
SYNTH = ("tests/test_synthesis_paths.py",)
PACKING = ("tests/test_packing_by_hand.py",)
# cocotb: m_axis stalls of hundreds of cycles (every FIFO and skid buffer full) and s_axis gaps
STRESS = ("tests/test_rtl_stress.py", "-k", "test_long_tready_stalls_and_tvalid_gaps and mlp and icarus")
TORCH_GOLDEN = ("tests/test_frontend.py", "-k", "test_random_models_torch_equals_golden or "
                "test_negative_gain_channels_are_inverted or test_acc_auto_is_the_exact_bound")

MUTANTS: tuple[Mutant, ...] = (
    # ------------------------------------------------------------------ RTL library
    Mutant("rtl-thresh-ge", "rtl", "templates/rtl/lb_thresh.v",
           "+ {{NC{1'b0}}, 1'b1};", "+ {{NC{1'b0}}, 1'b0};",
           "chunked threshold comparator: acc >= t becomes acc > t (carry-in 0)",
           THRESH_CORES),
    Mutant("rtl-thresh-invert", "rtl", "templates/rtl/lb_thresh.v",
           "assign level = inv ? TOP - count : count;", "assign level = inv ? count : TOP - count;",
           "threshold unit: invert flag polarity swapped",
           NATIVE_MLP),
    Mutant("rtl-thresh-search-invert", "rtl", "templates/rtl/lb_thresh_search.v",
           "if (en) level_r <= inv_k[A-1] ? TOP - code_k[(A-1)*A +: A] : code_k[(A-1)*A +: A];",
           "if (en) level_r <= code_k[(A-1)*A +: A];",
           "binary-search threshold unit: invert flag ignored",
           NATIVE_MLP),
    Mutant("rtl-thresh-search-inv-stage", "rtl", "templates/rtl/lb_thresh_search.v",
           "assign inv_k[0]             = q0[ACC_BITS];", "assign inv_k[0]             = q0[ACC_BITS-1];",
           "binary-search threshold unit: invert flag read one bit low (from the threshold's sign)",
           NATIVE_MLP),
    Mutant("rtl-swu-pad-value", "rtl", "templates/rtl/lb_swu.v",
           "localparam [IW-1:0] PAD_BEAT = {SIMD{PAD_E}};", "localparam [IW-1:0] PAD_BEAT = {IW{1'b0}};",
           "window unit pads with code 0 instead of PAD (the zero level of a signed input)",
           SWU_RTL),
    Mutant("rtl-swu-x-bound", "rtl", "templates/rtl/lb_swu.v",
           "assign in_x = (xo >= X_LO) && (xo < X_HI);", "assign in_x = (xo >= X_LO) && (xo <= X_HI);",
           "window unit: right border off by one (a padded column read from the buffer)",
           SWU_RTL),
    Mutant("rtl-swu-kx-counter", "rtl", "templates/rtl/lb_swu.v",
           "wire e_kx = e_cf && (kx == KX_LAST);", "wire e_kx = e_cf && (kx == KX_LAST - 1);",
           "window unit: kernel-column counter wraps one early",
           SWU_RTL),
    Mutant("rtl-maxpool-compare", "rtl", "templates/rtl/lb_maxpool.v",
           "assign m[p*E +: E] = (first || x > y) ? x : y;", "assign m[p*E +: E] = (first || x < y) ? x : y;",
           "max-pool keeps the minimum",
           POOL_RTL),
    Mutant("rtl-maxpool-first", "rtl", "templates/rtl/lb_maxpool.v",
           "wire first  = (kx == {KW{1'b0}}) && (ky == {KW{1'b0}});", "wire first  = (kx == {KW{1'b0}});",
           "max-pool restarts its running maximum on every window row (forgets the rows above)",
           POOL_RTL),
    Mutant("rtl-mvau-sf-counter", "rtl", "templates/rtl/lb_mvau.v",
           "localparam integer   SF_LAST_I = SF - 1;", "localparam integer   SF_LAST_I = SF;",
           "MVAU synapse-fold counter counts one fold too many",
           NATIVE_MLP),
    Mutant("rtl-mvau-core-first", "rtl", "templates/rtl/lb_mvau_core.v",
           "always @* acc_d[p*ACC_BITS +: ACC_BITS] = de + (first3 ? init[p*ACC_BITS +: ACC_BITS]",
           "always @* acc_d[p*ACC_BITS +: ACC_BITS] = de + (first2 ? init[p*ACC_BITS +: ACC_BITS]",
           "MVAU core: accumulator restart taken from the wrong pipeline stage",
           NATIVE_MLP),
    Mutant("rtl-adder-tree-sext", "rtl", "templates/rtl/lb_adder_tree.v",
           "always @* v = (($signed({x[O        +: IN_W], {XW{1'b0}}}) >>> XW)",
           "always @* v = (($signed({x[O        +: IN_W], {XW{1'b0}}}) >> XW)",
           "adder tree: first operand of a signed group zero-extended instead of sign-extended",
           ("tests/test_rtl_emit.py", "-k", "test_adder_tree_equals_the_sum_of_extended_inputs"),
           history="survived tests/test_pe_cores.py: no engine instantiates lb_adder_tree with IN_SIGNED = 1; "
                   "killed by the SAT test test_adder_tree_equals_the_sum_of_extended_inputs added for it"),
    Mutant("rtl-adder-tree-carry", "rtl", "templates/rtl/lb_adder_tree.v",
           "      +  ((4*j + 3 < EP) ? g_b[b-1].g_e[K3].v : ZERO));",
           "      +  ((4*j + 3 < EP - 1) ? g_b[b-1].g_e[K3].v : ZERO));",
           "adder tree: the fourth operand of an upper-level node dropped when it is the last",
           PE_CORES),
    Mutant("rtl-mac-signed-input", "rtl", "templates/rtl/lb_pe_mac.v",
           "localparam XNEG = (IN_KIND == 2 && j == IB - 1) ? 1 : 0;",
           "localparam XNEG = (IN_KIND == 2 && j == IB) ? 1 : 0;",
           "MAC engine: a signed input's top bit weighted +2^(IB-1) instead of -2^(IB-1) (sign handling)",
           PE_CORES),
    Mutant("rtl-shift-exponent", "rtl", "templates/rtl/lb_pe_shift.v",
           "wire [WB-2:0]   e  = f - ONE_F;", "wire [WB-2:0]   e  = f;",
           "log2 shift engine: exponent field not biased (every product doubled)",
           PE_CORES),
    Mutant("rtl-xnor-polarity", "rtl", "templates/rtl/lb_pe_xnor.v",
           "a0 = (3*t   < SIMD) ? ~(wf(w, 3*t+0) ^", "a0 = (3*t   < SIMD) ? (wf(w, 3*t+0) ^",
           "XNOR popcount engine: lane 0 of each triple counts disagreements (XOR for XNOR)",
           PE_CORES),
    Mutant("rtl-skid-drop", "rtl", "templates/rtl/lb_axis_skid.v",
           "main_v <= skid_v || s_axis_tvalid;", "main_v <= s_axis_tvalid;",
           "skid buffer drops its held beat when the consumer frees up",
           STRESS,
           history="survived the native testbench's random back-pressure (test_native_equals_golden, mlp, "
                   "icarus); killed by the existing long-stall stress test, now its selection"),
    Mutant("rtl-fifo-full", "rtl", "templates/rtl/lb_axis_fifo.v",
           "assign s_axis_tready = (count != FULL);", "assign s_axis_tready = 1'b1;",
           "FIFO accepts beats when full (overwrites the oldest)",
           STRESS,
           history="survived test_rtl_emit's fifo_pressure design under back-pressure (its FIFOs never fill); "
                   "killed by the existing long-stall stress test, now its selection"),
    Mutant("rtl-dwc-ready", "rtl", "templates/rtl/lb_axis_dwc.v",
           "assign s_axis_tready = (count <= ROOM);", "assign s_axis_tready = (count < ROOM);",
           "width converter refuses a beat it has room for (loses full throughput)",
           ("tests/test_rtl_emit.py", "-k", "test_dwc_order_and_full_throughput")),
    Mutant("rtl-huff-pass-skip", "rtl", "templates/rtl/lb_huff_lane.v",
           "if (last) pn = inq ? P_FW : {(PW+1){1'b0}};", "if (1'b0) pn = inq ? P_FW : {(PW+1){1'b0}};",
           "Huffman lane: the pass end no longer skips the last word's padding",
           ("tests/test_rtl_huff_lanes.py",)),
    Mutant("rtl-topk-tie", "rtl", "templates/rtl/lb_topk.v",
           "assign better[i] = !v_q[i] || (a_score > s_i);", "assign better[i] = !v_q[i] || (a_score >= s_i);",
           "top-K: an equal score displaces the lower index (tie rule broken)",
           ("tests/test_topk.py", "-k", "test_rtl_equals_golden")),
    Mutant("rtl-topk-last", "rtl", "templates/rtl/lb_topk.v",
           "a_last  <= (cls_q == CLASSES - 1);", "a_last  <= (cls_q == CLASSES - 2);",
           "top-K: the frame's last class flagged one class early (the last class never ranked)",
           ("tests/test_topk.py", "-k", "test_rtl_equals_golden")),
    # ------------------------------------------------------------------ HLS library
    Mutant("hls-thresh-ge", "hls", "hls/lbgen_activation.hpp",
           "count += (acc >= ap_int<ACC_BITS>(t[j])) ? 1 : 0;", "count += (acc > ap_int<ACC_BITS>(t[j])) ? 1 : 0;",
           "MultiThreshold (ap_int C-sim): acc >= t becomes acc > t",
           HLS_AP),
    Mutant("hls-thresh-native-invert", "hls", "hls/lbgen_mvau.hpp",
           "return d[T] ? T - count : count;", "return count;",
           "native C-sim threshold stage ignores the invert flag",
           HLS_NATIVE),
    Mutant("hls-popcount-synth", "hls", "hls/lbgen_common.hpp",
           "        count += word[i];", "        if (i != 0) count += word[i];",
           "popcount (__SYNTHESIS__ path) skips bit 0",
           SYNTH),
    Mutant("hls-unpack-synth", "hls", "hls/lbgen_common.hpp",
           "        for (unsigned k = 0; k < n; k++) {", "        for (unsigned k = 1; k < n; k++) {",
           "unpack (__SYNTHESIS__ path) skips the first element of every 64-bit chunk",
           SYNTH),
    Mutant("hls-xnor-polarity", "hls", "hls/lbgen_pe.hpp",
           "const ap_uint<SIMD> agree = ~(w ^ x);", "const ap_uint<SIMD> agree = (w ^ x);",
           "XnorPopcount counts disagreements (XOR for XNOR)",
           HLS_AP),
    Mutant("hls-bipolar-negate", "hls", "hls/lbgen_pe.hpp",
           "return x ? type(v) : type(-v);", "return x ? type(-v) : type(v);",
           "weight x bipolar input: sign of the product flipped",
           ("tests/test_synthesis_paths.py", "-k", "test_functors_match_numpy"),
           history="survived tests/test_hls.py's C-sim designs (none reaches int weights x bipolar inputs); "
                   "killed after test_functors_match_numpy got the bipolar operand pairs"),
    Mutant("hls-conv-pad-value", "hls", "hls/lbgen_conv.hpp",
           "const beat_t pad_beat = detail::replicate<CFG::SIMD, CFG::E>(G::PAD);",
           "const beat_t pad_beat = detail::replicate<CFG::SIMD, CFG::E>(0);",
           "sliding window pads with code 0 instead of PAD",
           ("tests/test_hls_conv.py", "-k", "test_sliding_window_bit_exact")),
    Mutant("hls-conv-pad-bound", "hls", "hls/lbgen_conv.hpp",
           "const bool pad = iy < 0 || iy >= (int)G::IN_H ||", "const bool pad = iy < 0 || iy > (int)G::IN_H ||",
           "sliding window: bottom border off by one",
           ("tests/test_hls_conv.py", "-k", "test_sliding_window_bit_exact")),
    Mutant("hls-maxpool-compare", "hls", "hls/lbgen_conv.hpp",
           "r.range(i * E + E - 1, i * E) = x > y ? x : y;", "r.range(i * E + E - 1, i * E) = x < y ? x : y;",
           "max-pool keeps the minimum",
           ("tests/test_hls_conv.py", "-k", "test_maxpool_bit_exact")),
    Mutant("hls-acc-restart", "hls", "hls/lbgen_mvau.hpp",
           "            acc[p] = first ? partial : acc_t(acc[p] + partial);\n        }\n#endif",
           "            acc[p] = first ? partial : acc_t(acc[p] - partial);\n        }\n#endif",
           "MVAU accumulation (ap_int C-sim, weight rows): later folds subtracted",
           HLS_AP),
    Mutant("hls-huff-pass-skip", "hls", "hls/lbgen_huffman.hpp",
           "const unsigned p_next = last ? (inq ? H::FW : 0) :", "const unsigned p_next = last ? (inq ? np - H::FW : np) :",
           "Huffman decoder: the pass end no longer skips the last word's padding",
           ("tests/test_huffman.py", "-k", "test_csim_huffman_bit_exact")),
    # ------------------------------------------------------------------ golden model
    Mutant("golden-thresh-ge", "golden", "codegen/golden.py",
           "count = (a[:, :, :, None] >= layer.thresholds", "count = (a[:, :, :, None] > layer.thresholds",
           "golden threshold unit: acc >= t becomes acc > t",
           TORCH_GOLDEN),
    Mutant("golden-invert", "golden", "codegen/golden.py",
           "top - count, count).reshape(n, -1)", "count, top - count).reshape(n, -1)",
           "golden threshold unit: invert flag polarity swapped",
           TORCH_GOLDEN),
    Mutant("golden-bipolar", "golden", "codegen/golden.py",
           "return 2 * levels - 1 if layer.odtype.kind", "return 1 - 2 * levels if layer.odtype.kind",
           "golden bipolar mapping: level 0/1 -> +1/-1 instead of -1/+1",
           TORCH_GOLDEN),
    Mutant("golden-weight-sign", "golden", "codegen/golden.py",
           "w = layer.weights.astype(np.int64)", "w = np.abs(layer.weights.astype(np.int64))",
           "golden accumulator loses the weights' signs",
           TORCH_GOLDEN),
    Mutant("golden-topk-tie", "golden", "codegen/golden.py",
           "key=lambda c: (-int(row[c]), c))", "key=lambda c: (-int(row[c]), -c))",
           "golden top-K breaks ties to the highest index (torch.argmax: the lowest)",
           ("tests/test_topk.py", "-k", "test_torch_logits_are_exact_and_golden_indices_are_torchs")),
    Mutant("golden-maxpool", "golden", "codegen/ir.py",
           "self.k, self.ch).max(axis=(2, 4))", "self.k, self.ch).min(axis=(2, 4))",
           "golden max-pool takes the minimum",
           ("tests/test_conv_ir.py", "-k", "test_max_pool_equals_torch")),
    Mutant("golden-pad", "golden", "codegen/ir.py",
           "return np.where(idx[None] < 0, pad_value, cols)", "return np.where(idx[None] < 0, 0, cols)",
           "golden im2col pads with 0 regardless of the pad value",
           ("tests/test_conv_ir.py", "-k", "test_pad_level_is_torchs_zero_padding")),
    Mutant("golden-rounding", "golden", "codegen/ir.py",
           "return np.rint(np.clip(x, np.float32(0), top) / step).astype(np.int64)",
           "return np.floor(np.clip(x, np.float32(0), top) / step).astype(np.int64)",
           "activation quantizer rounds down instead of half-to-even",
           TORCH_GOLDEN),
    # ------------------------------------------------------------------ packing and passes
    Mutant("pack-weight-order", "passes", "codegen/packing.py",
           "for nf in range(layer.nf) for sf in range(layer.sf)]", "for sf in range(layer.sf) for nf in range(layer.nf)]",
           "weight ROM words in (sf, nf) order instead of (nf, sf)",
           PACKING),
    Mutant("pack-element-order", "passes", "codegen/packing.py",
           "word |= (int(c) & ((1 << width) - 1)) << (i * width)",
           "word = (word << width) | (int(c) & ((1 << width) - 1))",
           "elements packed first-on-top instead of element 0 lowest",
           PACKING),
    Mutant("pack-invert-flag", "passes", "codegen/packing.py",
           "(pack_elements(inv[nf], 1) << base)", "(pack_elements(1 - inv[nf], 1) << base)",
           "parallel threshold ROM: invert flag written negated",
           PACKING),
    Mutant("pack-search-index", "passes", "codegen/packing.py",
           "j = q * (1 << (bits - k)) + (1 << (bits - k - 1)) - 1", "j = q * (1 << (bits - k)) + (1 << (bits - k - 1))",
           "binary-search threshold ROMs hold the threshold one above the midpoint",
           PACKING),
    Mutant("pack-sign-encoding", "passes", "codegen/ir.py",
           "            return ((v + 1) // 2).astype(np.uint64)", "            return ((1 - v) // 2).astype(np.uint64)",
           "bipolar encoding: code 1 for -1 instead of +1",
           PACKING),
    Mutant("pass-threshold-offset", "passes", "codegen/passes/thresholds.py",
           "thresholds = lo[:, None] + below\n", "thresholds = lo[:, None] + below + 1\n",
           "threshold folding: every threshold one too high (rounding of the step)",
           TORCH_GOLDEN),
    Mutant("pass-threshold-invert", "passes", "codegen/passes/thresholds.py",
           "invert = ends[1] < ends[0]  #", "invert = ends[1] > ends[0]  #",
           "threshold folding: falling channels not recognised (invert flag wrong)",
           TORCH_GOLDEN),
    Mutant("pass-acc-bits", "passes", "codegen/passes/accumulators.py",
           "    return signed_bits_for(lo_v, hi_v)", "    return signed_bits_for(lo_v, hi_v) - 1",
           "accumulator sizing (--acc auto) one bit short",
           TORCH_GOLDEN),
)


# --------------------------------------------------------------------------- running

def check_list(mutants=MUTANTS) -> list[str]:
    """Problems with the list on the current sources (empty: well-formed)."""
    problems = []
    ids = [m.id for m in mutants]
    for dup in sorted({i for i in ids if ids.count(i) > 1}):
        problems.append(f"duplicate id {dup}")
    for m in mutants:
        path = ROOT / m.file
        if m.layer not in ("rtl", "hls", "golden", "passes"):
            problems.append(f"{m.id}: unknown layer {m.layer!r}")
        if not path.is_file():
            problems.append(f"{m.id}: no file {m.file}")
            continue
        n = path.read_text().count(m.old)
        if n != 1:
            problems.append(f"{m.id}: 'old' occurs {n} times in {m.file} (must be exactly once)")
        if m.old == m.new:
            problems.append(f"{m.id}: 'new' equals 'old'")
        if not m.tests:
            problems.append(f"{m.id}: no tests")
    return problems


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _run_pytest(tests: tuple[str, ...], timeout: float, env: dict) -> tuple[int | None, str, float]:
    """(exit code or None on timeout, output, seconds). The whole process group is killed on timeout."""
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out, time.monotonic() - t0
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return None, out, time.monotonic() - t0
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise


def _evidence(out: str) -> str:
    """The first failing test and the first line of its error message."""
    lines = out.splitlines()
    failed = next((l.split(" - ")[0].strip() for l in lines if l.startswith(("FAILED ", "ERROR "))), "")
    message = next((l[1:].strip() for l in lines if l.startswith("E ") and l[1:].strip()), "")
    if not failed:
        rest = [l for l in lines if l.strip()]
        return rest[-1][:300] if rest else ""
    return f"{failed}: {message}"[:300] if message else failed[:300]


def run_mutant(m: Mutant, timeout: float, env: dict) -> dict:
    path = ROOT / m.file
    original = path.read_bytes()
    text = original.decode()
    if text.count(m.old) != 1:
        raise SystemExit(f"mutant {m.id}: 'old' occurs {text.count(m.old)} times in {m.file}")
    try:
        path.write_bytes(text.replace(m.old, m.new, 1).encode())
        rc, out, seconds = _run_pytest(m.tests, timeout, env)
    finally:
        path.write_bytes(original)
        if _sha(path.read_bytes()) != _sha(original):
            raise SystemExit(f"mutant {m.id}: {m.file} was not restored")
    row = {"id": m.id, "layer": m.layer, "file": m.file, "description": m.description,
           "tests": list(m.tests), "seconds": round(seconds, 1)}
    if m.history:
        row["history"] = m.history
    if rc is None:
        row.update(killed=m.timeout_kills, status="timeout",
                   note=f"no result within {timeout:.0f} s" + (" (documented: a hang is the symptom)"
                                                                  if m.timeout_kills else ""))
    elif rc == 0:
        row.update(killed=False, status="survived")
    elif rc == 1:
        row.update(killed=True, status="killed", evidence=_evidence(out))
    elif rc == 2:
        row.update(killed=True, status="killed", evidence=_evidence(out),
                   note="pytest interrupted or a collection error (the mutated source fails to load)")
    elif rc == 5:
        row.update(killed=False, status="error", note="the selection collected no test: fix the list")
    else:
        row.update(killed=False, status="error", note=f"pytest exit {rc}: {_evidence(out)}")
    if not row["killed"]:
        row["reason"] = m.reason or "UNEXPLAINED: no test catches this mutant and no reason is written"
        row["output_tail"] = "\n".join(out.splitlines()[-15:])
    return row


def run_baseline(mutants: list[Mutant], timeout: float, env: dict) -> list[dict]:
    """Each distinct selection of ``mutants`` on the unmutated sources: it must pass."""
    rows, seen = [], set()
    for m in mutants:
        if m.tests in seen:
            continue
        seen.add(m.tests)
        print(f"baseline: {' '.join(m.tests)} ...", end=" ", flush=True)
        rc, out, seconds = _run_pytest(m.tests, timeout, env)
        row = {"tests": list(m.tests), "passed": rc == 0, "seconds": round(seconds, 1)}
        if rc != 0:
            row["exit"] = rc
            row["output_tail"] = "\n".join(out.splitlines()[-15:])
        rows.append(row)
        print(f"{'passed' if rc == 0 else f'FAILED (exit {rc})'} in {seconds:.0f} s", flush=True)
    return rows


def product_status() -> str:
    try:
        return subprocess.run(["git", "status", "--porcelain", "--", *PRODUCT_DIRS], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return ""


def plot(rows: list[dict], path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    layers = ["rtl", "hls", "golden", "passes"]
    total = [sum(r["layer"] == l for r in rows) for l in layers]
    killed = [sum(r["layer"] == l and r["killed"] for r in rows) for l in layers]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.bar(layers, total, color="#d9d9d9", label="mutants")
    ax.bar(layers, killed, color="#3b7dd8", label="killed")
    for i, (k, t) in enumerate(zip(killed, total)):
        ax.text(i, t + 0.2, f"{k}/{t}", ha="center", fontsize=9)
    n, k = sum(total), sum(killed)
    ax.set_title(f"lbgen mutation score {k}/{n} = {k / max(n, 1):.0%}")
    ax.set_ylabel("mutants")
    ax.set_ylim(0, max(total + [1]) + 2)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="", help="comma-separated mutant ids")
    ap.add_argument("--list", action="store_true", help="print the mutants and their tests, run nothing")
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per mutant")
    ap.add_argument("--out", type=Path, default=RESULTS / "mutation.json")
    ap.add_argument("--no-baseline", action="store_true",
                    help="skip running each selection on the unmutated sources first")
    args = ap.parse_args(argv)

    problems = check_list()
    if problems:
        print("the mutant list does not fit the sources:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    chosen = list(MUTANTS)
    if args.only:
        want = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = sorted(set(want) - {m.id for m in MUTANTS})
        if unknown:
            print(f"unknown mutant ids: {', '.join(unknown)}", file=sys.stderr)
            return 2
        chosen = [m for m in MUTANTS if m.id in want]
    if args.list:
        for m in chosen:
            print(f"{m.id:30} {m.layer:7} {m.file:32} {m.description}\n{'':30} tests: {' '.join(m.tests)}")
        print(f"{len(chosen)} mutants")
        return 0
    if product_status():
        print("the product directories have uncommitted changes; commit or stash them first:\n"
              + product_status(), file=sys.stderr)
        return 2

    cache = Path(tempfile.mkdtemp(prefix="lbgen-mutation-cache-"))
    env = dict(os.environ, LBGEN_SIM_CACHE=str(cache), PYTHONDONTWRITEBYTECODE="1")
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # unwinds through the finally blocks
    rows: list[dict] = []
    baseline: list[dict] = []
    t0 = time.monotonic()
    try:
        if not args.no_baseline:
            baseline = run_baseline(chosen, args.timeout, env)
            failed = [b for b in baseline if not b["passed"]]
            if failed:
                for b in failed:
                    print(f"baseline failed: {' '.join(b['tests'])}\n{b['output_tail']}", file=sys.stderr)
                print("a selection fails on the unmutated sources: no mutant run", file=sys.stderr)
                return 2
        for i, m in enumerate(chosen, 1):
            print(f"[{i}/{len(chosen)}] {m.id} ({m.file}) ...", end=" ", flush=True)
            row = run_mutant(m, args.timeout, env)
            rows.append(row)
            print(f"{row['status']} in {row['seconds']:.0f} s  {row.get('evidence', '')[:120]}", flush=True)
            if row["status"] == "error":
                print(row.get("note", ""), "\n", row.get("output_tail", ""), file=sys.stderr)
    finally:
        signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(cache, ignore_errors=True)
    seconds = time.monotonic() - t0

    dirty = product_status()
    killed = sum(r["killed"] for r in rows)
    score = killed / len(rows) if rows else 0.0
    result = {"killed": killed, "total": len(rows), "score": round(score, 4), "target": TARGET,
              "seconds": round(seconds, 1), "timeout": args.timeout,
              "subset": bool(args.only), "baseline": baseline, "mutants": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    if not args.only:
        plot(rows, args.out.with_suffix(".png"))

    print(f"\n{'mutant':30} {'layer':7} {'status':9} {'s':>6}  evidence / reason")
    for r in rows:
        detail = r.get("evidence") or r.get("reason", "")
        print(f"{r['id']:30} {r['layer']:7} {r['status']:9} {r['seconds']:6.0f}  {detail[:90]}")
    print(f"\nkilled {killed}/{len(rows)} = {score:.1%} (target {TARGET:.0%}) in {seconds / 60:.1f} min; "
          f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")

    if dirty:
        print("the product directories are not clean after the run:\n" + dirty, file=sys.stderr)
        return 2
    if any(r["status"] == "error" for r in rows):
        return 2
    unexplained = [r["id"] for r in rows if not r["killed"] and r["reason"].startswith("UNEXPLAINED")]
    if unexplained:
        print(f"survivors without a written reason: {', '.join(unexplained)}", file=sys.stderr)
    return 0 if score >= TARGET and not unexplained else 1


if __name__ == "__main__":
    sys.exit(main())
