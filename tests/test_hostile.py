"""Hostile and broken inputs (issue 9): every one is refused by the real CLI with exit
code 2 and a message naming the culprit, without a traceback, without running anything
from the input, and without writing anything.

Most of a CLI run that loads a model is importing torch, so independent runs of one
test go side by side (``run_side_by_side``); nothing here builds a simulator.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from lbgen import quant
from lbgen.errors import UsageError

from lbgen_testing.common import DIGITS, assert_usage_error, run_cli, small_mlp

MODEL = DIGITS / "digits_w1a2.pt"


def run_side_by_side(cases: dict) -> dict[str, subprocess.CompletedProcess]:
    """name -> argument tuple of ``run_cli`` (or a ready callable); one run per core at a time."""
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {name: pool.submit(args if callable(args) else partial(run_cli, *args))
                   for name, args in cases.items()}
        return {name: f.result() for name, f in futures.items()}


# -- 1. a pickle that would run code ------------------------------------------------------

class _Payload:
    """Unpickling it runs a shell command that prints (a text that appears nowhere in
    the pickle: the shell computes it) and leaves a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"echo payload-ran-$((6*7)); touch {self.marker}",))


ARCH = """
import torch.nn as nn
from lbgen import quant

def make():
    return nn.Sequential(quant.QuantAct(4), quant.IntLinear(8, 4, bits=8), quant.QuantAct(2),
                         quant.IntLinear(4, 2, bits=8)).eval()
"""


def test_code_running_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "ran"
    files = {name: tmp_path / f"{name}.pt" for name in ("torch.save", "protocol 2", "protocol 5", "state_dict")}
    torch.save({"model": _Payload(marker)}, files["torch.save"])
    files["protocol 2"].write_bytes(pickle.dumps(_Payload(marker), protocol=2))
    files["protocol 5"].write_bytes(pickle.dumps(_Payload(marker), protocol=5))
    (tmp_path / "arch.py").write_text(ARCH)
    namespace: dict = {}
    exec(ARCH, namespace)
    state = namespace["make"]().state_dict()
    state["1.bias"] = _Payload(marker)          # hidden among real tensors
    torch.save(state, files["state_dict"])
    outs = {name: tmp_path / f"out-{i}" for i, name in enumerate(files)}
    procs = run_side_by_side({
        name: ("emit", path, "-o", outs[name], *(("--arch", f"{tmp_path / 'arch.py'}:make")
                                                 if name == "state_dict" else ()))
        for name, path in files.items()})
    for name, proc in procs.items():
        label = "state_dict file" if name == "state_dict" else "model file"
        assert_usage_error(proc, f"{label} '{files[name]}' refused", "Nothing from it was run",
                           "system", out=outs[name])          # the global it would call, named
        assert ("--trust" in proc.stderr) == (name != "state_dict"), (name, proc.stderr)  # --arch never runs it
        assert "payload-ran-42" not in proc.stdout + proc.stderr, name
    assert not marker.exists()
    # the payload is live: a plain unpickler runs it, and this test would see that
    live = subprocess.run([sys.executable, "-c", "import pickle, sys; pickle.loads(open(sys.argv[1], 'rb').read())",
                           str(files["protocol 2"])], capture_output=True, text=True, timeout=60)
    assert "payload-ran-42" in live.stdout and marker.exists()


# -- 2. a truncated or empty model file -----------------------------------------------------

def test_truncated_or_empty_model_file_is_refused(tmp_path):
    data = MODEL.read_bytes()
    cuts = {"empty": 0, "1 byte": 1, "3 bytes": 3, "100 bytes": 100, "half": len(data) // 2,
            "all but the last byte": len(data) - 1}
    files = {}
    for name, n in cuts.items():
        files[name] = tmp_path / f"cut{n}.pt"
        files[name].write_bytes(data[:n])
    model = torch.load(MODEL, weights_only=False)
    torch.save(model, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)  # a plain pickle stream
    legacy = (tmp_path / "legacy.pt").read_bytes()
    files["legacy format, cut"] = tmp_path / "legacy300.pt"
    files["legacy format, cut"].write_bytes(legacy[:300])
    files["text"] = tmp_path / "text.pt"
    files["text"].write_text("hello world\n")
    out = tmp_path / "out"
    procs = run_side_by_side({name: ("emit", path, "-o", out) for name, path in files.items()})
    for name, proc in procs.items():
        what = "is empty" if name == "empty" else "cannot be read as a torch model"
        assert_usage_error(proc, f"model file '{files[name]}' {what}", out=out)
        assert "refused" not in proc.stderr, (name, proc.stderr)    # broken, not unsafe


