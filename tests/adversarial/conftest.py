"""Shared helpers of the adversarial suite: a CLI runner, the one-clean-line check, and builders of
malformed files (everything is generated here; no binary fixtures)."""

import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO.parent / "shared" / "samples"
SRC = Path(os.environ.get("LENSBLUR_TEST_SRC", REPO / "src"))  # to run this suite against other sources
sys.path.insert(0, str(REPO / "tests"))  # reuse the embedded-depth file builders


def run_cli(*args, cwd=None, env=None, timeout=300):
    """``python -m lensblur ARGS`` in a subprocess with this checkout's sources."""
    full_env = dict(os.environ, PYTHONPATH=str(SRC), OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1",
                    **(env or {}))
    full_env.pop("LENSBLUR_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "lensblur", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=full_env, timeout=timeout)


def assert_clean_failure(result, *words, code=1):
    """Exit ``code``, exactly one line on stderr naming every word, no traceback, no internal error."""
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    assert lines[0].startswith("lensblur"), lines[0]
    for word in words:
        assert word.lower() in lines[0].lower(), lines[0]
    return lines[0]


def assert_clean_success(result):
    """Exit 0 and nothing at all on stderr."""
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def bomb_png(width: int, height: int) -> bytes:
    """A real, valid 8-bit grey PNG of width×height zeros: a few hundred KB that decode to W·H bytes."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + pixels
    parts = [compressor.compress(row) for _ in range(height)]
    parts.append(compressor.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", b"".join(parts))
            + png_chunk(b"IEND", b""))


def claimed_size_png(width: int, height: int) -> bytes:
    """A tiny grey PNG whose IHDR (CRC fixed) claims width×height; its pixel data is far too short."""
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def jpeg_bytes(values: np.ndarray, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


@pytest.fixture()
def photo(tmp_path):
    """(photo.png 80×60, depth.png 80×60 16-bit) in tmp_path."""
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, (60, 80, 3)).astype(np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(image).save(path)
    depth = np.zeros((60, 80), np.uint16)
    depth[20:40, 30:50] = 60000
    Image.fromarray(depth).save(tmp_path / "depth.png")
    return path, tmp_path / "depth.png"


def sample(relative: str) -> Path:
    path = SAMPLES / relative
    if not path.exists():
        pytest.skip(f"sample {relative} not available")
    return path
