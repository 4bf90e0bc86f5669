"""Files for the vendor flows (written here, run by the user where the tools are).

``emit_vendor(graph, out_dir, targets, inputs, expected)`` writes, after
``emit_rtl``/``emit_hls`` have filled ``out_dir/rtl`` and ``out_dir/hls``:

* with ``"hls"`` in ``targets``, into ``out_dir/hls``:

  - ``run_vitis_hls.tcl``: ``vitis_hls -f run_vitis_hls.tcl [-tclargs PART
    [CLOCK_NS]]`` opens a project, adds the C++ and the testbench, runs
    csim_design, csynth_design, cosim_design and export_design (IP catalog);
  - ``tb_in.hex``: the test vectors (``out/sim/inputs.npy``) packed as
    ``lbgen.csim.run_csim`` packs them;
  - ``tb_expected.hex``: the golden model's outputs (``Trace.result``: raw
    accumulators, levels, or the top-K indices) packed as
    the testbench writes its output file, so csim and cosim fail when the
    hardware differs (``tb_csim ... --expect tb_expected.hex``);

* with ``"rtl"`` in ``targets``, into ``out_dir/rtl``:

  - ``<graph name>.core``: a FuseSoC CAPI=2 core (Verilog in filelist.f
    order, the ``.mem`` files copied to the work root, targets default, sim,
    lint and synth);
  - ``lbgen_top.xdc``: the clock constraint of the synth target.

Python decides every file list, name, part and clock here; the templates in
``templates/vendor`` only format.
"""

from __future__ import annotations

import importlib.resources
import json
import re
from pathlib import Path
from typing import Any, Optional, Sequence

import jinja2

import numpy as np

from ..ir import Graph, IRError
from ..packing import pack_stream
from .hls import GENERATED as HLS_GENERATED
from .hls import library_files as hls_library_files
from .rtl import TOP as RTL_TOP

#: the default part (Zynq-7020, as on the PYNQ-Z2 / Zybo Z7-20 boards)
DEFAULT_PART = "xc7z020clg400-1"
#: the default clock period in ns (200 MHz)
DEFAULT_CLOCK_NS = 5.0

TCL_SCRIPT = "run_vitis_hls.tcl"
TB_IN = "tb_in.hex"
TB_EXPECTED = "tb_expected.hex"
TB_OUT = "tb_out.hex"
#: the testbench source among the generated HLS files (everything else is the design)
TB_SOURCE = "tb_csim.cpp"
XDC = f"{RTL_TOP}.xdc"
CORE_VERSION = "0.1.0"

#: names that go into Tcl and YAML unquoted must be plain file names
_PLAIN = re.compile(r"^[A-Za-z0-9_.+-]+$")


class VendorEmitError(IRError):
    """The emitted design is not what the vendor files expect (names the file)."""


def _template(name: str) -> jinja2.Template:
    text = (importlib.resources.files("lbgen.templates") / "vendor" / name).read_text()
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True, autoescape=False)
    return env.from_string(text)


