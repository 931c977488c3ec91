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
        pytest.skip("torch is installed: the message for its absence cannot be checked here")


def _tiny_lpips_weights(path, layout="torchvision"):
    """A small network in LPIPS's AlexNet layout (fewer channels, same kernels and strides)."""
    torch = pytest.importorskip("torch")
    generator = torch.Generator().manual_seed(0)
    channels = [3, 4, 6, 8, 8, 8]
    kernels = {0: 11, 3: 5, 6: 3, 8: 3, 10: 3}
    slices = {0: 1, 3: 2, 6: 3, 8: 4, 10: 5}
    state = {}
    for layer, (index, size) in enumerate(kernels.items()):
        key = f"features.{index}" if layout == "torchvision" else f"net.slice{slices[index]}.{index}"
        state[f"{key}.weight"] = torch.randn(channels[layer + 1], channels[layer], size, size, generator=generator) * 0.1
        state[f"{key}.bias"] = torch.zeros(channels[layer + 1])
        state[f"lin{layer}.model.1.weight"] = torch.rand(1, channels[layer + 1], 1, 1, generator=generator)
    torch.save(state, path)
    return path


@pytest.mark.parametrize("layout", ["torchvision", "lpips"])
def test_lpips_loads_weights_and_behaves_like_a_distance(tmp_path, layout):
    weights = _tiny_lpips_weights(tmp_path / "lpips.pth", layout)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    slightly = np.clip(image.astype(int) + rng.integers(-5, 6, image.shape), 0, 255).astype(np.uint8)
    very = np.clip(image.astype(int) + rng.integers(-60, 61, image.shape), 0, 255).astype(np.uint8)
    assert metrics.lpips_distance(image, image, str(weights)) == pytest.approx(0.0, abs=1e-9)
    near, far = metrics.lpips_distance(image, slightly, str(weights)), metrics.lpips_distance(image, very, str(weights))
    assert 0 < near < far
    assert metrics.lpips_distance(very, image, str(weights)) == pytest.approx(far, rel=1e-5)


def test_lpips_rejects_incomplete_or_unreadable_weights(tmp_path):
    torch = pytest.importorskip("torch")
    image = np.zeros((32, 32, 3), np.uint8)
    torch.save({"features.0.weight": torch.zeros(4, 3, 11, 11)}, tmp_path / "partial.pth")
    with pytest.raises(LensblurError):
        metrics.lpips_distance(image, image, str(tmp_path / "partial.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(LensblurError):
        metrics.lpips_distance(image, image, str(tmp_path / "junk.pth"))
