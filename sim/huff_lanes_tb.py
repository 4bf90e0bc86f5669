"""cocotb testbench for stand-alone Huffman weight decoders (lb_huff_weights).

The top (written by tests/test_rtl_huff_lanes.py) holds several
lb_huff_weights instances side by side, each with its own ports
``<prefix>_take`` (in), ``<prefix>_word``, ``<prefix>_ready`` and
``<prefix>_err`` (out), and a shared ``clk``/``rst_n``. The configuration is
a JSON file named by the environment variable ``HUFF_LANES_CONFIG``:

    {"results": path, "seed": int, "clock_ns": 10, "reset_cycles": 8,
     "units": [{"prefix": "u0",
                "words1": int,           # words taken with random pauses (phase 1)
                "words2": int,           # then words taken in every cycle (phase 2)
                "pause": p}, ...]}       # phase 1: probability of not taking

Each unit takes its words: in phase 1 it leaves a ready word untaken with
probability ``pause`` (seeded, drawn per cycle); in phase 2 it asks in every
cycle and counts the cycles in which no word was ready (``stalls``). The
testbench checks nothing itself: it writes every word taken, the stalls and
the sticky error flag at the end to the results file.
"""

from __future__ import annotations

import json
import logging
import os
import random
from pathlib import Path
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

CONFIG_ENV = "HUFF_LANES_CONFIG"


@cocotb.test()
async def huff_lanes_test(dut: Any) -> None:
    """Take every unit's words (see the module docstring) and record them."""
    cfg = json.loads(Path(os.environ[CONFIG_ENV]).read_text())
    for name in ("cocotb", f"cocotb.{dut._name}"):
        logging.getLogger(name).setLevel(logging.WARNING)
    Clock(dut.clk, float(cfg.get("clock_ns", 10)), unit="ns").start(start_high=False)
    units = cfg["units"]
    rng = random.Random(int(cfg.get("seed", 0)))
    ports = [(getattr(dut, f"{u['prefix']}_take"), getattr(dut, f"{u['prefix']}_word"),
              getattr(dut, f"{u['prefix']}_ready"), getattr(dut, f"{u['prefix']}_err")) for u in units]
    for take, *_ in ports:
        take.value = 0
    dut.rst_n.value = 0
    for _ in range(int(cfg.get("reset_cycles", 8))):
        await RisingEdge(dut.clk)
    dut.rst_n.value = 1
    words: list[list[int]] = [[] for _ in units]
    stalls = [0] * len(units)
    started = [False] * len(units)
    limit = 4 * max(int(u["words1"]) + int(u["words2"]) for u in units) + 64
    for _ in range(limit):
        # between edges: what is ready now is taken at the next rising edge if take is high
        await FallingEdge(dut.clk)
        busy = False
        for i, (u, (take, word, ready, _)) in enumerate(zip(units, ports)):
            n = len(words[i])
            total = int(u["words1"]) + int(u["words2"])
            if n >= total:
                take.value = 0
                continue
            busy = True
            phase2 = n >= int(u["words1"])
            want = phase2 or rng.random() >= float(u["pause"])
            is_ready = int(ready.value) == 1
            if is_ready:
                started[i] = True
            elif phase2 and started[i]:
                stalls[i] += 1
            if want and is_ready:
                words[i].append(int(word.value))
                take.value = 1
            else:
                take.value = 0
        if not busy:
            break
    await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    result = {"units": {u["prefix"]: {"words": words[i], "stalls": stalls[i], "err": int(ports[i][3].value)}
                        for i, u in enumerate(units)}}
    Path(cfg["results"]).write_text(json.dumps(result) + "\n")
