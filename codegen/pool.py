"""A pool of worker processes for independent jobs (Yosys runs, simulation shards).

lbgen's long jobs are many small independent ones: a Yosys run per layer unit,
a simulation per shard of the test vectors. They go to a Dask distributed
cluster rather than to a pool of our own, because Dask already does what
such a pool must: it reports its scheduler and workers, re-runs the job of a
worker that died (``retries``) instead of dropping it, and the same code
reaches other machines when the user runs a real scheduler.

* ``jobs=N`` (``--jobs N``): a local cluster of N single-threaded worker
  processes, started here and stopped after the work.
* ``cluster=ADDRESS`` (``--cluster tcp://host:port``): the workers of a
  running ``dask scheduler``. They must see the output directory at the same
  path (a shared filesystem) and run this lbgen.
* neither: the jobs run in this process, one after the other.

A job is a named call of a picklable top-level function; its result comes
back in submission order. A job that raises stops the run with an error
naming the job.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Sequence

from .errors import UsageError

#: times a job is re-run when the worker running it is lost
RETRIES = 2
#: seconds to wait for a cluster's scheduler to answer
CONNECT_TIMEOUT = 10


@dataclass(frozen=True)
class Job:
    """One call ``fn(*args)``, named for progress and errors."""

    name: str
    fn: Callable[..., Any]
    args: tuple = ()


def check_pool_options(jobs: Optional[int], cluster: Optional[str]) -> None:
    """UsageError naming the option: ``--jobs`` a positive count, ``--cluster`` a scheduler address."""
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise UsageError(f"--jobs {jobs!r}: must be a positive number of worker processes")
    if cluster is not None and not re.fullmatch(r"(tcp|tls|inproc|ucx)://[^\s/]+(:\d+)?", cluster):
        raise UsageError(f"--cluster {cluster!r}: expected a Dask scheduler address such as tcp://10.0.0.5:8786")


class Pool:
    """Where jobs run: a Dask client, or this process when there is none."""

    def __init__(self, client: Any = None, description: str = "this process") -> None:
        self.client = client
        self.description = description

    @property
    def workers(self) -> int:
        if self.client is None:
            return 1
        return len(self.client.scheduler_info().get("workers", {}))

    def run(self, jobs: Sequence[Job], progress: Optional[Callable[[str], None]] = None) -> list[Any]:
        """Every job's result, in the order of ``jobs``; ``progress`` hears of each one done."""
        if self.client is None:
            results = []
            for i, job in enumerate(jobs, 1):
                results.append(_call(job))
                if progress is not None:
                    progress(f"{i}/{len(jobs)} done: {job.name}")
            return results
        from distributed import as_completed

        # pure=False: a fresh key per submission (Dask would hand back an earlier run's result for a
        # key it still holds)
        futures = [self.client.submit(job.fn, *job.args, retries=RETRIES, pure=False) for job in jobs]
        names = {f.key: job.name for f, job in zip(futures, jobs)}
        done = 0
        for future in as_completed(futures):
            if future.status == "error":
                exc = future.exception()
                for f in futures:
                    f.cancel()
                raise UsageError(f"{names[future.key]}: failed on the cluster ({self.description}): {exc}")
            done += 1
            if progress is not None:
                progress(f"{done}/{len(jobs)} done: {names[future.key]}")
        return [f.result() for f in futures]


def _call(job: Job) -> Any:
    return job.fn(*job.args)


@contextmanager
def open_pool(jobs: Optional[int] = None, cluster: Optional[str] = None) -> Iterator[Pool]:
    """A Pool for ``--jobs``/``--cluster`` (see the module docstring), closed afterwards."""
    check_pool_options(jobs, cluster)
    if jobs is None and cluster is None:
        yield Pool()
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise UsageError("--jobs/--cluster need dask.distributed (pip install 'lbgen[cluster]'; make install "
                         "sets it up)") from None
    if cluster is not None:
        try:
            client = Client(cluster, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise UsageError(f"--cluster {cluster}: no Dask scheduler answers there ({exc})") from None
        try:
            yield Pool(client, f"scheduler {cluster}, {len(client.scheduler_info()['workers'])} workers")
        finally:
            client.close()
        return
    local = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(local)
    try:
        yield Pool(client, f"local cluster {local.scheduler_address}, {jobs} worker processes")
    finally:
        client.close()
        local.close()
