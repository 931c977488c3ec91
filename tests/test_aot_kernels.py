"""The ahead-of-time compiled kernels (lensblur.aot): built by ``python -m lensblur.compile``, the
same results as numba's JIT kernels, ignored when stale or broken, and no numba import with them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from lensblur import aot

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _compiler() -> str | None:
    command = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(command) or shutil.which("cc") or shutil.which("gcc")


def _run(code: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC, **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=cwd)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A folder holding the compiled module, built by ``python -m lensblur.compile`` itself."""
    if _compiler() is None:
        pytest.skip("no C compiler on this machine: numba.pycc cannot build the ahead-of-time kernels")
    folder = tmp_path_factory.mktemp("aot")
    env = {**os.environ, "PYTHONPATH": SRC, "LENSBLUR_AOT_DIR": str(folder)}
    done = subprocess.run([sys.executable, "-m", "lensblur.compile", "--json"], capture_output=True, text=True,
                          env=env, cwd=folder)
    assert done.returncode == 0, done.stderr[-2000:]
    stats = json.loads(done.stdout.strip().splitlines()[-1])
    assert stats["aot"] and stats["aot_note"] == "built", stats
    assert Path(stats["aot"]).parent == folder
    return folder


def _replace_kernel(monkeypatch, kernel, wrapper) -> None:
    """``wrapper`` wherever a lensblur module holds ``kernel``, until the test ends. The modules
    that bind kernels by name at import time are imported first, so that they get the wrapper
    (and lose it again) too, instead of binding it for good on a later import."""
    import lensblur.renderers.discs  # noqa: F401
    import lensblur.renderers.scatter  # noqa: F401

    for name, module in list(sys.modules.items()):
        if name.startswith("lensblur") and module is not None:
            for attribute, held in list(vars(module).items()):
                if held is kernel:
                    monkeypatch.setattr(module, attribute, wrapper)


def _copies(args: tuple) -> list:
    """``args`` with every array copied (an array passed twice stays one array)."""
    copies = {id(a): np.copy(a) for a in args if isinstance(a, np.ndarray)}
    return [copies.get(id(a), a) for a in args]


def test_every_compiled_kernel_gives_the_jit_kernels_result(built, monkeypatch):
    """Each kernel the renderer, the encoder and the depth estimate call runs through both routes
    on the same (copied) arguments, in the warm-up renders on other random pictures: outputs and
    in-place results agree — exactly, or within float32 rounding for the two fastmath kernels."""
    monkeypatch.setenv("LENSBLUR_AOT_DIR", str(built))
    found = aot.find(aot.source_key())
    assert found is not None, "the built module does not load"
    _, exports = found
    import importlib

    checked: dict[str, int] = {}
    kernels = {}
    for qualified in exports:
        module_name, attribute = qualified.split(":")
        value = getattr(importlib.import_module(module_name), attribute)
        kernels[qualified] = (value, value.jit() if isinstance(value, aot.Kernel) else value)

    def proxy(qualified):
        _, jit = kernels[qualified]
        fastmath = jit.targetoptions.get("fastmath", False)

        def call(*args):
            copied = _copies(args)
            expected = jit(*args)
            compiled = next((fn for fn, kinds in exports[qualified]
                             if all(aot.accepts(kind, arg) for kind, arg in zip(kinds, copied))), None)
            assert compiled is not None, f"{qualified}: no export takes {[aot.type_key(a) for a in args]}"
            result = compiled(*copied)
            pairs = [(expected, result)] + [(a, c) for a, c in zip(args, copied) if isinstance(a, np.ndarray)]
            for want, got in pairs:
                if isinstance(want, np.ndarray):
                    if fastmath:
                        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=qualified)
                    else:
                        np.testing.assert_array_equal(got, want, err_msg=qualified)
            checked[qualified] = checked.get(qualified, 0) + 1
            return expected

        return call

    for qualified, (value, _) in kernels.items():
        _replace_kernel(monkeypatch, value, proxy(qualified))

    from lensblur.compile import warm_up
    from lensblur.io import icc

    icc._level_steps.cache_clear()  # kept per curve: an earlier test's encode would skip level_steps
    for seed in (1, 2):  # the renders, depth estimate and encodes the build ran, on other random pictures
        warm_up(seed)
    assert set(checked) == set(exports), f"not exercised: {sorted(set(exports) - set(checked))}"


