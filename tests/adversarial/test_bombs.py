"""Item 1 of issue 13: a small file whose map decodes to gigabytes is refused from its header.

Every separate or embedded map (``--depth FILE``, ``--matte FILE``, GDepth, Dynamic Depth, Apple
MPF) is checked against the pixel limit before it is decoded; the refusal is one line, quick, and
the process never grows by the map's decoded size.
"""

import base64
import json
import resource
import subprocess
import sys

import numpy as np
import pytest

from conftest import SRC, assert_clean_failure, bomb_png, claimed_size_png, run_cli
from test_embedded_depth import apple_extra, gdepth_file, mpf_file, splice, xmp_segment, dd_xmp, jpeg_bytes, photo

# 12000 × 9000 = 108 MP, the photo's 4:3 aspect: 108 MB decoded as 8-bit grey, ~100 KB on disk.
BOMB_SIZE = (12000, 9000)


@pytest.fixture(scope="module")
def bomb():
    return bomb_png(*BOMB_SIZE)


@pytest.fixture()
def gdepth_bomb(tmp_path, bomb):
    """A small Lens Blur JPEG whose GDepth map is the bomb (this is what ate 7.5 GB in ``info``)."""
    path = tmp_path / "lens_blur.jpg"
    path.write_bytes(gdepth_file(depth_data=base64.b64encode(bomb).decode(), ext_kwargs={"chunk": 60000}))
    return path


def _peak_rss_mb_when_refused(call: str) -> int:
    """Peak resident memory in MB of a fresh interpreter running ``call``, which must raise InputError."""
    script = ("import lensblur.io.depth, lensblur.io.embedded\n"
              "def peak_mb():  # this process's own high-water mark (ru_maxrss would count the forked parent)\n"
              "    line = next(l for l in open('/proc/self/status') if l.startswith('VmHWM:'))\n"
              "    return int(line.split()[1]) // 1024\n"
              "from lensblur.errors import InputError\n"
              f"try:\n    {call}\n    raise SystemExit('accepted')\nexcept InputError as error:\n"
              "    assert 'limit' in str(error), error\n"
              "print(peak_mb())")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            env={"PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[-1])


def test_depth_file_bomb_is_refused_by_the_pixel_limit(photo, tmp_path, bomb):
    image, _ = photo
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb)
    assert path.stat().st_size < 400_000
    result = run_cli("render", image, "--depth", path, "--max-pixels", 1_000_000, "-o", tmp_path / "out.png")
    assert_clean_failure(result, "bomb.png", "limit")
    assert not (tmp_path / "out.png").exists()


def test_depth_file_bomb_is_refused_before_decoding(tmp_path, bomb):
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb)
    peak = _peak_rss_mb_when_refused(f"lensblur.io.depth.read_depth({str(path)!r}, max_pixels=1_000_000)")
    assert peak < 300, f"{peak} MB peak: the map was decoded"


def test_matte_file_bomb_is_refused(photo, tmp_path, bomb):
    """Under the default limit too: a matte may hold at most 4× the photo's pixels."""
    image, depth = photo
    path = tmp_path / "matte_bomb.png"
    path.write_bytes(bomb)
    result = run_cli("render", image, "--depth", depth, "--matte", path, "-o", tmp_path / "out.png")
    assert_clean_failure(result, "matte_bomb.png", "limit")


def test_depth_map_much_larger_than_the_photo_is_refused_under_the_default_limit(photo, tmp_path, bomb):
    """Under the default 200 MP limit a 108 MP map for an 80×60 photo is still refused: maps may hold
    at most 4 times the photo's pixels (or 4 MP for small photos)."""
    image, _ = photo
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb)
    result = run_cli("render", image, "--depth", path, "-o", tmp_path / "out.png")
    assert_clean_failure(result, "bomb.png", "limit")


def test_npy_depth_is_checked_from_its_header(photo, tmp_path):
    image, _ = photo
    path = tmp_path / "big.npy"
    with open(path, "wb") as handle:  # a 2-D float32 header claiming 40000×30000, then a sparse file
        header = {"descr": "<f4", "fortran_order": False, "shape": (30000, 40000)}
        np.lib.format.write_array_header_1_0(handle, header)
        handle.truncate(handle.tell() + 4 * 30000 * 40000)
    result = run_cli("render", image, "--depth", path, "--max-pixels", 1_000_000, "-o", tmp_path / "out.png")
    assert_clean_failure(result, "big.npy", "limit")


def test_gdepth_bomb_is_refused_by_info_and_render(tmp_path, gdepth_bomb):
    path = gdepth_bomb
    info = run_cli("info", path)
    assert_clean_failure(info, "lens_blur.jpg", "GDepth", "limit")
    render = run_cli("render", path, "-o", tmp_path / "out.png")
    assert_clean_failure(render, "lens_blur.jpg", "limit")
    assert not (tmp_path / "out.png").exists()


def test_gdepth_bomb_peak_memory_stays_small(gdepth_bomb):
    peak = _peak_rss_mb_when_refused(f"lensblur.io.embedded.find_embedded_depth({str(gdepth_bomb)!r})")
    assert peak < 300, f"{peak} MB peak: the embedded map was decoded"


def test_mpf_auxiliary_image_claiming_a_huge_size_is_refused(tmp_path):
    """An Apple MPF disparity JPEG whose SOF claims 60000×45000 pixels."""
    extra = bytearray(apple_extra("disparity", np.full((24, 32), 128, np.uint8)))
    sof = extra.index(b"\xff\xc0")
    extra[sof + 5:sof + 9] = (45000).to_bytes(2, "big") + (60000).to_bytes(2, "big")
    path = tmp_path / "iphone.jpg"
    path.write_bytes(mpf_file([bytes(extra)]))
    result = run_cli("render", path, "--depth", "embedded", "-o", tmp_path / "out.png")
    assert_clean_failure(result, "iphone.jpg", "limit")


def test_dynamic_depth_map_claiming_a_huge_size_is_refused(tmp_path):
    depth = claimed_size_png(16000, 12000)
    original = jpeg_bytes(photo())
    items = [("image/jpeg", 0, 0, "primary_image"), ("image/png", len(depth), 0, "depth"),
             ("image/jpeg", len(original), 0, "original")]
    path = tmp_path / "pixel.jpg"
    path.write_bytes(splice(jpeg_bytes(photo()), xmp_segment(dd_xmp(items))) + depth + original)
    result = run_cli("render", path, "--depth", "embedded", "-o", tmp_path / "out.png")
    assert_clean_failure(result, "pixel.jpg", "limit")


def test_web_upload_with_a_gdepth_bomb_is_refused_with_413(tmp_path, gdepth_bomb):
    from starlette.testclient import TestClient

    from lensblur.web.app import create_app

    data = gdepth_bomb.read_bytes()
    app = create_app(max_upload_bytes=5_000_000, max_pixels=1_000_000, temp_root=str(tmp_path))
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        response = client.post("/api/sessions?name=lens_blur.jpg", content=data)
    assert response.status_code == 413, response.text
    assert "limit" in json.loads(response.text)["error"]
