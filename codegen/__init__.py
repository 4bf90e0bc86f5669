"""lbgen: quantized PyTorch models -> bit-exact Verilog and HLS C++.

``lbgen.emit(module, "out/", w=1, a=2)`` compiles a model in memory (see
:mod:`lbgen.api`); the command line is ``lbgen emit``. ``lbgen.host_stream(lbgen.load("out/"),
x)`` turns raw features into the integer stream the emitted hardware takes.
"""


def __getattr__(name):
    # lazy, so `import lbgen` stays light (no torch) for `lbgen sim` and `lbgen report`
    if name == "emit":
        from .api import emit
        return emit
    if name == "host_stream":
        from .inputs import host_stream
        return host_stream
    if name == "load":
        from .output import load_output
        return load_output
    raise AttributeError(f"module 'lbgen' has no attribute {name!r}")
