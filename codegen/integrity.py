"""Is an output directory still what ``lbgen emit`` wrote, and does it hang together?

``lbgen sim`` runs both checks before it builds or runs any simulator, so a
tampered or damaged ``out/`` is refused with the file named instead of being
simulated as something other than what was emitted:

* the manifest (``out/manifest.json``, written last by ``lbgen emit``): the
  sha256 of every emitted file. Any edit -- ``lbgen.json``, an ``ir/*.npy``
  array, a ROM image, the C++ -- and any deletion is named.
  ``lbgen sim --allow-modified`` skips it, for deliberate experiments such as
  mutation testing (a ROM bit flipped on purpose).
* the structure, always: every ROM image the RTL reads with ``$readmemh``
  has exactly the words and bits per word that the IR implies (a simulator
  reads a short image as X, drops the excess of a long one and truncates a
  wide word, all silently), and ``hls/lbgen_params.h`` is what the IR renders
  to, up to the values of its ROM words.

Files that ``lbgen sim`` and ``lbgen report`` write later (``build/``,
``report/``, ``report.html``) are never part of the manifest; files added to
``out/`` after emit are not checked (vendor tools put their projects there).
"""

from __future__ import annotations

import hashlib
import json
import re
from itertools import zip_longest
from pathlib import Path

from .errors import UsageError
from .ir import Graph

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
#: written into out/ after emit (the C-sim build, lbgen report): never in the manifest
LATER = ("build", "report", "report.html")
#: changed files named in one message before "and N more"
NAMED = 12
_SHA256 = re.compile(r"[0-9a-f]{64}")
_HEX_WORD = re.compile(r"[0-9a-fA-F]+")
_HEX_LITERAL = re.compile(r"0x[0-9a-fA-F]+")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(out_dir: Path) -> Path:
    """Write ``out_dir/manifest.json``: the sha256 of every file below ``out_dir``
    (relative POSIX paths), except the manifest and what is written later."""
    out_dir = Path(out_dir)
    files = {}
    for path in sorted(out_dir.rglob("*")):
        rel = path.relative_to(out_dir).as_posix()
        if path.is_file() and rel != MANIFEST and rel.split("/")[0] not in LATER:
            files[rel] = _sha256(path)
    target = out_dir / MANIFEST
    target.write_text(json.dumps({"lbgen_manifest": MANIFEST_VERSION, "sha256": files}, indent=1) + "\n")
    return target


def check_manifest(out_dir: Path) -> None:
    """UsageError naming every file of ``out_dir`` that differs from the manifest
    (changed or missing), or the manifest itself if it is missing or unreadable."""
    out_dir = Path(out_dir)
    path = out_dir / MANIFEST
    again = "re-emit it, or pass --allow-modified to simulate it as it is"
    if not path.is_file():
        if not (out_dir / "lbgen.json").exists():
            return          # not an output directory at all: loading the IR says so
        raise UsageError(f"{path}: not found, so {str(out_dir)!r} cannot be checked against what lbgen emit "
                         f"wrote (an output of an older lbgen?); {again}")
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise UsageError(f"{path}: cannot be read as a manifest ({exc}); {again}") from None
    files = doc.get("sha256") if isinstance(doc, dict) and doc.get("lbgen_manifest") == MANIFEST_VERSION else None
    root = out_dir.resolve()
    if not isinstance(files, dict) or not all(
            isinstance(rel, str) and isinstance(digest, str) and _SHA256.fullmatch(digest)
            and rel and not rel.startswith("/") and root in (root / rel).resolve().parents
            for rel, digest in files.items()):
        raise UsageError(f"{path}: not a manifest lbgen emit writes (version {MANIFEST_VERSION}: relative paths "
                         f"inside the output directory and their sha256); {again}")
    missing = [rel for rel in files if not (out_dir / rel).is_file()]
    changed = []
    for rel, digest in files.items():
        try:
            if rel not in missing and _sha256(out_dir / rel) != digest:
                changed.append(rel)
        except OSError as exc:
            raise UsageError(f"{out_dir / rel}: cannot be read ({exc.strerror})") from None
    if changed or missing:
        parts = [f"{what} {_names(rels)}" for what, rels in (("changed:", changed), ("missing:", missing)) if rels]
        raise UsageError(f"output directory {str(out_dir)!r} differs from what lbgen emit wrote "
                         f"({'; '.join(parts)}; {MANIFEST} holds the sha256 of every file it wrote); {again}")


