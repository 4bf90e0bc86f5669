"""Work spread over processes and machines (lbgen.pool, Dask distributed).

The cluster test starts a real ``dask scheduler`` and two ``dask worker``
processes on 127.0.0.1, as a user with machines would, and checks that
``lbgen report --synth --cluster`` gives what the serial run gives, and that
a worker killed in the middle of a run loses no job.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lbgen.csim import run_csim, run_csim_sharded
from lbgen.emitters.hls import emit_hls
from lbgen.errors import UsageError
from lbgen.flow import EmitOptions, emit
from lbgen.golden import run as golden_run
from lbgen.ir import DType, Graph
from lbgen.native_tb import run_native, run_native_sharded, shard_frames
from lbgen.pool import Job, open_pool
from lbgen_testing.common import assert_usage_error, run_cli, small_mlp
from lbgen_testing.graphs import ConvSpec, random_cnn, random_inputs
from lbgen_testing.mutation import flip_mem_bit, rtl_rom_flip
from lbgen_testing.pool_jobs import fails, slow_square

distributed = pytest.importorskip("distributed")
DASK = Path(sys.executable).parent / "dask"
#: the scheduler and the workers import the test jobs (lbgen_testing.pool_jobs) from tests/, as a user's
#: import lbgen (Dask deserializes a task graph on the scheduler too)
WORKER_ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parent),
                                                          os.environ.get("PYTHONPATH", "")]))


def _worker(address: str, directory: Path) -> subprocess.Popen:
    return subprocess.Popen([str(DASK), "worker", address, "--nthreads", "1", "--no-nanny",
                             "--local-directory", str(directory)], env=WORKER_ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """A dask scheduler and two single-threaded workers on 127.0.0.1 (their processes, to kill one)."""
    d = tmp_path_factory.mktemp("dask")
    info = d / "scheduler.json"
    procs = [subprocess.Popen([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--dashboard-address", ":0", "--scheduler-file", str(info)],
                              env=WORKER_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for _ in range(300):
            if info.is_file() and info.stat().st_size:
                break
            time.sleep(0.1)
        address = json.loads(info.read_text())["address"]
        procs += [_worker(address, d), _worker(address, d)]
        with distributed.Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield address, procs
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=15)


def _two_workers(scheduler, directory: Path) -> str:
    """The scheduler's address, with a new worker in place of one a test killed."""
    address, procs = scheduler
    for i in (1, 2):
        if procs[i].poll() is not None:
            procs[i] = _worker(address, directory)
    with distributed.Client(address, timeout=30) as client:
        client.wait_for_workers(2, timeout=60)
    return address


def test_options_are_checked_and_named(tmp_path):
    out = tmp_path / "out"
    emit(small_mlp(1, dims=(8, 4, 2)), out, EmitOptions(), name="small")
    assert_usage_error(run_cli("report", out, "--synth", "--jobs", "0"), "--jobs 0")
    assert_usage_error(run_cli("report", out, "--synth", "--cluster", "127.0.0.1"), "--cluster '127.0.0.1'",
                       "tcp://")
    assert_usage_error(run_cli("report", out, "--jobs", "2"), "--jobs/--cluster", "add --synth")
    assert_usage_error(run_cli("report", out, "--synth", "--cluster", "tcp://127.0.0.1:1"),
                       "--cluster tcp://127.0.0.1:1: no Dask scheduler answers")


def test_a_local_cluster_returns_every_result_in_order_and_names_a_failing_job():
    jobs = [Job(f"square {i}", slow_square, (i, 0.05)) for i in range(8)]
    with open_pool(jobs=2) as pool:
        assert pool.workers == 2 and "local cluster" in pool.description
        results = pool.run(jobs)
        assert [r[0] for r in results] == [i * i for i in range(8)]
        assert len({r[1] for r in results}) == 2 and os.getpid() not in {r[1] for r in results}
        with pytest.raises(UsageError, match="fails 3: failed on the cluster .*no square for 3"):
            pool.run([Job("fails 3", fails, (3,))])
    with open_pool() as serial:                        # no option: this process
        assert [r[0] for r in serial.run(jobs)] == [i * i for i in range(8)]


