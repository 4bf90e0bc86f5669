"""What ``lbgen emit`` reads besides the model: test vectors (``--inputs``) and
calibration inputs (``--calib``); and what the host streams in
(:func:`host_stream`, ``out/host.json``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from .errors import UsageError
from .ir import Graph

#: vectors written when the user gives no --inputs
DEFAULT_RANDOM_VECTORS = 32


@dataclass
class Vectors:
    """Test vectors: float features (if any), integer input values, labels."""

    values: np.ndarray
    features: Optional[np.ndarray] = None
    labels: Optional[np.ndarray] = None


def read_calibration(path: Path) -> np.ndarray:
    """--calib: a .npy array (N, features) or an .npz with ``x``."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--calib file {str(path)!r} not found")
    try:
        obj = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--calib file {str(path)!r} cannot be read as .npy or .npz: {exc}") from None
    if isinstance(obj, np.lib.npyio.NpzFile):
        with obj:
            if "x" not in obj.files:
                raise UsageError(f"--calib file {str(path)!r}: an .npz needs an array 'x'")
            x = obj["x"]
    else:
        x = obj
    x = np.asarray(x)
    if x.dtype.kind not in "fiu" or x.ndim != 2:
        raise UsageError(f"--calib file {str(path)!r}: expected a 2-d numeric array (N, features), "
                         f"got {x.dtype} {x.shape}")
    return x.astype(np.float32)


def random_vectors(graph: Graph, seed: int = 0) -> Vectors:
    """No --inputs: DEFAULT_RANDOM_VECTORS random input values of the first layer's type."""
    rng = np.random.default_rng(seed)
    it = graph.layers[0].itype
    shape = (DEFAULT_RANDOM_VECTORS, graph.in_len)
    values = rng.choice([-1, 1], size=shape) if it.kind == "bipolar" else rng.integers(it.min, it.max + 1, size=shape)
    return Vectors(values=values.astype(np.int64))


def _load_inputs(path: Path) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """The arrays of an --inputs file: x and, from an .npz, y (or None)."""
    labels = None
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                if "x" not in z:
                    raise UsageError(f"--inputs file {str(path)!r}: an .npz needs an array 'x' (and optionally 'y')")
                x = z["x"]
                labels = z["y"] if "y" in z else None
        else:
            x = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--inputs file {str(path)!r} cannot be read: {exc}") from None
    return np.asarray(x), labels


def read_vectors(path: Optional[Path], graph: Graph, seed: int = 0) -> Vectors:
    """--inputs: .npy float features or .npz with x (and y); none: random input values."""
    if path is None:
        return random_vectors(graph, seed)
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--inputs file {str(path)!r} not found")
    x, labels = _load_inputs(path)
    if x.ndim < 2 or x.shape[0] == 0 or int(np.prod(x.shape[1:])) != graph.in_len:
        raise UsageError(f"--inputs file {str(path)!r}: shape {x.shape}, expected (N, {graph.in_len})")
    x = x.reshape(x.shape[0], -1).astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise UsageError(f"--inputs file {str(path)!r}: contains NaN or Inf")
    if labels is not None:
        labels = np.asarray(labels).astype(np.int64).reshape(-1)
        if labels.shape[0] != x.shape[0]:
            raise UsageError(f"--inputs file {str(path)!r}: {labels.shape[0]} labels for {x.shape[0]} inputs")
    values = host_stream(graph, x)
    chw = graph.meta.get("input_chw")
    if chw is not None and not graph.meta.get("input_flat", False):
        x = x.reshape(-1, *chw)       # features stay as torch takes them
    return Vectors(values=values, features=x, labels=labels)


def host_stream(graph: Graph, features: np.ndarray) -> np.ndarray:
    """Raw float features (N, ...) as the model takes them -> the integer input
    values the host streams into the hardware, in stream order: the model's
    preprocessing and input quantizer (``graph.input``), then, for a feature
    map, NHWC order (pixels row-major, each pixel's channels together)."""
    x = np.asarray(features, dtype=np.float32)
    x = x.reshape(x.shape[0], -1)
    values = graph.input.quantize(x)
    chw = graph.meta.get("input_chw")
    if chw is not None:
        c, h, w = chw
        values = values.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(len(values), -1)
    return values


def host_doc(graph: Graph) -> dict:
    """``out/host.json``: what the host computes from raw features and streams in."""
    first = graph.layers[0]
    return {"stream": graph.input.describe(),
            "values_per_frame": graph.in_len,
            "order": "NHWC (pixels row-major, channels together)" if graph.conv(first) is not None else "features",
            "element_bits": first.itype.bits,
            "elements_per_beat": first.simd,
            "python": "lbgen.host_stream(lbgen.load(OUT_DIR), features)",
            "preprocessing": [op.to_json() for op in graph.input.pre]}