def _names(rels: list[str]) -> str:
    more = f" and {len(rels) - NAMED} more" if len(rels) > NAMED else ""
    return ", ".join(rels[:NAMED]) + more


def check_rom_image(path: Path, words: int, bits: int) -> None:
    """``path`` holds ``words`` lines of exactly ceil(bits/4) hex digits, each < 2^bits
    (``lbgen.packing.write_mem``'s format); UsageError naming the file and line."""
    digits = max(1, (bits + 3) // 4)
    what = f"{words} word{'s' * (words != 1)} of {bits} bits ({digits} hex digits each)"
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise UsageError(f"{path}: missing; the RTL reads this ROM image ({what})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot be read as a ROM image ({exc})") from None
    if len(lines) != words:
        raise UsageError(f"{path}: {len(lines)} line{'s' * (len(lines) != 1)}, but the IR implies {what}")
    for i, line in enumerate(lines, 1):
        if not _HEX_WORD.fullmatch(line):
            raise UsageError(f"{path}: line {i} is {line[:40]!r}, not a hex word ({what})")
        if len(line) != digits or int(line, 16) >> bits:
            raise UsageError(f"{path}: line {i} is {line[:40]!r}, not a {bits}-bit word ({what})")


def check_hls_params(path: Path, graph: Graph) -> None:
    """``hls/lbgen_params.h`` must be what the IR renders to -- every layer
    configuration, ROM size and word width -- except for the ROM words' values
    (hex literals), which a mutation experiment may change."""
    from .emitters.hls import hls_context, render_generated

    want = render_generated("lbgen_params.h", hls_context(graph))
    try:
        have = path.read_text()
    except FileNotFoundError:
        raise UsageError(f"{path}: missing; the C-simulation compiles it") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot be read ({exc})") from None
    pairs = zip_longest(_HEX_LITERAL.sub("0x#", have).splitlines(), _HEX_LITERAL.sub("0x#", want).splitlines(),
                        fillvalue="(end of file)")
    for i, (got, exp) in enumerate(pairs, 1):
        if got != exp:
            raise UsageError(f"{path}: line {i} does not match the IR in lbgen.json: {got.strip()[:100]!r}, "
                             f"expected {exp.strip()[:100]!r}")


def check_structure(out_dir: Path, graph: Graph) -> None:
    """The ROM images of ``out_dir/rtl`` and the parameters in ``out_dir/hls`` agree with ``graph``
    (each checked when that directory exists: an emit may have left out a target)."""
    out_dir = Path(out_dir)
    try:
        if (out_dir / "rtl").is_dir():
            from .emitters.rtl import rom_images
            for name, words, bits in rom_images(graph):
                check_rom_image(out_dir / "rtl" / name, len(words), bits)
        if (out_dir / "hls").is_dir():
            check_hls_params(out_dir / "hls" / "lbgen_params.h", graph)
    except UsageError:
        raise
    except (ValueError, ArithmeticError, TypeError, LookupError) as exc:
        # IRError, or an IR edited (under --allow-modified) into one the emitters cannot express
        raise UsageError(f"{out_dir / 'lbgen.json'}: the emitters cannot take this IR "
                         f"({type(exc).__name__}: {exc})") from None


def verified_graph(out_dir: Path, allow_modified: bool = False) -> Graph:
    """The IR of ``out_dir`` after both checks (the manifest unless ``allow_modified``);
    UsageError naming the first file that fails."""
    from .output import load_output

    out_dir = Path(out_dir)
    if not allow_modified:
        check_manifest(out_dir)         # before the IR is read: an edited lbgen.json is named as edited
    graph = load_output(out_dir)
    check_structure(out_dir, graph)
    return graph
