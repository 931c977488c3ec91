"""Start-up (issue 14): what ``lensblur render`` leaves unimported, and that the cheaper paths give the
numbers of the ones they replaced."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from lensblur.color import srgb_to_lab
from lensblur.depth import auto

ROOT = Path(__file__).resolve().parents[1]

_MODULES = """
import json, sys
import lensblur.cli
code = lensblur.cli.main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _render_modules(tmp_path, *options) -> set[str]:
    photo = tmp_path / "tiny.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(photo)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run([sys.executable, "-c", _MODULES, "render", str(photo), "-o", str(tmp_path / "out.jpg"),
                           "-q", *options], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["code"] == 0
    return set(report["modules"])


def test_render_with_a_depth_file_skips_embedded_depth_parsing_and_numpy_ma(tmp_path):
    depth = tmp_path / "depth.png"
    Image.fromarray((np.arange(256, dtype=np.uint16).reshape(16, 16) * 200)).save(depth)
    modules = _render_modules(tmp_path, "--depth", str(depth), "--blur", "4")
    assert "lensblur.io.embedded" not in modules  # XMP, MPF and their xml/hashlib imports
    assert "lensblur.io.colormaps" not in modules  # a grey map needs no colormap reader
    assert "lensblur.config" not in modules  # nor a depth model, nor the settings file naming one
    assert "numpy.ma" not in modules


def test_render_with_automatic_depth_imports_no_numpy_ma(tmp_path):
    modules = _render_modules(tmp_path, "--blur", "1")
    assert "lensblur.depth.auto" in modules  # the estimate ran
    assert "numpy.ma" not in modules


def test_contrast_map_median_is_np_median():
    rng = np.random.default_rng(3)
    for shape in [(16, 16, 3), (15, 17, 3), (64, 40, 3)]:
        image = rng.uniform(0, 1, shape).astype(np.float32)
        image[: shape[0] // 2] = np.round(image[: shape[0] // 2] * 4) / 4  # ties, as flat areas give
        radius = 2
        lab = cv2.blur(srgb_to_lab(image), (2 * radius + 1, 2 * radius + 1))
        distance = np.linalg.norm(lab - np.median(lab.reshape(-1, 3), axis=0), axis=-1)
        assert np.array_equal(auto.contrast_map(image, radius), auto._normalise(distance))


_HEIF_FRESH = """
import sys
path, kind = sys.argv[1], sys.argv[2]
import lensblur.io.images, lensblur.io.depth
assert "pillow_heif.as_plugin" not in sys.modules, "registered on import"
if kind == "photo":
    print(lensblur.io.images.read_image(path).pixels.shape)
else:
    print(lensblur.io.depth.read_depth(path).shape)
"""


def test_heif_opener_registered_on_first_need_in_a_fresh_process(tmp_path):
    import pillow_heif

    heif = tmp_path / "photo.heic"
    grey = np.repeat(np.linspace(0, 255, 16 * 12).astype(np.uint8), 3)  # equal channels: a grey map too
    pillow_heif.from_bytes(mode="RGB", size=(16, 12), data=grey.tobytes()).save(heif, quality=90)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    for kind, expected in [("photo", "(12, 16, 3)"), ("depth", "(12, 16)")]:
        done = subprocess.run([sys.executable, "-c", _HEIF_FRESH, str(heif), kind],
                              capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == expected
