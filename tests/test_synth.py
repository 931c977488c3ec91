import argparse
import math

import numpy as np
import pytest
from scipy import ndimage

from lensblur.aperture import Aperture
from lensblur.commands import synth as synth_command
from lensblur.errors import InputError
from lensblur.synth import Layer, Scene, make_scene, render_ground_truth
from lensblur.synth.thinlens import aperture_samples, camera_image, visible_disparity


def _smooth_texture(rng, height, width):
    noise = rng.uniform(0, 1, size=(height, width, 3)).astype(np.float32)
    return ndimage.gaussian_filter(noise, sigma=(2, 2, 0)).astype(np.float32)


def _layer(rgb, disparity, alpha=None):
    height, width = rgb.shape[:2]
    alpha = np.ones((height, width), np.float32) if alpha is None else alpha
    return Layer(rgb, alpha, np.full((height, width), disparity, np.float32))


def _supersampled_kernel(aperture, radius, flip, supersample=16):
    """Convolution kernel of the thin-lens PSF: the aperture scaled by radius (flipped for c < 0)."""
    reach = int(math.ceil(radius)) + 1
    sub = (np.arange(supersample) + 0.5) / supersample - 0.5
    coords = (np.arange(-reach, reach + 1)[:, None] + sub[None, :]).reshape(-1) / radius
    xs, ys = np.meshgrid(coords, coords)
    inside = aperture.contains(-xs, -ys) if flip else aperture.contains(xs, ys)
    size = 2 * reach + 1
    kernel = inside.reshape(size, supersample, size, supersample).mean(axis=(1, 3))
    return kernel / kernel.sum()


def test_layer_at_focus_is_unchanged():
    rng = np.random.default_rng(1)
    back = _layer(_smooth_texture(rng, 48, 64), 0.1)
    alpha = np.zeros((48, 64), np.float32)
    alpha[10:40, 15:50] = 1.0
    front_rgb = rng.uniform(0, 1, size=(48, 64, 3)).astype(np.float32)
    scene = Scene([back, _layer(front_rgb, 0.7, alpha)], focus_disparity=0.7, blur=20.0)
    gt = render_ground_truth(scene)
    assert len(aperture_samples(scene)) > 50  # the background really is blurred
    np.testing.assert_allclose(gt[10:40, 15:50], front_rgb[10:40, 15:50], atol=1e-5)


@pytest.mark.parametrize("aperture,disparity", [(Aperture(), 0.2), (Aperture(5, 10.0), 0.2), (Aperture(5, 10.0), 0.8)])
def test_constant_layer_is_its_convolution_with_the_aperture(aperture, disparity):
    rng = np.random.default_rng(2)
    rgb = _smooth_texture(rng, 48, 64)
    scene = Scene([_layer(rgb, disparity)], focus_disparity=0.5, blur=20.0, aperture=aperture)
    coc = 20.0 * (disparity - 0.5)
    gt = render_ground_truth(scene)
    kernel = _supersampled_kernel(aperture, abs(coc), flip=coc < 0)
    expected = np.stack([ndimage.convolve(rgb[..., k], kernel, mode="nearest") for k in range(3)], axis=2)
    interior = (slice(8, -8), slice(8, -8))
    error = np.abs(gt - expected)[interior]
    assert error.mean() < 2e-3
    assert error.max() < 1.5e-2


def test_point_light_becomes_a_disc_with_its_energy():
    rgb = np.zeros((48, 64, 3), np.float32)
    rgb[24, 32] = 20.0
    radius = 8.0
    scene = Scene([_layer(rgb, 0.9)], focus_disparity=0.5, blur=radius / 0.4)
    gt = render_ground_truth(scene)
    np.testing.assert_allclose(gt.sum(axis=(0, 1)), rgb.sum(axis=(0, 1)), rtol=1e-4)
    y, x = np.mgrid[:48, :64]
    distance = np.hypot(y - 24, x - 32)
    assert gt[distance > radius + 1.5].sum() == 0
    inner = gt[distance < radius - 1.5, 0]
    np.testing.assert_allclose(inner, 20.0 / (math.pi * radius ** 2), rtol=0.1)


def test_make_scene_is_layered_and_within_the_blur_range():
    scene = make_scene(np.random.default_rng([2026, 0]), 96, 144)
    assert 2 <= len(scene.layers) <= 4
    assert np.all(scene.layers[0].alpha == 1)
    nearest = [float(layer.disparity.max()) for layer in scene.layers]
    assert nearest == sorted(nearest)
    assert 8 * 96 / 384 - 1e-6 <= scene.max_coc() <= 24 * 96 / 384 + 1e-6
    assert scene.layers[0].rgb.max() >= 4.0  # HDR point lights
    image = camera_image(scene)
    assert image.dtype == np.uint8 and image.shape == (96, 144, 3)
    assert visible_disparity(scene).shape == (96, 144)


@pytest.mark.parametrize("index", range(4))
def test_nearest_focus_refocuses_the_same_scene_on_its_nearest_layer(index):
    default = make_scene(np.random.default_rng([2026, index]), 96, 144)
    nearest = make_scene(np.random.default_rng([2026, index]), 96, 144, focus="nearest")
    assert len(nearest.layers) == len(default.layers)
    for a, b in zip(default.layers, nearest.layers):
        np.testing.assert_array_equal(a.rgb, b.rgb)
    assert nearest.focus_disparity == pytest.approx(float(nearest.layers[-1].disparity.max()))
    # everything else lies behind the focal plane, and the blur range is the same as ever
    assert all(float(layer.disparity.max()) <= nearest.focus_disparity + 1e-6 for layer in nearest.layers)
    assert 8 * 96 / 384 - 1e-6 <= nearest.max_coc() <= 24 * 96 / 384 + 1e-6
    with pytest.raises(InputError):
        make_scene(np.random.default_rng(0), 32, 32, focus="middle")


def _synth_args(out, workers):
    return argparse.Namespace(out=str(out), count=3, seed=5, size="48x64", workers=workers, scheduler=None,
                              layers=False, focus="any", photos=None, overwrite=False, quiet=True)


def test_synth_command_is_deterministic_on_one_or_four_dask_workers(tmp_path):
    assert synth_command.run(_synth_args(tmp_path / "a", 4)) == 0
    assert synth_command.run(_synth_args(tmp_path / "b", 1)) == 0
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert len(names) == 12 and "0002_gt.png" in names and "0000_meta.json" in names
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
