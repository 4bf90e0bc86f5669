"""Choose each layer's parallelism: PE output channels x SIMD inputs per cycle.

A layer takes (MH/PE)*(MW/SIMD) cycles per matrix-vector product, once per
output pixel of a convolution (``Graph.cycles``). ``--pe``/``--simd`` set
one value for every layer, ``--folding folding.json`` sets layers one by one
(by IR name such as ``fc1`` or by module path); ``--target-cycles N`` gives
every layer not named in folding.json the cheapest folding (``cost.estimate_luts``)
that takes at most N cycles per frame; what is set by none of them is chosen
as the largest divisor not above DEFAULT_PE / DEFAULT_SIMD. A convolution's
SIMD must divide its input channels (a beat stays within one pixel). A value
that does not divide its dimension is an error naming the layer.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Optional

from ..errors import UsageError
from ..ir import Graph, MatVec
from .cost import estimate_luts

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
    except OSError as exc:
        raise UsageError(f"--folding file {str(path)!r} cannot be read ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise UsageError(f"--folding file {str(path)!r}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise UsageError(f"--folding file {str(path)!r}: expected an object {{layer: {{pe, simd}}}}, "
                         f"not a JSON {type(doc).__name__}")
    out: dict[str, dict[str, int]] = {}
    for name, entry in doc.items():
        if not isinstance(entry, dict):
            raise UsageError(f"--folding file {str(path)!r}: layer {name!r} needs an object with 'pe' and/or "
                             f"'simd', not {entry!r}")
        unknown = sorted(set(entry) - {"pe", "simd"})
        if unknown:
            raise UsageError(f"--folding file {str(path)!r}: layer {name!r} has unknown keys "
                             f"{', '.join(map(repr, unknown))} (expected 'pe' and/or 'simd')")
        for key, value in entry.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UsageError(f"--folding file {str(path)!r}: layer {name!r} {key}={value!r} is not a positive integer")
        out[str(name)] = dict(entry)
    return out


def simd_dim(graph: Graph, layer: MatVec) -> int:
    """What SIMD must divide: the input channels of a convolution, else MW."""
    conv = graph.conv(layer)
    return conv.in_ch if conv is not None else layer.mw


def _pick(layer: MatVec, what: str, dim: int, value: Optional[int], default: int, origin: str,
          label: str) -> int:
    if value is None:
        return largest_divisor(dim, default)
    if value < 1 or dim % value:
        raise UsageError(f"layer {layer.name} ({layer.source}): {what.upper()}={value} from {origin} "
                         f"does not divide {label}={dim}")
    return value


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def cheapest_folding(graph: Graph, layer: MatVec, target_cycles: int) -> tuple[int, int]:
    """The (pe, simd) with the fewest estimated LUTs that takes at most
    ``target_cycles`` per frame; ties go to fewer lanes, then to more PE
    (which shares the input's bit planes). UsageError naming the layer when
    even full parallelism is slower."""
    best = None
    for pe in divisors(layer.mh):
        for simd in divisors(simd_dim(graph, layer)):
            trial = dataclasses.replace(layer, pe=pe, simd=simd)
            if graph.cycles(trial) > target_cycles:
                continue
            key = (estimate_luts(trial), pe * simd, -pe)
            if best is None or key < best[0]:
                best = (key, pe, simd)
    if best is None:
        fastest = graph.cycles(dataclasses.replace(layer, pe=layer.mh, simd=simd_dim(graph, layer)))
        raise UsageError(f"layer {layer.name} ({layer.source}): --target-cycles {target_cycles} is out of reach; "
                         f"fully parallel it takes {fastest} cycles per frame")
    return best[1], best[2]


def apply_folding(graph: Graph, pe: Optional[int] = None, simd: Optional[int] = None,
                  per_layer: Optional[dict[str, dict[str, int]]] = None,
                  target_cycles: Optional[int] = None) -> Graph:
    per_layer = dict(per_layer or {})
    if target_cycles is not None and (pe is not None or simd is not None):
        raise UsageError("--target-cycles chooses PE and SIMD itself; leave out --pe/--simd "
                         "(a folding.json entry still fixes its layer)")
    if target_cycles is not None and target_cycles < 1:
        raise UsageError(f"--target-cycles {target_cycles}: must be a positive number of cycles per frame")
    known = {l.name for l in graph.layers} | {l.source for l in graph.layers}
    unknown = sorted(set(per_layer) - known)
    if unknown:
        raise UsageError(f"--folding names unknown layers: {', '.join(unknown)} "
                         f"(layers: {', '.join(f'{l.name} ({l.source})' for l in graph.layers)})")
    layers = []
    for layer in graph.layers:
        entry = per_layer.get(layer.name) or per_layer.get(layer.source) or {}
        if target_cycles is not None and not entry:
            pe_l, simd_l = cheapest_folding(graph, layer, target_cycles)
        else:
            pe_l, simd_l = pe, simd
        p = _pick(layer, "pe", layer.mh, entry.get("pe", pe_l), DEFAULT_PE,
                  "--folding" if "pe" in entry else "--pe", "MH (outputs)")
        s = _pick(layer, "simd", simd_dim(graph, layer), entry.get("simd", simd_l), DEFAULT_SIMD,
                  "--folding" if "simd" in entry else "--simd",
                  "the input channels" if graph.conv(layer) is not None else "MW (inputs)")
        layers.append(dataclasses.replace(layer, pe=p, simd=s))
    return graph.replace(layers=layers)


def folding_doc(graph: Graph) -> dict[str, dict[str, int]]:
    return {l.name: {"pe": l.pe, "simd": l.simd} for l in graph.layers}


def folding_bound(graph: Graph) -> int:
    """Cycles per frame of the whole pipeline: its slowest layer (and a top-K unit,
    which takes one class per cycle)."""
    return max([graph.cycles(l) for l in graph.layers] + ([graph.layers[-1].mh] if graph.topk is not None else []))
