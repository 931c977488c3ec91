"""Depth-map files: formats, depth → disparity, invalid pixels, fitting to the image, writing."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from lensblur.errors import InputError, OutputError
from lensblur.io.depth import (fit_to_image, normalize_depth, read_depth, read_depth_explained, read_pfm,
                               write_disparity_png, write_disparity_preview)

SAMPLES = Path(__file__).parents[2] / "shared" / "samples"


def ramp(height=8, width=12) -> np.ndarray:
    """A float ramp in [0, 1] increasing left to right and top to bottom."""
    y, x = np.mgrid[0:height, 0:width]
    values = (x + width * y).astype(np.float64)
    return values / values.max()


def unit(values) -> np.ndarray:
    values = np.asarray(values, np.float64)
    return (values - values.min()) / (values.max() - values.min())


def write_pfm(path: Path, values: np.ndarray, little_endian: bool = True) -> Path:
    colour = values.ndim == 3
    header = f"{'PF' if colour else 'Pf'}\n{values.shape[1]} {values.shape[0]}\n{-1.0 if little_endian else 1.0}\n"
    data = np.ascontiguousarray(values[::-1], dtype="<f4" if little_endian else ">f4")
    path.write_bytes(header.encode() + data.tobytes())
    return path


# ---------------------------------------------------------------- formats


def test_16bit_png_scales_by_65535_and_stretches_only_when_asked(tmp_path):
    raw = np.round(ramp() * 60000 + 1000).astype(np.uint16)
    Image.fromarray(raw).save(tmp_path / "d.png")
    disparity, note = read_depth_explained(tmp_path / "d.png")
    assert disparity.dtype == np.float32 and disparity.shape == (8, 12)
    np.testing.assert_allclose(disparity, raw / 65535, atol=1e-6)
    assert note == "16-bit PNG, scaled by 65535"
    stretched, note = read_depth_explained(tmp_path / "d.png", normalize=True)
    np.testing.assert_allclose(stretched, unit(raw), atol=1e-6)
    assert note == "PNG stretched from 1000..6.1e+04 (--normalize)"


def test_8bit_png_grey_as_rgb_read_and_colour_refused(tmp_path):
    raw = np.round(ramp() * 200 + 20).astype(np.uint8)
    Image.fromarray(raw).save(tmp_path / "grey.png")
    np.testing.assert_allclose(read_depth(tmp_path / "grey.png"), raw / 255, atol=1e-6)
    Image.fromarray(np.dstack([raw] * 3)).save(tmp_path / "grey_rgb.png")
    np.testing.assert_allclose(read_depth(tmp_path / "grey_rgb.png"), raw / 255, atol=1e-6)
    np.testing.assert_allclose(read_depth(tmp_path / "grey_rgb.png", normalize=True), unit(raw), atol=1e-6)
    rgb = np.dstack([raw, 255 - raw, np.zeros_like(raw)])  # colour: no longer read from its red channel
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    with pytest.raises(InputError, match="colour"):
        read_depth(tmp_path / "rgb.png")


def test_float_tiff(tmp_path):
    depth = (ramp() * 9 + 1).astype(np.float32)
    Image.fromarray(depth).save(tmp_path / "d.tif")
    np.testing.assert_allclose(read_depth(tmp_path / "d.tif", kind="depth"),
                               (1 / depth - 1 / 10) / (1 / 1 - 1 / 10), atol=1e-5)


def test_jpeg(tmp_path):
    raw = np.round(ramp(32, 48) * 255).astype(np.uint8)
    Image.fromarray(raw).save(tmp_path / "d.jpg", quality=98)
    assert np.abs(read_depth(tmp_path / "d.jpg") - raw / 255).mean() < 0.02


def test_npy_outside_unit_range_is_stretched(tmp_path):
    values = ramp() * 5 - 2
    np.save(tmp_path / "d.npy", values)
    disparity, note = read_depth_explained(tmp_path / "d.npy")
    np.testing.assert_allclose(disparity, unit(values), atol=1e-6)
    assert note == "NPY stretched from -2..3 (outside [0, 1])"


def test_float_map_inside_unit_range_is_used_as_given(tmp_path):
    values = (ramp() * 0.45 + 0.2).astype(np.float32)
    np.save(tmp_path / "d.npy", values)
    Image.fromarray(values).save(tmp_path / "d.tif")
    for name in ("d.npy", "d.tif"):
        disparity, note = read_depth_explained(tmp_path / name)
        np.testing.assert_array_equal(disparity, values)
        assert note.startswith("float ") and note.endswith("in [0, 1], used as given")


def test_a_16bit_map_spanning_0_2_to_0_65_can_be_focused_at_0_2_by_value(tmp_path):
    raw = np.round((ramp() * 0.45 + 0.2) * 65535).astype(np.uint16)
    Image.fromarray(raw).save(tmp_path / "d.png")
    disparity = read_depth(tmp_path / "d.png")
    assert disparity.min() == pytest.approx(0.2, abs=1 / 65535) and disparity.max() == pytest.approx(0.65, abs=1e-4)
    far_pixels = disparity <= 0.2 + 1 / 65535
    assert far_pixels.sum() == 1  # the far corner sits at exactly the value 0.2, not at 0


@pytest.mark.parametrize("little_endian", [True, False])
def test_pfm_grey_both_byte_orders_bottom_up(tmp_path, little_endian):
    values = ramp().astype(np.float32)
    path = write_pfm(tmp_path / "d.pfm", values, little_endian)
    np.testing.assert_array_equal(read_pfm(path), values)
    np.testing.assert_allclose(read_depth(path), values, atol=1e-6)


def test_pfm_colour_takes_first_channel(tmp_path):
    values = np.dstack([ramp(), 1 - ramp(), np.zeros((8, 12))]).astype(np.float32)
    path = write_pfm(tmp_path / "c.pfm", values)
    assert read_pfm(path).shape == (8, 12, 3)
    np.testing.assert_allclose(read_depth(path), ramp(), atol=1e-6)


@pytest.mark.parametrize("name,content,message", [
    ("t.pfm", b"Pf\n4 4\n-1.0\n" + b"\0" * 10, "truncated"),
    ("h.pfm", b"P6\n4 4\n255\n", "bad header"),
    ("e.png", b"", "empty"),
    ("x.png", b"not a png", "cannot read"),
    ("o.npy", b"\x93NUMPY garbage", "cannot read"),
])
def test_broken_files_raise_input_error_naming_them(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(InputError, match=message) as caught:
        read_depth(tmp_path / name)
    assert name in str(caught.value) and "\n" not in str(caught.value)


def test_missing_file_and_bad_kind(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_depth(tmp_path / "none.png")
    with pytest.raises(InputError, match="kind"):
        normalize_depth(ramp(), kind="inverse")
    np.testing.assert_allclose(normalize_depth(ramp(), kind="disparity", near=1.0, far=2.0), ramp(), atol=1e-6)


# ---------------------------------------------------------------- normalisation


def test_depth_to_disparity_with_near_far_formula():
    z = np.array([[0.5, 1.0, 2.0], [4.0, 8.0, 100.0]], np.float32)
    near, far = 1.0, 10.0
    expected = np.clip((1 / z - 1 / far) / (1 / near - 1 / far), 0, 1)
    disparity = normalize_depth(z, kind="depth", near=near, far=far)
    np.testing.assert_allclose(disparity, expected, atol=1e-6)
    assert disparity[0, 1] == pytest.approx(1.0) and disparity[0, 2] == pytest.approx((0.5 - 0.1) / 0.9)
    assert disparity[0, 0] == 1.0 and disparity[1, 2] == 0.0  # clipped outside [near, far]


def test_depth_without_near_far_uses_own_range():
    z = np.array([[2.0, 3.0], [4.0, 6.0]])
    expected = (1 / z - 1 / 6) / (1 / 2 - 1 / 6)
    np.testing.assert_allclose(normalize_depth(z, kind="depth"), expected, atol=1e-6)
    with pytest.raises(InputError, match="0 < near < far"):
        normalize_depth(z, kind="depth", near=5.0, far=1.0)


def test_disparity_bigger_is_nearer():
    values = np.array([[10.0, 20.0], [30.0, 40.0]])
    np.testing.assert_allclose(normalize_depth(values), [[0, 1 / 3], [2 / 3, 1]], atol=1e-6)


def test_arrays_follow_the_file_rule():
    raw = np.array([[0, 1000], [30000, 65535]], np.uint16)
    np.testing.assert_allclose(normalize_depth(raw), raw / 65535, atol=1e-7)
    small = np.array([[3, 40], [128, 250]], np.uint8)
    np.testing.assert_allclose(normalize_depth(small), small / 255, atol=1e-7)
    unit_floats = np.array([[0.2, 0.3], [0.5, 0.9]])
    np.testing.assert_allclose(normalize_depth(unit_floats), unit_floats, atol=1e-7)
    np.testing.assert_allclose(normalize_depth(unit_floats, normalize=True), unit(unit_floats), atol=1e-6)
    signed = np.array([[-5, 0], [5, 10]], np.int16)
    np.testing.assert_allclose(normalize_depth(signed), unit(signed), atol=1e-6)


def test_constant_map_is_all_ones_only_when_stretched():
    assert np.all(normalize_depth(np.full((4, 5), 7.0)) == 1.0)
    assert np.all(normalize_depth(np.full((4, 5), 0.4), normalize=True) == 1.0)
    assert np.all(normalize_depth(np.full((4, 5), 0.4)) == np.float32(0.4))  # in [0, 1]: a real value
    assert np.all(normalize_depth(np.full((4, 5), 3.0), kind="depth") == 1.0)


def test_nan_inf_and_negative_filled_from_nearest_valid():
    values = np.array([[1.0, 2.0, np.nan, 4.0],
                       [1.0, 2.0, 3.0, np.inf],
                       [1.0, 2.0, 3.0, 4.0]], np.float32)
    disparity = normalize_depth(values)
    assert np.all(np.isfinite(disparity))
    assert disparity[0, 2] in (disparity[0, 1], disparity[1, 2], disparity[0, 3])
    assert disparity[1, 3] in (disparity[0, 3], disparity[1, 2], disparity[2, 3])
    column = normalize_depth(np.array([[1.0], [np.nan], [np.nan], [4.0], [5.0]]))  # outside [0, 1]: stretched
    np.testing.assert_allclose(column[:, 0], [0, 0, 0.75, 0.75, 1], atol=1e-6)  # each hole takes its nearest
    depth = np.array([[2.0, -1.0], [2.0, 4.0]])
    np.testing.assert_allclose(normalize_depth(depth, kind="depth"), [[1, 1], [1, 0]], atol=1e-6)


def test_too_many_invalid_pixels_rejected(tmp_path):
    values = ramp()
    values[:5] = np.nan  # 5 of 8 rows
    np.save(tmp_path / "holes.npy", values)
    with pytest.raises(InputError, match=r"holes\.npy: 62% of its pixels"):
        read_depth(tmp_path / "holes.npy")


# ---------------------------------------------------------------- fitting to the image


def test_fit_resizes_same_aspect():
    disparity = ramp(30, 40).astype(np.float32)
    fitted = fit_to_image(disparity, 60, 80)
    assert fitted.shape == (60, 80) and fitted.dtype == np.float32
    np.testing.assert_allclose(fitted, cv2.resize(disparity, (80, 60), interpolation=cv2.INTER_LINEAR))
    assert fit_to_image(disparity, 30, 40) is not disparity
    assert fit_to_image(ramp(300, 400), 301, 400).shape == (301, 400)  # within 2 %


def test_fit_refuses_other_aspect_and_rotation():
    with pytest.raises(InputError, match="depth map is 300×200 but the image is 400×400: aspect ratios differ"):
        fit_to_image(np.zeros((200, 300)), 400, 400)
    with pytest.raises(InputError, match="90°"):
        fit_to_image(np.zeros((300, 400)), 800, 600)


# ---------------------------------------------------------------- writing


def test_write_disparity_png_round_trip(tmp_path):
    disparity = ramp().astype(np.float32)
    write_disparity_png(tmp_path / "d.png", disparity)
    image = Image.open(tmp_path / "d.png")
    assert image.mode in ("I;16", "I")
    assert np.asarray(image).max() == 65535
    np.testing.assert_allclose(read_depth(tmp_path / "d.png"), disparity, atol=1 / 65535)
    with pytest.raises(OutputError, match="already exists"):
        write_disparity_png(tmp_path / "d.png", disparity)
    write_disparity_png(tmp_path / "d.png", disparity, overwrite=True)


def test_write_preview_is_colour_8bit(tmp_path):
    write_disparity_preview(tmp_path / "p.png", ramp())
    image = Image.open(tmp_path / "p.png")
    assert image.mode == "RGB" and image.size == (12, 8)
    pixels = np.asarray(image).astype(int)
    assert pixels[-1, -1].sum() > pixels[0, 0].sum()  # near (1) is brighter than far (0)
    with pytest.raises(OutputError, match=r"\.png"):
        write_disparity_preview(tmp_path / "p.jpg", ramp())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png"]


# ---------------------------------------------------------------- real files


@pytest.mark.parametrize("name", ["bokehme/13.png", "apple/pug_depth_reference.png", "google/depthy_hut-depth.jpg"])
def test_real_depth_maps(name):
    path = SAMPLES / name
    if not path.exists():
        pytest.skip(f"{path} not available")
    disparity = read_depth(path, normalize=True)
    assert disparity.ndim == 2 and disparity.min() == 0 and disparity.max() == 1
    as_stored = read_depth(path)  # 8/16-bit files: levels ÷ the type's maximum, no stretch
    assert 0 <= as_stored.min() and as_stored.max() <= 1 and as_stored.std() <= disparity.std() + 1e-6
    image_path = path.with_name(path.name.replace("-depth", "-image")).with_suffix(".jpg")
    if name.startswith(("bokehme", "google")) and image_path.exists():
        width, height = Image.open(image_path).size
        assert fit_to_image(disparity, height, width).shape == (height, width)
