"""The portrait renderer (Xu et al., Sec. 3.3): guided kernel, graph-cut depth layers, KNN
matting, and the renderer end to end through the API and the command line."""

import itertools
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from lensblur import api
from lensblur.aperture import Aperture
from lensblur.errors import InputError
from lensblur.lens import Lens
from lensblur.renderers import get_renderer, render_with
from lensblur.systems.xu_portrait.depth_layers import (_expand, alpha_expansion, gaussian_unaries, kmeans_1d,
                                                       paper_unaries, potts_energy, sobel_edge_weights,
                                                       split_depth_layers)
from lensblur.systems.xu_portrait.knn_matting import band_trimap, knn_matte
from lensblur.systems.xu_portrait.renderer import choose_mode, guided_disk_blur, is_soft, render_portrait, subject_alpha

REPO = Path(__file__).resolve().parents[1]


def square_scene(size=(72, 96), square=(24, 48, 36, 60), seed=0):
    """Grey textured background (R = G = B) at disparity 0.2 and a pure green square at 0.9."""
    rng = np.random.default_rng(seed)
    height, width = size
    grey = rng.uniform(0.1, 0.8, (height, width)).astype(np.float32)
    image = np.repeat(grey[..., None], 3, axis=2)
    disparity = np.full(size, 0.2, np.float32)
    y0, y1, x0, x1 = square
    image[y0:y1, x0:x1] = (0.0, 1.0, 0.0)
    disparity[y0:y1, x0:x1] = 0.9
    matte = np.zeros(size, np.float32)
    matte[y0:y1, x0:x1] = 1.0
    return image, disparity, matte


def distance_from(mask):
    return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)


# ----------------------------------------------------------------------------- guided kernel (Eq. 6)

def test_guided_disk_blur_takes_no_subject_colour():
    image, _, matte = square_scene()
    background = (matte == 0).astype(np.float32)
    blurred, coverage = guided_disk_blur(image, background, 15.0, Aperture())
    covered = coverage > 1e-3
    # every output is a mean of grey pixels only: no green excess anywhere it is defined
    assert np.abs(blurred[..., 1] - blurred[..., 0])[covered].max() < 1e-4
    # the same disk without the guide does carry the green out (so the check above can fail)
    plain, _ = guided_disk_blur(image, np.ones_like(background), 15.0, Aperture())
    assert (plain[..., 1] - plain[..., 0])[matte == 0].max() > 0.2


def test_selfie_background_never_shows_the_subject():
    image, disparity, matte = square_scene()
    lens = Lens(blur=30.0, focus_disparity=0.9, highlights=None)
    out = render_portrait(image, disparity, lens, matte=matte, mode="selfie")
    subject = matte > 0.5
    outside = distance_from(subject) > 10  # beyond the matting band
    assert np.abs(out[..., 1] - out[..., 0])[outside].max() < 1e-4
    # the background did get blurred and the subject stayed sharp
    assert out[outside].std() < 0.5 * image[outside].std()
    np.testing.assert_allclose(out[26:46, 38:58], image[26:46, 38:58], atol=2e-3)
    np.testing.assert_array_equal(out[34:38, 46:50], image[34:38, 46:50])  # inside the trimap's sure part


def test_body_mode_background_never_shows_the_subject():
    image, disparity, matte = square_scene()
    disparity[:, :30] = 0.5  # a second background plane, so there are layers with different radii
    lens = Lens(blur=30.0, focus_disparity=0.9, highlights=None)
    out = render_portrait(image, disparity, lens, matte=matte, mode="body")
    outside = distance_from(matte > 0.5) > 10
    assert np.abs(out[..., 1] - out[..., 0])[outside].max() < 1e-4


# ----------------------------------------------------------------------------- depth layers (Eq. 7–9)

def two_planes(noise=0.03, seed=1, size=(60, 90), step=41):
    rng = np.random.default_rng(seed)
    disparity = np.full(size, 0.2, np.float32)
    disparity[:, step:] = 0.75
    return np.clip(disparity + rng.normal(0, noise, size).astype(np.float32), 0, 1), step


