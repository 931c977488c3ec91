"""Known-answer tests of the core scatter renderer (lensblur.renderers.scatter)."""

import math

import numpy as np
import pytest

from lensblur.aperture import Aperture
from lensblur.color import linear_to_srgb
from lensblur.lens import Highlights, Lens
from lensblur.renderers import get_renderer
from lensblur.renderers.scatter import render_scatter, scatter_layers
from lensblur.renderers.subject import split_subject


def _point_light(radius, aperture=Aperture(), size=None, energy=1000.0):
    # Far enough from the border: near it the result is normalised by the coverage that
    # reaches it (so borders do not darken), which brightens discs that reach there.
    side = max(161, int(4 * radius) + 41)
    size = size or (side, side)
    image = np.zeros(size + (3,), np.float32)
    cy, cx = size[0] // 2, size[1] // 2
    image[cy, cx] = energy
    coc = np.full(size, -radius, np.float32)
    return scatter_layers(image, coc, aperture)[..., 0], (cy, cx)


def test_renderer_is_registered_as_default():
    assert get_renderer("scatter") is render_scatter


def test_flat_field_stays_flat():
    rng = np.random.default_rng(1)
    image = np.full((90, 120, 3), 0.37, np.float32)
    disparity = rng.uniform(0, 1, (90, 120)).astype(np.float32)
    out = render_scatter(image, disparity, Lens(blur=30, focus_disparity=0.5, highlights=None))
    assert np.abs(out - 0.37).max() < 1e-3


@pytest.mark.parametrize("radius", [3.0, 7.5, 12.0, 31.0, 50.0])
def test_point_light_becomes_disc_of_right_radius_and_energy(radius):
    out, (cy, cx) = _point_light(radius)
    assert out.sum() == pytest.approx(1000.0, rel=5e-3)
    # a uniform disc holding the energy: its level is energy / (pi r^2)
    assert 1000.0 / out[cy, cx] == pytest.approx(math.pi * radius * radius, rel=0.03)
    ys, xs = np.nonzero(out > out.max() * 0.5)
    assert np.hypot(ys - cy, xs - cx).max() == pytest.approx(radius, abs=1.0)
    # a uniform disc: the interior is flat, not a Gaussian hump
    interior = out[cy - int(radius / 2):cy + int(radius / 2) + 1, cx - int(radius / 2):cx + int(radius / 2) + 1]
    assert interior.std() / interior.mean() < 0.05


def test_polygon_orientation_follows_rotation():
    # A 4-blade aperture at rotation 0 has a vertex pointing up: it reaches farther along the
    # vertical axis than along the diagonal; rotated by 45 degrees it is the other way round.
    upright, (cy, cx) = _point_light(30, Aperture(4, 0))
    rotated, _ = _point_light(30, Aperture(4, 45))
    def extent_up(img):
        return np.count_nonzero(img[:cy, cx] > img.max() * 0.5)
    def extent_diag(img):
        return np.count_nonzero(np.array([img[cy - k, cx + k] for k in range(60)]) > img.max() * 0.5)
    assert extent_up(upright) >= 29 and extent_diag(upright) < 17
    assert extent_up(rotated) < 24 and extent_diag(rotated) >= 20


def test_in_focus_pixels_are_unchanged():
    rng = np.random.default_rng(2)
    image = rng.uniform(0, 1, (80, 100, 3)).astype(np.float32)
    disparity = np.full((80, 100), 0.2, np.float32)
    disparity[20:60, 30:70] = 0.8  # the subject, in focus
    out = render_scatter(image, disparity, Lens(blur=40, focus_disparity=0.8))
    sharp = (slice(20, 60), slice(30, 70))
    assert np.abs(linear_to_srgb(out[sharp]) - linear_to_srgb(image[sharp])).max() <= 1 / 255


def test_no_background_bleeds_into_sharp_subject_and_no_halo():
    image = np.zeros((100, 140, 3), np.float32)
    image[..., 2] = 1.0                      # blue background
    image[30:70, 50:90] = (1.0, 0.0, 0.0)    # red subject
    disparity = np.full((100, 140), 0.1, np.float32)
    disparity[30:70, 50:90] = 0.9
    out = render_scatter(image, disparity, Lens(blur=25, focus_disparity=0.9, highlights=None))
    assert np.abs(out[30:70, 50:90] - image[30:70, 50:90]).max() < 1e-4
    # right outside the subject the blurred background holds no red (no glow, no smear)
    ring = out[25:75, 40:100].copy()
    ring[5:45, 10:50] = 0
    assert ring[..., 0].max() < 1e-3
    assert ring[..., 2][ring[..., 2] > 0].min() > 0.99


