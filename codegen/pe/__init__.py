"""The processing elements (PEs): one module per PE, all knowledge of a PE in it.

A PE is the product an MVAU lane computes, chosen by the layer's weight and
input formats. Each module here defines one :class:`ProcessingElement` and
registers it; this package imports every module in its directory, so adding a
PE is adding a file (and its RTL core and HLS functor, which it names). What a
PE says:

* ``fits(wtype, itype)``: the formats it is chosen for; exactly one
  registered PE fits any pair, :func:`choose` finds it, and :func:`of` checks
  a layer's ``pe_kind`` against it, so every emitter builds the PE the IR
  names. ``rtl_input_kinds``: the inputs its RTL core takes (the HLS
  functors take every input kind).
* ``code`` and ``rtl_core``: the ``PE_KIND`` parameter of ``lb_mvau`` and the
  core (``templates/rtl/<rtl_core>.v``) its generate statement instantiates.
* ``hls_functor``: the product functor of ``hls/lbgen_pe.hpp``.
* ``heap_offsets(layer)``: the constant the RTL bit heap leaves out of every
  row (the accumulator starts from it, so it ends at the exact dot product).
* ``lane_weight_bits(wtype)``: the weight width the LUT estimate
  (:mod:`lbgen.passes.cost`) charges per lane.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import ClassVar

import numpy as np

from ..ir import DType, IRError, MatVec


class ProcessingElement:
    """One PE. Subclasses set the class attributes and override ``fits`` and
    ``heap_offsets``; one instance of each is registered."""

    name: ClassVar[str]            # the IR's MatVec.pe_kind
    code: ClassVar[int]            # PE_KIND of lb_mvau / lb_mvau_core
    rtl_core: ClassVar[str]        # Verilog module of the datapath
    hls_functor: ClassVar[str]     # lbgen_pe.hpp functor template
    summary: ClassVar[str]         # one line for docs and reports
    rtl_input_kinds: ClassVar[tuple[str, ...]] = ("bipolar", "uint", "int")

    def fits(self, wtype: DType, itype: DType) -> bool:
        raise NotImplementedError

    def rtl_input_problem(self, itype: DType) -> str:
        """Why this PE's RTL core cannot take ``itype`` inputs ("" if it can)."""
        if itype.kind in self.rtl_input_kinds:
            return ""
        return (f"the {self.name} processing element takes {' or '.join(self.rtl_input_kinds)} inputs, "
                f"not {itype}")

    def heap_offsets(self, layer: MatVec) -> np.ndarray:
        """(mh,) int64: minus the constant part of every row's heap sum."""
        raise NotImplementedError

    def lane_weight_bits(self, wtype: DType) -> float:
        return float(wtype.bits)

    def __repr__(self) -> str:
        return f"<PE {self.name}>"


def unsigned_input_bits(itype: DType) -> int:
    """Bits of the unsigned input a shift or planes heap sees: a bipolar x is
    taken as x_b = (x+1)/2, one bit."""
    return 1 if itype.kind == "bipolar" else itype.bits


def bipolar_input_correction(layer: MatVec, offsets: np.ndarray) -> np.ndarray:
    """Offsets of a heap over x_b = (x+1)/2 turned into offsets over a bipolar
    x: w.x = 2 * (w.x_b) - sum w, so the heap is folded x 2 and the weights'
    row sum leaves the accumulator's start."""
    if layer.itype.kind != "bipolar":
        return offsets.astype(np.int64)
    return (2 * offsets - layer.weights.astype(np.int64).sum(axis=1)).astype(np.int64)


#: name -> PE, in registration order (the order of ``code``)
REGISTRY: dict[str, ProcessingElement] = {}


def register(cls: type[ProcessingElement]) -> type[ProcessingElement]:
    """Class decorator: register one instance of a PE under its name."""
    pe = cls()
    for other in REGISTRY.values():
        if other.code == pe.code:
            raise ValueError(f"PE {pe.name!r}: PE_KIND code {pe.code} is taken by {other.name!r}")
    REGISTRY[pe.name] = pe
    return cls


def names() -> tuple[str, ...]:
    return tuple(REGISTRY)


def choose(wtype: DType, itype: DType) -> ProcessingElement:
    """The PE that takes ``wtype`` weights and ``itype`` inputs."""
    fitting = [pe for pe in REGISTRY.values() if pe.fits(wtype, itype)]
    if len(fitting) != 1:
        which = "no processing element" if not fitting else f"several ({', '.join(p.name for p in fitting)})"
        raise IRError(f"{which} takes {wtype} weights x {itype} inputs")
    return fitting[0]


def of(layer: MatVec, rtl: bool = False) -> ProcessingElement:
    """The PE ``layer`` names (its formats' own PE when ``pe_kind`` is empty),
    checked against its formats (and with ``rtl`` against its RTL core's inputs)."""
    where = f"layer {layer.name!r}"
    try:
        expected = choose(layer.wtype, layer.itype)
    except IRError as exc:
        raise IRError(f"{where}: {exc}") from None
    kind = layer.pe_kind or expected.name
    if kind not in REGISTRY:
        raise IRError(f"{where}: unknown processing element {kind!r} (known: {', '.join(REGISTRY)})")
    if kind != expected.name:
        raise IRError(f"{where}: PE kind {kind!r} does not fit {layer.wtype} weights x {layer.itype} inputs "
                      f"(expected {expected.name!r})")
    problem = expected.rtl_input_problem(layer.itype) if rtl else ""
    if problem:
        raise IRError(f"{where}: {problem}")
    return expected


def _load_all() -> None:
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    ordered = sorted(REGISTRY.values(), key=lambda pe: pe.code)
    REGISTRY.clear()
    REGISTRY.update((pe.name, pe) for pe in ordered)


_load_all()
