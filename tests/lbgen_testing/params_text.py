"""Reading the emitted HLS parameter header as text, for tests that write its
ROM initialisers out by hand (tests/test_packing_by_hand.py)."""

from __future__ import annotations

import re


def c_initialiser(header: str, array: str) -> str:
    """The initialiser of the ``static const ... <array>[..] = { ... };`` definition in
    ``header`` (the synthesisable one, the first; not the ``<array>_limbs`` copy of the
    native C-sim build), with ``//`` comments and all whitespace removed, so
    ``"{0x79ULL,0x2cULL}"`` is what a two-word ROM of those words gives."""
    m = re.search(r"static const [^\n=]*\b" + re.escape(array) + r"(\[\d+\])+ = (\{.*?\n\});", header, re.S)
    if m is None:
        raise AssertionError(f"no ROM array {array!r} in the header")
    text = re.sub(r"//[^\n]*", "", m.group(2))
    return re.sub(r"\s+", "", text)


def compact(text: str) -> str:
    """A hand-written initialiser with its layout whitespace removed (compare with c_initialiser)."""
    return re.sub(r"\s+", "", text)
