"""The output directory of ``lbgen emit``, written safely: everything goes into a
temporary sibling directory, which is moved into place only when complete, so
a failure leaves no half-written ``out/`` (and an existing one untouched)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .errors import UsageError
from .ir import Graph, IRError


def check_output(out: Path, force: bool) -> Path:
    """Refuse an output that cannot be written -- a file, an existing directory
    without --force, a path below a file, a directory the user may not write
    into -- before the (slow) compile; return the parent directory. ``os.access``
    answers for the real user, so the check also holds under ``setpriv``/``su``."""
    out = Path(out)
    try:
        if out.exists() and not out.is_dir():
            raise UsageError(f"output {str(out)!r} exists and is not a directory")
        if out.is_dir() and any(out.iterdir()) and not force:
            raise UsageError(f"output directory {str(out)!r} exists; pass --force to replace it")
        parent = out.resolve().parent
        existing = parent
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
    except OSError as exc:
        raise UsageError(f"output {str(out)!r}: cannot be written ({exc.strerror or exc})") from None
    if not existing.is_dir():
        raise UsageError(f"output {str(out)!r}: cannot be written, {str(existing)!r} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"output {str(out)!r}: cannot be written, no write permission in {str(existing)!r}")
    return parent


def write_output(out: Path, force: bool, writer) -> Path:
    """Run ``writer(tmp_dir)`` and move the result to ``out`` atomically-ish; on
    any failure remove the temporary directory, so nothing half-written stays."""
    out = Path(out)
    parent = check_output(out, force)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.lbgen-", dir=parent))
    except OSError as exc:
        raise UsageError(f"output {str(out)!r}: cannot be written ({exc.strerror or exc})") from None
    try:
        writer(tmp)
        _move_into_place(tmp, out, parent)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno is None:       # not the file system's answer (e.g. a missing template): a bug, shown as one
            raise
        raise UsageError(f"output {str(out)!r}: cannot be written ({exc.strerror})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _move_into_place(tmp: Path, out: Path, parent: Path) -> None:
    """``tmp`` becomes ``out``; an existing ``out`` is renamed aside first and removed after."""
    if out.exists():
        old = parent / f".{out.name}.lbgen-old-{os.getpid()}"
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def write_design(tmp: Path, graph: Graph, vectors, trace, targets: tuple[str, ...]) -> None:
    """Every file of ``out/`` into ``tmp``: IR, folding, host stream, test vectors,
    RTL and HLS of ``targets``, the vendor-flow files, the manifest (last)."""
    from .emitters.hls import emit_hls
    from .emitters.rtl import emit_rtl
    from .emitters.vendor import emit_vendor
    from .inputs import host_doc
    from .integrity import write_manifest
    from .passes.folding import folding_doc

    graph.save(tmp)
    (tmp / "folding.json").write_text(json.dumps(folding_doc(graph), indent=2) + "\n")
    (tmp / "host.json").write_text(json.dumps(host_doc(graph), indent=2) + "\n")
    (tmp / "sim").mkdir()
    np.save(tmp / "sim" / "inputs.npy", vectors.values, allow_pickle=False)
    if vectors.labels is not None:
        np.save(tmp / "sim" / "labels.npy", vectors.labels, allow_pickle=False)
    if "rtl" in targets:
        emit_rtl(graph, tmp / "rtl")
    if "hls" in targets:
        emit_hls(graph, tmp / "hls")
    # vendor-flow files (Vitis HLS script + test vectors, FuseSoC core) of those targets
    emit_vendor(graph, tmp, targets, vectors.values, trace.result)
    write_manifest(tmp)     # last: the sha256 of everything above, checked by lbgen sim


def load_output(out: Path) -> Graph:
    """The IR of an output directory ``lbgen emit`` wrote; UsageError if it is none."""
    out = Path(out)
    if not out.is_dir():
        raise UsageError(f"{str(out)!r} is not an lbgen output directory")
    try:
        return Graph.load(out)
    except IRError as exc:
        raise UsageError(str(exc)) from None
