"""Compile the ``__SYNTHESIS__`` branches of lbgen's HLS library with g++.

lbgen's headers (``hls/lbgen_*.hpp``) keep what Vitis HLS synthesises behind
``#ifdef __SYNTHESIS__`` and faster C-simulation code behind ``#ifndef
__SYNTHESIS__``; ``lbgen.csim`` only ever compiles the latter. Defining
``__SYNTHESIS__`` for g++ is no way to compile the former: the open-source
ap_types headers (hls4ml) stop with ``#error "The open-source version of AP
types does not support synthesis."`` (ap_common.h) and would change their own
implementation beyond it. So :func:`synthesis_copy` copies an emitted ``out/``
and, in the copies of lbgen's own library headers only, renames the macro to
:data:`MACRO` and defines it at the top of each rewritten header. ap_types and
the testbench's helpers (:data:`TESTBENCH_ONLY`) stay as in C-simulation, and
``lbgen.csim.run_csim(copy, x, native=False)`` builds and runs the copy with the
product's own flags, cache and trace unchanged: the two builds differ in
lbgen's synthesis branches and nothing else.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

#: the project macro that stands for ``__SYNTHESIS__`` in the rewritten headers
MACRO = "LBGEN_SYNTHESIS_PATHS"

#: library headers that are never synthesised (the testbench's hex I/O, trace taps and
#: ROM images; the whole file sits inside ``#ifndef __SYNTHESIS__``): renaming there would
#: remove what the C-simulation testbench needs, not switch a datapath
TESTBENCH_ONLY = frozenset({"lbgen_csim.hpp"})


def synthesis_conditionals(text: str, macro: str = "__SYNTHESIS__") -> list[int]:
    """1-based line numbers of the ``#if``/``#ifdef``/``#ifndef``/``#elif`` lines of ``text`` that test ``macro``."""
    pattern = re.compile(r"^[ \t]*#[ \t]*(?:if|ifdef|ifndef|elif)\b[^\n]*\b" + re.escape(macro) + r"\b", re.M)
    return [text.count("\n", 0, m.start()) + 1 for m in pattern.finditer(text)]


def library_headers(hls_dir: Path) -> list[Path]:
    """lbgen's own library headers in an emitted ``hls/`` whose synthesis branches are rewritten."""
    return sorted(p for p in Path(hls_dir).glob("lbgen_*.hpp") if p.name not in TESTBENCH_ONLY)


def rewrite_header(text: str) -> str:
    """``text`` with every ``__SYNTHESIS__`` renamed to :data:`MACRO`, defined on top.

    The definition goes into every rewritten header (not onto the compiler's
    command line) so the unchanged ``lbgen.csim.build_csim`` builds the copy;
    whichever header the top includes first turns the synthesis branches on."""
    if "__SYNTHESIS__" not in text:
        return text
    guard = f"#ifndef {MACRO}\n#define {MACRO} 1  // tests/lbgen_testing/synthesis_paths.py\n#endif\n"
    return guard + re.sub(r"\b__SYNTHESIS__\b", MACRO, text)


def rewrite_library(hls_dir: Path) -> Path:
    """Rewrite lbgen's library headers in ``hls_dir`` in place (:func:`rewrite_header`); return ``hls_dir``."""
    for header in library_headers(hls_dir):
        header.write_text(rewrite_header(header.read_text()))
    return Path(hls_dir)


def synthesis_copy(out_dir: Path, dst: Path) -> Path:
    """Copy the emitted design ``out_dir`` (IR and ``hls/``, no build products) to ``dst``
    with lbgen's library headers rewritten by :func:`rewrite_header`; return ``dst``."""
    out_dir, dst = Path(out_dir), Path(dst)
    shutil.copytree(out_dir, dst, ignore=shutil.ignore_patterns("build"))
    rewrite_library(dst / "hls")
    return dst