_RENDER_SCRIPT = """
import sys, numpy as np
import lensblur
rng = np.random.default_rng(3)
image = rng.uniform(0, 1, (144, 192, 3)).astype(np.float32)
image[20:26, 120:126] = 5.0
disparity = np.repeat(np.linspace(0.1, 1.0, 144, dtype=np.float32)[:, None], 192, axis=1)
disparity[40:100, 40:90] = 0.9
out = lensblur.render(image, disparity, blur=50.0, focus_disparity=0.9, aperture="blades:7:0:0.2", rim=0.3)
np.save(sys.argv[1] if len(sys.argv) > 1 else "out.npy", np.asarray(out))
print("numba" in sys.modules)
"""


def test_a_render_through_each_route_is_the_same(built, tmp_path):
    """lensblur.render through the compiled kernels (no numba import) and through numba's JIT
    kernels gives the same image within float32 rounding."""
    outputs = {}
    for route in ("aot", "jit"):
        done = _run(_RENDER_SCRIPT.replace('"out.npy"', f'"{route}.npy"'),
                    {"LENSBLUR_AOT_DIR": str(built), "LENSBLUR_KERNELS": route}, tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        outputs[route] = (np.load(tmp_path / f"{route}.npy"), done.stdout.strip().splitlines()[-1])
    assert outputs["aot"][1] == "False", "the compiled route imported numba"
    assert outputs["jit"][1] == "True"
    aot_image, jit_image = outputs["aot"][0], outputs["jit"][0]
    assert aot_image.shape == jit_image.shape == (144, 192, 3)
    np.testing.assert_allclose(aot_image, jit_image, rtol=1e-4, atol=1e-5)
    assert np.abs(aot_image - jit_image).max() < 1e-4


def _tiny_png(folder: Path) -> Path:
    from PIL import Image

    path = folder / "tiny.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(path)
    return path


_CLI_SCRIPT = """
import sys
from lensblur.cli import main
code = main(["render", "tiny.png", "-o", "tiny.jpg", "-q", "--blur", "1"])
print(code, "numba" in sys.modules)
print("thread pool:", "concurrent.futures.thread" in sys.modules)
"""


def test_a_16x16_render_with_the_compiled_module_does_not_import_numba(built, tmp_path):
    """...nor start the kernels' thread pool (lensblur.threads): start-up stays as it was."""
    _tiny_png(tmp_path)
    done = _run(_CLI_SCRIPT, {"LENSBLUR_AOT_DIR": str(built)}, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["0 False", "thread pool: False"]
    assert done.stderr == ""
    assert (tmp_path / "tiny.jpg").stat().st_size > 0


@pytest.mark.parametrize("damage", ["stale", "mismatched", "broken"])
def test_a_stale_or_broken_module_is_ignored(built, tmp_path, damage):
    """A module built for other sources (another key in its name), one whose manifest disagrees
    with its name, or a corrupt file: the render uses numba's JIT kernels, and says nothing."""
    folder = tmp_path / "aot"
    folder.mkdir()
    key = aot.source_key()
    library = aot.find_path(key, [built])
    manifest = json.loads((built / f"{aot.PREFIX}{key}.json").read_text())
    suffix = library.name[len(aot.PREFIX) + len(key):]
    if damage == "stale":
        other = "0" * 16
        shutil.copy(library, folder / f"{aot.PREFIX}{other}{suffix}")
        (folder / f"{aot.PREFIX}{other}.json").write_text(json.dumps({**manifest, "key": other}))
    elif damage == "mismatched":
        shutil.copy(library, folder / library.name)
        (folder / f"{aot.PREFIX}{key}.json").write_text(json.dumps({**manifest, "key": "f" * 16}))
    else:
        (folder / library.name).write_bytes(b"\x7fELF not really a library")
        (folder / f"{aot.PREFIX}{key}.json").write_text(json.dumps(manifest))
    _tiny_png(tmp_path)
    done = _run(_CLI_SCRIPT, {"LENSBLUR_AOT_DIR": str(folder)}, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[0] == "0 True"  # the JIT kernels served
    assert done.stderr == ""
    assert (tmp_path / "tiny.jpg").stat().st_size > 0


def test_type_keys_follow_numbas_types():
    """The run-time check of an argument against an export's type agrees with numba's own typing
    for the argument kinds the kernels take."""
    from numba import typeof

    samples = [np.zeros((4, 5), np.float32), np.zeros((4, 5), np.float32).T, np.zeros((4, 5, 3))[:, ::2],
               np.zeros(3, np.int64), np.zeros((1, 2), np.int32), np.zeros((2, 2), bool), 3, 2.5, True,
               np.float32(1.0), (np.zeros(2, np.uint8), 4)]
    frozen = np.zeros((2, 3), np.uint16)
    frozen.flags.writeable = False
    samples.append(frozen)
    for sample in samples:
        kind = aot._parse(aot._numba_type_key(typeof(sample)))
        assert aot.accepts(kind, sample), sample
    c_kind = aot._parse("float32[2C]")
    assert not aot.accepts(c_kind, np.zeros((4, 5), np.float32).T)  # F-ordered into a C export: refused
    assert not aot.accepts(c_kind, np.zeros((4, 5), np.float64))
    assert not aot.accepts(aot._parse("int64"), 2.0)
    assert not aot.accepts(aot._parse("uint16[2C]"), frozen.copy().view(np.int16))
    assert not aot.accepts(aot._parse("uint16[2C]"), frozen)  # read-only into a writable export


def test_a_long_running_process_prefers_the_jit_kernels(built, tmp_path):
    """lensblur.aot.prefer_jit (called by ``lensblur serve`` and ``lensblur batch``) sends every
    kernel call to numba's parallel JIT kernels even with a compiled module present."""
    script = "from lensblur.aot import prefer_jit\nprefer_jit()\n" + _RENDER_SCRIPT
    done = _run(script, {"LENSBLUR_AOT_DIR": str(built)}, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "True"


def test_the_compile_step_without_a_c_compiler_still_succeeds(tmp_path):
    """No C compiler: ``python -m lensblur.compile`` still compiles the JIT kernels, exits 0, says
    on stderr that there are no ahead-of-time kernels, and leaves no module behind."""
    folder = tmp_path / "aot"
    env = {**os.environ, "PYTHONPATH": SRC, "LENSBLUR_AOT_DIR": str(folder), "CC": str(tmp_path / "no-such-cc")}
    done = subprocess.run([sys.executable, "-m", "lensblur.compile"], capture_output=True, text=True, env=env,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "kernels ready" in done.stdout
    assert done.stderr.startswith("lensblur: no ahead-of-time compiled kernels (")
    assert len(done.stderr.strip().splitlines()) == 1
    assert aot.find_path(aot.source_key(), [folder]) is None


def _export(exports: dict, qualified: str, args: tuple):
    """The compiled export of ``qualified`` that takes ``args``."""
    found = [fn for fn, kinds in exports[qualified]
             if len(kinds) == len(args) and all(aot.accepts(kind, arg) for kind, arg in zip(kinds, args))]
    assert found, f"{qualified}: no export takes {[aot.type_key(a) for a in args]}"
    return found[0]


def test_the_compiled_exports_release_the_gil(built, monkeypatch):
    """The module's wrappers save and restore the thread state around the kernel (the symbols
    are in the library), and while an export runs in a worker thread the main thread runs Python
    code: with the switch interval raised so that no thread is ever forced to give up the GIL,
    the main thread can only count while the worker is inside the kernel if the kernel released
    it; the worker reads the count after its calls return (0 if the GIL was held throughout)."""
    import threading

    library = aot.find_path(aot.source_key(), [built])
    symbols = library.read_bytes()
    assert b"PyEval_SaveThread" in symbols and b"PyEval_RestoreThread" in symbols
    monkeypatch.setenv("LENSBLUR_AOT_DIR", str(built))
    found = aot.find(aot.source_key())
    assert found is not None
    from lensblur.renderers.scatter import slab_edges

    coc = np.random.default_rng(0).uniform(-40, 40, (3000, 3000)).astype(np.float32)
    edges = slab_edges(40.0)
    labels = np.empty(coc.shape, np.uint8)
    args = (coc, edges, labels, 0, coc.shape[0])
    kernel = _export(found[1], "lensblur.renderers.kernels:slab_labels", args)
    started, counter, seen = threading.Event(), [0], []

    def work():
        started.set()
        for _ in range(3):
            kernel(*args)
        seen.append(counter[0])

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    try:
        worker = threading.Thread(target=work)
        worker.start()
        started.wait()
        for _ in range(200_000):
            counter[0] += 1
        worker.join()
    finally:
        sys.setswitchinterval(interval)
    assert seen == [200_000], "the main thread did not run while the compiled kernel ran"
    assert np.array_equal(labels, np.digitize(coc, edges).astype(np.uint8))


def test_chunk_bounds_and_run_chunks():
    """run_chunks cuts [lo, hi) into consecutive chunks that cover it exactly once, runs them
    on the pool's threads (small inputs on the calling thread), and raises a chunk's error."""
    import threading

    from lensblur import threads

    assert threads.chunk_bounds(3, 10, 3) == [(3, 5), (5, 7), (7, 10)]
    assert threads.chunk_bounds(0, 2, 16) == [(0, 1), (1, 2)]
    assert threads.chunk_bounds(5, 5, 4) == [(5, 5)]
    calls = []

    def record(array, lo, hi):
        calls.append((lo, hi, threading.current_thread().name))
        array[lo:hi] += 1

    big = np.zeros(1000)
    threads.run_chunks(record, (big, 0, 1000), threads=3, min_elements=10)
    assert np.array_equal(big, np.ones(1000))  # every index exactly once
    assert sorted((lo, hi) for lo, hi, _ in calls) == threads.chunk_bounds(0, 1000, 24)
    names = {name for *_, name in calls}  # the calling thread takes chunks too
    assert names <= {threading.current_thread().name} | {n for n in names if n.startswith("lensblur-kernel")}
    calls.clear()
    small = np.zeros(5)
    threads.run_chunks(record, (small, 0, 5), threads=3, min_elements=10)
    assert calls == [(0, 5, threading.current_thread().name)]

    def fail(array, lo, hi):
        if lo == 0:
            raise ValueError("chunk 0")

    with pytest.raises(ValueError, match="chunk 0"):
        threads.run_chunks(fail, (big, 0, 1000), threads=2, min_elements=10)

    done = np.zeros(1000)

    def fail_some(array, lo, hi):
        array[lo:hi] += 1
        if lo >= 500:
            raise ValueError(f"chunk at {lo}")

    with pytest.raises(ValueError, match="chunk at 500"):  # the first failing chunk in range order
        threads.run_chunks(fail_some, (done, 0, 1000), threads=2, min_elements=10)
    assert np.array_equal(done, np.ones(1000))  # and every chunk still ran, once


def test_run_chunks_from_several_threads():
    """Callers on several threads at once (the web app) share the pool: each call's chunks still
    cover its own range exactly once."""
    from concurrent.futures import ThreadPoolExecutor

    from lensblur import threads

    def add(array, lo, hi):
        array[lo:hi] += 1

    arrays = [np.zeros(5000) for _ in range(12)]
    with ThreadPoolExecutor(6) as callers:
        list(callers.map(lambda a: [threads.run_chunks(add, (a, 0, a.size), threads=3, min_elements=10)
                                    for _ in range(20)], arrays))
    assert all(np.array_equal(a, np.full(5000, 20.0)) for a in arrays)


def test_chunked_compiled_kernels_equal_one_call(built, monkeypatch):
    """Every kernel declared ``chunked`` gives bit-identical outputs whether its range runs as one
    call of the compiled export (the serial route) or as uneven chunks on three threads, on every
    call of the warm-up renders, encodes and depth estimate and of a larger render with lights."""
    from lensblur import threads

    monkeypatch.setenv("LENSBLUR_AOT_DIR", str(built))
    found = aot.find(aot.source_key())
    assert found is not None
    _, exports = found
    import importlib

    checked: dict[str, int] = {}

    def proxy(qualified):
        def call(*args):
            serial = _copies(args)
            compiled = _export(exports, qualified, args)
            compiled(*serial)
            threads.run_chunks(compiled, args, threads=3, min_elements=0)
            for chunked, whole in zip(args, serial):
                if isinstance(chunked, np.ndarray):
                    np.testing.assert_array_equal(chunked, whole, err_msg=qualified)
            if args[-1] - args[-2] >= 2:
                checked[qualified] = checked.get(qualified, 0) + 1

        return call

    chunked = {}
    for qualified in exports:
        module_name, attribute = qualified.split(":")
        value = getattr(importlib.import_module(module_name), attribute)  # a Kernel or numba's dispatcher
        if qualified in aot.CHUNKED:
            chunked[qualified] = value
    assert {"lensblur.renderers.kernels:scatter_spans", "lensblur.renderers.kernels:composite_over",
            "lensblur.renderers.kernels:slab_block_sum", "lensblur.io.tone_lookup:quantize_channels"} <= set(chunked)
    for qualified, value in chunked.items():
        _replace_kernel(monkeypatch, value, proxy(qualified))

    import lensblur
    from lensblur.compile import warm_up

    warm_up(1)
    rng = np.random.default_rng(5)
    image = rng.uniform(0, 1, (150, 220, 3)).astype(np.float32)
    image[20:24, 150:154] = 6.0  # lights
    image[100:103, 30:33] = 4.0
    disparity = np.repeat(np.linspace(0.1, 1.0, 150, dtype=np.float32)[:, None], 220, axis=1)
    disparity[40:110, 60:140] = 0.9
    lensblur.render(image, disparity, blur=30.0, focus_disparity=0.9)
    assert set(checked) == set(chunked), f"not split: {sorted(set(chunked) - set(checked))}"


_THREADS_SCRIPT = _RENDER_SCRIPT + """
from lensblur import threads
print(bool(threads._pools))
"""


def test_a_threaded_compiled_render_equals_the_serial_one(built, tmp_path):
    """The compiled route on two threads (kernels split into chunks) and on one give the
    identical image, neither importing numba; only the two-thread run starts the pool. The
    default route (``auto``) takes the compiled kernels for this render too: there is no size
    from which it switches to numba's."""
    script = tmp_path / "render.py"
    script.write_text(_THREADS_SCRIPT)
    images, lines = {}, {}
    for count in (1, 2):
        env = {**os.environ, "PYTHONPATH": SRC, "LENSBLUR_AOT_DIR": str(built),
               "LENSBLUR_KERNELS": "aot" if count == 1 else "auto", "NUMBA_NUM_THREADS": str(count)}
        done = subprocess.run([sys.executable, str(script), str(tmp_path / f"{count}.npy")], capture_output=True,
                              text=True, env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        images[count], lines[count] = np.load(tmp_path / f"{count}.npy"), done.stdout.split()[-2:]
    assert lines == {1: ["False", "False"], 2: ["False", "True"]}
    assert images[1].shape == (144, 192, 3) and images[1].std() > 0.05
    np.testing.assert_array_equal(images[2], images[1])
