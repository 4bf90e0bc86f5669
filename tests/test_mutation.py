"""The checks can fail: one flipped bit of an emitted ROM is caught and localised.

A verification flow that never fails proves nothing. These tests take a
design written by ``lbgen emit`` (the CLI), flip one bit of one weight and of
one threshold in what the executors read (the RTL ``.mem`` images, the HLS
ROM arrays in ``lbgen_params.h``), and run ``lbgen sim``, as a user would:

* without ``--allow-modified`` the edited ``out/`` is refused (exit 2) naming
  the file, before anything is simulated;
* with it, the simulation runs, exits 1, and its first message names the
  layer, the frame, the channel and both values: exactly the output the flip
  changes first (computed independently with the golden model of the
  mutated layer, ``lbgen_testing.mutation.weight_flip`` / ``threshold_flip``).

tests/test_sim.py does the same through ``run_rtl`` on random graphs for
every ROM kind (parallel and binary-search thresholds, log2 and hetero weights).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from lbgen.ir import Graph

from lbgen_testing.common import assert_usage_error, run_cli, small_mlp
from lbgen_testing.mutation import (flip_hls_rom_bit, flip_mem_bit, hls_threshold_word, rtl_rom_flip,
                                     threshold_flip, weight_flip, weight_word)


@pytest.fixture(scope="module")
def emitted(tmp_path_factory):
    """A 12-8-6-4 MLP (8-bit, 4-bit, 8-bit weights; 2-bit activations) emitted by the CLI."""
    tmp = tmp_path_factory.mktemp("mutation")
    torch.save(small_mlp(3, dims=(12, 8, 6, 4), w_hidden=4, a_hidden=2), tmp / "m.pt")
    out = tmp / "out"
    proc = run_cli("emit", tmp / "m.pt", "--pe", "2", "--simd", "2", "-o", out)
    assert proc.returncode == 0, proc.stderr
    graph = Graph.load(out)
    return out, graph, np.load(out / "sim" / "inputs.npy")


def _mutant(out: Path, dst: Path) -> Path:
    shutil.copytree(out, dst)
    shutil.rmtree(dst / "build", ignore_errors=True)
    return dst


def _expect_localised(proc, flip, executor: str) -> None:
    text = proc.stdout + proc.stderr
    assert proc.returncode == 1, text
    flat = " ".join(text.split())
    if executor == "csim":
        want = (f"values differ; first at frame {flip.frame}, channel {flip.channel}: "
                f"C-sim {flip.got}, golden {flip.expected}")
        assert f"layer '{flip.layer}': " in flat, text
    else:
        want = f"layer '{flip.layer}' frame {flip.frame} channel {flip.channel}: expected {flip.expected}, got {flip.got}"
    assert "MISMATCH" in flat and want in flat, (want, text)


@pytest.mark.parametrize("rom", ["weights", "thresholds"])
def test_flipped_rtl_rom_bit_is_refused_then_caught(emitted, tmp_path, rom):
    out, graph, inputs = emitted
    flip, name, word, bit = rtl_rom_flip(graph, inputs, "fc1", rom)
    mutant = _mutant(out, tmp_path / "out")
    mem = mutant / "rtl" / name
    flip_mem_bit(mem, word, bit)
    assert_usage_error(run_cli("sim", mutant, "--simulator", "icarus"), f"rtl/{mem.name}")
    _expect_localised(run_cli("sim", mutant, "--simulator", "icarus", "--allow-modified"), flip, "icarus")


@pytest.mark.parametrize("rom", ["weights", "thresholds"])
def test_flipped_hls_rom_bit_is_refused_then_caught(emitted, tmp_path, rom):
    out, graph, inputs = emitted
    name = "fc1"
    layer = graph.layer(name)
    mutant = _mutant(out, tmp_path / "out")
    params = mutant / "hls" / "lbgen_params.h"
    if rom == "weights":
        flip = weight_flip(graph, inputs, name)
        word, bit = weight_word(layer, flip)
        flip_hls_rom_bit(params, f"{name}_weights", word, bit)
    else:
        flip = threshold_flip(graph, inputs, name)
        lane, word, bit = hls_threshold_word(layer, flip)
        flip_hls_rom_bit(params, f"{name}_thresholds", word, bit, lane=lane)
    assert_usage_error(run_cli("sim", mutant, "--simulator", "csim"), "hls/lbgen_params.h")
    _expect_localised(run_cli("sim", mutant, "--simulator", "csim", "--allow-modified"), flip, "csim")