def test_a_killed_worker_loses_no_job(scheduler):
    address, procs = scheduler
    with open_pool(cluster=address) as pool:
        assert pool.workers == 2
        jobs = [Job(f"square {i}", slow_square, (i, 0.5)) for i in range(12)]
        done: list[str] = []

        def progress(text: str) -> None:
            done.append(text)
            if len(done) == 3:                         # mid-run: one worker dies with its job
                procs[1].send_signal(signal.SIGKILL)

        results = pool.run(jobs, progress)
    assert [r[0] for r in results] == [i * i for i in range(12)]
    assert procs[1].wait(timeout=10) == -signal.SIGKILL


def test_report_synth_on_a_cluster_equals_the_serial_run(tmp_path, scheduler):
    address = _two_workers(scheduler, tmp_path)
    emit(small_mlp(3, dims=(8, 6, 4), w_hidden=2, a_hidden=2), tmp_path / "design", EmitOptions(pe=2, simd=2),
         name="small")
    outs = {}
    for how, extra in (("serial", ()), ("cluster", ("--cluster", address)), ("local", ("--jobs", "2"))):
        out = shutil.copytree(tmp_path / "design", tmp_path / how)
        proc = run_cli("report", out, "--synth", *extra, timeout=900)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        if extra:
            assert ("scheduler " + address if how == "cluster" else "local cluster") in proc.stderr
        outs[how] = json.loads((out / "report" / "report.json").read_text())
    cells = {how: [{k: v for k, v in l["cells"].items() if k != "seconds"} for l in doc["layers"]]
             for how, doc in outs.items()}
    assert cells["serial"] == cells["cluster"] == cells["local"]
    assert all(c["lut"] > 0 for c in cells["serial"])


def test_csim_shards_equal_one_run_locally_and_on_the_cluster(tmp_path, scheduler):
    """The shards' merged result and every layer's trace are the one-run C-sim's; lbgen sim
    says bit-exact with --jobs and with --cluster, and refuses shards for an RTL simulator."""
    address = _two_workers(scheduler, tmp_path)
    B, U2, I3 = DType("bipolar", 1), DType("uint", 2), DType("int", 3)
    graph = random_cnn(5, (2, 6, 6), U2, [ConvSpec(4, 3, 1, 1, 2, I3, B, (2, 2))], 3, I3, (3, 1))
    out = tmp_path / "out"
    graph.save(out)
    emit_hls(graph, out / "hls")
    x = random_inputs(graph, 23, seed=2)
    one = run_csim(out, x, native=False)
    want = golden_run(graph, x)
    assert (one.result == want.result).all()
    for kwargs in ({"jobs": 3}, {"cluster": address}):
        with open_pool(**kwargs) as pool:
            sharded = run_csim_sharded(out, x, pool, 3, native=False)
        assert (sharded.result == one.result).all() and sharded.frames == 23
        assert sharded.layers.keys() == one.layers.keys()
        assert all((sharded.layers[k] == one.layers[k]).all() for k in one.layers)
    emitted = tmp_path / "emitted"
    emit(small_mlp(5, dims=(8, 6, 4)), emitted, EmitOptions(), name="small")
    for extra in (("--jobs", "2"), ("--cluster", address)):
        proc = run_cli("sim", emitted, "--simulator", "csim", *extra, timeout=600)
        assert proc.returncode == 0 and "csim: " in proc.stdout and "bit-exact" in proc.stdout, \
            proc.stdout + proc.stderr
        assert "shards on " in proc.stderr
    assert_usage_error(run_cli("sim", emitted, "--simulator", "icarus", "--harness", "cocotb", "--jobs", "2"),
                       "--jobs/--cluster with --harness cocotb")


