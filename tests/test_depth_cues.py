"""Weight-free depth cues of the "auto" estimator (issue 20): defocus, occlusion, ground contact,
edge-following interpolation; the real-photo benchmark's metrics."""

import cv2
import numpy as np
import pytest

from lensblur.depth.auto import contact_disparity, estimate_auto
from lensblur.depth.defocus import defocus_map, edge_blur
from lensblur.depth.occlusion import boundary_ownership, occlusion_depth, segment
from lensblur.depth.refine import edge_aware_fill
from lensblur.errors import InputError
from lensblur.metrics import depth_rank_correlation, ordinal_error


@pytest.mark.parametrize("sigma", [1.5, 2.5, 3.5])
def test_edge_blur_recovers_known_sigma(sigma):
    step = np.full((120, 160), 0.15, np.float32)
    step[:, 80:] = 0.85
    sigmas, edges = edge_blur(cv2.GaussianBlur(step, (0, 0), sigma))
    assert edges.sum() >= 100 and edges[:, 75:85].sum() == edges.sum()  # found on the step only
    assert np.median(sigmas[edges]) == pytest.approx(sigma, rel=0.15)


def test_defocus_map_blurrier_half_measures_more_blur():
    rng = np.random.default_rng(1)
    texture = cv2.resize(rng.uniform(0, 1, (40, 60)).astype(np.float32), (240, 160), interpolation=cv2.INTER_NEAREST)
    texture[:, :120] = cv2.GaussianBlur(texture, (0, 0), 3.0)[:, :120]
    image = np.repeat(texture[..., None], 3, axis=2)
    sigma, spread = defocus_map(image, side=240)
    assert sigma.shape == (160, 240)
    assert np.median(sigma[:, 20:100]) > np.median(sigma[:, 140:220]) + 1.0
    assert spread > 1.0


def _disc_over_rectangle(disc, rectangle, background=(0.3, 0.3, 0.3)):
    image = np.empty((192, 256, 3), np.float32)
    image[:] = background
    image[60:150, 40:160] = rectangle
    cv2.circle(image, (160, 70), 40, disc, -1)  # overlaps the rectangle's top-right corner
    return np.clip(image + np.random.default_rng(0).normal(0, 0.01, image.shape).astype(np.float32), 0, 1)


@pytest.mark.parametrize("disc, rectangle", [((0.2, 0.4, 0.9), (0.8, 0.5, 0.2)), ((0.9, 0.9, 0.2), (0.1, 0.1, 0.5))])
def test_occluding_disc_is_nearer_than_what_it_overlaps(disc, rectangle):
    labels = segment(_disc_over_rectangle(disc, rectangle))
    depth = occlusion_depth(labels)
    background, rect, circle = depth[5, 5], depth[140, 60], depth[70, 170]
    assert circle > rect > background


def test_boundary_ownership_of_a_disc_belongs_to_the_disc():
    labels = np.zeros((100, 100), np.int32)
    cv2.circle(labels, (50, 50), 25, 1, -1)
    a, b, ownership, length = boundary_ownership(labels)
    assert list(zip(a, b)) == [(0, 1)] and length[0] > 100
    assert ownership[0] < -0.02  # region 0 (the surround) is behind region 1 (the disc)


def test_edge_aware_fill_follows_image_edge_not_a_box():
    guide = np.zeros((160, 200), np.float32)
    cv2.circle(guide, (100, 80), 45, 1.0, -1)
    values, weights = np.zeros_like(guide), np.zeros_like(guide)
    for x, y, v in ((100, 80, 1.0), (90, 70, 1.0), (15, 15, 0.0), (185, 145, 0.0), (15, 145, 0.0), (185, 15, 0.0)):
        values[y, x], weights[y, x] = v, 1.0
    filled = edge_aware_fill(guide, values, weights, side=200)
    assert filled[80, 100] > filled[80, 20] + 0.3
    # along a line through the disc the largest change sits on the disc's outline (x = 55, 145)
    row = filled[80]
    steps = np.abs(np.diff(row))
    assert min(abs(int(np.argmax(steps[:100])) - 55), abs(int(np.argmax(steps)) - 145)) <= 3
    # where the image is flat the map is smooth: no step there as big as the one at the outline
    inside = np.abs(np.diff(filled[60:100, 70:130], axis=1)).max()
    assert inside < 0.25 * steps.max()


