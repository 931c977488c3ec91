"""Edge-aware (guided) enlargement of depth maps smaller than the photo (lensblur.io.depth.fit_to_image)."""

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from lensblur import api
from lensblur.color import srgb_to_linear
from lensblur.depth.refine import photo_guide, upsample_where_explained
from lensblur.depth_source import choose_depth
from lensblur.errors import InputError
from lensblur.io.depth import fit_to_image
from lensblur.metrics import boundary_mask

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO.parent / "shared" / "samples"
HEIGHT, WIDTH, EDGE = 120, 160, 83  # the guide's edge between columns 82 and 83: not on the 4-px grid


def step_scene():
    """A photo with a vertical step edge (dark | light) and its true disparity (far | near)."""
    grey = np.where(np.arange(WIDTH) < EDGE, 0.15, 0.7).astype(np.float32)
    photo = np.repeat(np.tile(grey, (HEIGHT, 1))[..., None], 3, axis=2)
    truth = np.where(np.arange(WIDTH) < EDGE, 0.2, 0.9).astype(np.float32)
    return srgb_to_linear(photo), np.tile(truth, (HEIGHT, 1))


def transition(row: np.ndarray, low: float = 0.2, high: float = 0.9) -> np.ndarray:
    """Columns where a row is more than 10 % of the step away from both plateaus."""
    level = (row - low) / (high - low)
    return np.nonzero((level > 0.1) & (level < 0.9))[0]


