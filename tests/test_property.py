"""Property tests: random networks agree bit for bit in every executor.

FINN's and hls4ml's worst failures are hardware that silently disagrees with
software. Hand-picked test designs only cover what their authors thought of,
so hypothesis draws the networks here, from two generators:

* **IR networks** (``lbgen_testing.graphs``): MLPs and CNNs in every weight format
  (bipolar, k-bit int, log2, heterogeneous planes, ternary) and activation width, any
  signedness the IR has, random PE x SIMD foldings (1 up to fully parallel),
  convolution shapes (kernel, non-square kernels, stride, padding with any pad
  level, max-pool), 9..16-bit first-layer inputs (int and binary first layers),
  exact or 32-bit accumulators, thresholds drawn at the very ends of each
  channel's reachable range and of the accumulator type, inverted channels,
  and Huffman-coded weight streams.
* **torch networks** built from ``lbgen.quant`` modules with random weights
  and batch-norm statistics (gains of both signs), compiled by the product's
  own ``emit`` flow with a random folding: it checks torch = golden on every
  hidden integer level of every vector before writing anything.

Every network then runs golden = HLS C-sim (the ap_int code synthesis sees) =
Icarus = Verilator on every layer's output stream, under random tvalid gaps and
tready back-pressure, and the measured cycles per frame must meet the folding
bound.

Pinned networks (``PINNED_IR``, ``PINNED_BREVITAS``: a 16-bit input, pad levels,
a signed-input Brevitas CNN with padded convolutions) run in every profile.
Profiles: the default run draws ``FAST`` networks per generator,
derandomized so that CI sees the same networks every time; ``make test-all``
draws ``LONG`` per generator at random (hypothesis prints the seed and the
network of a failure). Each test asserts how many networks actually ran.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from lbgen import golden, quant
from lbgen.emitters.hls import emit_hls
from lbgen.emitters.rtl import emit_rtl
from lbgen.flow import EmitOptions, emit
from lbgen.ir import DType, Graph, signed_bits_for
from lbgen.passes.compress import compress_weights
from lbgen.passes.folding import divisors

from lbgen_testing.common import random_bn
from lbgen_testing.executors import THROUGHPUT, check_executors
from lbgen_testing.graphs import ConvSpec, random_cnn, random_graph, random_inputs

#: networks drawn per generator: (default run, make test-all); the pinned examples below run as well
FAST = {"ir": 10, "torch": 5, "brevitas": 2}
LONG = {"ir": 180, "torch": 90, "brevitas": 40}
FRAMES = 10                 # vectors per network (plus THROUGHPUT back-to-back frames)
ACC_LIMIT = 32              # the 32-bit default; an exact accumulator is used when it fits

B = DType("bipolar", 1)


#: a module-private build cache (conftest): these builds are used once and should not push out the user's
pytestmark = pytest.mark.usefixtures("sim_cache")


# --------------------------------------------------------------------------- number formats

def weight_types() -> st.SearchStrategy[DType]:
    hetero = st.integers(1, 3).flatmap(
        lambda n: st.lists(st.integers(1, 12), min_size=n, max_size=n).map(
            lambda s: DType("hetero", 2 * len(s) - 1, tuple(s))))
    return st.one_of(st.just(B), st.integers(2, 8).map(lambda k: DType("int", k)),
                     st.integers(2, 5).map(lambda k: DType("log2", k)), hetero, st.just(DType("ternary", 2)))


def activation_types(max_bits: int = 4) -> st.SearchStrategy[DType]:
    return st.one_of(st.just(B), st.integers(1, max_bits).map(lambda k: DType("uint", k)))


def input_types(wide: bool = False) -> st.SearchStrategy[DType]:
    """The first layer's input: bipolar or 1..8-bit levels, and with ``wide`` also 9..16-bit
    levels (a signed fixed<16,6> input streamed as unsigned levels); only int and binary first
    layers draw wide inputs, so that their exact bound stays within 32 accumulator bits."""
    narrow = st.one_of(st.just(B), st.integers(1, 8).map(lambda k: DType("uint", k)))
    return st.one_of(narrow, st.integers(9, 16).map(lambda k: DType("uint", k))) if wide else narrow


def takes_wide_input(wtype: DType) -> bool:
    return wtype.kind in ("int", "bipolar")


def pad_levels(itype: DType, padding: int) -> st.SearchStrategy[int]:
    """The input value of a padded convolution's border: 0, the zero level of a signed input
    streamed as unsigned levels (2^(b-1)) or any level; bipolar inputs and no padding: 0."""
    if itype.kind == "bipolar" or not padding:
        return st.just(0)
    return st.one_of(st.just(0), st.just((itype.max + 1) // 2), st.integers(itype.min, itype.max))


def divisor_of(n: int) -> st.SearchStrategy[int]:
    return st.sampled_from(divisors(n))


# --------------------------------------------------------------------------- IR networks

@dataclass(frozen=True)
class IRNet:
    """A network of ``lbgen_testing.graphs``: every field is what hypothesis drew (its repr is the failure report)."""

    seed: int
    dims: tuple[int, ...] = ()                 # MLP: in, hidden..., out
    wtypes: tuple[DType, ...] = ()
    atypes: tuple[DType, ...] = ()             # input type, then one per hidden output
    folds: tuple[tuple[int, int], ...] = ()
    in_chw: Optional[tuple[int, int, int]] = None   # CNN: input feature map
    convs: tuple[ConvSpec, ...] = ()
    classes: int = 0
    fc_wtype: DType = B
    fc_fold: tuple[int, int] = (1, 1)
    acc32: bool = False                        # 32-bit accumulators instead of the exact width
    extremes: float = 0.3
    huffman: bool = False
    gaps: float = 0.3
    backpressure: float = 0.3

    def graph(self) -> Graph:
        acc = ACC_LIMIT if self.acc32 else None
        if self.in_chw is None:
            g = random_graph(self.seed, list(self.dims), list(self.wtypes), list(self.atypes), list(self.folds),
                             acc_bits=acc, extremes=self.extremes)
        else:
            g = random_cnn(self.seed, self.in_chw, self.atypes[0], list(self.convs), self.classes, self.fc_wtype,
                           self.fc_fold, acc_bits=acc, extremes=self.extremes)
        return compress_weights(g, "huffman") if self.huffman else g


@st.composite
def mlp_nets(draw) -> IRNet:
    n = draw(st.integers(1, 3))
    dims = [draw(st.integers(1, 24))] + [draw(st.integers(1, 16)) for _ in range(n - 1)] + [draw(st.integers(1, 8))]
    wtypes = [draw(weight_types()) for _ in range(n)]
    atypes = [draw(input_types(takes_wide_input(wtypes[0])))] + [
        draw(activation_types(draw(st.sampled_from([2, 4, 8])))) for _ in range(n - 1)]
    return IRNet(seed=draw(st.integers(0, 2 ** 31 - 1)), dims=tuple(dims),
                 wtypes=tuple(wtypes), atypes=tuple(atypes),
                 folds=tuple((draw(divisor_of(dims[i + 1])), draw(divisor_of(dims[i]))) for i in range(n)),
                 **draw(_run_options()))


@st.composite
def cnn_nets(draw) -> IRNet:
    chw = (draw(st.integers(1, 4)), draw(st.integers(3, 8)), draw(st.integers(3, 8)))
    c, h, w = chw
    convs = []
    first_w = draw(weight_types())
    t = itype = draw(input_types(takes_wide_input(first_w)))
    for _ in range(draw(st.integers(1, 2))):
        k = draw(st.integers(1, min(3, h, w)))
        kw = draw(st.sampled_from([k, k, min(w, k + 1)]))          # sometimes a non-square kernel
        p = draw(st.integers(0, min(1, k - 1)))
        s = draw(st.integers(1, 2))
        oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * min(p, kw - 1) - kw) // s + 1
        if oh < 1 or ow < 1:
            break
        pool = draw(st.sampled_from([0, 2])) if min(oh, ow) >= 2 else 0
        out = draw(st.integers(1, 8))
        otype = draw(activation_types())
        convs.append(ConvSpec(out, k, s, p, pool, first_w if not convs else draw(weight_types()), otype,
                              (draw(divisor_of(out)), draw(divisor_of(c))), k_w=kw if kw != k else 0,
                              pad_level=draw(pad_levels(t, p))))
        c, h, w, t = out, (oh // pool if pool else oh), (ow // pool if pool else ow), otype
    if not convs:
        return draw(mlp_nets())
    classes = draw(st.integers(1, 6))
    return IRNet(seed=draw(st.integers(0, 2 ** 31 - 1)), atypes=(itype,), in_chw=chw,
                 convs=tuple(convs), classes=classes, fc_wtype=draw(weight_types()),
                 fc_fold=(draw(divisor_of(classes)), draw(divisor_of(c * h * w))), **draw(_run_options()))


@st.composite
def _run_options(draw) -> dict:
    return {"acc32": draw(st.booleans()), "extremes": draw(st.sampled_from([0.0, 0.3, 0.8])),
            "huffman": draw(st.integers(0, 3)) == 0, "gaps": draw(st.sampled_from([0.0, 0.3, 0.6])),
            "backpressure": draw(st.sampled_from([0.0, 0.3, 0.6]))}


def ir_nets() -> st.SearchStrategy[IRNet]:
    return st.one_of(mlp_nets(), cnn_nets())


# --------------------------------------------------------------------------- torch networks

@dataclass(frozen=True)
class TorchLayer:
    """One quantized linear or conv layer of a torch network and what follows it."""

    weights: tuple            # ("bin",) ("int", bits) ("log2", bits) ("het", avg_bits) ("ter",)
    out: int
    k: int = 0                # conv kernel (0: linear)
    stride: int = 1
    padding: int = 0
    pool: int = 0
    bn: bool = True
    act_bits: int = 0         # activation after the layer (0: the output layer)
    pe_pick: float = 0.0      # where in the divisor lists the folding falls, [0, 1)
    simd_pick: float = 0.0


@dataclass(frozen=True)
class TorchNet:
    seed: int
    in_bits: int
    in_chw: Optional[tuple[int, int, int]]     # None: an MLP of in_chw-less width ``in_features``
    in_features: int
    layers: tuple[TorchLayer, ...]
    acc: str = "auto"
    gaps: float = 0.3
    backpressure: float = 0.3
    pre: tuple = ()           # preprocessing in the forward, in front of the input quantizer (PRE_OPS)

    def model(self) -> tuple[nn.Module, dict[str, dict[str, int]]]:
        model, folding = self.sequential()
        return preprocessed(model, folding, self.pre, self.in_chw or (self.in_features,), self.seed)

    def features(self, n: int) -> np.ndarray:
        return raw_features(self.level_features(n), self.pre, self.in_chw or (self.in_features,), self.seed)

    def sequential(self) -> tuple[nn.Sequential, dict[str, dict[str, int]]]:
        """The module and a --folding document keyed by module index."""
        g = torch.Generator().manual_seed(self.seed)
        mods: list[nn.Module] = [quant.QuantAct(self.in_bits, clip=1.0)]
        folding: dict[str, dict[str, int]] = {}
        chw = self.in_chw
        width = self.in_features
        for spec in self.layers:
            if spec.k:
                c, h, w = chw
                layer = _conv(spec, c)
                fan_in, simd_dim = c * spec.k * spec.k, c
                oh = (h + 2 * spec.padding - spec.k) // spec.stride + 1
                ow = (w + 2 * spec.padding - spec.k) // spec.stride + 1
                chw = (spec.out, oh, ow)
            else:
                if chw is not None:
                    mods.append(nn.Flatten())
                    width, chw = chw[0] * chw[1] * chw[2], None
                layer = _linear(spec, width)
                fan_in, simd_dim = width, width
                width = spec.out
            with torch.no_grad():
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=g) / fan_in ** 0.5 * 2)
                layer.bias.copy_(torch.randn(spec.out, generator=g) * 0.3)
            folding[str(len(mods))] = {"pe": _pick(spec.out, spec.pe_pick), "simd": _pick(simd_dim, spec.simd_pick)}
            mods.append(layer)
            if spec.act_bits:
                if spec.bn:
                    mods.append(_bn2d(spec.out, g) if spec.k else random_bn(spec.out, g))
                mods.append(quant.BinaryAct() if spec.act_bits == 1 else
                            quant.QuantAct(spec.act_bits, clip=float(torch.rand(1, generator=g)) + 0.5))
                if spec.pool:
                    mods.append(nn.MaxPool2d(spec.pool))
                    chw = (chw[0], chw[1] // spec.pool, chw[2] // spec.pool)
        model = nn.Sequential(*mods)
        model.train()
        model.eval()                       # fixes the heterogeneous masks from the weights set above
        return model, folding

    def level_features(self, n: int) -> np.ndarray:
        """Inputs over the whole input quantizer's range, a little beyond both ends, and exact level ties."""
        rng = np.random.default_rng(self.seed)
        shape = (n, *self.in_chw) if self.in_chw else (n, self.in_features)
        x = rng.uniform(-0.2, 1.2, size=shape).astype(np.float32)
        levels = (1 << self.in_bits) - 1
        ties = (rng.integers(0, 2 * levels + 1, size=shape) / (2 * levels)).astype(np.float32)
        return np.where(rng.random(shape) < 0.2, ties, x).astype(np.float32)