def test_graph_cut_gives_k_layers_that_respect_the_depth_edge():
    disparity, step = two_planes()
    layers = split_depth_layers(disparity, layers=6)
    assert layers.count == 6 and layers.labels.shape == disparity.shape
    assert set(np.unique(layers.labels)) <= set(range(6))
    left, right = set(np.unique(layers.labels[:, :step])), set(np.unique(layers.labels[:, step:]))
    assert left and right and not (left & right)  # no layer straddles the step
    # the cut lies exactly on the step: every label changes sides there
    near_labels = layers.centres[layers.labels] > 0.5
    assert not near_labels[:, :step].any() and near_labels[:, step:].all()


@pytest.mark.parametrize("energy", ["paper", "project"])
def test_graph_cut_smooths_noise_and_lowers_the_energy(energy):
    """The graph cut lowers Eq. 7's energy below the per-pixel labelling in both forms. With the
    project's rescaled Eq. 8–9 λ = 10 removes most of the noise's label changes; with Eq. 8–9 as
    printed on a [0, 1] disparity it smooths far less (docs/portrait.md, 4.): unaries of
    |z − C|/σ² dwarf pairwise weights ≤ 1."""
    disparity, _ = two_planes(noise=0.05)
    centres, sigmas = kmeans_1d(disparity, 6)
    unaries = (paper_unaries if energy == "paper" else gaussian_unaries)(disparity, centres, sigmas)
    right, down = sobel_edge_weights(disparity, normalise=energy == "project")
    independent = np.argmin(unaries, axis=0)
    labels = alpha_expansion(unaries, 10 * right, 10 * down)
    energy_cut = potts_energy(labels, unaries, 10 * right, 10 * down)
    energy_independent = potts_energy(independent, unaries, 10 * right, 10 * down)
    changes = lambda l: (l[:, 1:] != l[:, :-1]).sum() + (l[1:] != l[:-1]).sum()  # noqa: E731
    if energy == "project":
        assert energy_cut < 0.8 * energy_independent and changes(labels) < 0.5 * changes(independent)
    else:
        assert energy_cut < energy_independent and changes(labels) < changes(independent)
        assert changes(labels) > 0.5 * changes(independent)  # the printed form's weak smoothing


def test_expansion_move_is_the_best_move():
    """Each binary cut finds the lowest-energy labelling among all α-expansions (brute force)."""
    import maxflow

    rng = np.random.default_rng(3)
    shape, count = (3, 3), 3
    for trial in range(4):
        unaries = rng.uniform(0, 3, (count,) + shape)
        right, down = rng.uniform(0, 2, shape), rng.uniform(0, 2, shape)
        right[:, -1] = 0
        down[-1, :] = 0
        labels = rng.integers(0, count, shape).astype(np.int32)
        alpha = trial % count
        best = min(potts_energy(np.where(np.array(switch).reshape(shape), alpha, labels), unaries, right, down)
                   for switch in itertools.product([False, True], repeat=labels.size))
        moved = labels.copy()
        rows, cols = np.indices(shape)
        _expand(moved, alpha, unaries, right, down, rows, cols, maxflow)
        assert potts_energy(moved, unaries, right, down) == pytest.approx(best, abs=1e-9)


def test_kmeans_finds_separated_clusters():
    values = np.concatenate([np.full(50, 0.1), np.full(30, 0.5), np.full(20, 0.9)])
    centres, sigmas = kmeans_1d(values, 6)  # only three distinct values: three clusters
    np.testing.assert_allclose(centres, [0.1, 0.5, 0.9], atol=1e-6)
    assert (sigmas > 0).all()


# ----------------------------------------------------------------------------- KNN matting

