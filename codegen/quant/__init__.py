"""lbgen.quant -- quantization-aware-training modules with exact integer semantics.

See :mod:`lbgen.quant.modules` for the numerical contract.
"""

from .modules import (
    CLIP_MIN,
    EXACT_ACC_LIMIT,
    HETERO_DIST_TOL,
    HETERO_MAX_PLANES,
    SCALE_MIN,
    STEP_MANTISSA_BITS,
    BinaryAct,
    BinaryConv2d,
    BinaryLinear,
    ChannelBitsConv2d,
    ChannelBitsLinear,
    HeteroBinaryConv2d,
    HeteroBinaryLinear,
    IntConv2d,
    IntLinear,
    Log2Conv2d,
    Log2Linear,
    QuantAct,
    QuantConv2dMixin,
    QuantLinearBase,
    TernaryConv2d,
    TernaryLinear,
    check_hetero_dist,
    default_hetero_dist,
    snap_step,
)

# the --bits-budget allocation, a model pass (numpy only); public here as lbgen.quant.allocate_bits
from ..passes.model.allocation import allocate_bits  # noqa: E402

#: Activation quantizer classes.
ACT_MODULES = (QuantAct, BinaryAct)
#: Quantized linear layer classes (subclasses of QuantLinearBase).
LINEAR_MODULES = (BinaryLinear, IntLinear, Log2Linear, HeteroBinaryLinear, ChannelBitsLinear, TernaryLinear)
#: Quantized 2-d convolution classes (subclasses of QuantConv2dMixin and of
#: their linear counterparts, so also of QuantLinearBase: test for these
#: before treating a QuantLinearBase as a linear layer).
CONV_MODULES = (BinaryConv2d, IntConv2d, Log2Conv2d, HeteroBinaryConv2d, ChannelBitsConv2d, TernaryConv2d)
#: Every lbgen.quant module class.
ALL_MODULES = (QuantAct, BinaryAct, QuantLinearBase, BinaryLinear, IntLinear, Log2Linear, HeteroBinaryLinear,
               ChannelBitsLinear, TernaryLinear, *CONV_MODULES)
#: Globals to pass to ``torch.serialization.add_safe_globals`` (together with
#: the torch.nn classes of the model) to ``torch.load(..., weights_only=True)``
#: a model saved with ``torch.save(model)``.
SAFE_GLOBALS = ALL_MODULES

__all__ = [
    "ACT_MODULES",
    "ALL_MODULES",
    "allocate_bits",
    "CLIP_MIN",
    "CONV_MODULES",
    "EXACT_ACC_LIMIT",
    "HETERO_DIST_TOL",
    "HETERO_MAX_PLANES",
    "LINEAR_MODULES",
    "SAFE_GLOBALS",
    "SCALE_MIN",
    "STEP_MANTISSA_BITS",
    "BinaryAct",
    "BinaryConv2d",
    "BinaryLinear",
    "ChannelBitsConv2d",
    "ChannelBitsLinear",
    "HeteroBinaryConv2d",
    "HeteroBinaryLinear",
    "IntConv2d",
    "IntLinear",
    "Log2Conv2d",
    "Log2Linear",
    "QuantAct",
    "QuantConv2dMixin",
    "QuantLinearBase",
    "TernaryConv2d",
    "TernaryLinear",
    "check_hetero_dist",
    "default_hetero_dist",
    "snap_step",
]