# -- 3. NaN and Inf ---------------------------------------------------------------------

def _named_mlp(g: torch.Generator) -> nn.Sequential:
    def bn(c: int) -> nn.BatchNorm1d:
        m = nn.BatchNorm1d(c)
        m.running_var.uniform_(0.5, 2.0, generator=g)
        return m

    return nn.Sequential(OrderedDict([
        ("inq", quant.QuantAct(4)), ("fc_a", quant.IntLinear(8, 6, bits=8)), ("bn_a", bn(6)),
        ("act_a", quant.QuantAct(2)), ("fc_b", quant.IntLinear(6, 4, bits=4)), ("bn_b", bn(4)),
        ("act_b", quant.QuantAct(2)), ("fc_out", quant.IntLinear(4, 2, bits=8)),
    ])).eval()


def test_nan_and_inf_parameters_name_every_layer(tmp_path):
    """Before: a NaN weight was caught, but an Inf bias, an Inf running mean and a NaN
    output bias folded silently into a written design, and a NaN running variance was
    blamed on the linear layer before it."""
    model = _named_mlp(torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.fc_a.weight[2, 3] = float("nan")
        model.bn_a.running_var[1] = float("nan")
        model.fc_b.bias[0] = float("inf")
        model.bn_b.running_mean[3] = -float("inf")
        model.fc_out.bias[1] = float("nan")
    torch.save(model, tmp_path / "nan.pt")
    # a float model quantized post-training: NaN in a plain Linear's weight
    flt = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2)).eval()
    with torch.no_grad():
        flt[2].weight[0, 0] = float("inf")
    torch.save(flt, tmp_path / "float.pt")
    np.save(tmp_path / "calib.npy", np.random.default_rng(0).uniform(0, 1, (16, 8)).astype(np.float32))
    out = tmp_path / "out"
    procs = run_side_by_side({
        "quantized": ("emit", tmp_path / "nan.pt", "-o", out),
        "float": ("emit", tmp_path / "float.pt", "--calib", tmp_path / "calib.npy", "--w", "4", "--a", "4",
                  "-o", out)})
    assert_usage_error(procs["quantized"], "layer fc_a: weights are NaN or Inf (IntLinear.weight: 1 of 48 values)",
                       "layer bn_a: running_var is NaN or Inf", "layer fc_b: bias is NaN or Inf",
                       "layer bn_b: running_mean is NaN or Inf", "layer fc_out: bias is NaN or Inf", out=out)
    assert_usage_error(procs["float"], "layer 2: weights are NaN or Inf (Linear.weight: 1 of 8 values)", out=out)


# -- 4. zero-sized layers -----------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors is a no-op")
def test_zero_sized_layers_are_named(tmp_path):
    """Before: an IndexError traceback from the weight scale (an amax over nothing)."""
    model = nn.Sequential(OrderedDict([
        ("inq", quant.QuantAct(4)), ("no_outputs", quant.IntLinear(8, 0, bits=8)), ("act", quant.QuantAct(2)),
        ("no_inputs", quant.IntLinear(0, 2, bits=8))])).eval()
    torch.save(model, tmp_path / "zero.pt")
    out = tmp_path / "out"
    assert_usage_error(run_cli("emit", tmp_path / "zero.pt", "-o", out),
                       "layer no_outputs (IntLinear): zero-sized (0x8 weights",
                       "layer no_inputs (IntLinear): zero-sized (2x0 weights", out=out)


# -- 5. bit widths out of range ---------------------------------------------------------------

