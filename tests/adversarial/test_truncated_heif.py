"""Item 3 of issue 13: a HEIC/AVIF cut anywhere is refused, like a truncated JPEG or PNG.

libheif decodes the tiles it has and fills the rest with green; lensblur checks that the file holds
every box and every byte its item-location box (iloc) points to before decoding.
"""

import io

import numpy as np
import pillow_heif
import pytest
from PIL import Image
from starlette.testclient import TestClient

from conftest import assert_clean_failure, run_cli, sample
from lensblur.errors import InputError
from lensblur.io.embedded import find_embedded_depth
from lensblur.io.images import heif_support, read_image
from lensblur.web.app import create_app

CUTS = (0.1, 0.5, 0.9, 0.999)


def small_heic(fmt="HEIF") -> bytes:
    """A 320×256 photo in 64×64 grid tiles, as phones store them (a cut single-tile file already
    fails inside libheif; a cut grid file decodes with the missing tiles green)."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:256, 0:320]
    pixels = np.stack([x * 0.7, y * 0.9, (x + y) * 0.4], axis=-1) + rng.integers(0, 40, (256, 320, 3))
    buffer = io.BytesIO()
    heif_support()  # Pillow's HEIF writer: lensblur registers it on first need, not on import
    saved = pillow_heif.options.GRID_TILE_SIZE
    pillow_heif.options.GRID_TILE_SIZE = 64
    try:
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, fmt, quality=90)
    finally:
        pillow_heif.options.GRID_TILE_SIZE = saved
    return buffer.getvalue()


def cut(data: bytes, fraction: float) -> bytes:
    return data[:max(64, int(len(data) * fraction))]


def test_whole_small_heic_reads(tmp_path):
    path = tmp_path / "small.heic"
    path.write_bytes(small_heic())
    assert read_image(path).pixels.shape == (256, 320, 3)


@pytest.mark.parametrize("fraction", CUTS)
def test_truncated_small_heic_is_refused(tmp_path, fraction):
    path = tmp_path / "cut.heic"
    path.write_bytes(cut(small_heic(), fraction))
    with pytest.raises(InputError, match="truncated"):
        read_image(path)
    result = run_cli("render", path, "--depth", "estimate", "-o", tmp_path / "out.png")
    assert_clean_failure(result, "cut.heic", "truncated")
    assert not (tmp_path / "out.png").exists()


def test_heic_cut_exactly_after_its_metadata_is_refused(tmp_path):
    """The cut falls on a box boundary (meta complete, mdat missing): only the iloc check sees it."""
    data = small_heic()
    mdat = data.index(b"mdat") - 4
    path = tmp_path / "no_mdat.heic"
    path.write_bytes(data[:mdat])
    with pytest.raises(InputError, match="truncated"):
        read_image(path)


@pytest.mark.parametrize("fraction", CUTS)
def test_truncated_avif_is_refused(tmp_path, fraction):
    try:
        data = small_heic("AVIF")
    except (KeyError, OSError, ValueError):
        pytest.skip("no AVIF encoder in this Pillow")
    path = tmp_path / "cut.avif"
    path.write_bytes(cut(data, fraction))
    with pytest.raises(InputError):
        read_image(path)


@pytest.mark.parametrize("fraction", (0.3, 0.5, 0.9, 0.99))
def test_truncated_pug_heic_is_refused_by_info_render_and_depth(tmp_path, fraction):
    data = sample("apple/pug.heic").read_bytes()
    path = tmp_path / "pug.heic"
    path.write_bytes(cut(data, fraction))
    assert_clean_failure(run_cli("info", path), "pug.heic", "truncated")
    with pytest.raises(InputError, match="truncated"):
        find_embedded_depth(path)
    if fraction == 0.5:
        result = run_cli("render", path, "-o", tmp_path / "out.jpg")
        assert_clean_failure(result, "pug.heic", "truncated")


def test_truncated_heic_upload_is_refused(tmp_path):
    app = create_app(max_upload_bytes=2_000_000, max_pixels=1_000_000, temp_root=str(tmp_path))
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        response = client.post("/api/sessions?name=cut.heic", content=cut(small_heic(), 0.5))
    assert response.status_code == 422, response.text
    assert "truncated" in response.json()["error"]