def test_blurred_foreground_spreads_over_sharp_background():
    image = np.zeros((100, 140, 3), np.float32)
    image[..., 1] = 1.0                      # green background, in focus
    image[30:70, 50:90] = (1.0, 0.0, 0.0)    # red foreground, blurred
    disparity = np.full((100, 140), 0.2, np.float32)
    disparity[30:70, 50:90] = 0.9
    out = render_scatter(image, disparity, Lens(blur=20, focus_disparity=0.2, highlights=None))
    radius = 20 * 0.7
    # partial occlusion: red reaches out over the green to about the blur radius
    assert out[50, 50 - int(radius / 2), 0] > 0.15
    # (radius 14 is drawn at 1/4 resolution: its edge may soften by up to 4 px)
    assert out[50, 50 - int(radius) - 5, 0] < 1e-3
    # far from the object the background is untouched
    assert np.allclose(out[5, 5], (0, 1, 0), atol=1e-4)


def test_blur_grows_monotonically_with_coc():
    rng = np.random.default_rng(3)
    image = rng.uniform(0, 1, (64, 64, 3)).astype(np.float32)
    contrast = []
    for radius in [0, 1, 2, 4, 8, 16]:
        out = scatter_layers(image, np.full((64, 64), radius, np.float32), Aperture())
        contrast.append(float(out[16:48, 16:48].std()))
    assert all(a > b for a, b in zip(contrast, contrast[1:]))


def test_continuous_radius_no_banding_on_a_ramp():
    # A vertical ramp of blur over horizontal stripes: the stripes' contrast must fall smoothly
    # row by row, with no jumps at slab or level boundaries.
    height, width = 240, 64
    image = np.zeros((height, width, 3), np.float32)
    image[:, ::8] = 1.0
    coc = np.linspace(0.0, -24.0, height, dtype=np.float32)[:, None].repeat(width, axis=1)
    out = scatter_layers(image, coc, Aperture())[..., 0]
    contrast = out[:, 16:48].std(axis=1)
    steps = np.abs(np.diff(contrast[30:-30]))
    assert steps.max() < 0.02


def test_borders_have_no_dark_fringe_or_nan():
    image = np.full((60, 80, 3), 0.5, np.float32)
    out = render_scatter(image, np.zeros((60, 80), np.float32), Lens(blur=30, focus_disparity=1.0))
    assert np.isfinite(out).all()
    assert np.abs(out - 0.5).max() < 1e-3


def test_deterministic():
    rng = np.random.default_rng(4)
    image = rng.uniform(0, 1, (70, 90, 3)).astype(np.float32)
    disparity = rng.uniform(0, 1, (70, 90)).astype(np.float32)
    lens = Lens(blur=20, focus_disparity=0.4)
    assert np.array_equal(render_scatter(image, disparity, lens), render_scatter(image, disparity, lens))


def test_clipped_highlights_become_bright_discs():
    image = np.full((121, 121, 3), 0.05, np.float32)
    image[59:62, 59:62] = 1.0  # a clipped light spot
    disparity = np.zeros((121, 121), np.float32)
    lens = Lens(blur=15, focus_disparity=1.0)
    with_recovery = render_scatter(image, disparity, lens)
    without = render_scatter(image, disparity, lens.with_(highlights=None))
    light_on, light_off = with_recovery[60, 60, 0] - 0.05, without[60, 60, 0] - 0.05
    assert light_on > 3 * light_off
    assert with_recovery.sum() > without.sum()


def test_highlight_recovery_off_conserves_energy():
    rng = np.random.default_rng(5)
    image = rng.uniform(0, 1, (50, 50, 3)).astype(np.float32)
    out = render_scatter(image, np.zeros((50, 50), np.float32),
                         Lens(blur=3, focus_disparity=1.0, highlights=Highlights(strength=0)))
    assert out.mean() == pytest.approx(image.mean(), rel=0.02)


def test_grain_auto_adds_noise_only_where_blurred():
    rng = np.random.default_rng(6)
    image = np.clip(0.4 + rng.normal(0, 0.02, (128, 128, 3)), 0, 1).astype(np.float32)
    disparity = np.zeros((128, 128), np.float32)
    disparity[:, :64] = 1.0  # left half in focus
    plain = render_scatter(image, disparity, Lens(blur=10, focus_disparity=1.0, highlights=None))
    grainy = render_scatter(image, disparity, Lens(blur=10, focus_disparity=1.0, highlights=None, grain="auto"))
    assert np.array_equal(plain[:, :60], grainy[:, :60])
    assert grainy[:, 80:].std() > 3 * plain[:, 80:].std()


