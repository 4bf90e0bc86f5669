"""The command line: exit codes, messages that name the culprit, nothing half-written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from lbgen import quant

from lbgen_testing.common import DIGITS, assert_usage_error, run_cli, small_mlp


def test_help_lists_the_commands():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for cmd in ("emit", "sim", "report"):
        assert cmd in proc.stdout
    assert run_cli("emit", "--help").returncode == 0


def test_lstm_and_sigmoid_named_in_one_error(tmp_path):
    model = nn.Sequential(quant.QuantAct(2), nn.LSTM(4, 4), quant.BinaryLinear(4, 4), nn.Sigmoid())
    torch.save(model, tmp_path / "m.pt")
    out = tmp_path / "out"
    proc = run_cli("emit", tmp_path / "m.pt", "-o", out)
    assert_usage_error(proc, "unsupported layers", "1 (torch.nn.modules.rnn.LSTM)",
                       "3 (torch.nn.modules.activation.Sigmoid)", out=out)


def test_w2_on_a_w1_model_names_the_layer(tmp_path):
    out = tmp_path / "out"
    proc = run_cli("emit", DIGITS / "digits_w1a2.pt", "--target", "fpga", "--w", "2", "--a", "2", "-o", out)
    assert_usage_error(proc, "layer 4 has 1-bit weights, --w 2", out=out)


def test_ternary_and_int2_are_different_formats(tmp_path):
    """--w ternary asks for the ternary format, not for 2-bit integers holding -1..1 (and back)."""
    proc = run_cli("emit", DIGITS / "digits_wta2.pt", "--w", "2", "--a", "2", "-o", tmp_path / "a")
    assert_usage_error(proc, "layer 4 has 2-bit ternary weights, --w 2 asks for exactly 2-bit integer weights",
                       out=tmp_path / "a")
    proc = run_cli("emit", DIGITS / "digits_w2a2.pt", "--w", "ternary", "--a", "2", "-o", tmp_path / "b")
    assert_usage_error(proc, "layer 4 has 2-bit weights, --w ternary asks for exactly 2-bit ternary weights",
                       out=tmp_path / "b")
    proc = run_cli("emit", DIGITS / "digits_wta2.pt", "--w", "ternary", "--a", "2", "-o", tmp_path / "c")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_custom_class_needs_trust(tmp_path):
    pkg = tmp_path / "usermodels.py"
    pkg.write_text(
        "import torch.nn as nn\nfrom lbgen import quant\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n"
        "        self.q = quant.QuantAct(2)\n        self.fc = quant.IntLinear(8, 4, bits=4)\n"
        "    def forward(self, x):\n        return self.fc(self.q(x))\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    subprocess.run([sys.executable, "-c", "import torch, usermodels; torch.save(usermodels.Net().eval(), 'net.pt')"],
                   cwd=tmp_path, env=env, check=True)
    out = tmp_path / "out"
    proc = run_cli("emit", tmp_path / "net.pt", "-o", out, env=env)
    assert_usage_error(proc, "refused", "usermodels.Net", out=out)
    proc = run_cli("emit", tmp_path / "net.pt", "-o", out, "--trust", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (out / "lbgen.json").is_file() and (out / "rtl" / "lbgen_top.v").is_file()


def test_missing_file(tmp_path):
    out = tmp_path / "out"
    assert_usage_error(run_cli("emit", tmp_path / "nope.pt", "-o", out), "nope.pt", "not found", out=out)


def test_pe_that_does_not_divide(tmp_path):
    out = tmp_path / "out"
    proc = run_cli("emit", DIGITS / "digits_w1a2.pt", "--pe", "3", "-o", out)
    assert_usage_error(proc, "layer fc0 (1): PE=3 from --pe does not divide MH (outputs)=256", out=out)


def test_bad_options(tmp_path):
    out = tmp_path / "out"
    assert_usage_error(run_cli("emit", DIGITS / "digits_w1a2.pt", "--acc", "seven", "-o", out), "--acc", out=out)
    assert_usage_error(run_cli("emit", DIGITS / "digits_w1a2.pt", "--target", "asic", "-o", out), "--target", out=out)
    assert_usage_error(run_cli("emit", DIGITS / "digits_w1a2.pt", "--nonsense", "-o", out), "--nonsense", out=out)


def test_existing_output_needs_force(tmp_path):
    model = small_mlp(0, dims=(8, 4, 2))
    torch.save(model, tmp_path / "m.pt")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    proc = run_cli("emit", tmp_path / "m.pt", "-o", out)
    assert proc.returncode == 2 and "--force" in proc.stderr
    assert (out / "keep.txt").read_text() == "mine"
    proc = run_cli("emit", tmp_path / "m.pt", "-o", out, "--force")
    assert proc.returncode == 0, proc.stderr
    assert not (out / "keep.txt").exists() and (out / "lbgen.json").exists()


def test_sim_and_report_refuse_a_directory_that_is_not_an_output(tmp_path):
    assert_usage_error(run_cli("sim", tmp_path), "lbgen.json", "not found")
    assert_usage_error(run_cli("report", tmp_path / "missing"), "not an lbgen output directory")


# -- the number formats of issue 4: bad input is refused with exit code 2 --------------

def test_hetero_distribution_that_cannot_give_the_average_names_the_layer(tmp_path):
    out = tmp_path / "out"
    proc = run_cli("emit", DIGITS / "digits_wh14a2.pt", "--w", "1.4", "--hetero-dist", "0.5,0.3,0.2", "-o", out)
    assert_usage_error(proc, "layer 4 has 1.4-bit heterogeneous weights", "--hetero-dist 0.5,0.3,0.2",
                       "cannot give", out=out)


def test_tampered_log2_model_names_the_layer(tmp_path):
    model = torch.load(DIGITS / "digits_wlog4a4.pt", weights_only=False)
    model[4].max_exp = 8  # the saved state now yields weights up to 2^8, beyond a 4-bit log2 code
    torch.save(model, tmp_path / "tampered.pt")
    out = tmp_path / "out"
    proc = run_cli("emit", tmp_path / "tampered.pt", "-o", out)
    assert_usage_error(proc, "layer 4 (Log2Linear): weight", "is outside the log2:4 range", out=out)


def test_compress_options_and_the_huffman_report(tmp_path):
    model = Path(__file__).resolve().parents[1] / "examples" / "digits" / "digits_w2a2.pt"
    bad = run_cli("emit", model, "--compress", "zip", "-o", tmp_path / "a")
    assert bad.returncode == 2 and "--compress 'zip'" in bad.stderr and not (tmp_path / "a").exists()
    bad = run_cli("emit", model, "--huffman-max-len", "8", "-o", tmp_path / "b")
    assert bad.returncode == 2 and "needs --compress huffman" in bad.stderr
    bad = run_cli("emit", model, "--compress", "huffman", "--huffman-max-len", "1", "-o", tmp_path / "c")
    assert bad.returncode == 2 and "raise --huffman-max-len" in bad.stderr and not (tmp_path / "c").exists()
    ok = run_cli("emit", model, "--compress", "huffman", "-o", tmp_path / "d")
    assert ok.returncode == 0, ok.stderr
    rep = run_cli("report", tmp_path / "d")
    assert rep.returncode == 0 and "Huffman-coded weights" in rep.stdout and "saved" in rep.stdout


@pytest.mark.slow
def test_report_channel_widths_decoder_luts_and_activation_bits(tmp_path):
    """The report's figures are the IR's, the Yosys cache's and the golden run's."""
    import json
    import os

    import numpy as np

    from lbgen.ir import Graph
    from lbgen.passes.compress import activation_stats, layer_stats

    out = tmp_path / "out"
    # folded small (--target-cycles): --synth also synthesises every layer engine
    ok = run_cli("emit", DIGITS / "digits_w8a8.pt", "--bits-budget", "4.5", "--compress", "huffman",
             "--target-cycles", "2048", "--inputs", DIGITS / "digits_test.npz", "-o", out)
    assert ok.returncode == 0, ok.stderr
    env = dict(os.environ, COLUMNS="250")
    rep = run_cli("report", out, "--synth", env=env, timeout=3600)    # Yosys on every layer engine
    assert rep.returncode == 0, rep.stderr
    rows = {}
    for line in rep.stdout.splitlines():
        cells = [c.strip() for c in line.strip("│┃ ").split("│")]
        if len(cells) > 1:
            rows.setdefault(cells[0], []).append(cells)
    graph = Graph.load(out)
    cache = json.loads((out / "report" / "synth.json").read_text())
    lane_luts = sorted(v["lut"] for k, v in cache.items() if k.startswith("huffman_lane:"))
    for layer in graph.layers:
        st = layer_stats(layer)
        huff = next(r for r in rows[layer.name] if len(r) == 13)
        assert huff[1:9] == [str(st.symbols), str(st.raw_bits), str(st.huffman_bits), str(st.stored_bits),
                             f"{st.entropy_bits:.0f}", f"{st.mean_len:.4f}",
                             f"{st.mean_len / st.optimal_mean_len:.4f}", str(st.max_len)]
        lut, lanes, total = int(huff[9]), int(huff[10]), int(huff[11])
        assert lut in lane_luts and lanes == layer.pe * layer.simd and total == lut * lanes and lut > 20
    widths, counts = np.unique(graph.layers[1].channel_bits, return_counts=True)
    mixed = next(r for r in rows["fc1"] if len(r) == 4)
    assert mixed[2] == ", ".join(f"{w} bits: {c}" for w, c in zip(widths, counts)) and len(widths) == 2
    values = np.load(out / "sim" / "inputs.npy")
    for a in activation_stats(graph, values):
        act = next(r for r in rows[a.layer] if len(r) == 6)
        assert act == [a.layer, str(a.values), str(a.raw_bits), str(a.symbols), f"{a.entropy:.3f}",
                       f"{a.huffman:.3f}"]
        assert a.entropy <= a.huffman < a.entropy + 1
    stamp = (out / "report" / "synth.json").stat().st_mtime_ns
    again = run_cli("report", out, "--synth", env=env)
    assert again.returncode == 0 and (out / "report" / "synth.json").stat().st_mtime_ns == stamp   # cached
    bad = run_cli("report", out, "--inputs", tmp_path / "none.npy")
    assert_usage_error(bad, "none.npy")
    assert "Huffman" not in bad.stdout                                  # nothing printed before the error


def test_bits_budget_usage_errors(tmp_path):
    bad = run_cli("emit", DIGITS / "digits_w4a4.pt", "--bits-budget", "9", "-o", tmp_path / "a")
    assert_usage_error(bad, "--bits-budget 9.0", "2..8", out=tmp_path / "a")
    bad = run_cli("emit", DIGITS / "digits_w1a2.pt", "--bits-budget", "3", "-o", tmp_path / "b")
    assert_usage_error(bad, "no hidden layer has k-bit integer weights", out=tmp_path / "b")
    bad = run_cli("emit", DIGITS / "digits_w4a4.pt", "--bits-budget", "6", "-o", tmp_path / "c")
    assert_usage_error(bad, "layer 4 has 4-bit weights", out=tmp_path / "c")


def test_float_model_with_calib_is_quantized_post_training(tmp_path):
    """--calib quantizes a float MLP (lbgen.passes.model.ptq) to --w/--a; without it the error says how."""
    import numpy as np
    import torch
    import torch.nn as nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                          nn.Linear(16, 10)).eval()
    path = tmp_path / "float.pt"
    torch.save(model, path)
    with np.load(DIGITS / "digits_test.npz") as z:
        np.save(tmp_path / "calib.npy", z["x"][:100])
    out = tmp_path / "out"
    ok = run_cli("emit", path, "--w", "3", "--a", "3", "--calib", tmp_path / "calib.npy", "--clip", "minmax",
             "--inputs", DIGITS / "digits_test.npz", "-o", out)
    assert ok.returncode == 0, ok.stderr
    assert "every hidden level equal" in ok.stdout
    from lbgen.ir import Graph

    assert [l.wtype.bits for l in Graph.load(out).layers] == [8, 3, 8]
    assert_usage_error(run_cli("emit", path, "--w", "3", "--a", "3", "-o", tmp_path / "a"),
                       "post-training with --calib", out=tmp_path / "a")
    assert_usage_error(run_cli("emit", path, "--calib", tmp_path / "calib.npy", "-o", tmp_path / "b"),
                       "--calib quantizes a float model post-training", out=tmp_path / "b")
    assert_usage_error(run_cli("emit", path, "--w", "3", "--a", "3", "--calib", tmp_path / "none.npy", "-o",
                           tmp_path / "c"), "--calib file", "not found", out=tmp_path / "c")
    assert_usage_error(run_cli("emit", DIGITS / "digits_w4a4.pt", "--clip", "minmax", "-o", tmp_path / "d"),
                       "add --calib", out=tmp_path / "d")