def test_bit_width_options_out_of_range_are_usage_errors(tmp_path):
    out = tmp_path / "out"
    cases = {f"--w {w}": ("emit", MODEL, "--w", w, "-o", out) for w in ("9", "0", "log2:7", "log2:1", "4.5", "two",
                                                                         "nan")}
    cases.update({f"--a {a}": ("emit", MODEL, "--a", a, "-o", out) for a in ("0", "9", "-1")})
    for option, proc in run_side_by_side(cases).items():
        needle = f"{option}: activation bits must be 1..8" if option.startswith("--a") else option
        assert_usage_error(proc, needle, out=out)


def test_saved_quantizers_with_out_of_range_bits_are_all_named(tmp_path):
    """A tampered file whose input quantizer says bits=0 and whose hidden layer says
    weight_bits=12: both named in one message (before: only the first one found)."""
    model = small_mlp(0, dims=(8, 6, 4, 2), w_hidden=4)
    model[0].bits = 0               # the input quantizer
    model[4].weight_bits = 12       # the hidden IntLinear
    torch.save(model, tmp_path / "bits.pt")
    out = tmp_path / "out"
    assert_usage_error(run_cli("emit", tmp_path / "bits.pt", "-o", out),
                       "activation 0 (QuantAct): 0 bits, expected 1..8",
                       "layer 4 (IntLinear): not a valid weight format (weight_kind='int', weight_bits=12)", out=out)


# -- 6. a broken folding file ---------------------------------------------------------------

def test_folding_file_problems_name_the_file_and_entry(tmp_path):
    docs = {
        "malformed": ('{"fc0": {"pe": 8', "not valid JSON"),
        "a list": ('[{"pe": 8}]', "expected an object {layer: {pe, simd}}, not a JSON list"),
        "not an object": ('{"fc0": 8}', "layer 'fc0' needs an object with 'pe' and/or 'simd', not 8"),
        "a string": ('{"fc0": {"pe": "8"}}', "layer 'fc0' pe='8' is not a positive integer"),
        "a float": ('{"fc0": {"simd": 2.5}}', "layer 'fc0' simd=2.5 is not a positive integer"),
        "zero": ('{"fc0": {"pe": 0}}', "layer 'fc0' pe=0 is not a positive integer"),
        "unknown key": ('{"fc0": {"pe": 8, "lanes": 2}}', "layer 'fc0' has unknown keys 'lanes'"),
        "unknown layers": ('{"fc0": {"pe": 8}, "fc7": {"pe": 1}, "conv": {}}',
                           "--folding names unknown layers: conv, fc7 (layers: fc0 (1), fc1 (4), fc2 (7))"),
    }
    cases, paths = {}, {}
    for name, (text, _) in docs.items():
        paths[name] = tmp_path / f"{name.replace(' ', '_')}.json"
        paths[name].write_text(text)
        cases[name] = ("emit", MODEL, "--folding", paths[name], "-o", tmp_path / "out")
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00")
    cases["binary"] = ("emit", MODEL, "--folding", tmp_path / "binary.json", "-o", tmp_path / "out")
    cases["a directory"] = ("emit", MODEL, "--folding", tmp_path, "-o", tmp_path / "out")
    procs = run_side_by_side(cases)
    for name, (_, needle) in docs.items():
        named = "--folding" if name == "unknown layers" else f"--folding file '{paths[name]}'"
        assert_usage_error(procs[name], named, needle, out=tmp_path / "out")
    assert_usage_error(procs["binary"], f"--folding file '{tmp_path / 'binary.json'}': not valid JSON",
                       out=tmp_path / "out")
    assert_usage_error(procs["a directory"], f"--folding file '{tmp_path}' cannot be read", out=tmp_path / "out")


# -- 7. a tampered out/ given to lbgen sim ---------------------------------------------------

@pytest.fixture(scope="module")
def emitted(tmp_path_factory):
    """A small design (hidden layer with the binary-search threshold unit) emitted once."""
    from lbgen.flow import EmitOptions, emit

    out = tmp_path_factory.mktemp("emitted") / "out"
    emit(small_mlp(0, dims=(8, 4, 2)), out, EmitOptions(), name="small")
    assert (out / "rtl" / "fc0_thr1_0003.mem").is_file() and (out / "manifest.json").is_file()
    return out


def _edit_json(path: Path, edit) -> None:
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


