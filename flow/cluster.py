"""One executor for independent jobs: serial (today's behaviour), a local Dask cluster, or a remote one.

``open_executor(spec)`` reads ``--cluster``:
- ``serial`` (or empty): jobs run one after another in this process, exactly as before;
- ``local:N``: a Dask ``LocalCluster`` of N worker processes with one thread each, so each
  Yosys/Verilator job or Optuna trial owns one core; the dashboard address is printed;
- ``tcp://host:port``: joins a running ``dask scheduler``; an unreachable one is a one-line error
  naming the address and how to start it, after a short connect timeout.

Results are gathered by the client in submission order, so whatever the caller writes is written
once and in a deterministic order however the workers interleave.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

CONNECT_TIMEOUT_S = 5.0


class ClusterError(RuntimeError):
    """A --cluster value that cannot be used; the message is one line meant for the user."""


@dataclass
class Executor:
    """Runs ``fn(job)`` for every job, serially or on a Dask client; yields results in job order."""

    spec: str
    client: Any = None
    cluster: Any = None
    log: Callable[[str], None] = field(default=print)

    def map(self, fn: Callable[[Any], Any], jobs: Iterable[Any], label: Callable[[Any], str] = str) -> Iterator[Any]:
        """Each job's result, in the order of ``jobs``; one progress line per finished job with its worker."""
        jobs = list(jobs)
        if self.client is None:
            for job in jobs:
                result = fn(job)
                self.log(f"[serial] done {label(job)}")
                yield result
            return
        from distributed import as_completed

        futures = [self.client.submit(fn, job, pure=False, retries=2) for job in jobs]
        index = {f.key: i for i, f in enumerate(futures)}
        results: dict[int, Any] = {}
        nxt = 0
        for fut in as_completed(futures):
            i = index[fut.key]
            results[i] = fut.result()
            who = self.client.who_has(fut).get(fut.key, ("?",))
            self.log(f"[{', '.join(who) or '?'}] done {label(jobs[i])}")
            while nxt in results:
                yield results.pop(nxt)
                nxt += 1

    def close(self) -> None:
        """Shuts down the client, and the local cluster when this executor started one."""
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_executor(spec: str | None, log: Callable[[str], None] = print) -> Executor:
    """The executor ``spec`` names (see the module docstring); ClusterError with one line otherwise."""
    text = (spec or "serial").strip()
    if text == "serial":
        return Executor(text, log=log)
    from distributed import Client, LocalCluster

    if text.startswith("local:"):
        count = text.removeprefix("local:")
        if not count.isdigit() or int(count) < 1:
            raise ClusterError(f"--cluster {text!r}: local:N needs a worker count N >= 1, e.g. local:2")
        cluster = LocalCluster(n_workers=int(count), threads_per_worker=1, processes=True,
                               dashboard_address=":0")
        client = Client(cluster)
        log(f"dask: {count} local workers, dashboard {client.dashboard_link}")
        return Executor(text, client=client, cluster=cluster, log=log)
    if text.startswith("tcp://"):
        try:
            client = Client(text, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as err:
            raise ClusterError(f"--cluster {text}: no Dask scheduler answered within {CONNECT_TIMEOUT_S:.0f} s "
                               f"({type(err).__name__}); start one there with `dask scheduler` and "
                               f"`dask worker {text}`, or use --cluster local:N") from None
        log(f"dask: joined {text}, dashboard {client.dashboard_link}")
        return Executor(text, client=client, log=log)
    raise ClusterError(f"--cluster {text!r}: expected serial, local:N or tcp://host:port")
