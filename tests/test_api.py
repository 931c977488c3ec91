"""The Python API (lensblur.render and friends) and the lens conventions."""

import math

import numpy as np
import pytest

import lensblur
from lensblur.aperture import Aperture
from lensblur.errors import InputError
from lensblur.lens import Lens, blur_from_camera, depth_at_disparity, focus_disparity_at, signed_coc


def _scene():
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 1, (48, 64, 3)).astype(np.float32)
    disparity = np.full((48, 64), 0.2, np.float32)
    disparity[12:36, 16:48] = 0.9
    return image, disparity


def test_render_keyword_settings_and_lens_object_agree():
    image, disparity = _scene()
    by_keywords = lensblur.render(image, disparity, blur=12, focus=(32, 24), aperture="blades:6:10")
    lens = Lens(blur=12, focus_disparity=0.9, aperture=Aperture(6, 10))
    assert np.array_equal(by_keywords, lensblur.render(image, disparity, lens=lens))
    assert np.allclose(by_keywords[12:36, 16:48], image[12:36, 16:48], atol=1e-4)


def test_render_integer_images_round_trip_as_srgb():
    image, disparity = _scene()
    encoded = np.round(image * 255).astype(np.uint8)
    out = lensblur.render(encoded, disparity, blur=12, focus_disparity=0.9)
    assert out.dtype == np.uint8 and out.shape == encoded.shape
    assert np.abs(out[14:34, 18:46].astype(int) - encoded[14:34, 18:46]).max() <= 1


def test_render_resizes_disparity_of_same_aspect():
    image, disparity = _scene()
    small = disparity[::2, ::2]
    out = lensblur.render(image, small, blur=10, focus_disparity=0.9)
    assert out.shape == image.shape


def test_render_rejects_bad_arguments():
    image, disparity = _scene()
    with pytest.raises(InputError):
        lensblur.render(image[..., 0], disparity)
    with pytest.raises(InputError):
        lensblur.render(image, disparity, focus=(1, 1), focus_disparity=0.5)
    with pytest.raises(InputError):
        lensblur.render(image, disparity, renderer="no-such-renderer")
    with pytest.raises(InputError):
        Lens(blur=-1)


def test_signed_coc_convention_and_focus_range():
    disparity = np.array([[0.0, 0.5, 0.6, 1.0]], np.float32)
    assert signed_coc(disparity, 10, 0.5)[0].tolist() == pytest.approx([-5, 0, 1, 5], abs=1e-5)
    # inside the band sharp, outside growing from the band's edge
    assert signed_coc(disparity, 10, 0.5, focus_range=0.1)[0].tolist() == pytest.approx([-4, 0, 0, 4], abs=1e-5)


def test_camera_to_blur_scale():
    # 50 mm f/2 on a 36 mm sensor, 3600 px wide, focused at 2 m; near 1 m, far at infinity
    k = blur_from_camera(50, 2.0, 36, 3600, 2.0, 1.0)
    expected = (3600 / 36) * 50 ** 2 * 2000 / (2 * 2.0 * (2000 - 50)) * (1 / 1000.0)
    assert k == pytest.approx(expected)
    # a point at infinity (D = 0) focused at 2 m (D = 0.5): radius = K/2 pixels
    assert depth_at_disparity(0.5, 1.0) == pytest.approx(2.0)
    with pytest.raises(InputError):
        blur_from_camera(50, 2.0, 36, 3600, 0.01, 1.0)


def test_focus_point_is_not_fooled_by_an_edge():
    disparity = np.full((100, 100), 0.1, np.float32)
    disparity[:, 50:] = 0.8
    assert focus_disparity_at(disparity, 52, 50) == pytest.approx(0.8)
    assert focus_disparity_at(disparity, 48, 50) == pytest.approx(0.1)
    with pytest.raises(InputError):
        focus_disparity_at(disparity, 100, 5)


def test_aperture_parsing_and_shape():
    assert Aperture.parse("disk").is_disk
    hexagon = Aperture.parse("blades:6:30:0.2")
    assert (hexagon.blades, hexagon.rotation, hexagon.curvature) == (6, 30.0, 0.2)
    for bad in ("blades:2", "blades:13", "star", "blades:x"):
        with pytest.raises(InputError):
            Aperture.parse(bad)
    assert Aperture().area() == pytest.approx(math.pi)
    # a regular hexagon inscribed in the unit circle
    assert Aperture(6).area() == pytest.approx(3 * math.sqrt(3) / 2, rel=1e-3)


def test_estimate_depth_api_returns_disparity_at_image_size():
    rng = np.random.default_rng(1)
    image = np.full((96, 128, 3), 0.2, np.float32)
    image[30:70, 40:90] = rng.uniform(0.6, 1.0, (40, 50, 3))  # a textured, bright subject
    estimate = lensblur.estimate_depth(image)
    assert estimate.disparity.shape == (96, 128)
    assert 0.0 <= estimate.disparity.min() and estimate.disparity.max() <= 1.0
    assert estimate.notes