def test_matte_keeps_soft_hair_edge_without_background_smear():
    # A soft-edged red subject over a blue-and-white striped background; focus on the subject.
    height, width = 90, 120
    xx = np.arange(width, dtype=np.float32)
    alpha = np.clip((xx - 55) / 10.0, 0, 1)[None, :].repeat(height, axis=0)  # 10 px soft edge
    background = np.zeros((height, width, 3), np.float32)
    background[..., 2] = 1.0
    background[::6] = 1.0
    subject = np.array([1.0, 0.0, 0.0], np.float32)
    image = alpha[..., None] * subject + (1 - alpha[..., None]) * background
    disparity = np.where(alpha > 0.5, 0.9, 0.1).astype(np.float32)
    lens = Lens(blur=20, focus_disparity=0.9, highlights=None)
    out = render_scatter(image, disparity, lens, matte=alpha)
    # the subject's interior is untouched
    assert np.abs(out[:, 80:] - image[:, 80:]).max() < 1e-3
    # in the soft edge the subject keeps its share α of red over the blurred background, whose
    # red is the stripes' average (1 row in 6 is white)
    edge = slice(58, 64)
    expected = alpha[0, edge] + (1 - alpha[0, edge]) / 6
    assert np.abs(out[:, edge, 0].mean(axis=0) - expected).max() < 0.03
    # and the stripes behind the edge are blurred: little row-to-row variation left
    assert out[:, 30:50, 1].std(axis=0).max() < 0.1
    assert image[:, 30:50, 1].std(axis=0).max() > 0.3


def test_subject_layers_made_once_give_the_same_render_and_stay_unchanged():
    # A bright subject with clipped lights in front of a textured background, rendered at two
    # focus settings from one split_subject (the web app's cache) and from the matte directly.
    rng = np.random.default_rng(3)
    height, width = 80, 100
    yy, xx = np.mgrid[:height, :width]
    alpha = np.clip(1 - (np.hypot(yy - 40, xx - 50) - 20) / 4, 0, 1).astype(np.float32)
    image = rng.uniform(0, 0.6, (height, width, 3)).astype(np.float32)
    image[alpha > 0.5] = [0.9, 0.4, 0.2]
    image[10, 10] = image[60, 85] = image[40, 50] = 1.0   # lights: two behind, one on the subject
    disparity = np.where(alpha > 0.5, 0.8, 0.2).astype(np.float32)
    subject = split_subject(image, disparity, alpha)
    kept = {name: getattr(subject, name).copy() for name in ("foreground", "background", "matte",
                                                             "subject_disparity", "background_disparity")}
    for focus in (0.8, 0.2):
        lens = Lens(blur=20, focus_disparity=focus, highlights=Highlights(strength=6))
        direct = render_scatter(image, disparity, lens, matte=alpha)
        cached = render_scatter(image, disparity, lens, matte=alpha, subject=subject)
        assert np.abs(direct - cached).max() < 1e-5
        if focus == 0.8:  # the two lights behind the sharp subject gain up to 6× their energy
            plain = render_scatter(image, disparity, lens.with_(highlights=None), matte=alpha, subject=subject)
            assert 8 < (cached - plain).sum(axis=2).sum() / 3 < 20  # border normalisation adds a little
    for name, before in kept.items():
        assert np.array_equal(getattr(subject, name), before), f"{name} was modified by a render"
    with pytest.raises(ValueError):
        render_scatter(image[:40], disparity[:40], Lens(blur=5, focus_disparity=0.5), subject=subject)


def test_bright_rim_moves_energy_to_the_ring_and_keeps_the_total():
    from lensblur.renderers.discs import DiscScatter
    size = 201
    image = np.zeros((size, size, 3), np.float32)
    image[100, 100] = 1000.0
    coc = np.full((size, size), -30, np.float32)
    out = scatter_layers(image, coc, DiscScatter(Aperture(), (size, size), rim=0.6))[..., 0]
    assert out.sum() == pytest.approx(1000.0, rel=5e-3)
    centre, ring = out[100, 100], out[100, 100 + 27]
    assert ring > 3 * centre


def test_cat_eye_discs_shrink_and_stretch_towards_the_corners():
    from lensblur.renderers.discs import DiscScatter
    height, width = 301, 401
    image = np.zeros((height, width, 3), np.float32)
    image[150, 200] = 1000.0   # centre
    image[60, 60] = 1000.0     # towards the top-left corner
    coc = np.full((height, width), -20, np.float32)
    out = scatter_layers(image, coc, DiscScatter(Aperture(), (height, width), cat_eye=0.9))[..., 0]
    centre = out[110:191, 160:241]
    corner = out[30:91, 30:91]
    assert centre.sum() == pytest.approx(1000.0, rel=5e-3)
    lit_centre, lit_corner = centre > 0.1 * centre.max(), corner > 0.1 * corner.max()
    assert lit_corner.sum() < 0.8 * lit_centre.sum()
    # the cat's eye is long across the radial direction (from the image centre) and short along it
    ys, xs = np.nonzero(lit_corner)
    radial = np.array([60 - 150, 60 - 200], float) / np.hypot(90, 140)
    along = np.ptp(ys * radial[0] + xs * radial[1])
    across = np.ptp(-ys * radial[1] + xs * radial[0])
    assert across > 1.3 * along
