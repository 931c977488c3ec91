"""Dask: the local cluster or a remote one, a pixel budget per worker, and running tasks on it.

Memory is bounded with Dask's worker resources: every worker holds a ``pixels`` resource (its
memory limit over the renderer's peak bytes per pixel, unless the worker was started with
``--resources pixels=N``) and every task asks for the pixels of its image, so a worker never
runs more images at once than its memory holds. An image bigger than the smallest budget asks
for the whole budget: it then runs alone on its worker.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence

from distributed.diagnostics.plugin import WorkerPlugin

from lensblur.errors import InputError

# Peak memory of the scatter renderer over its float32 H×W×3 input is 4.3-4.9× (benchmarks/results/
# speed.json): 5 × 12 bytes per pixel, plus the photo, depth and output kept around it.
BYTES_PER_PIXEL = 5 * 12 + 24
WORKER_BASELINE_BYTES = 600 * 2**20   # a worker with numpy, numba and OpenCV loaded
MIN_PIXELS = 1_000_000
RESOURCE = "pixels"
# No dashboard, and the scheduler's HTTP endpoint on a free port: the default 8787 may be taken by
# another cluster, which would print a warning.
QUIET_SCHEDULER = {"dashboard_address": None, "scheduler_kwargs": {"dashboard_address": ":0"}}


def pixel_budget(memory_limit: int | float | None) -> int:
    """Pixels a worker with ``memory_limit`` bytes (None: the machine's memory) may hold at once."""
    if not memory_limit:
        import psutil

        memory_limit = psutil.virtual_memory().total
    return max(MIN_PIXELS, int((memory_limit - WORKER_BASELINE_BYTES) / BYTES_PER_PIXEL))


class PixelBudget(WorkerPlugin):
    """Dask worker plugin: gives a worker that has no ``pixels`` resource a budget from its
    memory limit. Applies to the workers present and to any that join later."""

    name = "lensblur-pixel-budget"

    def setup(self, worker):
        if RESOURCE not in worker.state.total_resources:
            return worker.set_resources(**{RESOURCE: pixel_budget(worker.memory_manager.memory_limit)})
        return None


@contextlib.contextmanager
def open_client(workers: int | None = None, scheduler: str | None = None, *, quiet: bool = True) -> Iterator:
    """A ``distributed.Client``: on the cluster at ``scheduler`` (``tcp://HOST:8786``) when
    given, else on a local cluster of ``workers`` processes (default: the CPU cores) with one
    thread each and the cores shared out between their numba threads. Yields None when
    ``workers`` is 0 (run in this process, no Dask)."""
    if workers is not None and workers < 0:
        raise InputError(f"--workers must be 0 or more, got {workers}")
    if workers == 0 and scheduler is None:
        yield None
        return
    import dask
    from distributed import Client, LocalCluster

    level = logging.ERROR if quiet else logging.WARNING
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, ValueError, TypeError) as error:
            raise InputError(f"cannot reach the Dask scheduler at {scheduler}: {error}") from None
        with client:
            _prepare(client)
            yield client
        return
    count = workers or os.cpu_count() or 1
    threads = max(1, (os.cpu_count() or 1) // count)
    environ = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}),
               "NUMBA_NUM_THREADS": str(threads), "OMP_NUM_THREADS": "1"}
    # Dask's default MALLOC_TRIM_THRESHOLD_ makes every large array a fresh mmap that is faulted in
    # again: measured 10-30% slower per render here, and the pixel budget already bounds memory.
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    # The local cluster has no dashboard, so the workers' statistical profiler (a stack sample
    # every 10 ms) would only take CPU from the renders.
    # Dask's nannies live in this process and write pre-spawn-environ into its os.environ before
    # each spawn; left there, a changed NUMBA_NUM_THREADS makes numba refuse to compile here.
    saved = dict(os.environ)
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": environ,
                              "distributed.worker.profile.enabled": False}), \
                LocalCluster(n_workers=count, threads_per_worker=1, processes=True, silence_logs=level,
                             **QUIET_SCHEDULER) as cluster, Client(cluster) as client:
            _restore_environ(saved)
            _prepare(client)
            yield client
    finally:
        _restore_environ(saved)


def _restore_environ(saved: dict) -> None:
    for key in set(os.environ) - set(saved):
        del os.environ[key]
    os.environ.update(saved)


def _prepare(client) -> None:
    try:
        client.wait_for_workers(1, timeout=120)
    except TimeoutError:
        raise InputError("the Dask cluster has no workers (waited 2 minutes)") from None


def smallest_budget(client) -> int:
    """The smallest ``pixels`` resource among the client's workers, after giving one to every
    worker that has none (:class:`PixelBudget`): a task asking for a resource that no worker has
    would wait for ever."""
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    budgets = [info.get("resources", {}).get(RESOURCE) for info in workers]
    if not all(budgets):
        client.register_plugin(PixelBudget())
        workers = client.scheduler_info(n_workers=-1)["workers"].values()
        budgets = [info.get("resources", {}).get(RESOURCE) for info in workers]
    budgets = [b for b in budgets if b]
    if not budgets:
        raise InputError("no Dask worker took a pixel budget: start them with --resources pixels=N")
    return int(min(budgets))


def pixel_request(pixels: int, budget: int) -> int:
    """The ``pixels`` resource a task on an image of ``pixels`` pixels asks for: its size, capped
    at the smallest worker ``budget`` so that it can always run somewhere."""
    return max(1, min(int(pixels), int(budget)))


def map_tasks(client, tasks: Sequence[Callable[[], object]], *, pixels: Sequence[int] | None = None,
              retries: int = 0) -> Iterator[tuple[int, object, BaseException | None]]:
    """Run every task (a picklable callable without arguments, e.g. a functools.partial),
    yielding (index, result, None) or (index, None, error) as each finishes (in completion
    order). On a Dask ``client`` every call is one task annotated with its image's ``pixels``
    (width × height); a task whose worker dies is rescheduled by Dask on another one (up to
    ``distributed.scheduler.allowed-failures`` times, then KilledWorker is its error). With
    client None the calls run here, one after the other, in order (``tasks`` may then be a
    generator, consumed lazily)."""
    if client is None:
        for index, task in enumerate(tasks):
            try:
                yield index, task(), None
            except Exception as error:  # noqa: BLE001 - the caller turns it into a row or a message
                yield index, None, error
        return
    from distributed import as_completed

    budget = smallest_budget(client) if pixels is not None else 0
    futures = {}
    for index, task in enumerate(tasks):
        resources = {RESOURCE: pixel_request(pixels[index], budget)} if pixels is not None else None
        future = client.submit(task, resources=resources, pure=False, retries=retries)
        futures[future] = index
    for future in as_completed(futures):
        index = futures.pop(future)
        try:
            yield index, future.result(), None
        except Exception as error:  # noqa: BLE001 - remote errors arrive as their own types
            yield index, None, error
        finally:
            future.release()
