"""The scatter renderer's tile-restricted slabs (lensblur.renderers.scatter.TILE) and the coarse
crowd counts of highlight recovery give the same pictures as whole-frame work."""

import math

import cv2
import numpy as np
import pytest

import lensblur.renderers.scatter as scatter
from lensblur.aperture import Aperture
from lensblur.highlights import CROWD_CLIPPED, CROWD_COUNT, CROWD_RADIUS_FRACTION, _crowd_grid, _spots
from lensblur.lens import Lens
from lensblur.renderers.discs import DiscScatter


def _floor_with_subject(height=200, width=260, seed=5):
    """Textured tilted floor (disparity rising downwards) with an ellipse standing on it and a
    few clipped lights in the far part, so slabs are bands with hidden areas, several levels
    (up to 1/8 resolution) and full-resolution lights."""
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.uniform(0, 0.8, (height, width, 3)).astype(np.float32), (0, 0), 1.5)
    disparity = np.repeat(np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None], width, axis=1)
    yy, xx = np.mgrid[:height, :width]
    subject = ((yy - 0.5 * height) / (0.25 * height)) ** 2 + ((xx - 0.5 * width) / (0.1 * width)) ** 2 <= 1
    disparity[subject] = 0.75
    for y, x in [(12, 30), (20, 200), (35, 120), (150, 40)]:
        image[y:y + 2, x:x + 2] = 1.0
    return image, disparity


def _render(monkeypatch, tile, image, disparity, lens):
    monkeypatch.setattr(scatter, "TILE", tile)
    return scatter.render_scatter(image, disparity, lens)


@pytest.mark.parametrize("lens", [Lens(blur=60, focus_disparity=0.75),
                                  Lens(blur=40, focus_disparity=0.3, aperture=Aperture(6, 15, 0)),
                                  Lens(blur=50, focus_disparity=0.75, rim=0.5, cat_eye=0.7)])
def test_tiled_slabs_match_whole_frame_slabs(monkeypatch, lens):
    # One tile larger than the frame is the whole-frame work the renderer did before tiles.
    image, disparity = _floor_with_subject()
    whole = _render(monkeypatch, 4096, image, disparity, lens)
    for tile in (8, 32):
        tiled = _render(monkeypatch, tile, image, disparity, lens)
        assert np.abs(tiled - whole).max() < 1e-4, tile


def test_tiled_slabs_match_on_an_odd_sized_frame_with_a_subject_matte(monkeypatch):
    image, disparity = _floor_with_subject(173, 221, seed=9)
    matte = np.zeros(disparity.shape, np.float32)
    matte[60:120, 90:130] = 1.0
    matte = cv2.GaussianBlur(matte, (0, 0), 2.0)
    lens = Lens(blur=45, focus_disparity=0.8)
    monkeypatch.setattr(scatter, "TILE", 4096)
    whole = scatter.render_scatter(image, disparity, lens, matte=matte)
    monkeypatch.setattr(scatter, "TILE", 16)
    tiled = scatter.render_scatter(image, disparity, lens, matte=matte)
    assert np.abs(tiled - whole).max() < 1e-4


def test_tile_mask_skips_only_empty_tiles():
    # Discs drawn from the active tiles alone equal the full scatter when the other tiles are
    # empty, and garbage left in inactive tiles is never read.
    rng = np.random.default_rng(2)
    values = np.zeros((96, 128, 4), np.float32)
    values[40:56, 64:80, :3] = rng.uniform(0, 1, (16, 16, 3))
    values[40:56, 64:80, 3] = 1.0
    radii = np.where(values[..., 3] > 0, 5.5, 0).astype(np.float32)
    discs = DiscScatter(Aperture(), (96, 128))
    full = discs(values, radii)
    active = np.zeros((6, 8), bool)
    active[2:4, 4:5] = True  # 16-pixel tiles covering rows 32–63, columns 64–79
    dirty_values, dirty_radii = values.copy(), radii.copy()
    dirty_values[:16, :16] = 7.0
    dirty_radii[:16, :16] = 40.0
    tiled = discs(dirty_values, dirty_radii, tiles=(active, 16, 5.5))
    assert np.abs(tiled - full).max() < 1e-5


def test_ramp_over_many_tiles_has_no_banding():
    # A tall ramp from sharp to 40 px over fine stripes: contrast falls smoothly row by row,
    # through slab, level (up to 1/8 resolution) and tile boundaries.
    height, width = 480, 96
    image = np.zeros((height, width, 3), np.float32)
    image[:, ::6] = 1.0
    coc = np.linspace(0.0, -40.0, height, dtype=np.float32)[:, None].repeat(width, axis=1)
    out = scatter.scatter_layers(image, coc, Aperture())[..., 0]
    contrast = out[:, 24:72].std(axis=1)
    steps = np.abs(np.diff(contrast[20:-60]))
    assert steps.max() < 0.02
    assert contrast[20] > 5 * contrast[-60]  # the blur did grow along the ramp


def _exact_crowd_share(centroids, clipped):
    """uncrowded's formula counted per pixel (the definition the block grid approximates)."""
    height, width = clipped.shape
    centres = np.zeros((height, width), np.float32)
    cx = np.clip(np.round(centroids[:, 0]).astype(int), 0, width - 1)
    cy = np.clip(np.round(centroids[:, 1]).astype(int), 0, height - 1)
    np.add.at(centres, (cy, cx), 1.0)
    side = 2 * int(round(CROWD_RADIUS_FRACTION * math.hypot(height, width))) + 1
    nearby = cv2.boxFilter(centres, -1, (side, side), normalize=False, borderType=cv2.BORDER_CONSTANT)
    share = cv2.boxFilter(clipped.astype(np.float32), -1, (4 * side + 1,) * 2, borderType=cv2.BORDER_REFLECT)
    others = np.maximum(nearby - 1, 0)
    return 1.0 / (1.0 + (others / CROWD_COUNT) ** 2 + (share / CROWD_CLIPPED) ** 2)


def test_crowd_counts_on_blocks_match_per_pixel_counts():
    rng = np.random.default_rng(4)
    height, width = 1500, 2000
    clipped = np.zeros((height, width), bool)
    # a crowd of glints in one corner, a few lone lamps elsewhere, one large clipped area
    for y, x in rng.integers([0, 0], [400, 500], (60, 2)):
        clipped[y:y + 2, x:x + 2] = True
    for y, x in [(900, 1500), (1200, 300), (700, 1900)]:
        clipped[y:y + 3, x:x + 3] = True
    clipped[1000:1300, 900:1300] = True
    spots, centroids = _spots(clipped)
    grid, factor = _crowd_grid(centroids, clipped)
    assert factor > 1
    ys, xs = np.nonzero(spots)
    coarse = grid[ys // factor, xs // factor]
    exact = _exact_crowd_share(centroids, clipped)[ys, xs]
    assert np.abs(coarse - exact).mean() < 0.01
    assert np.abs(coarse - exact).max() < 0.1
    lone = (ys == 1200) & (xs == 300)
    assert coarse[lone].min() > 0.9  # a lamp standing alone keeps its boost