def _edit_lines(path: Path, edit) -> None:
    path.write_text("".join(f"{line}\n" for line in edit(path.read_text().splitlines())))


def _layer0(key, value):
    return lambda doc: doc["nodes"][0].__setitem__(key, value)


#: name -> (tampering of out/, fragments of the manifest check's message, fragments with --allow-modified
#: -- the first one the path in out/ the message begins with -- or None where the change is structurally
#: sound and only the manifest can tell)
TAMPERED = {
    "lbgen.json not JSON": (lambda o: (o / "lbgen.json").write_text("{"), ["changed: lbgen.json"],
                            ["lbgen.json: not valid JSON"]),
    "mh edited": (lambda o: _edit_json(o / "lbgen.json", _layer0("mh", 5)), ["changed: lbgen.json"],
                  ["ir/fc0.weights.npy: shape (4, 8), but layer 'fc0' in lbgen.json is 5x8"]),
    "acc_bits edited": (lambda o: _edit_json(o / "lbgen.json", _layer0("acc_bits", 24)), ["changed: lbgen.json"],
                        ["rtl/fc0_thr0_0000.mem: line 1 is", "not a 25-bit word (1 word of 25 bits"]),
    "weight bits edited": (lambda o: _edit_json(o / "lbgen.json", _layer0("wtype", {"kind": "int", "bits": 0})),
                           ["changed: lbgen.json"], ["lbgen.json: layer 'fc0' wtype: bit width 0 out of range"]),
    "IR version edited": (lambda o: _edit_json(o / "lbgen.json", lambda d: d.__setitem__("lbgen_ir", 3)),
                          ["changed: lbgen.json"], ["lbgen.json: IR version 3, expected 2; emit the model again"]),
    "IR array values": (lambda o: np.save(o / "ir" / "fc0.weights.npy", -np.load(o / "ir" / "fc0.weights.npy")),
                        ["changed: ir/fc0.weights.npy"], None),
    "IR array shape": (lambda o: np.save(o / "ir" / "fc1.weights.npy", np.ones((2, 3), dtype=np.int64)),
                       ["changed: ir/fc1.weights.npy"], ["ir/fc1.weights.npy: shape (2, 3)"]),
    "IR array floats": (lambda o: np.save(o / "ir" / "fc0.thresholds.npy",
                                          np.load(o / "ir" / "fc0.thresholds.npy") + 0.5),
                        ["changed: ir/fc0.thresholds.npy"],
                        ["ir/fc0.thresholds.npy: a float64 array, expected integers"]),
    ".mem too few words": (lambda o: _edit_lines(o / "rtl" / "fc0_thr1_0002.mem", lambda ls: ls[:-1]),
                           ["changed: rtl/fc0_thr1_0002.mem"],
                           ["rtl/fc0_thr1_0002.mem: 1 line, but the IR implies 2 words of 32 bits"]),
    ".mem too many words": (lambda o: _edit_lines(o / "rtl" / "fc1_weights.mem", lambda ls: ls + ls),
                            ["changed: rtl/fc1_weights.mem"],
                            ["rtl/fc1_weights.mem: 2 lines, but the IR implies 1 word of 64 bits"]),
    ".mem word too wide": (lambda o: _edit_lines(o / "rtl" / "fc0_thr0_0001.mem", lambda ls: ["0" + ls[0]]),
                           ["changed: rtl/fc0_thr0_0001.mem"], ["rtl/fc0_thr0_0001.mem: line 1 is",
                                                                "not a 33-bit word (1 word of 33 bits (9 hex digits"]),
    ".mem word over its bits": (lambda o: _edit_lines(o / "rtl" / "fc0_thr0_0001.mem", lambda ls: ["f" + ls[0][1:]]),
                                ["changed: rtl/fc0_thr0_0001.mem"],
                                ["rtl/fc0_thr0_0001.mem: line 1 is 'f", "not a 33-bit word"]),
    ".mem not hex": (lambda o: _edit_lines(o / "rtl" / "fc0_weights.mem", lambda ls: ["zz" + ls[0][2:]]),
                     ["changed: rtl/fc0_weights.mem"], ["rtl/fc0_weights.mem: line 1 is 'zz", "not a hex word"]),
    ".mem missing": (lambda o: (o / "rtl" / "fc0_thr1_0003.mem").unlink(), ["missing: rtl/fc0_thr1_0003.mem"],
                     ["rtl/fc0_thr1_0003.mem: missing; the RTL reads this ROM image (2 words of 32 bits"]),
    "HLS parameter": (lambda o: _edit_lines(o / "hls" / "lbgen_params.h",
                                            lambda ls: [line.replace("MW = 8;", "MW = 9;") for line in ls]),
                      ["changed: hls/lbgen_params.h"],
                      ["hls/lbgen_params.h: line", "'static const unsigned MW = 9;', expected "
                       "'static const unsigned MW = 8;'"]),
    "manifest missing": (lambda o: (o / "manifest.json").unlink(),
                         ["manifest.json: not found", "re-emit it, or pass --allow-modified"], None),
    "manifest escapes": (lambda o: _edit_json(o / "manifest.json",
                                              lambda d: d["sha256"].__setitem__("../x", "0" * 64)),
                         ["manifest.json: not a manifest lbgen emit writes"], None),
}