def test_contact_disparity_is_the_ground_where_the_subject_stands():
    background = np.broadcast_to(np.linspace(0.0, 0.5, 100, dtype=np.float32)[:, None], (100, 80))
    standing = np.zeros((100, 80), bool)
    standing[30:70, 30:50] = True
    assert contact_disparity(standing, background, lift=0.05) == pytest.approx(background[69, 0] + 0.05, abs=1e-6)
    cut = np.zeros((100, 80), bool)
    cut[40:, 30:50] = True  # runs out of the frame: no visible contact
    assert contact_disparity(cut, background, nearest=0.8) == pytest.approx(0.8)


def _scene():
    """A textured ground plane (nearer towards the bottom), a blurred far backdrop above the
    horizon and a sharp subject standing on the ground; returns linear image and true disparity."""
    rng = np.random.default_rng(5)
    height, width = 240, 320
    rows = np.arange(height, dtype=np.float32)[:, None]
    truth = np.broadcast_to(np.where(rows < 90, 0.05, 0.1 + 0.9 * (rows - 90) / (height - 90)), (height, width)).copy()
    texture = cv2.resize(rng.uniform(0.2, 0.8, (60, 80, 3)).astype(np.float32), (width, height), interpolation=cv2.INTER_NEAREST)
    image = texture * np.array([0.6, 0.7, 0.4], np.float32)
    image[:90] = cv2.GaussianBlur(texture * np.array([0.5, 0.6, 0.9], np.float32), (0, 0), 4.0)[:90]
    subject = np.zeros((height, width), np.uint8)
    cv2.ellipse(subject, (170, 110), (30, 50), 0, 0, 360, 1, -1)  # feet at row 160
    stripes = 0.5 + 0.4 * np.sin(np.arange(width) / 2.0)[None, :] * np.sin(np.arange(height) / 3.0)[:, None]
    image[subject > 0] = (stripes[..., None] * np.array([0.9, 0.25, 0.1], np.float32))[subject > 0]
    truth[subject > 0] = truth[160, 0]
    return np.clip(image, 0, 1), truth


def test_estimate_with_cues_beats_the_old_one_on_a_synthetic_scene():
    image, truth = _scene()
    new = estimate_auto(image, people=False)
    old = estimate_auto(image, people=False, cues=False)
    assert new.disparity.min() == pytest.approx(0.0, abs=1e-6) and new.disparity.max() == pytest.approx(1.0, abs=1e-6)
    assert depth_rank_correlation(new.disparity, truth) > depth_rank_correlation(old.disparity, truth) + 0.05
    assert ordinal_error(new.disparity, truth) < ordinal_error(old.disparity, truth)


def test_estimate_refuses_unknown_cue():
    with pytest.raises(InputError, match="unknown cues"):
        estimate_auto(np.zeros((32, 32, 3), np.float32), people=False, cues=("telepathy",))


def test_rank_correlation_on_known_inputs():
    truth = np.arange(100, dtype=np.float32).reshape(10, 10)
    assert depth_rank_correlation(truth ** 3, truth) == pytest.approx(1.0)
    assert depth_rank_correlation(-truth, truth) == pytest.approx(-1.0)
    scrambled = truth.copy()
    valid = np.ones_like(truth, bool)
    scrambled[0], valid[0] = 1000.0 - truth[0], False  # wrong only where not valid
    assert depth_rank_correlation(scrambled, truth, valid) == pytest.approx(1.0)
    assert np.isnan(depth_rank_correlation(np.ones_like(truth), truth))


def test_ordinal_error_on_known_inputs():
    truth = np.linspace(0.1, 1.0, 400, dtype=np.float32).reshape(20, 20)
    assert ordinal_error(truth, truth, pairs=2000) == 0.0
    assert ordinal_error(-truth, truth, pairs=2000) == 1.0
    assert ordinal_error(np.zeros_like(truth), truth, pairs=2000) == 0.5
    with pytest.raises(InputError):
        ordinal_error(truth, np.ones_like(truth), pairs=100)


@pytest.mark.parametrize("shape", [(1, 1, 3), (2, 3, 3), (16, 17, 3), (40, 30, 3)])
def test_estimate_with_cues_on_tiny_and_flat_images(shape):
    for image in (np.full(shape, 0.4, np.float32), np.random.default_rng(0).random(shape).astype(np.float32)):
        estimate = estimate_auto(image, people=False)
        assert estimate.disparity.shape == shape[:2] and np.isfinite(estimate.disparity).all()
        assert 0.0 <= estimate.disparity.min() and estimate.disparity.max() <= 1.0
