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
    BinaryLinear,
    HeteroBinaryLinear,
    IntLinear,
    Log2Linear,
    QuantAct,
    QuantLinearBase,
    check_hetero_dist,
    default_hetero_dist,
    snap_step,
)

#: Activation quantizer classes.
ACT_MODULES = (QuantAct, BinaryAct)
#: Quantized linear layer classes (subclasses of QuantLinearBase).
LINEAR_MODULES = (BinaryLinear, IntLinear, Log2Linear, HeteroBinaryLinear)
#: Every lbgen.quant module class.
ALL_MODULES = (QuantAct, BinaryAct, QuantLinearBase, BinaryLinear, IntLinear, Log2Linear, HeteroBinaryLinear)
#: Globals to pass to ``torch.serialization.add_safe_globals`` (together with
#: the torch.nn classes of the model) to ``torch.load(..., weights_only=True)``
#: a model saved with ``torch.save(model)``.
SAFE_GLOBALS = ALL_MODULES

__all__ = [
    "ACT_MODULES",
    "ALL_MODULES",
    "CLIP_MIN",
    "EXACT_ACC_LIMIT",
    "HETERO_DIST_TOL",
    "HETERO_MAX_PLANES",
    "LINEAR_MODULES",
    "SAFE_GLOBALS",
    "SCALE_MIN",
    "STEP_MANTISSA_BITS",
    "BinaryAct",
    "BinaryLinear",
    "HeteroBinaryLinear",
    "IntLinear",
    "Log2Linear",
    "QuantAct",
    "QuantLinearBase",
    "check_hetero_dist",
    "default_hetero_dist",
    "snap_step",
]
