"""Item 7 of issue 13: library warnings never break "one line on stderr".

At exit 0 stderr is empty unless -v; on failure it holds the one error line only, whatever Pillow,
numpy, libpng or torch had to say.
"""

import io
import pickle
import struct

import numpy as np
import pytest
from PIL import Image

from conftest import assert_clean_failure, assert_clean_success, run_cli
from test_embedded_depth import apple_extra, mpf_file


def malformed_mpf(tmp_path):
    """An iPhone-style JPEG whose MPF entry list claims 500 entries the segment does not hold:
    Pillow warns "Tag data larger than file" and "malformed MPO file" while opening it."""
    extra = apple_extra("disparity", np.tile(np.arange(32, dtype=np.uint8) * 8, (24, 1)))
    data = bytearray(mpf_file([extra]))
    entry = data.index(struct.pack(">HH", 0xB002, 7), data.index(b"MPF\x00"))
    data[entry + 4:entry + 8] = struct.pack(">I", 16 * 500)
    path = tmp_path / "malformed_mpf.jpg"
    path.write_bytes(bytes(data))
    return path


def test_malformed_mpf_index_leaves_stderr_empty_at_exit_0(tmp_path):
    path = malformed_mpf(tmp_path)
    assert_clean_success(run_cli("info", path))
    assert_clean_success(run_cli("render", "-q", path, "--depth", "estimate", "--blur", "3",
                                 "-o", tmp_path / "out.png"))


def test_verbose_shows_the_warnings(tmp_path):
    path = malformed_mpf(tmp_path)
    result = run_cli("render", "-q", "-v", path, "--depth", "estimate", "--blur", "3", "-o", tmp_path / "out.png")
    assert result.returncode == 0
    assert "warning" in result.stderr.lower()


def test_truncated_depth_png_is_one_line_without_libpng_noise(photo, tmp_path):
    image, depth = photo
    cut = tmp_path / "cut_depth.png"
    cut.write_bytes(depth.read_bytes()[:-60])
    result = run_cli("render", image, "--depth", cut, "-o", tmp_path / "out.png")
    line = assert_clean_failure(result, "cut_depth.png")
    assert "libpng" not in result.stderr and "truncated" in line.lower()


def test_raw_pickle_checkpoint_is_one_line(photo, tmp_path):
    pytest.importorskip("torch")
    image, depth = photo
    checkpoint = tmp_path / "raw.pt"
    with open(checkpoint, "wb") as handle:
        pickle.dump({"model": {"w": np.zeros(3)}}, handle, protocol=4)
    result = run_cli("render", image, "--depth", depth, "--renderer", "portrait-rnn", "--checkpoint", checkpoint,
                     "-o", tmp_path / "out.png")
    assert_clean_failure(result, "raw.pt")


def test_numpy_warnings_are_not_shown(photo, tmp_path):
    """A depth map with overflowing values and NaN holes renders with a silent stderr."""
    image, _ = photo
    values = np.full((60, 80), 3e38, np.float32)
    values[:, :40] = 1e-38
    values[5:10, 5:10] = np.nan
    path = tmp_path / "extreme.npy"
    np.save(path, values)
    assert_clean_success(run_cli("render", "-q", image, "--depth", path, "--depth-kind", "depth",
                                 "--blur", "10", "-o", tmp_path / "out.png"))
