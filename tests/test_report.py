"""lbgen report: the table's numbers are the IR's and Yosys', and report.html is written.

The figures are computed once (lbgen.report) and printed, saved as
out/report/report.json and rendered to out/report.html; these tests recompute
every per-layer number from the IR independently and re-read every cell count
from the Yosys ``stat`` text the report kept, and check the printed table
shows them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from typer.testing import CliRunner

from lbgen.cli import app
from lbgen.flow import EmitOptions, emit, load_output

from lbgen_testing.common import small_mlp
from lbgen_testing.report import check_report

LBGEN = [sys.executable, "-m", "lbgen.cli"]


def test_report_with_yosys_per_layer(tmp_path):
    model = small_mlp(3, dims=(8, 6, 6, 4), w_hidden=2, a_hidden=2)
    out = tmp_path / "out"
    emit(model, out, EmitOptions(pe=2, simd=2), name="small")   # small engines: Yosys in seconds
    graph = load_output(out)
    proc = subprocess.run([*LBGEN, "report", str(out), "--synth", "--clock-mhz", "150"], capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = check_report(out, graph, proc.stdout, clock_mhz=150.0, synth=True)
    assert all(l["cells"]["lut"] > 0 for l in doc["layers"])
    assert doc["totals"]["cells"]["lut"] == sum(l["cells"]["lut"] for l in doc["layers"])
    assert "total (Yosys, layer engines): LUT" in proc.stdout
    # the second report reads out/report/synth.json instead of running Yosys again
    logs = {p: p.stat().st_mtime_ns for p in (out / "report" / "yosys").glob("*.txt")}
    t0 = time.monotonic()
    again = subprocess.run([*LBGEN, "report", str(out), "--synth", "--clock-mhz", "150"], capture_output=True,
                           text=True, timeout=900)
    assert again.returncode == 0 and time.monotonic() - t0 < 30
    assert {p: p.stat().st_mtime_ns for p in logs} == logs
    assert json.loads((out / "report" / "report.json").read_text()) == doc


def test_report_that_cannot_write_its_files_still_prints(tmp_path):
    model = small_mlp(4, dims=(8, 6, 4))
    out = tmp_path / "out"
    emit(model, out, EmitOptions(), name="ro")
    graph = load_output(out)
    (out / "report").write_text("not a directory")      # out/report/ cannot be made
    res = CliRunner().invoke(app, ["report", str(out)], terminal_width=250)
    assert res.exit_code == 0, res.output
    assert f"bottleneck {max(l.cycles for l in graph.layers)} cycles/frame" in res.output
    assert "could not write the HTML report" in " ".join(res.output.split())
    assert not (out / "report.html").exists()


