"""The torch frontend on convolutional models: lowering, NHWC order, torch =
golden on every level, and the up-front errors that name unsupported options."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from lbgen import golden, quant
from lbgen.errors import UsageError
from lbgen.flow import EmitOptions, Vectors, build_graph, compare_torch_golden

from lbgen_testing.common import random_bn2d_stats


def _cnn(in_ch: int, flat: bool, w: str, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    conv = {"bin": lambda i, o, **k: quant.BinaryConv2d(i, o, **k),
            "int4": lambda i, o, **k: quant.IntConv2d(i, o, bits=4, **k),
            "log2": lambda i, o, **k: quant.Log2Conv2d(i, o, bits=4, **k),
            "hetero": lambda i, o, **k: quant.HeteroBinaryConv2d(i, o, avg_bits=1.4, **k)}[w]
    layers = [nn.Unflatten(1, (in_ch, 7, 6))] if flat else []
    layers += [
        quant.QuantAct(3, clip=1.0),
        quant.IntConv2d(in_ch, 6, 3, padding=1, bits=6), nn.BatchNorm2d(6), quant.BinaryAct(),
        conv(6, 10, kernel_size=(3, 2), stride=1, padding=(1, 0)), nn.BatchNorm2d(10), quant.QuantAct(2, clip=2.0),
        nn.MaxPool2d(2),
        conv(10, 6, kernel_size=1, stride=2), nn.BatchNorm2d(6), quant.QuantAct(2, clip=2.0),
        nn.Flatten(), quant.IntLinear(6 * 2 * 1, 5, bits=8),
    ]
    model = nn.Sequential(*layers)
    return random_bn2d_stats(model).eval()


@pytest.mark.parametrize("w", ["bin", "int4", "log2", "hetero"])
@pytest.mark.parametrize("flat", [True, False], ids=["unflatten", "input_shape"])
def test_conv_model_torch_equals_golden_on_every_level(w, flat):
    in_ch = 3
    model = _cnn(in_ch, flat, w)
    graph = build_graph(model, EmitOptions(input_shape=None if flat else f"{in_ch},7,6"))
    convs = [graph.conv(l) for l in graph.layers if graph.conv(l) is not None]
    assert [(c.in_ch, c.in_h, c.in_w, c.k_h, c.k_w) for c in convs] == \
        [(3, 7, 6, 3, 3), (6, 7, 6, 3, 2), (10, 3, 2, 1, 1)]
    assert graph.pool(graph.layers[1]) is not None and graph.layers[1].itype.kind == "bipolar"
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, size=(40, in_ch * 7 * 6)).astype(np.float32)
    values = graph.input.quantize(x)
    nhwc = values.reshape(-1, in_ch, 7, 6).transpose(0, 2, 3, 1).reshape(40, -1)
    features = x if flat else x.reshape(-1, in_ch, 7, 6)
    msg = compare_torch_golden(model, graph, Vectors(values=nhwc, features=features), golden.run(graph, nhwc))
    assert "every hidden level equal" in msg


def test_unsupported_conv_and_pool_options_are_named_up_front():
    model = _cnn(1, True, "bin")
    model[5].dilation = (2, 2)                       # a tampered quantized conv
    model[8] = nn.MaxPool2d(3, stride=2, ceil_mode=True)
    model.append(nn.Conv2d(4, 4, 3, groups=2, padding_mode="reflect"))
    with pytest.raises(UsageError) as err:
        build_graph(model, EmitOptions())
    msg = str(err.value)
    for part in ("5 (lbgen.quant.modules.BinaryConv2d): dilation=(2, 2)",
                 "8 (torch.nn.modules.pooling.MaxPool2d): kernel_size=3, stride=2",
                 "ceil_mode=True", "groups=2", "padding_mode='reflect'",
                 "unsupported layers", "torch.nn.modules.conv.Conv2d"):
        assert part in msg, (part, msg)


def test_conv_needs_an_input_shape_and_pool_follows_a_quantizer():
    model = _cnn(1, False, "bin")
    with pytest.raises(UsageError, match=r"its input shape is unknown .*--input-shape"):
        build_graph(model, EmitOptions())
    with pytest.raises(UsageError, match="--input-shape '1,7': expected C,H,W"):
        build_graph(model, EmitOptions(input_shape="1,7"))
    with pytest.raises(UsageError, match="takes 1 channels but gets 2"):
        build_graph(model, EmitOptions(input_shape="2,7,6"))
    bad = _cnn(1, True, "bin")
    bad.insert(4, nn.MaxPool2d(2))                   # pooling float values before the quantizer
    with pytest.raises(UsageError, match="max-pool must directly follow the activation quantizer"):
        build_graph(bad, EmitOptions())
