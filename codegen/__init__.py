"""lbgen: quantized PyTorch models -> bit-exact Verilog and HLS C++.

``lbgen.emit(module, "out/", w=1, a=2)`` compiles a model in memory (see
:mod:`lbgen.api`); the command line is ``lbgen emit``.
"""


def __getattr__(name):
    # lazy, so `import lbgen` stays light (no torch) for `lbgen sim` and `lbgen report`
    if name == "emit":
        from .api import emit
        return emit
    raise AttributeError(f"module 'lbgen' has no attribute {name!r}")
