import math

import numpy as np
import pytest

from lensblur import metrics
from lensblur.errors import LensblurError


def test_psnr_of_identical_images_is_infinite():
    image = np.random.default_rng(0).integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    assert metrics.psnr(image, image) == math.inf
    assert metrics.ssim(image, image) == pytest.approx(1.0)


def test_psnr_of_a_known_offset():
    a = np.full((8, 8, 3), 100, np.uint8)
    b = a + 5
    assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(255 ** 2 / 25))
    assert metrics.ssim(a, b) < 1.0


def test_boundary_mask_follows_the_blur_radius():
    disparity = np.zeros((20, 40), np.float32)
    disparity[:, 20:] = 1.0
    small = metrics.boundary_mask(disparity, 0.0)
    assert small[:, 17:23].all() and not small[:, :17].any() and not small[:, 23:].any()
    radius = np.where(disparity > 0.5, 6.0, 0.0).astype(np.float32)
    wide = metrics.boundary_mask(disparity, radius)
    assert wide[:, 14:26].all() and not wide[:, :12].any()
    assert not metrics.boundary_mask(np.full((8, 8), 0.3, np.float32), 5.0).any()


def test_boundary_psnr_uses_only_the_mask():
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0] = 10
    mask = np.zeros((4, 4), bool)
    mask[0, 0] = True
    assert metrics.boundary_psnr(a, b, mask) == pytest.approx(10 * math.log10(255 ** 2 / 100))
    assert metrics.boundary_psnr(a, b, ~mask) == math.inf
    assert math.isnan(metrics.boundary_psnr(a, b, np.zeros((4, 4), bool)))


def test_lpips_needs_torch():
    pytest.importorskip("numpy")
    try:
        import torch  # noqa: F401
    except ImportError:
        with pytest.raises(LensblurError, match="torch"):
            metrics.lpips_distance(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8), "weights.pth")
    else:
        pytest.skip("torch is installed; LPIPS needs real weights to test")