def _pick(n: int, where: float) -> int:
    d = divisors(n)
    return d[min(len(d) - 1, int(where * len(d)))]


def _linear(spec: TorchLayer, fan_in: int) -> nn.Module:
    kind = spec.weights[0]
    if kind == "bin":
        return quant.BinaryLinear(fan_in, spec.out)
    if kind == "int":
        return quant.IntLinear(fan_in, spec.out, bits=spec.weights[1])
    if kind == "log2":
        return quant.Log2Linear(fan_in, spec.out, bits=spec.weights[1])
    if kind == "ter":
        return quant.TernaryLinear(fan_in, spec.out)
    return quant.HeteroBinaryLinear(fan_in, spec.out, avg_bits=spec.weights[1])


def _conv(spec: TorchLayer, in_ch: int) -> nn.Module:
    kind, geo = spec.weights[0], dict(stride=spec.stride, padding=spec.padding)
    if kind == "bin":
        return quant.BinaryConv2d(in_ch, spec.out, spec.k, **geo)
    if kind == "int":
        return quant.IntConv2d(in_ch, spec.out, spec.k, bits=spec.weights[1], **geo)
    if kind == "log2":
        return quant.Log2Conv2d(in_ch, spec.out, spec.k, bits=spec.weights[1], **geo)
    if kind == "ter":
        return quant.TernaryConv2d(in_ch, spec.out, spec.k, **geo)
    return quant.HeteroBinaryConv2d(in_ch, spec.out, spec.k, avg_bits=spec.weights[1], **geo)