def small_map(truth: np.ndarray, factor: int = 4) -> np.ndarray:
    height, width = truth.shape
    return cv2.resize(truth, (width // factor, height // factor), interpolation=cv2.INTER_AREA)


def test_guided_puts_the_depth_edge_on_the_photo_edge_where_bilinear_leaves_a_ramp():
    photo, truth = step_scene()
    small = small_map(truth)
    guided = fit_to_image(small, HEIGHT, WIDTH, photo, "guided")
    bilinear = fit_to_image(small, HEIGHT, WIDTH, photo, "bilinear")
    ramp = transition(bilinear[HEIGHT // 2])
    assert len(ramp) >= 4, ramp  # one map pixel is 4 photo pixels: the ramp is that wide
    edge = transition(guided[HEIGHT // 2])
    assert len(edge) <= 1, edge
    # the 50 % crossing lies within 2 px of the photo's edge on every row
    crossing = np.argmax(guided >= 0.55, axis=1)
    assert np.all(np.abs(crossing - EDGE) <= 2), np.unique(crossing)
    assert np.abs(guided - truth).mean() < 0.5 * np.abs(bilinear - truth).mean()


def test_texture_inside_one_surface_makes_no_depth_edge():
    rng = np.random.default_rng(3)
    texture = cv2.GaussianBlur(rng.uniform(0, 1, (HEIGHT, WIDTH)).astype(np.float32), (0, 0), 1.0)
    texture = np.clip(0.2 + 0.6 * (texture - texture.min()) / np.ptp(texture), 0, 1)
    photo = srgb_to_linear(np.repeat(texture[..., None], 3, axis=2))
    constant = np.full((HEIGHT // 4, WIDTH // 4), 0.6, np.float32)
    flat = fit_to_image(constant, HEIGHT, WIDTH, photo, "guided")
    assert np.abs(flat - 0.6).max() < 1e-4
    # a smooth ramp (a wall seen at an angle) stays a smooth ramp on a textured photo
    ramp = np.tile(np.linspace(0.2, 0.8, WIDTH // 4, dtype=np.float32), (HEIGHT // 4, 1))
    guided = fit_to_image(ramp, HEIGHT, WIDTH, photo, "guided")
    bilinear = fit_to_image(ramp, HEIGHT, WIDTH, photo, "bilinear")
    deviation = np.abs(guided - bilinear)
    assert deviation.mean() < 0.005 and deviation.max() < 0.05, (deviation.mean(), deviation.max())
    step = 0.6 / (WIDTH // 4) / 4  # the ramp's own rise per photo pixel
    assert np.abs(np.diff(guided, axis=0)).max() < 0.03  # a depth edge would be a step of ≥ 0.1
    assert np.abs(np.diff(guided, axis=1)).max() < step + 0.03


def test_a_soft_guide_edge_gives_a_soft_depth_edge():
    """Hair or fur (a soft, partly covering edge in the photo) gets a graded transition, not a cut."""
    coverage = np.clip((np.arange(WIDTH, dtype=np.float32) - 70) / 24, 0, 1)  # 24 px wide soft edge
    photo = srgb_to_linear(np.repeat(np.tile(0.15 + 0.55 * coverage, (HEIGHT, 1))[..., None], 3, axis=2))
    truth = np.tile(0.2 + 0.7 * coverage, (HEIGHT, 1)).astype(np.float32)
    guided = fit_to_image(small_map(truth), HEIGHT, WIDTH, photo, "guided")
    assert len(transition(guided[HEIGHT // 2])) >= 15  # still graded over most of the 24 px
    assert np.abs(np.diff(guided[HEIGHT // 2])).max() < 0.2


def test_a_full_resolution_map_is_not_changed():
    photo, truth = step_scene()
    noisy = truth + np.random.default_rng(1).normal(0, 0.01, truth.shape).astype(np.float32)
    assert np.array_equal(fit_to_image(noisy, HEIGHT, WIDTH, photo, "guided"), noisy)


def test_bilinear_option_is_the_plain_resize_of_before():
    photo, truth = step_scene()
    small = small_map(truth)
    expected = cv2.resize(small, (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(fit_to_image(small, HEIGHT, WIDTH, photo, "bilinear"), expected)
    assert np.array_equal(fit_to_image(small, HEIGHT, WIDTH), expected)  # no photo: bilinear
    with pytest.raises(InputError, match="upsampling"):
        fit_to_image(small, HEIGHT, WIDTH, photo, "bicubic")


def test_a_small_depth_file_is_upsampled_guided_by_default(tmp_path):
    photo, truth = step_scene()
    image = tmp_path / "photo.png"
    cv2.imwrite(str(image), np.zeros((HEIGHT, WIDTH, 3), np.uint8))
    depth = tmp_path / "small.png"
    small16 = np.round(small_map(truth) * 65535).astype(np.uint16)
    cv2.imwrite(str(depth), small16)
    small = small16.astype(np.float32) / 65535
    guided = choose_depth(str(image), photo, str(depth))
    bilinear = choose_depth(str(image), photo, str(depth), upsample="bilinear")
    assert np.array_equal(guided.disparity, upsample_where_explained(photo_guide(photo), small))
    assert np.array_equal(bilinear.disparity, cv2.resize(small, (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR))
    assert "guided" in guided.upsampling and "bilinear" in bilinear.upsampling


def two_plane_scene():
    """A textured far background and a near, lighter disc in focus; its true disparity."""
    rng = np.random.default_rng(7)
    height, width = 96, 128
    yy, xx = np.mgrid[:height, :width]
    near = (yy - 50) ** 2 + (xx - 61) ** 2 < 30 ** 2
    background = 0.1 + 0.15 * cv2.GaussianBlur(rng.uniform(0, 1, (height, width)).astype(np.float32), (0, 0), 2)
    subject = 0.75 + 0.1 * cv2.GaussianBlur(rng.uniform(0, 1, (height, width)).astype(np.float32), (0, 0), 2)
    grey = np.where(near, subject, background)
    pixels = srgb_to_linear(np.stack([grey, grey * 0.95, grey * 0.9], axis=2))
    return pixels, np.where(near, 0.9, 0.2).astype(np.float32)


def test_render_with_a_low_resolution_map_has_less_error_at_edges_when_guided():
    pixels, truth = two_plane_scene()
    small = small_map(truth)
    # the upsampling alone: the edge matte would repair the bilinear map's ramp (0.035 -> 0.001)
    settings = {"blur": 12.0, "focus_disparity": 0.9, "highlights": False, "edge_matte": False}
    reference = api.render(pixels, truth, **settings)
    guided = api.render(pixels, small, **settings)
    bilinear = api.render(pixels, small, depth_upsample="bilinear", **settings)
    band = boundary_mask(truth, 8)
    error_guided = np.abs(guided - reference)[band].mean()
    error_bilinear = np.abs(bilinear - reference)[band].mean()
    assert error_guided < 0.6 * error_bilinear, (error_guided, error_bilinear)


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.run([sys.executable, "-m", "lensblur", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def test_cli_verbose_says_how_the_map_was_enlarged(tmp_path):
    pixels, truth = two_plane_scene()
    image = tmp_path / "photo.png"
    cv2.imwrite(str(image), np.round(pixels[..., ::-1] ** (1 / 2.2) * 255).astype(np.uint8))
    depth = tmp_path / "small.png"
    cv2.imwrite(str(depth), np.round(small_map(truth) * 65535).astype(np.uint16))
    result = run_cli("render", image, "--depth", depth, "-o", tmp_path / "out.png", "-v", "-q")
    assert result.returncode == 0, result.stderr
    assert "32×24 upsampled to 128×96, guided by the photo's edges (--depth-upsample guided)" in result.stderr
    result = run_cli("render", image, "--depth", depth, "--depth-upsample", "bilinear", "-o", tmp_path / "b.png",
                     "-v", "-q")
    assert result.returncode == 0, result.stderr
    assert "upsampled to 128×96, bilinear (--depth-upsample bilinear)" in result.stderr
    result = run_cli("render", image, "--depth", depth, "--depth-upsample", "cubic", "-o", tmp_path / "c.png")
    assert result.returncode != 0 and "Traceback" not in result.stderr and not (tmp_path / "c.png").exists()


@pytest.mark.skipif(not (SAMPLES / "apple" / "image-with-depth.jpg").exists(), reason="shared samples absent")
def test_embedded_apple_map_is_upsampled_guided_by_default():
    from lensblur.io.images import read_image

    path = SAMPLES / "apple" / "image-with-depth.jpg"
    photo = read_image(path)
    choice = choose_depth(str(path), photo.pixels)
    assert "576×768 upsampled to 3024×4032, guided" in choice.upsampling
    # the dark wall right of the vase's shoulder keeps the wall's disparity up to the vase's edge
    # (bilinear gives it part of the vase's for several pixels: that is the glow)
    rows, cols = slice(1850, 1950), slice(2210, 2240)  # the photo's edge is near column 2220
    wall = photo_guide(photo.pixels[rows, cols]) < 0.35
    bilinear = choose_depth(str(path), photo.pixels, upsample="bilinear").disparity[rows, cols]
    assert np.percentile(bilinear[wall], 95) > 0.3
    assert np.percentile(choice.disparity[rows, cols][wall], 95) < 0.25


def test_batch_and_depth_commands_take_the_option():
    for command in ("batch", "depth"):
        result = run_cli(command, "--help")
        assert result.returncode == 0 and "--depth-upsample" in result.stderr + result.stdout, command


def test_tiny_map_and_grey_photo():
    rng = np.random.default_rng(5)
    tiny = rng.uniform(0.3, 0.7, (2, 3)).astype(np.float32)
    out = fit_to_image(tiny, 40, 60, rng.uniform(0, 1, (40, 60)).astype(np.float32))
    assert out.shape == (40, 60) and np.isfinite(out).all()
    assert tiny.min() - 1e-6 <= out.min() and out.max() <= tiny.max() + 1e-6


def reference_fit(a, b, guide, low, high):
    """What upsample_where_explained computed before the fused pass: OpenCV's bilinear enlargements."""
    height, width = guide.shape
    out = cv2.resize(a, (width, height), interpolation=cv2.INTER_LINEAR)
    out *= guide
    out += cv2.resize(b, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(out, low, high, out=out)


@pytest.mark.parametrize("small,large", [((7, 9), (50, 70)), ((48, 64), (252, 336)), ((40, 40), (40, 40)),
                                         ((30, 45), (61, 89)), ((1, 5), (4, 20))])
def test_fused_enlargement_equals_opencv_resize_within_rounding(small, large):
    """The one-pass enlargement and blend (_fit_rows) equals clip(resize(A)·I + resize(B)), at
    integer and non-integer scales and at the borders."""
    from lensblur.depth.refine import _fit_rows, _linear_taps

    rng = np.random.default_rng(sum(small))
    a = rng.normal(0, 2, small).astype(np.float32)
    b = rng.uniform(-1, 2, small).astype(np.float32)
    guide = rng.uniform(0, 1, large).astype(np.float32)
    expected = reference_fit(a, b, guide, np.float32(-0.5), np.float32(1.5))
    values = guide.copy()
    rows, row_weights = _linear_taps(small[0], large[0])
    columns, column_weights = _linear_taps(small[1], large[1])
    starts = np.searchsorted(rows, np.arange(small[0] + 1))
    _fit_rows(a, b, rows, row_weights, columns, column_weights, starts, np.float32(-0.5), np.float32(1.5), values,
              0, small[0])
    if small[0] > 1 and cv2.ipp.useIPP():  # OpenCV's IPP-backed resize: the same numbers, bit for bit
        np.testing.assert_array_equal(values, expected)
    else:  # a single source row (or OpenCV without IPP) takes another path: float32 rounding apart
        np.testing.assert_allclose(values, expected, rtol=0, atol=8 * np.finfo(np.float32).eps)
    assert values.min() == np.float32(-0.5) and values.max() == np.float32(1.5)  # clipped at both ends


def test_guide_is_overwritten_only_when_handed_over():
    photo, _ = step_scene()
    guide = photo_guide(photo)
    small = cv2.resize(np.where(np.arange(WIDTH) < EDGE, 0.2, 0.9).astype(np.float32)[None].repeat(HEIGHT, 0),
                       (WIDTH // 4, HEIGHT // 4), interpolation=cv2.INTER_AREA)
    before = guide.copy()
    kept = upsample_where_explained(guide, small)
    np.testing.assert_array_equal(guide, before)
    given = upsample_where_explained(guide, small, overwrite_guide=True)
    assert given is guide
    np.testing.assert_array_equal(given, kept)
    assert kept.min() >= small.min() and kept.max() <= small.max()
