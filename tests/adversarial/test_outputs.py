"""Item 8 of issue 13: outputs never replace an input, are checked before any work, and an
interrupted write leaves no hidden ``.NAME.part`` file."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from PIL import Image

from conftest import SRC, assert_clean_failure, run_cli


def _snapshot(folder):
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.iterdir() if p.is_file()}


@pytest.mark.parametrize("which", ["depth", "matte"])
def test_render_never_overwrites_its_depth_or_matte(photo, tmp_path, which):
    image, depth = photo
    matte = tmp_path / "matte.png"
    Image.fromarray(np.full((60, 80), 255, np.uint8)).save(matte)
    before = _snapshot(tmp_path)
    target = depth if which == "depth" else matte
    result = run_cli("render", image, "--depth", depth, "--matte", matte, "-o", target, "--overwrite")
    assert_clean_failure(result, "input", target.name)
    assert _snapshot(tmp_path) == before


def test_render_never_overwrites_its_checkpoint(photo, tmp_path):
    image, depth = photo
    checkpoint = tmp_path / "model.png"  # any name: the point is that it is an input
    checkpoint.write_bytes(b"not really a checkpoint")
    result = run_cli("render", image, "--depth", depth, "--renderer", "dbsi", "--checkpoint", checkpoint,
                     "-o", checkpoint, "--overwrite")
    assert_clean_failure(result, "input")
    assert checkpoint.read_bytes() == b"not really a checkpoint"


def test_depth_command_never_overwrites_its_inputs(photo, tmp_path):
    image, depth = photo
    before = _snapshot(tmp_path)
    for args in (["-o", depth], ["-o", tmp_path / "d.png", "--preview", depth],
                 ["-o", tmp_path / "same.png", "--preview", tmp_path / "same.png"]):
        result = run_cli("depth", image, "--depth", depth, *args, "--overwrite")
        assert_clean_failure(result)
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("output, words", [("no/such/folder/out.png", ["folder"]), ("out.xyz", ["extension"]),
                                           ("out", ["extension"])])
def test_output_is_checked_before_any_input_is_read(photo, tmp_path, output, words):
    """The depth file is missing too: the output's error comes first, so it was checked first."""
    image, _ = photo
    result = run_cli("render", image, "--depth", tmp_path / "missing_depth.png", "-o", tmp_path / output)
    assert_clean_failure(result, *words)


def test_existing_output_is_refused_before_rendering(photo, tmp_path):
    image, _ = photo
    (tmp_path / "out.png").write_bytes(b"keep")
    result = run_cli("render", image, "--depth", tmp_path / "missing_depth.png", "-o", tmp_path / "out.png")
    assert_clean_failure(result, "exists")
    assert (tmp_path / "out.png").read_bytes() == b"keep"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_a_write_removes_the_part_file(tmp_path, signum):
    script = textwrap.dedent(f"""
        import os, signal, sys, time
        from lensblur.cli import termination_handled
        from lensblur.io.atomic import atomic_output
        with termination_handled():
            with atomic_output({str(tmp_path / "out.png")!r}) as temp:
                temp.write_bytes(b"half a file")
                print(temp, flush=True)
                os.kill(os.getpid(), {int(signum)})
                time.sleep(30)
        """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(SRC)})
    assert result.returncode == 128 + signum, result.stderr
    assert ".part" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_sigterm_to_a_running_render_leaves_nothing(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (1200, 1600, 3), dtype=np.uint8)).save(tmp_path / "photo.png")
    depth = np.tile(np.linspace(0, 65535, 1600), (1200, 1)).astype(np.uint16)
    Image.fromarray(depth).save(tmp_path / "depth.png")
    out = tmp_path / "out" / "render.tif"
    out.parent.mkdir()
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "lensblur", "render", "-q", tmp_path / "photo.png",
                                "--depth", tmp_path / "depth.png", "--blur", "8", "-o", out],
                               stderr=subprocess.PIPE, text=True, env=env)
    seen = False
    deadline = time.monotonic() + 240
    while process.poll() is None and time.monotonic() < deadline:
        if any(".part" in p.name for p in out.parent.iterdir()):
            process.send_signal(signal.SIGTERM)
            seen = True
            break
        time.sleep(0.002)
    stderr = process.communicate(timeout=120)[1]
    if not seen:
        pytest.skip("the write finished before a .part file was seen")
    assert process.returncode == 143, stderr
    assert list(out.parent.iterdir()) == []
    assert stderr.strip().splitlines() == ["lensblur: terminated"]