def sanitize_name(name: str) -> str:
    """A graph name as a FuseSoC core / project name: [A-Za-z0-9_], starting with a letter."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", str(name)).strip("_") or "model"
    if not ident[0].isalpha():
        ident = "m_" + ident
    return ident


def _comment(text: str) -> str:
    """Text safe inside a one-line comment (Tcl, YAML, XDC)."""
    return " ".join(str(text).split()).replace("\\", "/")


def _tcl_text(text: str) -> str:
    """Text safe in a Tcl comment and inside a Tcl "..." string: no $, [, \\, quotes or braces."""
    return "".join(c if c.isalnum() or c in " _-.:/()+,=" else "?" for c in " ".join(str(text).split()))


def _plain(name: str, where: str) -> str:
    if not _PLAIN.match(name):
        raise VendorEmitError(f"{where}: file name {name!r} is not a plain file name")
    return name


def _clock_text(ns: float) -> str:
    if not (isinstance(ns, (int, float)) and np.isfinite(ns) and ns > 0):
        raise VendorEmitError(f"clock period {ns!r} ns: must be a positive number")
    return f"{float(ns):g}"


def _write_hex(path: Path, frames: list[list[int]], width: int) -> None:
    """One hex beat per line, zero-padded to the width (lbgen.csim writes its input file so)."""
    from ..csim import _write_beats

    _write_beats(path, frames, width)


def hls_top_function(hls_dir: Path) -> str:
    """The top function the emitted lbgen_top.h declares (the set_top name)."""
    header = Path(hls_dir) / "lbgen_top.h"
    if not header.is_file():
        raise VendorEmitError(f"{header} is missing (emit the HLS design first)")
    tops = re.findall(r"^void\s+(\w+)\s*\(", header.read_text(), flags=re.M)
    if len(tops) != 1:
        raise VendorEmitError(f"{header}: expected one top function declaration, found {tops}")
    return tops[0]


def testbench_vectors(graph: Graph, inputs: np.ndarray, expected: np.ndarray) -> tuple[list[list[int]], int,
                                                                                   list[list[int]], int]:
    """(input frames, input beat width, expected frames, output beat width) of the testbench files."""
    first = graph.layers[0]
    out_dt, per_beat, beats = graph.output_stream()
    x = np.asarray(inputs)
    y = np.asarray(expected)
    if x.ndim != 2 or x.shape[1] != graph.in_len:
        raise VendorEmitError(f"test inputs of shape {x.shape}, expected (N, {graph.in_len})")
    if y.shape != (x.shape[0], per_beat * beats):
        raise VendorEmitError(f"expected outputs of shape {y.shape}, expected ({x.shape[0]}, {per_beat * beats})")
    # as lbgen.csim.run_csim: inputs in the first layer's format, SIMD per beat; outputs as the
    # top streams them (Graph.output_stream: raw accumulators or levels, PE per beat, or the
    # top-K indices in one beat), what the testbench writes to its output file
    return (pack_stream(x, first.itype, first.simd), first.simd * first.itype.bits,
            pack_stream(y, out_dt, per_beat), per_beat * out_dt.bits)


def hls_vendor_context(graph: Graph, hls_dir: Path, frames: int, part: str = DEFAULT_PART,
                       clock_ns: float = DEFAULT_CLOCK_NS) -> dict[str, Any]:
    """Everything run_vitis_hls.tcl renders."""
    hls_dir = Path(hls_dir)
    library = sorted(f.name for f in hls_library_files())
    generated = [n for n in HLS_GENERATED if n != TB_SOURCE]
    design = [n for n in generated if n.endswith(".cpp")] + [n for n in generated if not n.endswith(".cpp")]
    design += library
    testbench = [TB_SOURCE, TB_IN, TB_EXPECTED]
    for name in design + testbench:
        _plain(name, TCL_SCRIPT)
        if not (hls_dir / name).is_file():
            raise VendorEmitError(f"{TCL_SCRIPT}: {hls_dir / name} is missing")
    ident = sanitize_name(graph.name)
    first = graph.layers[0]
    out_beats = graph.output_stream()[2]
    return {
        "graph_name": _tcl_text(graph.name), "script": TCL_SCRIPT,
        "top": hls_top_function(hls_dir),
        "project": f"{ident}_prj", "solution": "solution1",
        "default_part": _plain(part, "part"), "default_clock_ns": _clock_text(clock_ns),
        "default_mhz": f"{1000.0 / float(clock_ns):.4g}",
        "design_files": design, "tb_files": testbench,
        # -std=c++14 as lbgen.csim compiles; the headers are in this directory
        "cflags": "-std=c++14",
        "tb_in": TB_IN, "tb_expected": TB_EXPECTED, "tb_out": TB_OUT,
        "frames": frames, "in_beats": graph.in_len // first.simd, "out_beats": out_beats,
    }


def emit_hls_vendor(graph: Graph, hls_dir: Path, inputs: np.ndarray, expected: Optional[np.ndarray] = None,
                    *, part: str = DEFAULT_PART, clock_ns: float = DEFAULT_CLOCK_NS) -> None:
    """Write run_vitis_hls.tcl, tb_in.hex and tb_expected.hex into ``hls_dir`` (after emit_hls)."""
    hls_dir = Path(hls_dir)
    if expected is None:
        from .. import golden

        expected = golden.run(graph, inputs).result
    in_frames, in_w, out_frames, out_w = testbench_vectors(graph, inputs, expected)
    _write_hex(hls_dir / TB_IN, in_frames, in_w)
    _write_hex(hls_dir / TB_EXPECTED, out_frames, out_w)
    ctx = hls_vendor_context(graph, hls_dir, len(in_frames), part, clock_ns)
    (hls_dir / TCL_SCRIPT).write_text(_template(TCL_SCRIPT + ".j2").render(**ctx))


def read_filelist(rtl_dir: Path) -> list[str]:
    """The Verilog files of filelist.f, in its order."""
    flist = Path(rtl_dir) / "filelist.f"
    if not flist.is_file():
        raise VendorEmitError(f"{flist} is missing (emit the RTL design first)")
    names = [line.strip() for line in flist.read_text().splitlines() if line.strip()]
    for name in names:
        _plain(name, str(flist))
        if not (Path(rtl_dir) / name).is_file():
            raise VendorEmitError(f"{flist}: {name} not found")
    return names


def rtl_top_module(rtl_dir: Path) -> str:
    """The module lbgen_top.v defines (the core's toplevel)."""
    path = Path(rtl_dir) / f"{RTL_TOP}.v"
    if not path.is_file():
        raise VendorEmitError(f"{path} is missing (emit the RTL design first)")
    modules = re.findall(r"^\s*module\s+(\w+)", path.read_text(), flags=re.M)
    if modules != [RTL_TOP]:
        raise VendorEmitError(f"{path}: defines modules {modules}, expected [{RTL_TOP!r}]")
    return RTL_TOP


def core_name(graph: Graph) -> str:
    return f"lbgen:generated:{sanitize_name(graph.name)}:{CORE_VERSION}"


def core_file(graph: Graph) -> str:
    return f"{sanitize_name(graph.name)}.core"


def rtl_vendor_context(graph: Graph, rtl_dir: Path, part: str = DEFAULT_PART,
                       clock_ns: float = DEFAULT_CLOCK_NS) -> dict[str, Any]:
    """Everything the .core and the .xdc render."""
    rtl_dir = Path(rtl_dir)
    verilog = read_filelist(rtl_dir)
    mems = sorted(p.name for p in rtl_dir.iterdir() if p.is_file() and p.suffix == ".mem")
    for name in mems:
        _plain(name, core_file(graph))
    ident = sanitize_name(graph.name)
    return {
        "graph_name": _comment(graph.name), "file": core_file(graph),
        "name": core_name(graph), "vlnv_short": f"lbgen:generated:{ident}",
        # YAML double-quoted scalars (JSON strings are valid YAML)
        "description": json.dumps(f"lbgen {graph.name}: quantized network, AXI4-Stream in/out (generated)"),
        "verilog": verilog, "mems": mems, "xdc": XDC,
        "top": rtl_top_module(rtl_dir),
        "part": _plain(part, "part"), "clock_ns": f"{float(_clock_text(clock_ns)):.3f}",
    }


def emit_rtl_vendor(graph: Graph, rtl_dir: Path, *, part: str = DEFAULT_PART,
                    clock_ns: float = DEFAULT_CLOCK_NS) -> None:
    """Write <name>.core and lbgen_top.xdc into ``rtl_dir`` (after emit_rtl)."""
    rtl_dir = Path(rtl_dir)
    ctx = rtl_vendor_context(graph, rtl_dir, part, clock_ns)
    (rtl_dir / XDC).write_text(_template("lbgen_top.xdc.j2").render(**ctx))
    (rtl_dir / ctx["file"]).write_text(_template("core.j2").render(**ctx))


def emit_vendor(graph: Graph, out_dir: Path, targets: Sequence[str], inputs: np.ndarray,
                expected: Optional[np.ndarray] = None, *, part: str = DEFAULT_PART,
                clock_ns: float = DEFAULT_CLOCK_NS) -> None:
    """The vendor-flow files of the targets written to ``out_dir`` (rtl/, hls/)."""
    out_dir = Path(out_dir)
    if "hls" in targets:
        emit_hls_vendor(graph, out_dir / "hls", inputs, expected, part=part, clock_ns=clock_ns)
    if "rtl" in targets:
        emit_rtl_vendor(graph, out_dir / "rtl", part=part, clock_ns=clock_ns)
