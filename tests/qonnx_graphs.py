"""QONNX graphs written the way other tools write them, built with onnx/qonnx helpers (test helpers)."""

from __future__ import annotations

import numpy as np

QONNX_DOMAIN = "qonnx.custom_op.general"


class GraphBuilder:
    """A tiny builder: initializers by name, nodes in order, one float input and output."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.inits: dict[str, np.ndarray] = {}
        self.nodes = []
        self._n = 0

    def const(self, value, name: str | None = None, dtype=np.float32) -> str:
        self._n += 1
        name = name or f"c{self._n}"
        self.inits[name] = np.asarray(value, dtype=dtype)
        return name

    def node(self, op: str, inputs: list[str], out: str, domain: str = "", **attrs) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{out}_node", domain=domain, **attrs))
        return out

    def quant(self, x: str, scale, bits: int, signed: bool, out: str, narrow: bool = False, zero=0.0) -> str:
        return self.node("Quant", [x, self.const(scale), self.const(zero), self.const(bits)], out,
                         domain=QONNX_DOMAIN, signed=int(signed), narrow=int(narrow), rounding_mode="ROUND")

    def model(self, in_shape, out_shape, in_name: str = "x", out_name: str = "y", in_datatype: str | None = None):
        from onnx import TensorProto, helper
        from qonnx.core.datatype import DataType
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.util.basic import qonnx_make_model

        graph = helper.make_graph(
            self.nodes, "g", [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, list(in_shape))],
            [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, list(out_shape))],
            initializer=[helper.make_tensor(k, TensorProto.INT64 if v.dtype.kind == "i" else TensorProto.FLOAT,
                                            v.shape, v.reshape(-1).tolist()) for k, v in self.inits.items()])
        model = ModelWrapper(qonnx_make_model(graph, producer_name="lbgen-tests"))
        if in_datatype is not None:
            model.set_tensor_datatype(in_name, DataType[in_datatype])
        return model


def qkeras_style_mlp(seed: int = 0, dims=(16, 12, 5), weight_bits: int = 6, act_bits: int = 4):
    """What QKeras -> QONNX conversion writes for a small MLP: a float input straight into
    MatMul with Quant'd weights, Add of a Quant'd bias, Relu + an unsigned Quant, a second
    MatMul + Quant'd bias, and a trailing Softmax."""
    b = GraphBuilder(seed)
    d0, d1, d2 = dims
    w0 = b.rng.normal(size=(d0, d1)).astype(np.float32) * 0.5
    b.quant(b.const(w0), 2.0 ** -3, weight_bits, True, "w0q", narrow=True)
    b.node("MatMul", ["x", "w0q"], "h0")
    b.quant(b.const(b.rng.normal(size=d1) * 0.5), 2.0 ** -5, 8, True, "b0q")
    b.node("Add", ["h0", "b0q"], "h0b")
    b.node("Relu", ["h0b"], "h0r")
    b.quant("h0r", 2.0 ** -2, act_bits, False, "a0")
    w1 = b.rng.normal(size=(d1, d2)).astype(np.float32) * 0.5
    b.quant(b.const(w1), 2.0 ** -3, weight_bits, True, "w1q", narrow=True)
    b.node("MatMul", ["a0", "w1q"], "h1")
    b.quant(b.const(b.rng.normal(size=d2)), 2.0 ** -4, 8, True, "b1q")
    b.node("Add", ["h1", "b1q"], "logits")
    b.node("Softmax", ["logits"], "y", axis=-1)
    return b.model((1, d0), (1, d2))
