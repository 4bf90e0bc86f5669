"""lbgen vs hls4ml 1.3 on the digits MLP: generation, C-sim build, C-sim throughput, exactness.

Two 64-64-64-10 digits MLPs go through both tools in one run, every project in
a temporary directory:

* **float**: Linear-BatchNorm1d-ReLU x2, Linear, trained here with
  examples/digits/train.py's ``fit`` (fixed seeds, FLOAT_EPOCHS epochs, one
  torch thread: a few seconds). hls4ml takes it through its PyTorch front end
  (``config_from_pytorch_model`` + ``convert_from_pytorch_model``, backend
  Vitis, io_parallel); lbgen quantizes it post-training to 8-bit weights and
  activations (``lbgen.emit(model, out, w=8, a=8, calib=...)``, 256 training
  images for calibration), so lbgen's exactness is against its own quantized
  torch model (the one the EmitResult checks compare with golden); its
  agreement with the float model is recorded too.
* **w1a2**: the shipped Brevitas model (examples/digits/brevitas_models.py
  ``mlp_w1a2``). lbgen takes the module in memory (``w=1, a=2``); hls4ml
  takes Brevitas' ``export_qonnx`` through the QONNX clean-up its docs give
  (cleanup_model, ConvertToChannelsLastAndClean, GemmToMatMul, cleanup_model)
  and ``convert_from_onnx_model``. The documented recipe fails on a Gemm
  without a bias (qonnx's GemmToMatMul indexes the missing third input); the
  error is recorded in the JSON and the bench then adds a zero bias to such
  Gemm nodes and carries on.

hls4ml runs twice per model: at its **default** precision (the config
functions called with their defaults) and at a precision **tuned by hand**
(HAND_TUNED below says exactly what is set). lbgen takes no precision setting
beyond the model's own --w/--a.

Per side and configuration: generation time (hls4ml: [QONNX export +
clean-up +] convert + write; lbgen: ``lbgen.emit``, RTL and HLS), C-sim build
time (hls4ml: ``compile()``, which also rewrites the project; lbgen:
``run_csim(force_build=True)`` into a fresh build directory), verification
(hls4ml: ``predict()`` on the whole (360, 64) test array, a Python loop per
sample; lbgen: one ``run_csim`` call over all 360 frames, its ``run_seconds``
= the wall clock of the whole testbench process, file I/O and start-up
included, not the testbench's own ``sim_seconds``), throughput = the test set
repeated TILE times (3600 frames, so one process's start-up does not decide
it) / the best of REPEATS runs, total = generation + build + the
verification of the 360 frames, exactness against the torch model each side
compiled (max |logit difference|, argmax agreement), test accuracy, and for
lbgen whether the C-sim accumulators equal the golden model's bit for bit
(on every run). lbgen's C-sim is measured both with ``-DLBGEN_CSIM_NATIVE``
(``native=True``, run_csim's default: native-integer models of the MAC and
threshold stages, which lbgen's tests hold equal to the ap_int code) and as
the pure ap_int code HLS synthesises (``native=False``, what ``lbgen sim
--simulator csim`` runs).

Ratios: ``csim_throughput_ratio`` = lbgen frames/s / hls4ml frames/s,
``total_time_ratio`` = hls4ml total / lbgen total. The top level holds the
Brevitas w1a2 model (the low-bit network both tools are built for), hls4ml
at its hand-tuned precision against lbgen's native C-sim (``*_ap_int``: the
same against the ap_int C-sim); every pair of both models is under
``ratios``. Writes bench/results/vs_hls4ml.json and vs_hls4ml.png and prints
a Markdown table.

    .venv/bin/python bench/vs_hls4ml.py [--repeats 3] [--only float|w1a2]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
DIGITS = ROOT / "examples" / "digits"
TEST_SET = DIGITS / "digits_test.npz"
HIDDEN = 64
FLOAT_EPOCHS = 20
N_CALIB = 256
REPEATS = 3
#: throughput runs take the test set this many times over
TILE = 10
BACKEND = "Vitis"
IO_TYPE = "io_parallel"

#: what "precision tuned by hand" sets, per model (the code in hls4ml_*_config does exactly this)
HAND_TUNED = {
    "float": "config_from_pytorch_model(granularity='name'); every Dense/BatchNorm weight, bias and scale "
             "ap_fixed<24,6>; every Dense accum and every Dense/BatchNorm/ReLU result ap_fixed<32,12>; "
             "input ap_fixed<16,6> (the default, exact for the k/16 pixels); ReLU table unchanged",
    "w1a2": "config_from_onnx_model (granularity='name', the default); Model default precision fixed<32,16> "
            "(instead of fixed<16,6>: the 8-bit input quantizer's scale, 124.7, does not fit in fixed<16,6>); "
            "both BatchNormalization layers: scale fixed<32,2>, bias fixed<32,8> (their folded scales are "
            "~1e-4 after the 8-bit first layer and round to 0 in fixed<16,6>); everything else 'auto' "
            "(hls4ml's own inference from the QONNX quantizers)",
}
DEFAULT_PRECISION = {
    "float": "config_from_pytorch_model(model, (64,)) defaults: granularity='model', every type ap_fixed<16,6>",
    "w1a2": "config_from_onnx_model(model) defaults: granularity='name', 'auto' types, default fixed<16,6>",
}


# ---------------------------------------------------------------------------------------------- models

def _digits():
    if str(DIGITS) not in sys.path:
        sys.path.insert(0, str(DIGITS))
    import train as digits

    return digits


def make_float_mlp() -> torch.nn.Sequential:
    nn = torch.nn
    return nn.Sequential(
        nn.Linear(64, HIDDEN), nn.BatchNorm1d(HIDDEN), nn.ReLU(),
        nn.Linear(HIDDEN, HIDDEN), nn.BatchNorm1d(HIDDEN), nn.ReLU(),
        nn.Linear(HIDDEN, 10))


def train_float(epochs: int = FLOAT_EPOCHS):
    """The float MLP trained with train.fit (fixed seeds; one torch thread: tiny batches
    train faster on one, and the result does not depend on the machine's thread count)."""
    digits = _digits()
    x_tr, x_te, y_tr, y_te = digits.load_data()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(digits.SEED)
        t = [torch.from_numpy(v) for v in (x_tr, y_tr, x_te, y_te)]
        model, secs = digits.fit(make_float_mlp(), "float64", epochs, *t, log=lambda *a: None)
    finally:
        torch.set_num_threads(threads)
    return model.eval(), x_tr, secs


def load_w1a2():
    from lbgen.api import load_state_dict_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load_state_dict_model(DIGITS / "digits_brevitas_w1a2.pt",
                                      f"{DIGITS / 'brevitas_models.py'}:mlp_w1a2")
    return model.eval()


@torch.no_grad()
def torch_logits(model, x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = model.eval()(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
    out = getattr(out, "value", out)      # a Brevitas QuantTensor
    return out.detach().double().numpy()


# ---------------------------------------------------------------------------------------------- rows

def _compare(logits: np.ndarray, ref: np.ndarray, y: np.ndarray) -> dict:
    return {"max_abs_logit_diff": float(np.max(np.abs(logits - ref))),
            "argmax_agreement": float(np.mean(np.argmax(logits, 1) == np.argmax(ref, 1))),
            "accuracy": float(np.mean(np.argmax(logits, 1) == y))}


def _row(model: str, side: str, config: str, precision: str) -> dict:
    return {"model": model, "side": side, "config": config, "precision": precision}


@contextlib.contextmanager
def _quiet():
    """hls4ml (and Brevitas' exporter) print progress on stdout and log warnings;
    put those away, let exceptions through."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.onnx._internal", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)


# ---------------------------------------------------------------------------------------------- hls4ml

def hls4ml_float_config(model, tuned: bool) -> dict:
    import hls4ml

    if not tuned:
        return hls4ml.utils.config_from_pytorch_model(model, (64,), backend=BACKEND)
    cfg = hls4ml.utils.config_from_pytorch_model(model, (64,), backend=BACKEND, granularity="name")
    for name, layer in cfg["LayerName"].items():
        prec = layer["Precision"]
        for key in prec:
            if key in ("weight", "bias", "scale"):
                prec[key] = "ap_fixed<24,6>"
            elif key in ("accum", "result") and name != "input_1":
                prec[key] = "ap_fixed<32,12>"
    return cfg


def hls4ml_qonnx_config(onnx_model, tuned: bool) -> dict:
    import hls4ml

    cfg = hls4ml.utils.config_from_onnx_model(onnx_model, backend=BACKEND)
    if tuned:
        cfg["Model"]["Precision"]["default"] = "fixed<32,16>"
        for name, layer in cfg["LayerName"].items():
            if name.startswith("BatchNormalization") and "_param" not in name:
                layer["Precision"]["scale"] = "fixed<32,2>"
                layer["Precision"]["bias"] = "fixed<32,8>"
    return cfg


def export_qonnx(model, path: Path) -> float:
    t0 = time.perf_counter()
    with _quiet():
        from brevitas.export import export_qonnx as brevitas_export

        brevitas_export(model, torch.rand(1, 64), str(path))
    return time.perf_counter() - t0


def qonnx_for_hls4ml(path: Path):
    """hls4ml's documented QONNX clean-up; on failure, record the error and retry with
    a zero bias added to every bias-less Gemm. Returns (ModelWrapper, error or None)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.transformation.gemm_to_matmul import GemmToMatMul
    from qonnx.util.cleanup import cleanup_model

    def recipe(fix: bool):
        mw = cleanup_model(ModelWrapper(str(path)))
        mw = mw.transform(ConvertToChannelsLastAndClean())
        if fix:
            for node in mw.graph.node:
                if node.op_type == "Gemm" and len(node.input) == 2:
                    shape = mw.get_tensor_shape(node.output[0])
                    name = f"{node.output[0]}_zero_bias"
                    mw.set_initializer(name, np.zeros(shape[-1], dtype=np.float32))
                    node.input.append(name)
        mw = mw.transform(GemmToMatMul())
        return cleanup_model(mw)

    with _quiet():
        try:
            return recipe(False), None
        except Exception as exc:  # noqa: BLE001 - recorded, then the workaround
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            error = (f"{type(exc).__name__}: {exc} (in {Path(frame.filename).name}:{frame.lineno} "
                     f"{frame.line!s}); documented recipe: cleanup_model, ConvertToChannelsLastAndClean, "
                     f"GemmToMatMul, cleanup_model")
        return recipe(True), error


def run_hls4ml(model_name: str, tuned: bool, source, x: np.ndarray, y: np.ndarray, ref: np.ndarray,
               tmp: Path, repeats: int = REPEATS, pre_seconds: float = 0.0) -> dict:
    """``source``: the torch model (float) or the cleaned QONNX ModelWrapper (w1a2).
    ``pre_seconds`` (QONNX export + clean-up) is added to the generation time."""
    import hls4ml

    config = "hand-tuned" if tuned else "default"
    row = _row(model_name, "hls4ml", config, HAND_TUNED[model_name] if tuned else DEFAULT_PRECISION[model_name])
    out = tmp / f"hls4ml_{model_name}_{config}"
    try:
        t0 = time.perf_counter()
        with _quiet():
            if model_name == "float":
                cfg = hls4ml_float_config(source, tuned)
                hm = hls4ml.converters.convert_from_pytorch_model(
                    source, hls_config=cfg, output_dir=str(out), backend=BACKEND, io_type=IO_TYPE)
            else:
                cfg = hls4ml_qonnx_config(source, tuned)
                hm = hls4ml.converters.convert_from_onnx_model(
                    source, hls_config=cfg, output_dir=str(out), backend=BACKEND, io_type=IO_TYPE)
            hm.write()
        row["generation_s"] = pre_seconds + time.perf_counter() - t0
        row["types"] = {layer.name: {k: str(v.precision) for k, v in layer.types.items()}
                        for layer in hm.get_layers()}
        t0 = time.perf_counter()
        with _quiet():
            hm.compile()
        row["build_s"] = time.perf_counter() - t0
        xc = np.ascontiguousarray(x, dtype=np.float32)
        t0 = time.perf_counter()
        pred = hm.predict(xc)
        verify = time.perf_counter() - t0
        pred = np.asarray(pred, dtype=np.float64).reshape(len(x), -1)
        tiled = np.ascontiguousarray(np.tile(xc, (TILE, 1)))
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            hm.predict(tiled)
            runs.append(time.perf_counter() - t0)
    except Exception as exc:  # noqa: BLE001 - recorded, the bench goes on
        row["error"] = f"{type(exc).__name__}: {exc}"
        return row
    row.update(verify_s=verify, throughput_fps=len(tiled) / min(runs), throughput_runs_s=runs,
               total_s=row["generation_s"] + row["build_s"] + verify, **_compare(pred, ref, y))
    return row


# ---------------------------------------------------------------------------------------------- lbgen

def run_lbgen(model_name: str, model, x: np.ndarray, y: np.ndarray, ref: np.ndarray, tmp: Path, *,
              w, a: int, calib: np.ndarray | None = None, natives=(False, True),
              repeats: int = REPEATS, float_ref: np.ndarray | None = None) -> list[dict]:
    """One ``lbgen.emit`` and, per C-sim variant in ``natives``, a fresh build and ``repeats``
    runs over all frames. ``ref``: the logits of the torch model lbgen compiles (for a float
    model: None, the PTQ model is rebuilt here the way emit builds it); ``float_ref``: the
    float model's logits, for the agreement with it."""
    import lbgen
    from lbgen import golden
    from lbgen.csim import run_csim
    from lbgen.flow import EmitOptions, prepare_model

    tmp.mkdir(parents=True, exist_ok=True)
    inputs = tmp / "inputs.npz"
    np.savez(inputs, x=x, y=y)
    options = {"w": w, "a": a}
    if calib is not None:
        np.save(tmp / "calib.npy", calib)
        options["calib"] = tmp / "calib.npy"
        model = copy.deepcopy(model)
    out = tmp / "out"
    t0 = time.perf_counter()
    with _quiet():
        result = lbgen.emit(model, out, inputs=inputs, force=True, name=f"vs_hls4ml_{model_name}", **options)
    generation = time.perf_counter() - t0
    if ref is None:   # the quantized torch model lbgen compiled (emit's own check compares it with golden)
        with _quiet():
            q = prepare_model(copy.deepcopy(model), EmitOptions(w=str(w), a=a, calib=options.get("calib")))
        ref = torch_logits(q, x)
    graph, values = result.graph, result.vectors.values
    want = golden.run(graph, values).result
    layer = graph.output
    rows = []
    for native in natives:
        config = "native C-sim" if native else "ap_int C-sim"
        row = _row(model_name, "lbgen", config, f"none (the model's own: w={w}, a={a}"
                   + (", post-training quantized" if calib is not None else "") + ")")
        row["generation_s"] = generation
        row["checks"] = list(result.checks)
        build_dir = tmp / f"build_{'native' if native else 'ap'}"
        res = run_csim(out, values, build_dir=build_dir, graph=graph, native=native, force_build=True)
        row["build_s"] = res.build_seconds
        row["bit_exact"] = bool(res.result.shape == want.shape and np.array_equal(res.result, want))
        logits = layer.logits(res.result)
        verify = res.run_seconds
        tiled = np.tile(values, (TILE, 1))
        runs, sims = [], []
        for _ in range(repeats):
            res = run_csim(out, tiled, build_dir=build_dir, graph=graph, native=native, trace=False)
            runs.append(res.run_seconds)
            sims.append(res.sim_seconds)
        row["bit_exact"] &= bool(np.array_equal(res.result, np.tile(want, (TILE, 1))))
        row.update(verify_s=verify, throughput_fps=len(tiled) / min(runs), throughput_runs_s=runs,
                   sim_seconds=sims, throughput_fps_sim_seconds=len(tiled) / min(sims),
                   total_s=generation + row["build_s"] + verify, **_compare(logits, ref, y))
        if float_ref is not None:
            vs = _compare(logits, float_ref, y)
            row["vs_float_model"] = {"max_abs_logit_diff": vs["max_abs_logit_diff"],
                                     "argmax_agreement": vs["argmax_agreement"],
                                     "float_accuracy": float(np.mean(np.argmax(float_ref, 1) == y))}
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------- bench

def bench_float(x, y, tmp: Path, repeats: int) -> tuple[list[dict], dict]:
    model, x_tr, train_s = train_float()
    ref = torch_logits(model, x)
    rows = [run_hls4ml("float", tuned, model, x, y, ref, tmp, repeats) for tuned in (False, True)]
    rows += run_lbgen("float", model, x, y, None, tmp / "lbgen_float", w=8, a=8, calib=x_tr[:N_CALIB],
                      repeats=repeats, float_ref=ref)
    info = {"description": "float 64-64-64-10 MLP (Linear-BatchNorm1d-ReLU x2, Linear), trained here: "
                           f"train.fit, {FLOAT_EPOCHS} epochs, seed train.SEED",
            "train_seconds": train_s, "torch_accuracy": float(np.mean(np.argmax(ref, 1) == y)),
            "lbgen_options": f"w=8, a=8, calib=the first {N_CALIB} training images (ACIQ, bias correction)"}
    return rows, info


def bench_w1a2(x, y, tmp: Path, repeats: int) -> tuple[list[dict], dict]:
    model = load_w1a2()
    ref = torch_logits(model, x)
    tmp.mkdir(parents=True, exist_ok=True)
    onnx_path = tmp / "w1a2_qonnx.onnx"
    export_s = export_qonnx(model, onnx_path)
    t0 = time.perf_counter()
    mw, recipe_error = qonnx_for_hls4ml(onnx_path)
    clean_s = time.perf_counter() - t0
    rows = [run_hls4ml("w1a2", tuned, mw, x, y, ref, tmp, repeats, pre_seconds=export_s + clean_s)
            for tuned in (False, True)]
    for row in rows:
        row["qonnx_export_s"], row["qonnx_cleanup_s"] = export_s, clean_s
    rows += run_lbgen("w1a2", model, x, y, ref, tmp / "lbgen_w1a2", w=1, a=2, repeats=repeats)
    info = {"description": "Brevitas mlp_w1a2 (examples/digits/brevitas_models.py, digits_brevitas_w1a2.pt): "
                           "8-bit input and first layer, binary hidden layer, 2-bit ReLUs, 8-bit last layer",
            "torch_accuracy": float(np.mean(np.argmax(ref, 1) == y)),
            "hls4ml_route": "brevitas.export.export_qonnx -> qonnx cleanup_model, ConvertToChannelsLastAndClean, "
                            "GemmToMatMul, cleanup_model -> hls4ml.converters.convert_from_onnx_model",
            "hls4ml_documented_recipe_error": recipe_error,
            "hls4ml_workaround": None if recipe_error is None else
            "a zero bias initializer added to every bias-less Gemm before GemmToMatMul",
            "qonnx_export_seconds": export_s, "qonnx_cleanup_seconds": clean_s}
    return rows, info


def ratios(rows: list[dict]) -> dict:
    """Every (hls4ml config, lbgen config) pair of one model."""
    out = {}
    for h in rows:
        for lb in rows:
            if h["side"] != "hls4ml" or lb["side"] != "lbgen" or "error" in h or "error" in lb:
                continue
            out[f"hls4ml {h['config']} vs lbgen {lb['config']}"] = {
                "csim_throughput_ratio": lb["throughput_fps"] / h["throughput_fps"],
                "total_time_ratio": h["total_s"] / lb["total_s"],
                "generation_ratio": h["generation_s"] / lb["generation_s"],
                "build_ratio": h["build_s"] / lb["build_s"] if lb["build_s"] else None}
    return out


def _label(r: dict) -> str:
    return f"{r['model']}: {r['side']} {r['config']}"


def print_table(doc: dict) -> None:
    print(f"{doc['frames']} test frames; throughput = {doc['throughput_frames']} frames (the test set x{doc['throughput_frames'] // doc['frames']}) / best of {doc['repeats']} runs; "
          f"total = generation + build + first verification\n")
    print("| model | side | precision | generation s | C-sim build s | verify 360 s | total s | frames/s "
          "| max abs logit diff vs torch | argmax agreement | test accuracy | bit-exact vs golden |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in doc["rows"]:
        if "error" in r:
            print(f"| {r['model']} | {r['side']} | {r['config']} | error: {r['error']} |||||||||")
            continue
        exact = "" if r["side"] == "hls4ml" else ("yes" if r["bit_exact"] else "NO")
        print(f"| {r['model']} | {r['side']} | {r['config']} | {r['generation_s']:.2f} | {r['build_s']:.2f} | "
              f"{r['verify_s']:.3f} | {r['total_s']:.2f} | {r['throughput_fps']:,.0f} | "
              f"{r['max_abs_logit_diff']:.3g} | {100 * r['argmax_agreement']:.2f}% | {100 * r['accuracy']:.2f}% | "
              f"{exact} |")
    print()
    for model, pairs in doc["ratios"].items():
        for pair, v in pairs.items():
            print(f"{model}, {pair}: throughput x{v['csim_throughput_ratio']:.2f}, "
                  f"total time ratio (hls4ml/lbgen) {v['total_time_ratio']:.2f}")
    print(f"\ncsim_throughput_ratio {doc['csim_throughput_ratio']:.3g}, total_time_ratio "
          f"{doc['total_time_ratio']:.3g} ({doc['main_comparison']})")


def plot(doc: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in doc["rows"] if "error" not in r]
    labels = [_label(r) for r in rows]
    ys = np.arange(len(rows))[::-1]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(15, 0.7 * len(rows) + 2.4),
                                   gridspec_kw={"width_ratios": [1.25, 1]})
    left = np.zeros(len(rows))
    for key, name, color in (("generation_s", "generation", "#4c72b0"), ("build_s", "C-sim build (g++)", "#dd8452"),
                             ("verify_s", f"verification ({doc['frames']} frames)", "#55a868")):
        vals = np.array([r[key] for r in rows])
        ax1.barh(ys, vals, left=left, color=color, label=name)
        left += vals
    for yv, r, tot in zip(ys, rows, left):
        ax1.text(tot, yv, f" {tot:.1f} s, {r['throughput_fps']:,.0f} frames/s", va="center", fontsize=8)
    ax1.set_yticks(ys, labels, fontsize=9)
    ax1.set_xlim(0, left.max() * 1.45)
    ax1.set_xlabel("seconds", labelpad=1)
    ax1.set_title("time: generation + build + verification")
    ax1.legend(loc="upper center", bbox_to_anchor=(0.5, -0.07), ncol=3, fontsize=8)
    ax1.grid(axis="x", alpha=0.3)

    h = 0.38
    acc = np.array([100 * r["accuracy"] for r in rows])
    agree = np.array([100 * r["argmax_agreement"] for r in rows])
    ax2.barh(ys + h / 2, acc, h, color="#8172b2", label="test accuracy")
    ax2.barh(ys - h / 2, agree, h, color="#937860", label="argmax agreement with the torch model compiled")
    for yv, r in zip(ys, rows):
        note = f" max|Δlogit| {r['max_abs_logit_diff']:.2g}"
        if r["side"] == "lbgen":
            note += ", bit-exact" if r["bit_exact"] else ", NOT bit-exact"
        vs = r.get("vs_float_model")
        if vs:
            note += (f"\n (vs its own PTQ model; vs the float model:\n max|Δlogit| {vs['max_abs_logit_diff']:.2g}, "
                     f"argmax {100 * vs['argmax_agreement']:.1f}%)")
        ax2.text(101, yv, note, va="center", fontsize=7.5)
    ax2.set_yticks(ys, [""] * len(rows))
    ax2.set_xlim(0, 175)
    ax2.set_xticks([0, 20, 40, 60, 80, 100])
    ax2.set_title("exactness (vs the torch model each side compiled) and accuracy")
    ax2.legend(loc="upper center", bbox_to_anchor=(0.5, -0.07), ncol=2, fontsize=8)
    ax2.grid(axis="x", alpha=0.3)
    fig.suptitle(f"digits 64-64-64-10 MLP: hls4ml {doc['versions']['hls4ml']} vs lbgen "
                 f"(C-sim of {doc['frames']} test images)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _versions() -> dict:
    import brevitas
    import hls4ml
    import onnx

    gxx = subprocess.run(["g++", "--version"], capture_output=True, text=True).stdout.splitlines()
    return {"hls4ml": hls4ml.__version__, "brevitas": brevitas.__version__, "onnx": onnx.__version__,
            "torch": torch.__version__, "python": platform.python_version(), "g++": gxx[0] if gxx else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=REPEATS, help="verification runs per configuration (best counts)")
    ap.add_argument("--only", choices=["float", "w1a2"], help="one model only (no JSON/PNG written)")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    t_start = time.perf_counter()
    load_start = os.getloadavg()
    with np.load(TEST_SET) as z:
        x, y = z["x"].astype(np.float32), z["y"].astype(np.int64)
    doc = {"frames": len(x), "throughput_frames": TILE * len(x), "repeats": args.repeats, "backend": BACKEND, "io_type": IO_TYPE,
           "versions": _versions(), "cores": os.cpu_count(), "load_average_at_start": load_start,
           "models": {}, "rows": [], "ratios": {}}
    with tempfile.TemporaryDirectory(prefix="lbgen-vs-hls4ml-") as tmp:
        tmp = Path(tmp)
        for name, fn in (("float", bench_float), ("w1a2", bench_w1a2)):
            if args.only and args.only != name:
                continue
            rows, info = fn(x, y, tmp / name, args.repeats)
            doc["models"][name] = info
            doc["rows"] += rows
            doc["ratios"][name] = ratios(rows)
    # the headline: the low-bit model both tools are for (Brevitas w1a2 through QONNX), hls4ml at the
    # precision that makes it right, lbgen's verification C-sim (run_csim's default, native-integer
    # models of the MAC and threshold stages, equal to the ap_int code by lbgen's tests); every other
    # pair, the float model's included, is under "ratios"
    main_pair, ap_pair = "hls4ml hand-tuned vs lbgen native C-sim", "hls4ml hand-tuned vs lbgen ap_int C-sim"
    if "w1a2" in doc["ratios"] and main_pair in doc["ratios"]["w1a2"]:
        doc["main_comparison"] = f"Brevitas w1a2 MLP, {main_pair}"
        doc["csim_throughput_ratio"] = doc["ratios"]["w1a2"][main_pair]["csim_throughput_ratio"]
        doc["total_time_ratio"] = doc["ratios"]["w1a2"][main_pair]["total_time_ratio"]
        if ap_pair in doc["ratios"]["w1a2"]:
            doc["csim_throughput_ratio_ap_int"] = doc["ratios"]["w1a2"][ap_pair]["csim_throughput_ratio"]
            doc["total_time_ratio_ap_int"] = doc["ratios"]["w1a2"][ap_pair]["total_time_ratio"]
    else:
        doc["main_comparison"] = "unavailable (the w1a2 model's hls4ml hand-tuned row failed or was not run)"
        doc["csim_throughput_ratio"] = doc["total_time_ratio"] = float("nan")
    doc["seconds"] = time.perf_counter() - t_start
    print_table(doc)
    if args.only is None:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "vs_hls4ml.json").write_text(json.dumps(doc, indent=1) + "\n")
        plot(doc, RESULTS / "vs_hls4ml.png")
        print("\nbench/results/vs_hls4ml.json, bench/results/vs_hls4ml.png")
    print(f"({doc['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
