"""The Python API: ``lbgen.emit(module, "out/", w=1, a=2)``.

For models that live in memory -- Brevitas modules, which do not pickle, or a
model just trained -- the same pipeline as ``lbgen emit`` without a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from .errors import UsageError


def emit(model, out, *, inputs=None, force: bool = False, name: str = "model",
         targets: tuple[str, ...] = ("rtl", "hls"), **options):
    """Compile ``model`` (an ``nn.Module``: lbgen.quant, Brevitas or, with
    ``calib=``, float) into ``out/`` and return the :class:`lbgen.flow.EmitResult`.

    ``options`` are the ``lbgen emit`` options by their Python names: ``w``,
    ``a``, ``acc``, ``pe``, ``simd``, ``folding``, ``target_cycles``,
    ``compress``, ``bits_budget``, ``calib``, ``clip``, ``bias_correction``,
    ``input_shape``, ``topk``, ... (see :class:`lbgen.options.EmitOptions`). ``inputs``: a
    ``.npy``/``.npz`` of test vectors. Raises :class:`lbgen.errors.UsageError`
    naming the problem, before anything is written.
    """
    from .flow import emit as run_emit
    from .options import EmitOptions, option_names

    known = option_names()
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise UsageError(f"lbgen.emit: unknown options {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    # the values (w=1, input_shape=(1, 8, 8), folding="f.json", ...) are parsed here, once
    return run_emit(model, Path(out), EmitOptions(**options), inputs=None if inputs is None else Path(inputs),
                    force=force, name=name, targets=targets)


def load_state_dict_model(path: Path, arch: str):
    """``--arch pkg.mod:factory`` (or ``file.py:factory``): build the user's
    model with their own factory -- code they chose to run -- and load the
    state_dict at ``path`` into it, with ``weights_only=True``."""
    import importlib
    import importlib.util
    import sys

    import torch

    path = Path(path)
    if ":" not in arch:
        raise UsageError(f"--arch {arch!r}: expected module:factory, e.g. mypkg.models:make_model or "
                         "models.py:make_model")
    where, _, attr = arch.rpartition(":")
    try:
        if where.endswith(".py") or "/" in where:
            file = Path(where)
            if not file.is_file():
                raise UsageError(f"--arch {arch!r}: file {where!r} not found")
            spec = importlib.util.spec_from_file_location(f"lbgen_arch_{file.stem}", file)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            if "" not in sys.path and str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))
            module = importlib.import_module(where)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's module may raise anything on import
        raise UsageError(f"--arch {arch!r}: cannot import {where!r}: {type(exc).__name__}: {exc}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise UsageError(f"--arch {arch!r}: {where!r} has no callable {attr!r}")
    try:
        model = factory()
    except Exception as exc:  # noqa: BLE001
        raise UsageError(f"--arch {arch!r}: {attr}() raised {type(exc).__name__}: {exc}") from None
    if not isinstance(model, torch.nn.Module):
        raise UsageError(f"--arch {arch!r}: {attr}() returned a {type(model).__name__}, not a torch.nn.Module")
    from .frontend.torch_frontend import torch_load

    state = torch_load(path, "state_dict file")     # weights_only=True: nothing from the file runs
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UsageError(f"state_dict file {str(path)!r} does not hold a state_dict (a dict of tensors)")
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise UsageError(f"state_dict file {str(path)!r} does not fit --arch {arch!r}: "
                         f"{' '.join(str(exc).split())[:600]}") from None
    model.eval()
    return model
