"""Run a compiled kernel's parallel loop on several threads: the ahead-of-time route's ``prange``.

numba.pycc has no ``parallel=True``: in the compiled module (lensblur.aot) a kernel's ``prange``
is plain ``range``. Its exports release the GIL, so a kernel whose last two arguments ``lo, hi``
bound its outer loop (declared with ``@njit(..., chunked=True)``) can run that range as chunks
on a few threads instead: :func:`run_chunks`. The JIT route does not come here (numba's
``prange`` over ``range(lo, hi)`` parallelises the same loop).
"""

from __future__ import annotations

import itertools
import threading

from lensblur.aot import get_num_threads

# Below this many elements in the kernel's largest array a call stays on the calling thread
# (a 16×16 start-up render never creates the pool).
MIN_ELEMENTS = 1 << 16
CHUNKS_PER_THREAD = 8  # chunks are taken as threads free up, so uneven chunks even out

_pools: dict = {}  # thread count -> concurrent.futures.ThreadPoolExecutor, made on first use
_pool_lock = threading.Lock()


def chunk_bounds(lo: int, hi: int, pieces: int) -> list[tuple[int, int]]:
    """[lo, hi) cut into ``pieces`` (at least 1, at most hi − lo) consecutive ranges of sizes
    differing by at most one."""
    pieces = max(1, min(pieces, hi - lo))
    cuts = [lo + (hi - lo) * i // pieces for i in range(pieces + 1)]
    return list(zip(cuts[:-1], cuts[1:]))


def _executor(threads: int, name: str = "kernel"):
    # One pool per thread count and use, never shut down: another thread may be submitting to it.
    with _pool_lock:
        if (threads, name) not in _pools:
            from concurrent.futures import ThreadPoolExecutor  # only renders large enough to split pay it

            _pools[threads, name] = ThreadPoolExecutor(threads, thread_name_prefix=f"lensblur-{name}")
        return _pools[threads, name]


def ahead(function, *args, min_elements: int = 0) -> "Ahead":
    """``function(*args)``, made ahead of the caller's need where a CPU is free: returns an
    :class:`Ahead` whose ``result()`` gives its value (or raises its error).

    For serial numpy/OpenCV work, which mostly releases the GIL, that the caller needs only
    later: meanwhile the caller's own work (or the kernels it runs) and these calls share the
    CPUs, instead of the other CPUs idling while the caller makes them. A background thread kept
    for this (apart from the kernels' pool, so kernel chunks never queue behind it) makes the
    calls in the order they were started, from any thread. Whichever thread reaches a call first
    makes it: a ``result()`` on a call not yet started (the background thread busy with earlier
    ones, perhaps another render's) makes it on the caller's thread at once, and the background
    thread then skips it; one already started is waited for. When there is one thread, or
    ``min_elements`` (the size of the work, e.g. the image's pixels) is below
    :data:`MIN_ELEMENTS`, no thread is involved: the call is made at the first ``result()``."""
    made = Ahead(function, args)
    if get_num_threads() >= 2 and min_elements >= MIN_ELEMENTS:
        _executor(1, "ahead").submit(made.make)
    return made


class Ahead:
    """One call of :func:`ahead`, made once by whichever thread reaches it first."""

    def __init__(self, function, args: tuple) -> None:
        self._call = (function, args)
        self._lock = threading.Lock()
        self._value = self._error = None

    def make(self) -> None:
        """Make the call unless it was made already (an error is kept for ``result()``)."""
        with self._lock:
            if self._call is None:
                return
            function, args = self._call
            self._call = None
            try:
                self._value = function(*args)
            except BaseException as error:  # noqa: BLE001 - raised by result() on the caller's thread
                self._error = error

    def result(self):
        """The call's value, making it now if no thread has started it; its error is raised."""
        self.make()
        if self._error is not None:
            raise self._error
        return self._value


def run_chunks(function, args: tuple, threads: int | None = None, min_elements: int | None = None) -> None:
    """``function(*args)`` where ``args`` ends with ``lo, hi`` (ints), run as calls on chunks of
    [lo, hi) on ``threads`` (default :func:`lensblur.aot.get_num_threads`) threads, the calling
    thread one of them, waiting for all of them; one call on this thread when there is one
    thread, one iteration, or less work than ``min_elements`` (default :data:`MIN_ELEMENTS`)
    elements in the largest array argument. The function must release the GIL to gain anything,
    treat every iteration of [lo, hi) independently and write disjoint outputs: then the result
    is identical to one call. Its return value is dropped. The error of the first chunk (in
    range order) that raised is raised, after every chunk has finished."""
    *head, lo, hi = args
    threads = get_num_threads() if threads is None else threads
    limit = MIN_ELEMENTS if min_elements is None else min_elements
    largest = max((getattr(a, "size", 0) for a in head), default=0)
    if threads < 2 or hi - lo < 2 or largest < limit:
        function(*args)
        return
    bounds = chunk_bounds(lo, hi, CHUNKS_PER_THREAD * threads)
    taken = itertools.count()  # next() is atomic under the GIL: each chunk is taken once
    errors: dict[int, BaseException] = {}

    def take_chunks() -> None:
        # Chunks are taken as threads free up, so uneven chunks even out. One submitted task per
        # helper thread instead of one per chunk: fewer hand-offs between threads.
        while (index := next(taken)) < len(bounds):
            try:
                function(*head, *bounds[index])
            except BaseException as error:  # noqa: BLE001 - raised below, after every chunk
                errors[index] = error

    pool = _executor(threads - 1)
    helpers = [pool.submit(take_chunks) for _ in range(threads - 1)]
    take_chunks()
    # A helper still queued (the pool busy with another caller's chunks) has nothing left to do.
    waiting = [helper for helper in helpers if not helper.cancel()]
    if waiting:
        from concurrent.futures import wait

        wait(waiting)
    if errors:
        raise errors[min(errors)]
