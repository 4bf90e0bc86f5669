"""Vendor-flow files (issue 8, item 2): out/hls/run_vitis_hls.tcl with its test
vectors and out/rtl/<name>.core. No vendor tool runs here, so the Tcl script
runs in tclsh with every Vitis HLS command stubbed (each call recorded), the
core is parsed as YAML and its file list compiled with Icarus, and the
testbench's --expect check runs in the g++ C-simulation.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch.nn as nn
import yaml

from lbgen import golden, quant
from lbgen.csim import build_csim
from lbgen.emitters.vendor import DEFAULT_CLOCK_NS, DEFAULT_PART
from lbgen.flow import EmitOptions, emit
from lbgen.ir import DType, Graph
from lbgen.packing import unpack_stream

from lbgen_testing.common import random_bn2d_stats, small_mlp

TCLSH = shutil.which("tclsh")
VITIS_COMMANDS = ("open_project", "set_top", "add_files", "open_solution", "set_part", "create_clock",
                  "csim_design", "csynth_design", "cosim_design", "export_design")
SEP = "\x1f"


def small_cnn() -> nn.Sequential:
    """2 x 6 x 6 input, conv + max-pool, a 1x1 conv, a linear layer."""
    import torch

    torch.manual_seed(3)
    model = nn.Sequential(
        quant.QuantAct(2, clip=1.0),
        quant.IntConv2d(2, 4, 3, padding=1, bits=4), nn.BatchNorm2d(4), quant.QuantAct(2, clip=2.0),
        nn.MaxPool2d(2),
        quant.BinaryConv2d(4, 6, kernel_size=1), nn.BatchNorm2d(6), quant.QuantAct(2, clip=2.0),
        nn.Flatten(), quant.IntLinear(6 * 3 * 3, 5, bits=8),
    )
    return random_bn2d_stats(model).eval()


MODELS = {
    # a graph name that needs sanitising in the core name and is unsafe in Tcl
    "mlp": (lambda: small_mlp(4, dims=(12, 10, 8, 4)), EmitOptions(w="1", a=2), "tiny mlp $[x]"),
    "cnn": (small_cnn, EmitOptions(input_shape="2,6,6"), "small-cnn"),
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def emitted(request, tmp_path_factory):
    make, opts, name = MODELS[request.param]
    out = tmp_path_factory.mktemp(request.param) / "out"
    result = emit(make(), out, opts, name=name)
    return out, result


# ---- the Vitis HLS script, in tclsh with stubbed commands ---------------------------

STUB_PRELUDE = r"""
set ::lbgen_log [open $::env(LBGEN_STUB_LOG) w]
proc lbgen_record {name args} {
    puts $::lbgen_log [join [concat [list $name [pwd]] $args] "\x1f"]
    flush $::lbgen_log
}
foreach cmd {%(commands)s} {
    proc $cmd {args} [format {
        lbgen_record %%s {*}$args
        if {[info exists ::env(LBGEN_STUB_FAIL)] && $::env(LBGEN_STUB_FAIL) eq "%%s"} {
            error "stub: %%s failed"
        }
    } $cmd $cmd $cmd]
}
proc exit {args} { lbgen_record exit {*}$args }
set argv [list %(argv)s]
set argc [llength $argv]
source {%(script)s}
close $::lbgen_log
"""


def run_tcl(hls: Path, tmp_path: Path, argv: tuple[str, ...] = (), cwd: Path | None = None,
            fail: str | None = None, script: str = "run_vitis_hls.tcl"):
    """Source the script in tclsh with the Vitis commands stubbed; return (process, calls)."""
    log = tmp_path / "calls.log"
    prelude = tmp_path / "prelude.tcl"
    prelude.write_text(STUB_PRELUDE % {"commands": " ".join(VITIS_COMMANDS),
                                       "argv": " ".join("{" + a + "}" for a in argv), "script": script})
    env = dict(os.environ, LBGEN_STUB_LOG=str(log))
    env.pop("LBGEN_STUB_FAIL", None)
    if fail:
        env["LBGEN_STUB_FAIL"] = fail
    proc = subprocess.run([TCLSH, str(prelude)], cwd=cwd or hls, env=env, capture_output=True, text=True,
                          timeout=60)
    calls = [line.split(SEP) for line in log.read_text().splitlines()] if log.exists() else []
    return proc, calls


def _named(calls, name):
    return [c for c in calls if c[0] == name]


def _option(args: list[str], flag: str) -> str:
    assert flag in args, (flag, args)
    return args[args.index(flag) + 1]


needs_tclsh = pytest.mark.skipif(TCLSH is None, reason="needs tclsh (scripts/setup.sh installs tcl)")


@needs_tclsh
def test_vitis_script_runs_the_whole_flow_with_defaults(emitted, tmp_path):
    out, result = emitted
    hls = out / "hls"
    script = (hls / "run_vitis_hls.tcl").read_text()
    head = script.split("\n\n")[0]
    assert "vitis_hls -f run_vitis_hls.tcl" in head and "-tclargs" in head and "csim_design" in script
    proc, calls = run_tcl(hls, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    names = [c[0] for c in calls]
    # the order of the flow
    first = {n: names.index(n) for n in VITIS_COMMANDS}
    assert [n for n in names if n != "add_files"] == ["open_project", "set_top", "open_solution", "set_part",
                                                      "create_clock", "csim_design", "csynth_design",
                                                      "cosim_design", "export_design", "exit"]
    assert first["set_top"] < first["add_files"] < first["open_solution"]
    assert max(i for i, n in enumerate(names) if n == "add_files") < first["open_solution"]
    # every call runs in out/hls, whatever the caller's directory
    assert {Path(c[1]).resolve() for c in calls} == {hls.resolve()}
    assert "-reset" in _named(calls, "open_project")[0][2:]
    # the real top: the function lbgen_top.cpp defines
    defined = re.findall(r"^void\s+(\w+)\s*\(", (hls / "lbgen_top.cpp").read_text(), flags=re.M)
    assert _named(calls, "set_top")[0][2:] == defined == ["lbgen_top"]
    # the files: every one exists; design = all C++ but the testbench; tb = testbench + vectors
    design, tb = [], []
    for c in _named(calls, "add_files"):
        args = c[2:]
        files = [a for i, a in enumerate(args) if not a.startswith("-") and (i == 0 or args[i - 1] != "-cflags")]
        assert len(files) == 1, args
        path = Path(c[1]) / files[0]
        assert path.is_file(), path
        (tb if "-tb" in args else design).append(files[0])
        if path.suffix in (".cpp", ".h", ".hpp"):
            cflags = _option(args, "-cflags").split()
            assert "-std=c++14" in cflags
            incs = [Path(f[2:]) for f in cflags if f.startswith("-I")]
            assert any((d / "lbgen_top.h").is_file() and (d / "lbgen_mvau.hpp").is_file() for d in incs), cflags
    cxx = {p.name for p in hls.iterdir() if p.suffix in (".cpp", ".h", ".hpp")}
    assert set(design) == cxx - {"tb_csim.cpp"} and "lbgen_top.cpp" in design
    assert tb == ["tb_csim.cpp", "tb_in.hex", "tb_expected.hex"]
    # solution, part, clock (defaults)
    assert _option(_named(calls, "open_solution")[0][2:], "-flow_target") == "vivado"
    assert _named(calls, "set_part")[0][2:] == [DEFAULT_PART] == ["xc7z020clg400-1"]
    assert float(_option(_named(calls, "create_clock")[0][2:], "-period")) == DEFAULT_CLOCK_NS == 5.0
    # csim and cosim run on the emitted vectors and compare with the expected file
    for name in ("csim_design", "cosim_design"):
        argv = _option(_named(calls, name)[0][2:], "-argv").split()
        assert argv[:2] == ["tb_in.hex", "tb_out.hex"] and argv[2:] == ["--expect", "tb_expected.hex"], argv
    assert _option(_named(calls, "cosim_design")[0][2:], "-rtl") == "verilog"
    assert _option(_named(calls, "export_design")[0][2:], "-format") == "ip_catalog"
    assert f"{len(result.vectors.values)} test frames" in proc.stdout


@needs_tclsh
@pytest.mark.parametrize("argv", [("xcu50-fsvh2104-2-e", "3.33"),
                                  ("-f", "run_vitis_hls.tcl", "-tclargs", "xcu50-fsvh2104-2-e", "3.33")],
                         ids=["tclargs", "whole-command-line"])
def test_vitis_script_part_and_clock_from_the_command_line(emitted, tmp_path, argv):
    hls = emitted[0] / "hls"
    # sourced from another directory by its absolute path: it still works in out/hls
    proc, calls = run_tcl(hls, tmp_path, argv, cwd=tmp_path, script=str(hls / "run_vitis_hls.tcl"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _named(calls, "set_part")[0][2:] == ["xcu50-fsvh2104-2-e"]
    assert _option(_named(calls, "create_clock")[0][2:], "-period") == "3.33"
    assert all(Path(c[1]).resolve() == hls.resolve() for c in calls)
    # only the part: the default clock
    proc, calls = run_tcl(hls, tmp_path, ("xc7a35ticsg324-1L",))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _named(calls, "set_part")[0][2:] == ["xc7a35ticsg324-1L"]
    assert float(_option(_named(calls, "create_clock")[0][2:], "-period")) == 5.0


@needs_tclsh
@pytest.mark.parametrize("argv, message", [(("3.33",), "is a number"), (("xc7z020clg400-1", "0"), "positive"),
                                           (("xc7z020clg400-1", "fast"), "positive"),
                                           (("a", "1", "b"), "at most two")])
def test_vitis_script_rejects_bad_arguments_before_any_command(emitted, tmp_path, argv, message):
    proc, calls = run_tcl(emitted[0] / "hls", tmp_path, argv)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr
    assert [c for c in calls if c[0] in VITIS_COMMANDS] == []  # (tclsh ends an error with `exit 1`)


@needs_tclsh
@pytest.mark.parametrize("step", ["csim_design", "cosim_design"])
def test_vitis_script_stops_at_a_failing_step(emitted, tmp_path, step):
    proc, calls = run_tcl(emitted[0] / "hls", tmp_path, fail=step)
    assert proc.returncode != 0 and f"stub: {step} failed" in proc.stderr
    names = [c[0] for c in calls if c[0] in VITIS_COMMANDS]
    assert names[-1] == step and "export_design" not in names


# ---- the test vectors and the testbench's --expect check ------------------------------

def test_testbench_vectors_are_the_emitted_inputs_and_the_golden_outputs(emitted):
    out, result = emitted
    graph = Graph.load(out)
    first, last = graph.layers[0], graph.layers[-1]
    x = np.load(out / "sim" / "inputs.npy")
    n = len(x)

    def frames(path: Path, per_frame: int, width: int) -> list[list[int]]:
        lines = path.read_text().split()
        assert len(lines) == n * per_frame and {len(s) for s in lines} == {(width + 3) // 4}
        beats = [int(s, 16) for s in lines]
        return [beats[i * per_frame:(i + 1) * per_frame] for i in range(n)]

    got_in = unpack_stream(frames(out / "hls" / "tb_in.hex", graph.in_len // first.simd,
                                  first.simd * first.itype.bits), first.itype, first.simd)
    assert np.array_equal(got_in, x)
    got_out = unpack_stream(frames(out / "hls" / "tb_expected.hex", last.out_len // last.pe,
                                   last.pe * last.acc_bits), DType("int", last.acc_bits), last.pe)
    assert np.array_equal(got_out, golden.run(graph, x).result)
    assert len(np.unique(got_out, axis=0)) > 1  # a test that can tell designs apart


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_testbench_expect_passes_on_golden_and_names_the_first_difference(emitted, tmp_path):
    out, _ = emitted
    hls = out / "hls"
    binary = build_csim(hls, tmp_path / "build")
    graph = Graph.load(out)
    per_frame = graph.layers[-1].out_len // graph.layers[-1].pe

    def tb(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(binary), *args], cwd=hls, capture_output=True, text=True, timeout=60)

    # the golden outputs pass, --expect before, after or among the positional arguments
    res = tb("tb_in.hex", str(tmp_path / "o1.hex"), "--expect", "tb_expected.hex")
    assert res.returncode == 0 and "PASS" in res.stdout, res.stdout + res.stderr
    assert (tmp_path / "o1.hex").read_text() == (hls / "tb_expected.hex").read_text()
    (tmp_path / "trace").mkdir()
    res = tb("tb_in.hex", str(tmp_path / "o2.hex"), str(tmp_path / "trace"), "--expect", "tb_expected.hex")
    assert res.returncode == 0 and "PASS" in res.stdout, res.stdout + res.stderr
    assert len(list((tmp_path / "trace").glob("*.hex"))) == len(graph.layers)
    res = tb("--expect", "tb_expected.hex", "tb_in.hex", str(tmp_path / "o3.hex"))
    assert res.returncode == 0, res.stderr
    # without --expect: as before, no comparison
    res = tb("tb_in.hex", str(tmp_path / "o4.hex"))
    assert res.returncode == 0 and "PASS" not in res.stdout and res.stdout.startswith("frames=")

    # one value flipped in a copy of the expected file: non-zero, the frame and the beat named
    lines = (hls / "tb_expected.hex").read_text().splitlines()
    k = len(lines) - per_frame - 1 if len(lines) > per_frame else 0
    digit = lines[k][-1]
    lines[k] = lines[k][:-1] + ("0" if digit != "0" else "1")
    bad = tmp_path / "bad_expected.hex"
    bad.write_text("\n".join(lines) + "\n")
    res = tb("tb_in.hex", str(tmp_path / "o5.hex"), "--expect", str(bad))
    assert res.returncode == 4, res.stdout + res.stderr
    assert f"1 of {len(lines)} output beats differ" in res.stderr
    assert f"first at frame {k // per_frame} beat {k % per_frame}:" in res.stderr, res.stderr
    assert "PASS" not in res.stdout
    # a frame missing from the expected file
    short = tmp_path / "short_expected.hex"
    short.write_text("\n".join(lines[:-per_frame]) + "\n")
    res = tb("tb_in.hex", str(tmp_path / "o6.hex"), "--expect", str(short))
    assert res.returncode == 4 and "FAIL" in res.stderr and f"holds {len(lines) - per_frame} beats" in res.stderr
    # usage errors keep exit status 2
    for args in (("tb_in.hex", "o.hex", "--expect"), ("tb_in.hex",), ("a", "b", "c", "d")):
        assert tb(*args).returncode == 2


# ---- the FuseSoC core --------------------------------------------------------------------

def _core(out: Path) -> tuple[Path, dict]:
    cores = list((out / "rtl").glob("*.core"))
    assert len(cores) == 1, cores
    text = cores[0].read_text()
    assert text.splitlines()[0] == "CAPI=2:"
    return cores[0], yaml.safe_load(text)


def _fileset_files(fileset: dict) -> list[str]:
    names = []
    for entry in fileset.get("files") or []:
        names.append(entry if isinstance(entry, str) else next(iter(entry)))
    return names


def test_core_file_parses_and_lists_every_rtl_file(emitted):
    out, result = emitted
    rtl = out / "rtl"
    path, core = _core(out)
    ident = re.sub(r"[^A-Za-z0-9_]", "_", result.graph.name).strip("_")
    assert path.name == f"{ident}.core"
    assert core["name"] == f"lbgen:generated:{ident}:0.1.0"
    assert re.fullmatch(r"[A-Za-z0-9_]+:[A-Za-z0-9_]+:[A-Za-z0-9_]+:\d+\.\d+\.\d+", core["name"])
    filesets = core["filesets"]
    # the Verilog in filelist.f order; every .mem copied to the work root under its own name
    assert filesets["rtl"]["file_type"] == "verilogSource"
    assert _fileset_files(filesets["rtl"]) == (rtl / "filelist.f").read_text().split()
    mems = sorted(p.name for p in rtl.glob("*.mem"))
    assert mems and filesets["mem"]["file_type"] == "user"
    assert filesets["mem"]["files"] == [{m: {"copyto": m}} for m in mems]
    assert _fileset_files(filesets["mem_vivado"]) == mems and filesets["mem_vivado"]["file_type"] == "mem"
    for fs in filesets.values():
        for name in _fileset_files(fs):
            assert (rtl / name).is_file(), name
    # the toplevel is the module lbgen_top.v defines
    modules = re.findall(r"^\s*module\s+(\w+)", (rtl / "lbgen_top.v").read_text(), flags=re.M)
    targets = core["targets"]
    assert {"default", "sim", "lint", "synth"} <= set(targets)
    for name, target in targets.items():
        assert [target["toplevel"]] == modules == ["lbgen_top"], name
        for fs in target["filesets"]:
            assert fs in filesets
        assert "rtl" in target["filesets"] and "mem" in target["filesets"]
    assert targets["sim"]["default_tool"] == "icarus" and "verilator" in targets["sim"]["tools"]
    assert targets["lint"]["tools"]["verilator"]["mode"] == "lint-only"
    assert targets["synth"]["tools"]["vivado"]["part"] == DEFAULT_PART
    assert "constraints" in targets["synth"]["filesets"]
    xdc = rtl / _fileset_files(filesets["constraints"])[0]
    assert re.search(r"create_clock -period 5\.0+ -name clk \[get_ports clk\]", xdc.read_text())


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="needs iverilog")
def test_core_file_list_compiles_and_loads_its_roms_in_icarus(emitted, tmp_path):
    """What the core's sim target does: its Verilog in its order, its .mem files in the work root."""
    out, _ = emitted
    rtl = out / "rtl"
    _, core = _core(out)
    target = core["targets"]["sim"]
    files, copies = [], []
    for fs in target["filesets"]:
        for entry in core["filesets"][fs]["files"]:
            if isinstance(entry, str):
                files.append(str(rtl / entry))
            else:
                (name, attrs), = entry.items()
                copies.append((rtl / name, tmp_path / attrs["copyto"]))
    for src, dst in copies:
        shutil.copyfile(src, dst)
    res = subprocess.run(["iverilog", "-s", target["toplevel"], "-o", "sim.vvp", *files], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    res = subprocess.run(["vvp", "-n", "sim.vvp"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "readmem" not in (res.stdout + res.stderr).lower(), res.stdout + res.stderr  # every ROM file found
    # the same without the copies: $readmemh complains (so the check above can fail)
    for _, dst in copies:
        dst.unlink()
    res = subprocess.run(["vvp", "-n", "sim.vvp"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert "readmem" in (res.stdout + res.stderr).lower()


def _fusesoc(cores_root: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """fusesoc (installed by make install beside this Python) with the project's Icarus and Verilator."""
    from lbgen.simulate import toolchain_env

    fusesoc = Path(sys.executable).parent / "fusesoc"
    assert fusesoc.is_file(), f"{fusesoc}: make install puts FuseSoC in the venv (pyproject dev extra)"
    return subprocess.run([str(fusesoc), "--cores-root", str(cores_root), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env=toolchain_env("verilator"))


def test_core_file_runs_its_sim_and_lint_targets_in_fusesoc(emitted, tmp_path):
    """FuseSoC reads the core, elaborates it with Icarus (sim target, the .mem files copied to
    its work root) and lints it with verilator -Wall (lint target); a top with an unused wire
    (not named unused_*, which Verilator exempts) fails the lint, so the lint can fail."""
    out, _ = emitted
    _, core = _core(out)
    name = core["name"]
    res = _fusesoc(out / "rtl", tmp_path, "core-info", name)
    assert res.returncode == 0 and name in res.stdout and "lint" in res.stdout, res.stdout + res.stderr
    for target in ("sim", "lint"):
        res = _fusesoc(out / "rtl", tmp_path, "run", "--target", target, name)
        assert res.returncode == 0, f"{target}:\n{res.stdout[-3000:]}{res.stderr[-3000:]}"
    dirty = shutil.copytree(out / "rtl", tmp_path / "dirty")
    top = dirty / "lbgen_top.v"
    top.write_text(top.read_text().replace("endmodule", "  wire lint_must_flag_this = rst_n;\nendmodule", 1))
    res = _fusesoc(dirty, tmp_path / "dirty", "run", "--target", "lint", name)
    assert res.returncode != 0 and "lint_must_flag_this" in res.stdout + res.stderr


# ---- which files each target writes -------------------------------------------------------

def test_vendor_files_follow_the_targets(tmp_path):
    model = small_mlp(4, dims=(12, 10, 8, 4))
    emit(model, tmp_path / "hls_only", EmitOptions(w="1", a=2), name="m", targets=("hls",))
    assert (tmp_path / "hls_only" / "hls" / "run_vitis_hls.tcl").is_file()
    assert not (tmp_path / "hls_only" / "rtl").exists()
    emit(model, tmp_path / "rtl_only", EmitOptions(w="1", a=2), name="m", targets=("rtl",))
    assert (tmp_path / "rtl_only" / "rtl" / "m.core").is_file()
    assert not (tmp_path / "rtl_only" / "hls").exists()
