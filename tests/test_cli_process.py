"""The ``lensblur`` process entry (issue 14, start-up): one BLAS thread and the garbage collector held
during imports, in the CLI's own process only; never in a library user's process."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

import lensblur
from lensblur import cli

ROOT = Path(__file__).resolve().parents[1]

# Runs a command through the process entry (main() without arguments, as the `lensblur` script and
# `python -m lensblur` do), then reports the process's settings and how many threads a matrix
# product leaves behind.
_PROBE = """
import gc, json, os, sys
import lensblur.cli
sys.argv = ["lensblur"] + sys.argv[1:]
code = lensblur.cli.main()
import numpy as np
print(json.dumps({"code": code, "blas": os.environ.get("OPENBLAS_NUM_THREADS"), "gc": gc.isenabled(),
                  "frozen": gc.get_freeze_count(), "threads": blas_threads()}))
"""

# numpy's own OpenBLAS (numpy wheels bundle scipy-openblas) asked for its thread count; None where
# that library is not found (another BLAS, another platform)
_BLAS_THREADS = """
def blas_threads():
    import ctypes
    import numpy as np
    np.ones((4, 3)) @ np.ones(3)
    try:
        maps = open("/proc/self/maps").read().split()
    except OSError:
        return None
    for path in dict.fromkeys(word for word in maps if "openblas" in word and ".so" in word):
        library = ctypes.CDLL(path)
        for name in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_", "openblas_get_num_threads"):
            if hasattr(library, name):
                return getattr(library, name)()
    return None
"""


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    return dict(env, PYTHONPATH=str(ROOT / "src"), **extra)


def _probe(tmp_path, env) -> dict:
    photo = tmp_path / "tiny.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(photo)
    done = subprocess.run([sys.executable, "-c", _BLAS_THREADS + _PROBE, "render", str(photo), "-o", str(tmp_path / "out.png"),
                           "-q", "--blur", "1", "--highlights", "off"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_cli_process_runs_blas_on_one_thread_and_freezes_its_imports(tmp_path):
    report = _probe(tmp_path, _env())
    assert report["code"] == 0
    assert report["blas"] == "1"
    assert report["gc"] is True  # back on for the command itself
    assert report["frozen"] > 1000  # the imported modules' objects, out of later collections
    if report["threads"] is not None:
        assert report["threads"] == 1  # no OpenBLAS worker threads to spin beside the kernels


def test_cli_process_keeps_a_blas_setting_the_user_made(tmp_path):
    assert _probe(tmp_path, _env(OPENBLAS_NUM_THREADS="2"))["blas"] == "2"


def test_import_lensblur_changes_no_process_setting():
    code = ("import gc, json, os, sys; import lensblur, lensblur.cli, lensblur.api, lensblur.io.images; "
            "print(json.dumps({'blas': os.environ.get('OPENBLAS_NUM_THREADS'), 'gc': gc.isenabled(), "
            "'frozen': gc.get_freeze_count(), 'threshold': gc.get_threshold()}))")
    fresh = subprocess.run([sys.executable, "-c", "import gc, json; print(json.dumps(list(gc.get_threshold())))"],
                           capture_output=True, text=True, env=_env(), timeout=60)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["blas"] is None and report["gc"] is True and report["frozen"] == 0
    assert list(report["threshold"]) == json.loads(fresh.stdout)


def test_main_called_with_arguments_leaves_the_callers_process_alone(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    photo = tmp_path / "tiny.png"
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(photo)
    frozen = gc.get_freeze_count()
    assert cli.main(["render", str(photo), "-o", str(tmp_path / "out.png"), "-q", "--blur", "1"]) == 0
    assert "OPENBLAS_NUM_THREADS" not in os.environ
    assert gc.isenabled() and gc.get_freeze_count() == frozen
    gc.disable()  # a caller that turned the collector off keeps it off
    try:
        assert cli.main(["render", str(photo), "-o", str(tmp_path / "out2.png"), "-q", "--blur", "1"]) == 0
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert lensblur.__version__