def test_native_testbench_shards_on_the_cluster(tmp_path, scheduler):
    """Verilator shards on a real scheduler's two workers: the one-run outputs and per-layer
    values; a flipped weight bit is named in every shard with the frame number the whole run
    uses (checked against golden at that frame); lbgen sim --cluster says bit-exact."""
    address = _two_workers(scheduler, tmp_path)
    out = tmp_path / "out"
    emit(small_mlp(6, dims=(10, 8, 6, 4), w_hidden=2, a_hidden=2), out, EmitOptions(pe=2, simd=2), name="small")
    graph = Graph.load(out)
    x = random_inputs(graph, 12, seed=4)
    one = run_native(out, x, simulator="verilator", seed=1)
    with open_pool(cluster=address) as pool:
        sharded = run_native_sharded(out, x, pool, 2, simulator="verilator", seed=1)
        assert one.passed and sharded.passed, sharded.summary()
        np.testing.assert_array_equal(sharded.outputs, one.outputs)
        for name, values in one.layer_outputs.items():
            np.testing.assert_array_equal(sharded.layer_outputs[name], values)
        assert sharded.cycles_per_frame == one.cycles_per_frame == one.expected_cycles_per_frame
        second = int(shard_frames(12, 2, 20)[1][0])     # shard 0 also runs the 20 throughput frames
        assert [s["first_frame"] for s in sharded.stress["shards"]] == [0, second]
        flip, mem, word, bit = rtl_rom_flip(graph, x[second:], "fc1", "weights")    # it shows in the second shard
        mutant = shutil.copytree(out, tmp_path / "mutant")
        flip_mem_bit(mutant / "rtl" / mem, word, bit)
        bad = run_native_sharded(mutant, x, pool, 2, simulator="verilator", seed=1)
    assert not bad.passed
    details = [re.match(r"layer '(\w+)' frame (\d+) channel (\d+): expected (-?\d+), got", m) for m in bad.mismatches]
    found = [(d.group(1), int(d.group(2)), int(d.group(3)), int(d.group(4))) for d in details if d]
    want = golden_run(graph, x)
    assert {f for _, f, _, _ in found if f >= second}, bad.mismatches
    for layer, frame, channel, expected in found:
        assert want.outputs[layer][frame, channel] == expected, (layer, frame, channel)
    proc = run_cli("sim", out, "--simulator", "verilator", "--cluster", address, timeout=600)
    assert proc.returncode == 0 and "verilator: " in proc.stdout and "bit-exact" in proc.stdout, \
        proc.stdout + proc.stderr


def test_a_killed_worker_loses_no_simulation_shard(tmp_path, scheduler):
    """Six Verilator shards on two workers; when the first is done, the worker holding or
    running the most shards is killed with SIGKILL. Its shards run again on the other worker:
    the merged result is the serial run's, frame for frame and layer for layer."""
    address = _two_workers(scheduler, tmp_path)
    out = tmp_path / "out"
    emit(small_mlp(7, dims=(12, 8, 4), w_hidden=2, a_hidden=2), out, EmitOptions(), name="small")
    graph = Graph.load(out)
    x = random_inputs(graph, 600, seed=5)
    one = run_native(out, x, simulator="verilator", seed=1, throughput_frames=0)
    done: list[str] = []
    lost: list[int] = []
    with open_pool(cluster=address) as pool:
        watcher = pool.client                          # one client per process: a second one's loop clashes
        pids = watcher.run(os.getpid)                  # worker address -> process id

        def progress(text: str) -> None:
            done.append(text)
            if len(done) == 1:                         # mid-run: the busiest worker dies with its shards
                busy = {w: len(k) for w, k in watcher.processing().items()}
                held = {w: len(k) for w, k in watcher.has_what().items()}
                victim = max(pids, key=lambda w: busy.get(w, 0) + held.get(w, 0))
                lost.append(busy.get(victim, 0) + held.get(victim, 0))
                os.kill(pids[victim], signal.SIGKILL)

        sharded = run_native_sharded(out, x, pool, 6, simulator="verilator", seed=1, throughput_frames=0,
                                     progress=progress)
    assert lost and lost[0] >= 1, "the killed worker held no shard"
    assert one.passed and sharded.passed, sharded.summary()
    assert len(done) == 6 and sum(s["frames"] for s in sharded.stress["shards"]) == 600
    np.testing.assert_array_equal(sharded.outputs, one.outputs)
    for name, values in one.layer_outputs.items():
        np.testing.assert_array_equal(sharded.layer_outputs[name], values)