def test_tampered_output_is_refused_before_any_simulator(emitted, tmp_path):
    """Each tampering refused by ``lbgen sim``, named: by the CLI with --allow-modified where
    it breaks the structure the IR implies (and then also by the manifest, checked here
    in-process), else by the CLI's manifest check. Nothing is built: no out/build (C-sim),
    no simulator cache."""
    from lbgen.integrity import check_manifest

    env = dict(os.environ, LBGEN_SIM_CACHE=str(tmp_path / "sim-cache"))
    cases, outs = {}, {}
    for i, (name, (tamper, _, allowed)) in enumerate(TAMPERED.items()):
        outs[name] = shutil.copytree(emitted, tmp_path / f"t{i}")
        tamper(outs[name])
        extra = ("--allow-modified",) if allowed is not None else ()
        cases[name] = partial(run_cli, "sim", outs[name], "--simulator", "csim" if i % 2 else "icarus", *extra,
                              env=env)
    procs = run_side_by_side(cases)
    for name, (_, by_manifest, allowed) in TAMPERED.items():
        if allowed is None:
            assert_usage_error(procs[name], str(outs[name]), *by_manifest)
        else:
            assert_usage_error(procs[name], f"error: {outs[name]}/{allowed[0]}", *allowed[1:])  # the culprit first
            with pytest.raises(UsageError) as exc:
                check_manifest(outs[name])
            assert all(fragment in str(exc.value) for fragment in by_manifest), (name, str(exc.value))
        assert not (outs[name] / "build").exists(), name
    assert not (tmp_path / "sim-cache").exists()


def test_manifest_covers_what_emit_wrote_and_nothing_written_later(emitted, tmp_path):
    """Every emitted file has its sha256, the manifest and what sim/report add later
    (build/, report/, report.html) none; adding those leaves the check passing."""
    from lbgen.integrity import check_manifest

    out = shutil.copytree(emitted, tmp_path / "out")
    listed = set(json.loads((out / "manifest.json").read_text())["sha256"])
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert listed == on_disk - {"manifest.json"}
    for rel in ("build/csim/tb_csim", "report/report.json", "report.html"):
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text("later")
    check_manifest(out)
    (out / "folding.json").write_text("{}\n")
    with pytest.raises(UsageError, match="changed: folding.json"):
        check_manifest(out)


def test_a_flipped_rom_bit_passes_the_structure_check(emitted, tmp_path):
    """What --allow-modified is for: a mutation keeps every ROM's size and word width and
    the HLS parameters' shape, so only the manifest objects."""
    from lbgen.integrity import check_manifest, verified_graph

    out = shutil.copytree(emitted, tmp_path / "out")
    mem = out / "rtl" / "fc0_weights.mem"
    word = mem.read_text().splitlines()[0]
    mem.write_text(f"{int(word, 16) ^ (1 << 77):0{len(word)}x}\n")
    params = out / "hls" / "lbgen_params.h"
    text = params.read_text()
    flipped = re.sub(r'\("0x([0-9a-f])', lambda m: f'("0x{int(m[1], 16) ^ 1:x}', text, count=1)  # one ROM word
    assert flipped != text
    params.write_text(flipped)
    graph = verified_graph(out, allow_modified=True)
    assert graph.name == "small"
    with pytest.raises(UsageError, match=r"changed: hls/lbgen_params.h, rtl/fc0_weights.mem"):
        check_manifest(out)