def test_knn_matting_gives_fractional_alpha_on_a_soft_edge():
    height, width = 40, 80
    ramp = np.clip((np.arange(width) - 32) / 16.0, 0, 1)  # a soft edge 16 px wide, centred at x = 40
    red, blue = np.array([0.9, 0.1, 0.1]), np.array([0.1, 0.2, 0.9])
    image = ((1 - ramp)[:, None] * red + ramp[:, None] * blue)[None].repeat(height, 0).astype(np.float32)
    segmentation = np.zeros((height, width), bool)
    segmentation[:, :40] = True
    alpha = knn_matte(image, segmentation, band=10)
    row = alpha[height // 2]
    assert ((row > 0.1) & (row < 0.9)).sum() >= 6    # fractional along the soft edge
    assert row[:29].min() == 1.0 and row[51:].max() == 0.0  # hard away from the band
    assert (np.diff(row[30:50]) <= 1e-3).all()       # falling from subject to background
    assert abs(row[36] - (1 - ramp[36])) < 0.25 and abs(row[44] - (1 - ramp[44])) < 0.25


def test_trimap_keeps_thin_parts():
    mask = np.zeros((40, 60), bool)
    mask[5:35, 5:30] = True  # a thick block
    mask[20:22, 30:58] = True  # a 2 px strand
    trimap = band_trimap(mask, 5)
    assert (trimap[20:22, 40:55] == 1).all()  # the strand is kept as subject, not eroded away
    assert (trimap[15:25, 10:20] == 1).all() and (trimap[0:3, 40:60] == 0).all()
    assert (trimap[10:16, 27:33] == 0.5).all()  # the block's edge is unknown


def test_soft_and_hard_mattes_are_told_apart():
    _, _, matte = square_scene()
    assert not is_soft(matte)
    assert is_soft(cv2.GaussianBlur(matte, (0, 0), 2.0))


# ----------------------------------------------------------------------------- renderer

def test_no_person_falls_back_to_the_in_focus_region():
    image, disparity, _ = square_scene()
    lens = Lens(blur=30.0, focus_disparity=0.9, highlights=None)
    coc = lens.blur * (disparity - lens.focus_disparity)
    segmentation, alpha, source, _ = subject_alpha(image, coc, None)
    assert source == "in-focus"  # a green square is no person, whether or not the models are present
    np.testing.assert_array_equal(segmentation, np.abs(coc) <= 1.0)
    assert choose_mode(segmentation, source, 0.0) == "body"
    assert choose_mode(np.ones_like(segmentation), "matte", 0.0) == "selfie"
    assert choose_mode(segmentation, "person", 0.3) == "selfie"


def test_layers_get_radii_from_the_lens():
    """A far plane is blurred more than a nearer one, and a plane at the focus not at all."""
    rng = np.random.default_rng(5)
    image = np.repeat(rng.uniform(0.2, 0.8, (64, 96, 1)).astype(np.float32), 3, axis=2)
    disparity = np.full((64, 96), 0.1, np.float32)
    disparity[:, 32:64] = 0.4
    disparity[:, 64:] = 0.7
    out = render_portrait(image, disparity, Lens(blur=20.0, focus_disparity=0.7, highlights=None))
    spread = [float(out[8:56, x0:x1].std()) for x0, x1 in ((6, 22), (40, 56), (84, 92))]
    assert spread[0] < spread[1] < spread[2]
    np.testing.assert_allclose(out[:, 84:92], image[:, 84:92], atol=1e-5)


def test_registered_call_used_for_training_targets():
    image, disparity, matte = square_scene()
    lens = Lens(blur=20.0, focus_disparity=0.9)
    out = get_renderer("portrait")(image, disparity, lens, matte=matte)
    again = get_renderer("portrait")(image, disparity, lens, matte=matte)
    assert out.shape == image.shape and out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_array_equal(out, again)  # deterministic
    np.testing.assert_allclose(out[30:42, 42:54], image[30:42, 42:54], atol=2e-3)


def test_api_render_and_options():
    image, disparity, matte = square_scene()
    srgb8 = np.round(np.clip(image, 0, 1) ** (1 / 2.2) * 255).astype(np.uint8)
    out = api.render(srgb8, disparity, renderer="portrait", blur=20.0, focus_disparity=0.9)
    assert out.shape == srgb8.shape and out.dtype == np.uint8
    lens = Lens(blur=20.0, focus_disparity=0.9, highlights=None)
    body = render_with("portrait", image, disparity, lens, matte=matte, mode="body", matting="none")
    selfie = render_with("portrait", image, disparity, lens, matte=matte, mode="selfie", matting="none")
    assert body.shape == selfie.shape == image.shape


def test_bad_input_is_an_input_error():
    image, disparity, matte = square_scene()
    lens = Lens(blur=20.0, focus_disparity=0.9)
    with pytest.raises(InputError):
        render_portrait(image, disparity[:10], lens)
    with pytest.raises(InputError):
        render_portrait(image[..., :2], disparity, lens)
    with pytest.raises(InputError):
        render_portrait(image, disparity, lens, matte=matte[:5])
    bad = disparity.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError):
        render_portrait(image, bad, lens)
    with pytest.raises(InputError):
        render_portrait(image, disparity, lens, mode="group")
    with pytest.raises(InputError):
        render_portrait(image, disparity, lens, matting="closed-form")
    with pytest.raises(InputError):
        split_depth_layers(disparity, layers=0)


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.run([sys.executable, "-m", "lensblur", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def test_cli_render_with_portrait(tmp_path):
    image, disparity, _ = square_scene()
    cv2.imwrite(str(tmp_path / "photo.jpg"), np.round(image[..., ::-1] ** (1 / 2.2) * 255).astype(np.uint8))
    cv2.imwrite(str(tmp_path / "depth.png"), np.round(disparity * 65535).astype(np.uint16))
    result = run_cli("render", tmp_path / "photo.jpg", "--depth", tmp_path / "depth.png", "--focus", "48,30",
                     "--blur", "20", "--renderer", "portrait", "-o", tmp_path / "out.jpg")
    assert result.returncode == 0, result.stderr
    out = cv2.imread(str(tmp_path / "out.jpg"))
    assert out is not None and out.shape == image.shape
    # the green square stays sharp and green, the background is smoothed
    assert out[30:42, 42:54, 1].mean() > 200 and out[30:42, 42:54, 2].mean() < 60
    assert out[:, :20].std() < cv2.imread(str(tmp_path / "photo.jpg"))[:, :20].std()

    bad = run_cli("render", tmp_path / "photo.jpg", "--depth", tmp_path / "missing.png", "--renderer", "portrait",
                  "-o", tmp_path / "bad.jpg")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert len([line for line in bad.stderr.splitlines() if line.strip()]) == 1
    assert not (tmp_path / "bad.jpg").exists()


def test_foreground_option_spreads_near_layers_over_the_focus():
    """Off (the paper): a near object is blurred only within itself; on: its blur spreads over
    the sharp plane behind it, as a lens would show it."""
    rng = np.random.default_rng(7)
    image = np.repeat(rng.uniform(0.3, 0.7, (64, 96, 1)).astype(np.float32), 3, axis=2)
    image[20:44, 36:60] = (1.0, 0.0, 0.0)  # a red near object
    disparity = np.full((64, 96), 0.3, np.float32)
    disparity[20:44, 36:60] = 0.8
    lens = Lens(blur=20.0, focus_disparity=0.3, highlights=None)  # radius 10 px on the object
    ring = (distance_from(disparity > 0.5) > 2) & (distance_from(disparity > 0.5) < 6)
    redness = lambda out: float((out[..., 0] - out[..., 1])[ring].mean())  # noqa: E731
    paper = render_portrait(image, disparity, lens)
    spread = render_portrait(image, disparity, lens, foreground=True)
    assert abs(redness(paper)) < 0.02
    assert redness(spread) > 0.1
    far = distance_from(disparity > 0.5) > 14
    np.testing.assert_allclose(spread[far], image[far], atol=1e-5)  # the focused plane stays sharp
