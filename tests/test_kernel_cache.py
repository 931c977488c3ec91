"""The renderer's numba kernels are compiled once and then found in the cache by later processes."""

import json
import os
import subprocess
import sys
from pathlib import Path

from lensblur import kernel_cache

SRC = Path(__file__).resolve().parents[1] / "src"


def _compile_in_new_process(cache_dir: Path, *options: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(SRC), NUMBA_CACHE_DIR=str(cache_dir), NUMBA_NUM_THREADS="1",
               OMP_NUM_THREADS="1")
    # --no-aot: this file is about numba's cache (tests/test_aot_kernels.py builds the compiled module)
    result = subprocess.run([sys.executable, "-m", "lensblur.compile", "--no-aot", *options], capture_output=True,
                            text=True, env=env, timeout=900)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return result.stdout


def test_a_second_process_loads_every_kernel_from_the_cache(tmp_path):
    first = json.loads(_compile_in_new_process(tmp_path, "--json"))   # an empty cache: all compiled
    assert first["kernels"] >= 3 and first["cache_misses"] >= first["kernels"]
    assert first["cache_dirs"] and all(Path(d).is_relative_to(tmp_path) for d in first["cache_dirs"])
    second = json.loads(_compile_in_new_process(tmp_path, "--json"))
    assert second["cache_misses"] == 0, second
    assert second["cache_hits"] >= second["kernels"] == first["kernels"]
    summary = _compile_in_new_process(tmp_path)
    assert summary.count("\n") == 1 and "(0 compiled" in summary and str(tmp_path) in summary


def test_an_unwritable_install_and_home_fall_back_to_a_temporary_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setattr(kernel_cache, "_writable", lambda folder: False)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    folder = kernel_cache.ensure_cache_dir()
    assert folder is not None and Path(folder).parent == tmp_path and Path(folder).is_dir()
    assert os.environ["NUMBA_CACHE_DIR"] == folder


def test_a_writable_source_tree_keeps_numba_s_own_choice(monkeypatch):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    assert kernel_cache._writable(SRC / "lensblur" / "renderers" / "__pycache__")
    assert kernel_cache.ensure_cache_dir() is None and "NUMBA_CACHE_DIR" not in os.environ


def test_writable_looks_at_the_nearest_existing_folder(tmp_path):
    assert kernel_cache._writable(tmp_path / "not" / "yet" / "made")
    (tmp_path / "file").write_text("x")
    assert not kernel_cache._writable(tmp_path / "file" / "below")


class _Terminal:
    """A stream that says it is a terminal and keeps what is written."""

    def __init__(self, tty=True):
        self.text, self.tty = "", tty

    def write(self, text):
        self.text += text

    def flush(self):
        pass

    def isatty(self):
        return self.tty


def test_a_compilation_is_announced_once_and_only_on_a_terminal(monkeypatch):
    from numba import njit

    from lensblur import aot

    monkeypatch.setattr(kernel_cache, "_announcing", False)
    monkeypatch.setattr(aot, "_loaded", None)  # as without a compiled module (with one, nothing compiles)
    pipe, terminal = _Terminal(tty=False), _Terminal()
    kernel_cache.announce_compilation(pipe)
    assert not kernel_cache._announcing  # nothing registered for a pipe
    kernel_cache.announce_compilation(terminal)
    njit(lambda x: x + 1)(1)
    njit(lambda x: x * 2)(2)
    assert pipe.text == ""
    assert terminal.text.count("\n") == 1 and "compiling the renderer's kernels" in terminal.text
