"""lbgen report's output checked against the IR: report.json, the printed table, report.html."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from lbgen.cli import app
from lbgen.synth import parse_stat


def check_report(out, graph, stdout: str, clock_mhz: float = 200.0, synth: bool = False) -> dict:
    """Every number of out/report/report.json against the IR (and Yosys' stat text);
    the printed table and report.html show them."""
    doc = json.loads((out / "report" / "report.json").read_text())
    flat = " ".join(stdout.split())
    assert [l["name"] for l in doc["layers"]] == [l.name for l in graph.layers]
    for row, layer in zip(doc["layers"], graph.layers):
        macs = layer.mw * layer.mh * layer.pixels
        expect = {"mw": layer.mw, "mh": layer.mh, "pe": layer.pe, "simd": layer.simd, "acc_bits": layer.acc_bits,
                  "cycles": layer.nf * layer.sf * layer.pixels, "macs": macs, "pe_kind": layer.pe_kind,
                  "bit_ops": int(round(macs * layer.weight_bits_avg * layer.itype.bits)),
                  "weight_bits_raw": layer.mw * layer.mh * layer.wtype.bits}
        for key, value in expect.items():
            assert row[key] == value, (layer.name, key, row[key], value)
        if layer.huffman is None:
            assert row["weight_bits_stored"] == row["weight_bits_raw"]
        line = next(ln for ln in stdout.splitlines() if re.search(rf"[│|]\s*{re.escape(layer.name)}\s*[│|]", ln))
        cells = [c.strip() for c in re.split(r"[│|]", line) if c.strip()]
        for value in (f"{layer.pe} x {layer.simd}", f"{row['cycles']:,}", f"{row['bit_ops']:,}",
                      f"{row['weight_bits_raw']:,}"):
            assert value in cells, (layer.name, value, cells)
        if synth:
            logs = sorted((out / "report" / "yosys").glob(f"{layer.name}.*.txt"))
            assert logs and logs[0].name == f"{layer.name}.lb_mvau.txt"
            parsed = [parse_stat(p.read_text()) for p in logs]
            for key in ("lut", "ff", "carry4", "bram", "dsp"):
                assert row["cells"][key] == sum(p[key] for p in parsed), (layer.name, key)
            assert cells[-5:] == [f"{row['cells'][k]:,}" for k in ("lut", "ff", "carry4", "bram", "dsp")]
    t = doc["totals"]
    bound = max(l.cycles for l in graph.layers)
    assert t["bottleneck_cycles"] == bound
    assert t["frames_per_second"] == pytest.approx(clock_mhz * 1e6 / bound, rel=1e-12)
    assert t["latency_cycles"] == sum(l.cycles for l in graph.layers)
    edge = doc["layers"][0]["bit_ops"] + (doc["layers"][-1]["bit_ops"] if len(doc["layers"]) > 1 else 0)
    assert t["edge_bit_ops_share"] == pytest.approx(edge / sum(l["bit_ops"] for l in doc["layers"]))
    assert f"bottleneck {bound} cycles/frame -> {clock_mhz * 1e6 / bound:,.0f} frames/s at {clock_mhz:g} MHz" in flat
    page = (out / "report.html").read_text()
    for img in re.findall(r"<img src='([^']+)'", page):
        assert (out / img).is_file() and (out / img).stat().st_size > 5000, img
    assert len(re.findall(r"<img src=", page)) == 2
    for layer in graph.layers:
        assert f"<td>{layer.name}</td>" in page
    return doc


def report_shipped(out, graph) -> None:
    """lbgen report on an emitted shipped example (used by the end-to-end fixtures)."""
    res = CliRunner().invoke(app, ["report", str(out)], terminal_width=250)
    assert res.exit_code == 0, res.output
    check_report(out, graph, res.output)
