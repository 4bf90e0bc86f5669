"""``--topk K``: a hardware top-K unit after the last layer (``Graph.topk``).

The last pass before the graph is validated: K is checked against the
model's classes (the output layer's channels), which only the IR knows.
"""

from __future__ import annotations

from ..errors import UsageError
from ..ir import Graph, TopK


def add_topk(graph: Graph, k: int) -> Graph:
    """``graph`` whose hardware streams the ``k`` largest class indices per frame."""
    classes = graph.output.mh
    if k > classes:
        raise UsageError(f"--topk {k}: the model has {classes} classes (output layer "
                         f"{graph.output.source or graph.output.name}); K must be 1..{classes}")
    return graph.replace(topk=TopK(int(k)))
