"""Choose each layer's parallelism: PE output channels x SIMD inputs per cycle.

A layer takes (MH/PE)*(MW/SIMD) cycles per frame. ``--pe``/``--simd`` set
one value for every layer, ``--folding folding.json`` sets layers one by one
(by IR name such as ``fc1`` or by module path); what is set by neither is
chosen as the largest divisor not above DEFAULT_PE / DEFAULT_SIMD.
A value that does not divide its dimension is an error naming the layer.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Optional

from ..errors import UsageError
from ..ir import Graph, MatVec

DEFAULT_PE = 16
DEFAULT_SIMD = 16


def largest_divisor(n: int, limit: int) -> int:
    return max(d for d in range(1, min(n, limit) + 1) if n % d == 0)


def read_folding(path: Path) -> dict[str, dict[str, int]]:
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"--folding file {str(path)!r} not found") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"--folding file {str(path)!r}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise UsageError(f"--folding file {str(path)!r}: expected an object {{layer: {{pe, simd}}}}")
    out: dict[str, dict[str, int]] = {}
    for name, entry in doc.items():
        if not isinstance(entry, dict) or not set(entry) <= {"pe", "simd"}:
            raise UsageError(f"--folding file {str(path)!r}: layer {name!r} needs an object with 'pe' and/or 'simd'")
        for key, value in entry.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UsageError(f"--folding file {str(path)!r}: layer {name!r} {key}={value!r} is not a positive integer")
        out[str(name)] = dict(entry)
    return out


def _pick(layer: MatVec, what: str, dim: int, value: Optional[int], default: int, origin: str) -> int:
    if value is None:
        return largest_divisor(dim, default)
    if value < 1 or dim % value:
        label = "MH (outputs)" if what == "pe" else "MW (inputs)"
        raise UsageError(f"layer {layer.name} ({layer.source}): {what.upper()}={value} from {origin} "
                         f"does not divide {label}={dim}")
    return value


def apply_folding(graph: Graph, pe: Optional[int] = None, simd: Optional[int] = None,
                  per_layer: Optional[dict[str, dict[str, int]]] = None) -> Graph:
    per_layer = dict(per_layer or {})
    known = {l.name for l in graph.layers} | {l.source for l in graph.layers}
    unknown = sorted(set(per_layer) - known)
    if unknown:
        raise UsageError(f"--folding names unknown layers: {', '.join(unknown)} "
                         f"(layers: {', '.join(f'{l.name} ({l.source})' for l in graph.layers)})")
    layers = []
    for layer in graph.layers:
        entry = per_layer.get(layer.name) or per_layer.get(layer.source) or {}
        p = _pick(layer, "pe", layer.mh, entry.get("pe", pe), DEFAULT_PE,
                  "--folding" if "pe" in entry else "--pe")
        s = _pick(layer, "simd", layer.mw, entry.get("simd", simd), DEFAULT_SIMD,
                  "--folding" if "simd" in entry else "--simd")
        layers.append(dataclasses.replace(layer, pe=p, simd=s))
    return graph.replace(layers=layers)


def folding_doc(graph: Graph) -> dict[str, dict[str, int]]:
    return {l.name: {"pe": l.pe, "simd": l.simd} for l in graph.layers}


def folding_bound(graph: Graph) -> int:
    """Cycles per frame of the whole pipeline: its slowest layer."""
    return max(l.cycles for l in graph.layers)
