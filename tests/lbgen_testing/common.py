"""Helpers of the tests (and of bench/): the shipped examples, the CLI in a
fresh process, small quantized models built in-test, IR comparison."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import subprocess
import sys
import warnings
from pathlib import Path

import torch
import torch.nn as nn

from lbgen import quant

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits"
LBGEN = [sys.executable, "-m", "lbgen.cli"]


def load_script(path: Path, name: str):
    """A script that is not a package module (bench/*.py, examples/digits/table.py) imported
    as module ``name``; registered in sys.modules (its dataclasses need it), and with its own
    directory on sys.path while it loads (bench scripts import their neighbours)."""
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    sys.path.insert(0, str(Path(path).parent))
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(Path(path).parent))
    return mod


def run_cli(*args, cwd=None, env=None, timeout: int = 300, user: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """``lbgen ARGS`` in a fresh process, as a user runs it (``user``: a prefix such as setpriv ...)."""
    return subprocess.run([*user, *LBGEN, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout)


def assert_usage_error(proc, *fragments, out: Path | None = None):
    """Exit code 2, every fragment in the message (whitespace-insensitive), no traceback,
    and -- given ``out`` -- neither the output nor a temporary sibling of it left behind."""
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text
    assert "Traceback" not in text, text
    flat = " ".join(text.split())
    for fragment in fragments:
        assert fragment in flat, (fragment, text)
    if out is not None:
        assert not out.exists(), "output written despite the error"
        leftovers = [p.name for p in out.parent.iterdir() if ".lbgen-" in p.name]
        assert not leftovers, leftovers


def random_bn(c: int, g: torch.Generator, negative: bool = True) -> nn.BatchNorm1d:
    """A batch-norm with random statistics; gains of both signs when ``negative``."""
    bn = nn.BatchNorm1d(c)
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(c, generator=g) * 3)
        bn.running_var.copy_(torch.rand(c, generator=g) * 4 + 0.1)
        w = torch.rand(c, generator=g) * 2 + 0.05
        if negative:
            w = w * torch.where(torch.rand(c, generator=g) < 0.4, -1.0, 1.0)
        bn.weight.copy_(w)
        bn.bias.copy_(torch.randn(c, generator=g))
    return bn


def random_bn2d_stats(model: nn.Module) -> nn.Module:
    """Random statistics for every BatchNorm2d of ``model`` (gains of both signs: inverted channels)."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-2, 2)
            m.running_var.uniform_(0.5, 3)
            m.weight.data.uniform_(-1.5, 1.5)
    return model


def small_mlp(seed: int, dims=(12, 8, 6, 4), w_hidden: int = 1, a_hidden: int = 2,
              in_bits: int = 4, first_bits: int = 8, last_bits: int = 8) -> nn.Sequential:
    """Input quantizer -> first (k-bit) -> hidden (binary or k-bit) ... -> last (k-bit)."""
    g = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = [quant.QuantAct(in_bits, clip=1.0)]
    n = len(dims) - 1
    for i in range(n):
        bits = first_bits if i == 0 else last_bits if i == n - 1 else w_hidden
        lin = quant.BinaryLinear(dims[i], dims[i + 1]) if bits == 1 else quant.IntLinear(dims[i], dims[i + 1], bits=bits)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(dims[i + 1], dims[i], generator=g))
            lin.bias.copy_(torch.randn(dims[i + 1], generator=g) * 0.5)
        layers.append(lin)
        if i < n - 1:
            layers.append(random_bn(dims[i + 1], g))
            layers.append(quant.BinaryAct() if a_hidden == 1 else quant.QuantAct(a_hidden, clip=1.5))
    return nn.Sequential(*layers).eval()


def ir_arrays(graph) -> dict:
    """Everything of an IR that decides the hardware and the golden model, as
    plain Python values, so two routes' graphs compare with ==."""
    inp = graph.input
    out = {"input": (inp.dtype, inp.step, inp.rule, inp.offset, inp.zero_point, inp.qmin, inp.qmax, inp.pre)}
    for layer in graph.layers:
        out[layer.name] = (layer.wtype, layer.itype, layer.odtype, graph.conv(layer), graph.pool(layer), layer.pe, layer.simd,
                           layer.weights.tolist(),
                           None if layer.thresholds is None else layer.thresholds.tolist(),
                           None if layer.threshold_invert is None else layer.threshold_invert.tolist(),
                           None if layer.out_scale is None else layer.out_scale.tolist(),
                           None if layer.out_bias is None else layer.out_bias.tolist(),
                           None if layer.out_zero is None else layer.out_zero.tolist())
    return out


def export_qonnx(model, path, shape=(1, 64)):
    """Brevitas' export_qonnx of ``model`` on a random input of ``shape``, quietly; returns ``path``."""
    from brevitas.export import export_qonnx as brevitas_export

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        brevitas_export(model, torch.rand(*shape), str(path))
    return path