@pytest.mark.parametrize("value", [0, -1, 2**70, 1.5, "x", None, [], {}])
def test_every_ir_field_with_a_hostile_value_is_a_usage_error(emitted, tmp_path, value):
    """lbgen.json edited anywhere (under --allow-modified: the manifest would name it) gives
    a UsageError naming a file of out/ before any simulator, never another exception (before:
    a ZeroDivisionError for PE 0, a ValueError traceback for a width given as text)."""
    from lbgen.cli import prepare_sim

    out = shutil.copytree(emitted, tmp_path / "out")
    doc = json.loads((out / "lbgen.json").read_text())

    def leaves(node, path=()):
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else None
        if items is None:
            yield path
            return
        for key, child in items:
            yield from leaves(child, path + (key,))

    for path in [p for p in leaves(doc) if p[:1] != ("meta",)]:
        edited = json.loads(json.dumps(doc))
        node = edited
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        (out / "lbgen.json").write_text(json.dumps(edited))
        try:
            prepare_sim(out, allow_modified=True)       # all that lbgen sim does before a simulator
        except UsageError as exc:
            assert str(out) in str(exc), (path, str(exc))                # names a file of out/


# -- 8. an output that is a file, or below one ------------------------------------------------

def test_output_that_is_a_file_or_below_a_file_is_refused_up_front(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    procs = run_side_by_side({"file": ("emit", MODEL, "-o", afile),
                              "below": ("emit", MODEL, "-o", afile / "sub" / "out")})
    assert_usage_error(procs["file"], f"output '{afile}' exists and is not a directory")
    assert_usage_error(procs["below"], f"output '{afile / 'sub' / 'out'}': cannot be written, '{afile}' is a file")
    assert afile.read_text() == "x"
    assert [p.name for p in tmp_path.iterdir()] == ["afile"]          # no temporary sibling either


# -- 9. no write permission ---------------------------------------------------------------------

NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")


def test_output_without_write_permission_is_refused():
    """As root, chmod does not stop a write: the CLI then runs as the unprivileged user
    65534 against a root-owned 0555 directory."""
    user: tuple[str, ...] = ()
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root and setpriv (util-linux) is missing: cannot drop privileges")
        probe = run_cli("--help", user=NOBODY, cwd="/")
        if probe.returncode != 0:
            pytest.skip(f"user 65534 cannot run lbgen (repository or venv not readable): {probe.stderr[-300:]}")
        user = NOBODY
    base = Path(tempfile.mkdtemp(prefix="lbgen-hostile-"))     # not below pytest's 0700 tmp_path
    try:
        locked = base / "locked"
        locked.mkdir()
        base.chmod(0o755)
        locked.chmod(0o555)
        out = locked / "out"
        proc = run_cli("emit", MODEL, "-o", out, user=user, cwd="/")
        assert_usage_error(proc, f"output '{out}': cannot be written, no write permission in '{locked.resolve()}'")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)
        shutil.rmtree(base)


# -- rich markup in a user's path ----------------------------------------------------------------

def test_paths_with_markup_and_emoji_codes_are_printed_as_they_are(tmp_path):
    """Before: "[/x]" in a path crashed the error printer (MarkupError traceback), and
    ":x:" became an emoji, so the message named a file that does not exist."""
    (tmp_path / "a[").mkdir()
    bad = tmp_path / "a[" / "x]b.pt"            # the path reads a[/x]b.pt
    odd = tmp_path / "m[red]:x:.pt"
    procs = run_side_by_side({"closing tag": ("emit", bad, "-o", tmp_path / "out"),
                              "emoji": ("emit", odd, "-o", tmp_path / "out")})
    assert_usage_error(procs["closing tag"], f"model file '{bad}' not found")
    assert_usage_error(procs["emoji"], f"model file '{odd}' not found")