def _bn2d(c: int, g: torch.Generator) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(c)
    src = random_bn(c, g)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(bn, name).copy_(getattr(src, name))
    return bn


def torch_weight_formats() -> st.SearchStrategy[tuple]:
    return st.one_of(st.just(("bin",)), st.integers(2, 8).map(lambda b: ("int", b)),
                     st.integers(2, 5).map(lambda b: ("log2", b)),
                     st.sampled_from([1.4, 1.5, 2.0, 2.5]).map(lambda b: ("het", b)), st.just(("ter",)))


@st.composite
def torch_nets(draw) -> TorchNet:
    picks = st.floats(0, 0.999)
    layers = []
    if draw(st.booleans()):                                   # a CNN: convolutions, then linear layers
        chw = (draw(st.integers(1, 3)), draw(st.integers(4, 8)), draw(st.integers(4, 8)))
        c, h, w = chw
        for _ in range(draw(st.integers(1, 2))):
            k = draw(st.integers(1, min(3, h, w)))
            p = draw(st.integers(0, min(1, k - 1)))
            s = draw(st.integers(1, 2))
            oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            pool = 2 if min(oh, ow) >= 2 and draw(st.booleans()) else 0
            out = draw(st.integers(1, 8))
            layers.append(TorchLayer(draw(torch_weight_formats()), out, k, s, p, pool, draw(st.booleans()),
                                     draw(st.integers(1, 4)), draw(picks), draw(picks)))
            c, h, w = out, (oh // pool if pool else oh), (ow // pool if pool else ow)
        in_features = 0
    else:
        chw, in_features = None, draw(st.integers(1, 24))
    for _ in range(draw(st.integers(0, 2))):
        layers.append(TorchLayer(draw(torch_weight_formats()), draw(st.integers(1, 16)), bn=draw(st.booleans()),
                                 act_bits=draw(st.integers(1, 4)), pe_pick=draw(picks), simd_pick=draw(picks)))
    layers.append(TorchLayer(draw(torch_weight_formats()), draw(st.integers(1, 8)), bn=False, act_bits=0,
                             pe_pick=draw(picks), simd_pick=draw(picks)))
    return TorchNet(seed=draw(st.integers(0, 2 ** 31 - 1)), in_bits=draw(st.integers(1, 8)), in_chw=chw,
                    in_features=in_features, layers=tuple(layers), acc=draw(st.sampled_from(["auto", "32"])),
                    gaps=draw(st.sampled_from([0.0, 0.3, 0.6])),
                    backpressure=draw(st.sampled_from([0.0, 0.3, 0.6])), pre=draw(preprocessing()))


# --------------------------------------------------------------------------- Brevitas networks

@dataclass(frozen=True)
class BrevitasLayer:
    weight_bits: int          # 1: binary (SignedBinaryWeightPerTensorConst), else signed k-bit
    per_channel: bool
    out: int
    k: int = 0                # conv kernel (0: linear)
    padding: int = 0
    pool: int = 0
    bn: bool = True
    act: tuple = ()           # ("relu", bits) or ("hardtanh", bits, max_val); () for the output layer
    pe_pick: float = 0.0
    simd_pick: float = 0.0
    bias_quant: str = ""      # a brevitas.quant bias quantizer (Int8Bias, ...), "": a float bias


@dataclass(frozen=True)
class BrevitasNet:
    """A model as a Brevitas user writes it: calibrated by a few training-mode forwards."""

    seed: int
    in_bits: int
    in_signed: bool           # Int (zero point: levels stream as q - qmin) or Uint input quantizer
    in_chw: Optional[tuple[int, int, int]]
    in_features: int
    layers: tuple[BrevitasLayer, ...]
    gaps: float = 0.3
    backpressure: float = 0.3
    pre: tuple = ()

    def model(self) -> tuple[nn.Module, dict[str, dict[str, int]]]:
        model, folding = self.sequential()
        return preprocessed(model, folding, self.pre, self.in_chw or (self.in_features,), self.seed)

    def sequential(self) -> tuple[nn.Sequential, dict[str, dict[str, int]]]:
        import brevitas.nn as qnn
        import brevitas.quant as bq
        from brevitas.quant import (Int8ActPerTensorFloat, SignedBinaryWeightPerTensorConst,
                                    Uint8ActPerTensorFloat)

        torch.manual_seed(self.seed)
        mods: list[nn.Module] = [qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat if self.in_signed else
                                                   Uint8ActPerTensorFloat, bit_width=self.in_bits,
                                                   return_quant_tensor=True)]
        folding: dict[str, dict[str, int]] = {}
        chw, width = self.in_chw, self.in_features
        for spec in self.layers:
            wq = (dict(weight_quant=SignedBinaryWeightPerTensorConst) if spec.weight_bits == 1 else
                  dict(weight_bit_width=spec.weight_bits, weight_scaling_per_output_channel=spec.per_channel))
            if spec.bias_quant:
                wq["bias_quant"] = getattr(bq, spec.bias_quant)
            if spec.k:
                c, h, w = chw
                layer = qnn.QuantConv2d(c, spec.out, spec.k, padding=spec.padding, bias=True, **wq)
                simd_dim = c
                size = (h + 2 * spec.padding - spec.k + 1, w + 2 * spec.padding - spec.k + 1)
                chw = (spec.out, *size)
            else:
                if chw is not None:
                    mods.append(nn.Flatten())
                    width, chw = chw[0] * chw[1] * chw[2], None
                layer = qnn.QuantLinear(width, spec.out, bias=True, **wq)
                simd_dim, width = width, spec.out
            folding[str(len(mods))] = {"pe": _pick(spec.out, spec.pe_pick), "simd": _pick(simd_dim, spec.simd_pick)}
            mods.append(layer)
            if spec.act:
                if spec.bn:
                    mods.append(nn.BatchNorm2d(spec.out) if spec.k else nn.BatchNorm1d(spec.out))
                if spec.act[0] == "relu":
                    mods.append(qnn.QuantReLU(bit_width=spec.act[1], return_quant_tensor=True))
                else:
                    mods.append(qnn.QuantHardTanh(bit_width=spec.act[1], min_val=-spec.act[2], max_val=spec.act[2],
                                                  return_quant_tensor=True))
                if spec.pool:
                    mods.append(nn.MaxPool2d(spec.pool))
                    chw = (chw[0], chw[1] // spec.pool, chw[2] // spec.pool)
        model = nn.Sequential(*mods)
        model.train()
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(3):        # calibrate the activation scales and batch-norm statistics
                model(torch.from_numpy(self.level_features(64, seed=1)))
        return model.eval(), folding

    def level_features(self, n: int, seed: int = 0) -> np.ndarray:
        rng = np.random.default_rng(self.seed + seed)
        shape = (n, *self.in_chw) if self.in_chw else (n, self.in_features)
        return rng.normal(0.3, 0.8, size=shape).astype(np.float32)

    def features(self, n: int) -> np.ndarray:
        return raw_features(self.level_features(n), self.pre, self.in_chw or (self.in_features,), self.seed)


@st.composite
def brevitas_nets(draw) -> BrevitasNet:
    picks = st.floats(0, 0.999)
    signed = draw(st.booleans())
    weight_bits = st.sampled_from([1, 2, 3, 4, 6, 8])

    def act():
        bits = draw(st.integers(1, 4))
        if bits > 1 and draw(st.integers(0, 2)) == 0:
            return ("hardtanh", bits, draw(st.sampled_from([1.0, 2.0])))
        return ("relu", bits)

    layers = []
    if draw(st.booleans()):
        chw = (draw(st.integers(1, 3)), draw(st.integers(4, 7)), draw(st.integers(4, 7)))
        c, h, w = chw
        for _ in range(draw(st.integers(1, 2))):
            k = draw(st.integers(1, min(3, h, w)))
            p = draw(st.integers(0, min(1, k - 1)))    # behind a signed input: padded with its zero level
            oh, ow = h + 2 * p - k + 1, w + 2 * p - k + 1
            pool = 2 if min(oh, ow) >= 2 and draw(st.booleans()) else 0
            a = act()
            out = draw(st.integers(1, 6))
            layers.append(BrevitasLayer(draw(weight_bits), draw(st.booleans()), out, k, p, pool, draw(st.booleans()),
                                        a, draw(picks), draw(picks)))
            c, h, w = out, (oh // pool if pool else oh), (ow // pool if pool else ow)
        in_features = 0
    else:
        chw, in_features = None, draw(st.integers(1, 24))
    for _ in range(draw(st.integers(0, 2))):
        layers.append(BrevitasLayer(draw(weight_bits), draw(st.booleans()), draw(st.integers(1, 16)),
                                    bn=draw(st.booleans()), act=act(), pe_pick=draw(picks), simd_pick=draw(picks)))
    layers.append(BrevitasLayer(draw(st.sampled_from([2, 4, 8])), draw(st.booleans()), draw(st.integers(1, 8)),
                                bn=False, pe_pick=draw(picks), simd_pick=draw(picks)))
    biases = st.sampled_from(["", "", "Int8Bias", "Int16Bias", "Int32Bias"])
    layers = [dataclasses.replace(layer, bias_quant=draw(biases)) for layer in layers]
    return BrevitasNet(seed=draw(st.integers(0, 2 ** 31 - 1)), in_bits=draw(st.sampled_from([2, 4, 8])),
                       in_signed=signed, in_chw=chw, in_features=in_features, layers=tuple(layers),
                       gaps=draw(st.sampled_from([0.0, 0.3, 0.6])),
                       backpressure=draw(st.sampled_from([0.0, 0.3, 0.6])), pre=draw(preprocessing()))


# --------------------------------------------------------------------------- preprocessing

#: element-wise arithmetic a forward may apply to its raw input before the input quantizer
PRE_OPS = ("mul", "rmul", "div", "add", "sub", "rsub")


@st.composite
def preprocessing(draw) -> tuple:
    """0-3 ops, each with a scalar (a literal or a torch.tensor) or a per-channel buffer."""
    return tuple((draw(st.sampled_from(PRE_OPS)), draw(st.sampled_from(["literal", "tensor", "channel"])))
                 for _ in range(draw(st.integers(0, 3))))


def _pre_constants(pre: tuple, shape: tuple, seed: int) -> list[np.ndarray]:
    """The constant of each op: (C,) per channel (feature maps: (C, 1, 1)), else a scalar; never near 0
    for a multiplier or divisor."""
    rng = np.random.default_rng(seed + 7)
    out = []
    for op, form in pre:
        n = shape[0] if form == "channel" else 1
        if op in ("mul", "rmul", "div"):
            c = rng.uniform(0.4, 2.5, n) * rng.choice([-1.0, 1.0], n)
        else:
            c = rng.uniform(-1.5, 1.5, n)
        c = c.astype(np.float32)
        out.append(c.reshape((-1, 1, 1) if len(shape) == 3 and n > 1 else -1) if n > 1 else c)
    return out


class Preprocessed(nn.Module):
    """``net`` behind a forward that applies the drawn ops functionally (torch.fx traces it)."""

    def __init__(self, net: nn.Module, pre: tuple, shape: tuple, seed: int):
        super().__init__()
        self.net, self.pre = net, pre
        self.scalars = {}
        for i, ((op, form), c) in enumerate(zip(pre, _pre_constants(pre, shape, seed))):
            if form == "channel":
                self.register_buffer(f"c{i}", torch.from_numpy(c))
            else:
                self.scalars[i] = float(c[0])

    def forward(self, x):
        for i, (op, form) in enumerate(self.pre):
            c = getattr(self, f"c{i}") if form == "channel" else self.scalars[i]
            if form == "tensor":
                c = torch.tensor([c], device=x.device)
            x = {"mul": lambda: x * c, "rmul": lambda: c * x, "div": lambda: x / c, "add": lambda: x + c,
                 "sub": lambda: x - c, "rsub": lambda: c - x}[op]()
        return self.net(x)


def preprocessed(model: nn.Sequential, folding: dict, pre: tuple, shape: tuple, seed: int):
    """``model`` behind its preprocessing (when there is any), with the folding keys it then has."""
    if not pre:
        return model, folding
    return Preprocessed(model, pre, shape, seed).eval(), {f"net.{k}": v for k, v in folding.items()}


def raw_features(levels: np.ndarray, pre: tuple, shape: tuple, seed: int) -> np.ndarray:
    """Raw inputs whose preprocessing lands (up to float rounding) on ``levels``: the ops inverted."""
    x = levels.astype(np.float64)
    inverse = {"mul": lambda v, c: v / c, "rmul": lambda v, c: v / c, "div": lambda v, c: v * c,
               "add": lambda v, c: v - c, "sub": lambda v, c: v + c, "rsub": lambda v, c: c - v}
    for (op, _), c in reversed(list(zip(pre, _pre_constants(pre, shape, seed)))):
        x = inverse[op](x, c.astype(np.float64))
    return x.astype(np.float32)


# --------------------------------------------------------------------------- every executor

def _run_ir_net(net: IRNet, stats: dict) -> None:
    graph = net.graph().validate()
    lo_hi = [l.acc_range() for l in graph.layers]
    assert all(signed_bits_for(int(lo.min()), int(hi.max()) + 1) <= l.acc_bits
               for l, (lo, hi) in zip(graph.layers, lo_hi))
    with tempfile.TemporaryDirectory(prefix="lbgen-prop-") as tmp:
        out = Path(tmp) / "out"
        graph.save(out)
        emit_rtl(graph, out / "rtl")
        emit_hls(graph, out / "hls")
        inputs = random_inputs(graph, FRAMES, seed=net.seed % 1000, ends=0.1)
        check_executors(out, Graph.load(out), inputs, net.seed % 97, net.gaps, net.backpressure)
    _count(stats, graph)


def _run_torch_net(net, stats: dict) -> None:
    """A TorchNet or a BrevitasNet: through emit (torch = golden, and for Brevitas its own forward = lbgen
    on every activation level), then every executor."""
    model, folding = net.model()
    with tempfile.TemporaryDirectory(prefix="lbgen-prop-") as tmp:
        tmp = Path(tmp)
        (tmp / "folding.json").write_text(json.dumps(folding))
        np.save(tmp / "x.npy", net.features(FRAMES))
        opts = EmitOptions(acc=getattr(net, "acc", "auto"), folding=tmp / "folding.json",
                           input_shape=",".join(map(str, net.in_chw)) if net.in_chw else None)
        # emit checks torch = golden on every hidden level of every vector (flow.compare_torch_golden)
        result = emit(model, tmp / "out", opts, inputs=tmp / "x.npy")
        assert result.checks[0].startswith("torch vs golden on"), result.checks
        if isinstance(net, BrevitasNet):
            assert result.checks[1].startswith("Brevitas forward vs lbgen on"), result.checks
        check_executors(tmp / "out", result.graph, result.vectors.values, net.seed % 97, net.gaps,
                        net.backpressure)
    _count(stats, result.graph)


def _count(stats: dict, graph: Graph) -> None:
    stats["networks"] += 1
    stats["layers"] += len(graph.layers)
    for l in graph.layers:
        stats["pe"][l.pe_kind] = stats["pe"].get(l.pe_kind, 0) + 1
    stats["conv"] += sum(graph.conv(l) is not None for l in graph.layers)
    stats["huffman"] += any(l.huffman is not None for l in graph.layers)


def _property(strategy, body, examples: int, long: bool, pinned: tuple = ()):
    """Run ``body`` on ``examples`` drawn networks plus the ``pinned`` ones (hypothesis'
    explicit examples: every run, default or long, covers them)."""
    stats = {"networks": 0, "layers": 0, "pe": {}, "conv": 0, "huffman": 0}
    phases = (Phase.explicit, Phase.generate, Phase.shrink) if long else (Phase.explicit, Phase.generate)

    def run(net):
        body(net, stats)

    for net in pinned:
        run = example(net)(run)
    run = settings(max_examples=examples, deadline=None, derandomize=not long, database=None, phases=phases,
                   suppress_health_check=list(HealthCheck), print_blob=True)(given(strategy)(run))

    t0 = time.monotonic()
    run()
    stats["seconds"] = round(time.monotonic() - t0, 1)
    print(f"\n{body.__name__}: {stats}")
    assert stats["networks"] >= examples + len(pinned), stats
    return stats


# --------------------------------------------------------------------------- pinned networks

U = {k: DType("uint", k) for k in (2, 3, 12, 16)}
I = {k: DType("int", k) for k in (3, 4, 8)}

#: IR networks every run covers: a 16-bit input (fixed<16,6> streamed as unsigned levels)
#: into a padded int8 convolution padded with its zero level 2^15 and a second convolution
#: padded with the zero level 4 of its 3-bit input, 32-bit accumulators; a 12-bit input
#: into binary weights (add/subtract), exact accumulators, thresholds at the range ends
PINNED_IR = (
    IRNet(seed=1811, atypes=(U[16],), in_chw=(2, 5, 6),
          convs=(ConvSpec(4, 3, 1, 1, 0, I[8], U[3], (2, 2), pad_level=1 << 15),
                 ConvSpec(3, 3, 2, 1, 0, B, U[2], (3, 4), pad_level=4)),
          classes=3, fc_wtype=I[4], fc_fold=(1, 3), acc32=True, extremes=0.3),
    IRNet(seed=1812, dims=(12, 6, 3), wtypes=(B, I[3]), atypes=(U[12], U[2]), folds=((3, 4), (1, 2)),
          extremes=0.8, huffman=True),
)

#: a Brevitas CNN every run covers: a signed input (zero level 2^(b-1)) into a padded binary
#: convolution, a signed HardTanh (zero level 4) into a second padded convolution, a max-pool
PINNED_BREVITAS = (
    BrevitasNet(seed=1813, in_bits=8, in_signed=True, in_chw=(2, 5, 5), in_features=0, layers=(
        BrevitasLayer(1, False, 4, k=3, padding=1, act=("hardtanh", 3, 1.0), pe_pick=0.5, simd_pick=0.9),
        BrevitasLayer(4, True, 4, k=3, padding=1, pool=2, act=("relu", 2), pe_pick=0.0, simd_pick=0.5),
        BrevitasLayer(4, True, 3, bn=False, pe_pick=0.9, simd_pick=0.3))),
)


def test_pinned_networks_are_what_they_claim():
    wide, padded = PINNED_IR[0].graph(), PINNED_IR[1].graph()
    assert [wide.conv(l).pad for l in wide.layers[:2]] == [1 << 15, 4] and wide.layers[0].itype == U[16]
    assert padded.layers[0].itype == U[12] and padded.layers[0].pe_kind == "addsub"
    net = PINNED_BREVITAS[0]
    assert net.in_signed and all(l.padding for l in net.layers[:2]) and net.layers[0].act[0] == "hardtanh"


def test_random_ir_networks_in_every_executor():
    _property(ir_nets(), _run_ir_net, FAST["ir"], long=False, pinned=PINNED_IR)


def test_random_torch_networks_in_every_executor():
    _property(torch_nets(), _run_torch_net, FAST["torch"], long=False)


def test_random_brevitas_networks_in_every_executor():
    pytest.importorskip("brevitas")
    _property(brevitas_nets(), _run_torch_net, FAST["brevitas"], long=False, pinned=PINNED_BREVITAS)


@pytest.mark.slow
def test_random_ir_networks_long():
    _property(ir_nets(), _run_ir_net, LONG["ir"], long=True, pinned=PINNED_IR)


@pytest.mark.slow
def test_random_torch_networks_long():
    _property(torch_nets(), _run_torch_net, LONG["torch"], long=True)


@pytest.mark.slow
def test_random_brevitas_networks_long():
    pytest.importorskip("brevitas")
    _property(brevitas_nets(), _run_torch_net, LONG["brevitas"], long=True, pinned=PINNED_BREVITAS)
