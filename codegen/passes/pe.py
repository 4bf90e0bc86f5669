"""Choose the processing element of every layer from its number formats.

The PEs and what each takes live in :mod:`lbgen.pe` (one module per PE); this
pass writes the chosen one's name into ``MatVec.pe_kind``.
"""

from __future__ import annotations

import dataclasses

from .. import pe as processing_elements
from ..ir import Graph, MatVec

#: the registered PE names, in PE_KIND code order
PE_KINDS = processing_elements.names()


def choose_pe(layer: MatVec) -> str:
    return processing_elements.choose(layer.wtype, layer.itype).name


def assign_pe(graph: Graph) -> Graph:
    return graph.replace(layers=[dataclasses.replace(l, pe_kind=choose_pe(l)) for l in graph.layers])
