"""lensblur.threads.ahead: calls made on a background thread ahead of the caller's need (or by the
caller when it gets there first), and the scatter renderer's hidden parts found that way give
exactly the render found on its own thread."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

from lensblur import threads
from lensblur.aperture import Aperture
from lensblur.renderers import scatter


def _background(function, *args, min_elements=0):
    # a future of the background thread: every call is made there (the caller only waits)
    return threads._executor(1, "ahead").submit(function, *args)


def _on_this_thread(function, *args, min_elements=0):
    return threads.Ahead(function, args)  # never handed to the thread: made at result()


def test_ahead_runs_calls_in_order_on_its_own_thread(monkeypatch):
    monkeypatch.setattr(threads, "get_num_threads", lambda: 2)
    seen = []

    def record(value):
        seen.append((value, threading.current_thread().name))
        if value == 3:
            raise ValueError("three")
        return value * 10

    made = [threads.ahead(record, value, min_elements=threads.MIN_ELEMENTS) for value in range(5)]
    deadline = time.monotonic() + 30
    while len(seen) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [made[i].result() for i in (0, 1, 2, 4)] == [0, 10, 20, 40]
    with pytest.raises(ValueError, match="three"):
        made[3].result()
    with pytest.raises(ValueError, match="three"):
        made[3].result()  # kept, raised again
    assert [value for value, _ in seen] == [0, 1, 2, 3, 4]  # made in order, each once
    assert len({name for _, name in seen}) == 1  # the one thread kept for this
    assert seen[0][1].startswith("lensblur-ahead") and seen[0][1] != threading.current_thread().name


def test_a_call_not_yet_started_is_made_by_the_caller_once(monkeypatch):
    monkeypatch.setattr(threads, "get_num_threads", lambda: 2)
    release, started = threading.Event(), threading.Event()

    def hold():
        started.set()
        release.wait(30)

    calls = []
    blocker = threads.ahead(hold, min_elements=threads.MIN_ELEMENTS)  # keeps the thread busy
    assert started.wait(30)
    later = threads.ahead(lambda: calls.append(threading.current_thread().name) or len(calls),
                          min_elements=threads.MIN_ELEMENTS)
    assert later.result() == 1 and calls == [threading.current_thread().name]  # no waiting for the thread
    release.set()
    blocker.result()
    done = threads.ahead(lambda: None, min_elements=threads.MIN_ELEMENTS)
    done.result()
    deadline = time.monotonic() + 30
    while threads._executor(1, "ahead")._work_queue.qsize() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert calls == [threading.current_thread().name]  # the thread skipped it


@pytest.mark.parametrize("cpus,elements", [(1, 1 << 20), (2, 100)])
def test_ahead_on_one_cpu_or_for_small_work_calls_on_demand_once(monkeypatch, cpus, elements):
    monkeypatch.setattr(threads, "get_num_threads", lambda: cpus)
    calls = []

    def record(value):
        calls.append(threading.current_thread().name)
        return [value]

    pending = threads.ahead(record, 7, min_elements=elements)
    assert calls == []  # nothing runs before the value is asked for
    first = pending.result()
    assert first == [7] and pending.result() is first
    assert calls == [threading.current_thread().name]

    failing = threads.ahead(lambda: 1 / 0, min_elements=elements)
    with pytest.raises(ZeroDivisionError):
        failing.result()


def _occluded_scene(seed: int, height: int = 320, width: int = 400):
    """Linear radiance with some lights, and a signed c map with near blobs in front of a
    tilted far plane (hidden areas in several slabs) and a sharp band at the focus."""
    rng = np.random.default_rng(seed)
    radiance = cv2.GaussianBlur(rng.uniform(0, 1, (height, width, 3)).astype(np.float32), (0, 0), 2)
    radiance[rng.random((height, width)) < 0.002] = 4.0
    rows, cols = np.mgrid[0:height, 0:width]
    coc = (-18 + 10 * rows / height).astype(np.float32)
    for _ in range(4):
        cy, cx, r = rng.integers(0, height), rng.integers(0, width), rng.integers(20, 70)
        coc[(rows - cy) ** 2 + (cols - cx) ** 2 < r * r] = rng.uniform(-3, 25)
    coc[abs(rows - height // 2) < 6] = 0.2
    return radiance, coc


def test_hidden_parts_found_ahead_give_the_render_found_in_line(monkeypatch):
    aperture = Aperture(blades=6, rotation=10.0, curvature=0.4)
    where = []
    hidden_part = scatter.HiddenAreaOwners.hidden_part

    def recording(self, label):
        where.append(threading.current_thread().name)
        return hidden_part(self, label)

    monkeypatch.setattr(scatter.HiddenAreaOwners, "hidden_part", recording)
    for seed in range(3):
        radiance, coc = _occluded_scene(seed)
        monkeypatch.setattr(scatter, "ahead", _on_this_thread)
        where.clear()
        in_line = scatter.scatter_layers(radiance, coc, aperture)
        assert set(where) == {threading.current_thread().name}
        monkeypatch.setattr(scatter, "ahead", _background)
        where.clear()
        found_ahead = scatter.scatter_layers(radiance, coc, aperture)
        assert where and all(name.startswith("lensblur-ahead") for name in where)
        np.testing.assert_array_equal(found_ahead, in_line)


def test_renders_in_several_threads_share_the_background_thread(monkeypatch):
    monkeypatch.setattr(scatter, "ahead", _background)
    aperture = Aperture()
    scenes = [_occluded_scene(seed) for seed in range(4)]
    alone = [scatter.scatter_layers(radiance, coc, aperture) for radiance, coc in scenes]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda scene: scatter.scatter_layers(scene[0], scene[1], aperture), scenes))
    for one, other in zip(alone, together):
        np.testing.assert_array_equal(one, other)
