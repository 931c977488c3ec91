"""One meaning for a disparity map (issue 14): integer maps ÷ their type's maximum, float maps in
[0, 1] as given, only maps outside [0, 1] or with --normalize stretched; files and arrays alike,
through the command line and the Python API."""

import numpy as np
import pytest
from PIL import Image

import lensblur
from lensblur.cli import main

HEIGHT, WIDTH = 48, 64


@pytest.fixture()
def photo(tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)).save(path)
    return path


def two_planes(near=0.9, far=0.2) -> np.ndarray:
    """Left half ``near``, right half ``far``, as 16-bit levels."""
    values = np.full((HEIGHT, WIDTH), far)
    values[:, : WIDTH // 2] = near
    return np.round(values * 65535).astype(np.uint16)


def render_cli(photo, depth_path, out, *options, capsys=None):
    code = main(["render", str(photo), "--depth", str(depth_path), "-o", str(out), "-q", "--highlights", "off",
                 *map(str, options)])
    assert code == 0
    return np.asarray(Image.open(out)).astype(int)


def test_the_same_map_as_a_file_and_as_an_array_gives_the_identical_render(tmp_path, photo):
    levels = two_planes()
    levels[HEIGHT // 2:, WIDTH // 2:] = np.round(0.55 * 65535)
    Image.fromarray(levels).save(tmp_path / "d.png")
    from_file = render_cli(photo, tmp_path / "d.png", tmp_path / "file.png", "--blur", 12, "--focus-disparity", 0.2)

    image = lensblur.read_image(photo)
    result = lensblur.render(image, levels, blur=12, focus_disparity=0.2, highlights=False)
    lensblur.write_image(tmp_path / "array.png", result, like=image)
    from_array = np.asarray(Image.open(tmp_path / "array.png")).astype(int)
    np.testing.assert_array_equal(from_file, from_array)
    # and the file read back by the API is the array divided by 65535
    np.testing.assert_allclose(lensblur.read_depth(tmp_path / "d.png"), levels / 65535, atol=1e-7)


def test_focus_on_the_near_plane_by_value_keeps_it_unchanged(tmp_path, photo):
    Image.fromarray(two_planes(0.9, 0.2)).save(tmp_path / "d.png")
    out = render_cli(photo, tmp_path / "d.png", tmp_path / "o.png", "--blur", 20, "--focus-disparity", 0.9)
    original = np.asarray(Image.open(photo)).astype(int)
    reach = int(np.ceil(20 * 0.7)) + 2  # the far plane's blur radius, plus a margin
    near = (slice(None), slice(0, WIDTH // 2 - reach))
    assert np.abs(out[near] - original[near]).max() <= 1
    far = (slice(None), slice(WIDTH // 2 + reach, None))
    assert np.abs(out[far] - original[far]).mean() > 10  # the far plane did get blurred


def test_a_16bit_map_spanning_0_2_to_0_65_can_be_focused_at_0_2(tmp_path, photo):
    levels = two_planes(0.65, 0.2)
    Image.fromarray(levels).save(tmp_path / "d.png")
    out = render_cli(photo, tmp_path / "d.png", tmp_path / "o.png", "--blur", 20, "--focus-disparity", 0.2)
    original = np.asarray(Image.open(photo)).astype(int)
    reach = int(np.ceil(20 * 0.45)) + 2
    far = (slice(None), slice(WIDTH // 2 + reach, None))
    assert np.abs(out[far] - original[far]).max() <= 1
    stretched = render_cli(photo, tmp_path / "d.png", tmp_path / "s.png", "--blur", 20, "--focus-disparity", 0.2,
                           "--normalize")
    assert np.abs(stretched[far] - original[far]).mean() > 5  # stretched, 0.2 is no longer the far plane


def test_verbose_and_info_say_how_the_map_was_read(tmp_path, photo, capsys):
    Image.fromarray(two_planes(0.65, 0.2)).save(tmp_path / "d.png")
    assert main(["render", str(photo), "--depth", str(tmp_path / "d.png"), "-o", str(tmp_path / "o.png"), "-v",
                 "--blur", "4"]) == 0
    assert "disparity: 16-bit PNG, scaled by 65535" in capsys.readouterr().err
    assert main(["render", str(photo), "--depth", str(tmp_path / "d.png"), "-o", str(tmp_path / "o.png"), "-v",
                 "--blur", "4", "--overwrite", "--normalize"]) == 0
    assert "disparity: PNG stretched from 1.311e+04..4.26e+04 (--normalize)" in capsys.readouterr().err
    assert main(["info", str(photo), "--depth", str(tmp_path / "d.png")]) == 0
    assert "disparity: 16-bit PNG, scaled by 65535" in capsys.readouterr().out
    np.save(tmp_path / "d.npy", two_planes(0.65, 0.2) / 65535.0)
    assert main(["info", str(photo), "--depth", str(tmp_path / "d.npy")]) == 0
    assert "disparity: float NPY in [0, 1], used as given" in capsys.readouterr().out


def test_the_api_stretches_only_outside_the_unit_range_or_when_asked(photo):
    image = lensblur.read_image(photo)
    inside = two_planes(0.65, 0.2) / 65535.0
    settings = dict(blur=10, focus_disparity=0.2, highlights=False)
    as_given = lensblur.render(image, inside, **settings)
    np.testing.assert_array_equal(lensblur.render(image, inside * 100, normalize=False, **settings),
                                  lensblur.render(image, inside, normalize=True, **settings))
    assert np.abs(as_given - lensblur.render(image, inside, normalize=True, **settings)).max() > 0.05
