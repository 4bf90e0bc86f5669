"""Reading ``lbgen.json``: the graph's nodes and their ``.npy`` arrays.

Every problem is an :class:`~lbgen.ir.IRError` that names the file (and the
array file) and the node, because an output directory is something a user
may have edited or been handed. Arrays load without pickle and only from
inside the output directory. Format 1 (a list of layers with optional
``conv``/``pool`` fields) is converted to format 2's nodes on the way in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .ir import (IR_VERSION, IR_VERSIONS, NODE_TYPES, ConvGeom, Graph, InputQuant, IRError, MatVec, Node,
                 TopK, check_thresholds_shape)


def load_graph(out_dir: Path) -> Graph:
    path = out_dir / "lbgen.json"
    doc = _read_json(path)
    try:
        if not isinstance(doc, dict):
            raise IRError(f"{path}: malformed IR (a JSON {type(doc).__name__}, not an object)")
        if doc.get("lbgen_ir") not in IR_VERSIONS:
            raise IRError(f"{path}: IR version {doc.get('lbgen_ir')!r}, expected {IR_VERSION}; emit the model "
                          "again with this lbgen")
        entries = doc["nodes"] if doc["lbgen_ir"] == IR_VERSION else _nodes_of_format_1(doc["layers"])
        nodes = [_node(out_dir, path, d) for d in entries]
        graph = Graph(name=str(doc["name"]), input=_located(path, "input", InputQuant.from_json, doc["input"]),
                      nodes=nodes, meta=dict(doc.get("meta", {})),
                      topk=_located(path, "topk", TopK.from_json, doc["topk"]) if doc.get("topk") is not None
                      else None)
    except IRError:
        raise                           # already names the file
    except (KeyError, TypeError, AttributeError, ValueError, OverflowError) as exc:
        raise IRError(f"{path}: malformed IR ({type(exc).__name__}: {exc})") from None
    try:
        graph.validate()
        check_thresholds_shape(graph)
    except IRError as exc:
        raise IRError(f"{path}: {exc}") from None
    except (TypeError, ValueError, OverflowError) as exc:     # e.g. a float array where integers belong
        raise IRError(f"{path}: malformed IR ({type(exc).__name__}: {exc})") from None
    return graph


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise IRError(f"{path}: not found (is this an lbgen output directory?)") from None
    except OSError as exc:
        raise IRError(f"{path}: cannot be read ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise IRError(f"{path}: not valid JSON ({exc})") from None


def _located(path: Path, what: str, parse, value):
    """``parse(value)``, its IRError located in the file."""
    try:
        return parse(value)
    except IRError as exc:
        raise IRError(f"{path}: {what}: {exc}") from None


def _nodes_of_format_1(layers: list[dict]) -> list[dict]:
    """Format 1 layers -> format 2 nodes: a layer's ``conv`` becomes a sliding
    window in front of it, its ``pool`` a max-pool after it."""
    nodes = []
    for d in layers:
        d = dict(d)
        conv, pool = d.pop("conv", None), d.pop("pool", None)
        if conv is not None:
            nodes.append({"op": "sliding_window", "name": f"{d['name']}/window", "geom": conv})
            d["pixels"] = ConvGeom.from_json(conv).pixels
        nodes.append(dict(d, op=MatVec.op))
        if pool is not None:
            nodes.append({"op": "max_pool", "name": f"{d['name']}/pool", "geom": pool})
    return nodes


def _node(out_dir: Path, path: Path, d: dict) -> Node:
    if not isinstance(d, dict) or d.get("op") not in NODE_TYPES:
        raise IRError(f"{path}: unknown node op {d.get('op') if isinstance(d, dict) else d!r} "
                      f"(known: {', '.join(NODE_TYPES)})")
    cls = NODE_TYPES[d["op"]]
    arrays = _arrays(out_dir, path, d, cls)
    try:
        return cls.from_json(d, arrays)
    except IRError as exc:
        raise IRError(f"{path}: {exc}") from None


def _arrays(out_dir: Path, path: Path, d: dict, cls: type[Node]) -> dict[str, np.ndarray]:
    """The node's arrays, loaded without pickle from inside ``out_dir`` and
    checked for shape (weights) and number kind, each error naming its file."""
    arrays: dict[str, np.ndarray] = {}
    for key, rel in d.get("arrays", {}).items():
        if key not in cls.ARRAYS:
            raise IRError(f"{path}: layer {d['name']!r} has unknown array {key!r}")
        apath = (out_dir / rel).resolve()
        shown = out_dir / rel          # the path as the user gave it, in messages
        if out_dir.resolve() not in apath.parents:
            raise IRError(f"{path}: layer {d['name']!r} array {key} points outside the output directory")
        try:
            arrays[key] = np.load(apath, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise IRError(f"{shown}: cannot read array {key} of layer {d['name']!r} "
                          f"({path.name} names it): {exc}") from None
        if key in ("weights", "weight_codes") and arrays[key].shape != (int(d["mh"]), int(d["mw"])):
            raise IRError(f"{shown}: shape {arrays[key].shape}, but layer {d['name']!r} in {path.name} "
                          f"is {int(d['mh'])}x{int(d['mw'])} (MH x MW)")
        kinds = "biuf" if key in ("out_scale", "out_bias") else "biu"
        if arrays[key].dtype.kind not in kinds:
            raise IRError(f"{shown}: a {arrays[key].dtype} array, expected "
                          + ("numbers" if "f" in kinds else "integers"))
    return arrays
