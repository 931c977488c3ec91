"""The "auto" depth estimator and its parts: guided filter, matting, saliency, people models."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from lensblur.depth import DepthEstimate, get_estimator
from lensblur.depth import people
from lensblur.depth.auto import layout_prior, spectral_residual_saliency
from lensblur.depth.matting import matte_band, solve_alpha, trimap_from_mask
from lensblur.depth.refine import box_mean, guided_filter, guided_upsample
from lensblur.errors import InputError

MASK = Path(__file__).parent / "data" / "astronaut_subject_mask.png"
needs_models = pytest.mark.skipif(not people.models_available(),
                                  reason="MediaPipe .tflite models absent: run python scripts/fetch_models.py")


def test_guided_filter_keeps_guide_edges():
    guide = np.zeros((64, 64), np.float32)
    guide[:, 32:] = 1.0
    noisy = guide + np.random.default_rng(0).normal(0, 0.1, guide.shape).astype(np.float32)
    out = guided_filter(guide, noisy, radius=6, eps=1e-3)
    assert out[:, 36:].mean() > 0.95 and out[:, :28].mean() < 0.05
    assert abs(out[:, 31].mean() - 0.0) < 0.1 and abs(out[:, 32].mean() - 1.0) < 0.1  # step kept
    assert out[:, 40:].std() < noisy[:, 40:].std() / 2  # noise smoothed


def test_guided_filter_flat_guide_is_box_blur():
    src = np.random.default_rng(1).random((40, 50)).astype(np.float32)
    flat = np.full((40, 50), 0.5, np.float32)
    expected = box_mean(box_mean(src, 3), 3)  # mean of window means (a = 0, b = box mean)
    np.testing.assert_allclose(guided_filter(flat, src, radius=3), expected, atol=1e-4)
    np.testing.assert_allclose(guided_filter(np.stack([flat] * 3, -1), src, radius=3), expected, atol=1e-4)


def test_guided_upsample_matches_shape():
    guide = np.random.default_rng(2).random((80, 120)).astype(np.float32)
    small = cv2.resize(guide, (30, 20), interpolation=cv2.INTER_AREA)
    assert guided_upsample(guide, small, small, radius=2).shape == (80, 120)


def _soft_edge_scene():
    x = np.arange(200, dtype=np.float32)
    alpha = np.clip((x - 90) / 20, 0, 1)[None, :].repeat(120, 0)  # 20-px soft ramp
    fg, bg = np.array([0.9, 0.3, 0.1], np.float32), np.array([0.1, 0.2, 0.8], np.float32)
    image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    return image, alpha


def test_trimap_bands():
    mask = np.zeros((50, 50), np.float32)
    mask[10:40, 10:40] = 1
    trimap = trimap_from_mask(mask, 3)
    assert set(np.unique(trimap)) == {0.0, 0.5, 1.0}
    assert trimap[25, 25] == 1 and trimap[2, 2] == 0 and trimap[25, 10] == 0.5


def test_matting_soft_edge_fractional_in_band_binary_away():
    image, alpha_true = _soft_edge_scene()
    mask = alpha_true > 0.5
    alpha = solve_alpha(image, trimap_from_mask(mask, 14))
    band = (alpha_true > 0.15) & (alpha_true < 0.85)
    assert np.abs(alpha[band] - alpha_true[band]).mean() < 0.1
    matte = matte_band(image, mask, band=14, max_side=100)
    assert ((matte[:, 95:105] > 0.05) & (matte[:, 95:105] < 0.95)).mean() > 0.8
    assert np.all(matte[:, :60] == 0) and np.all(matte[:, 140:] == 1)


def test_spectral_residual_peaks_on_blob():
    gray = np.full((128, 128), 0.3, np.float32)
    cv2.circle(gray, (90, 40), 8, 1.0, -1)
    saliency = spectral_residual_saliency(gray)
    y, x = np.unravel_index(np.argmax(saliency), saliency.shape)
    assert np.hypot(x - 90, y - 40) < 12
    assert saliency[100:, :40].mean() < 0.2


def test_layout_prior_range():
    prior = layout_prior(10, 4)
    assert prior[0, 0] == pytest.approx(0.05) and prior[-1, 0] == pytest.approx(0.5)


def _synthetic_photo():
    rng = np.random.default_rng(3)
    height, width = 240, 320
    rows = np.linspace(0.6, 0.3, height, dtype=np.float32)[:, None, None]
    image = np.broadcast_to(rows * np.array([0.5, 0.6, 0.7], np.float32), (height, width, 3)).copy()
    image += cv2.GaussianBlur(rng.normal(0, 0.02, (height, width, 3)).astype(np.float32), (0, 0), 3)
    subject = np.zeros((height, width), np.uint8)
    cv2.ellipse(subject, (170, 130), (45, 60), 0, 0, 360, 1, -1)
    texture = 0.5 + 0.4 * np.sin(np.arange(width) / 2.0)[None, :] * np.sin(np.arange(height) / 3.0)[:, None]
    image[subject > 0] = (texture[..., None] * np.array([0.9, 0.25, 0.1], np.float32))[subject > 0]
    return np.clip(image, 0, 1).astype(np.float32), subject.astype(bool)


def test_auto_without_people_subject_nearer_and_lower_rows_nearer():
    image, subject = _synthetic_photo()
    estimate = get_estimator("auto")(image, people=False)
    assert isinstance(estimate, DepthEstimate)
    d = estimate.disparity
    assert d.shape == subject.shape and d.dtype == np.float32
    assert 0.0 <= d.min() and d.max() <= 1.0
    background = ~cv2.dilate(subject.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool)
    assert np.median(d[subject]) > np.percentile(d[background], 95)
    assert d[-5:, :20].mean() > d[:5, :20].mean() + 0.3
    assert estimate.matte is not None and estimate.matte.shape == subject.shape
    assert 0 <= estimate.matte.min() and estimate.matte.max() <= 1
    assert subject[int(estimate.focus_point[1]), int(estimate.focus_point[0])]
    assert estimate.notes


def test_missing_models_raise_input_error(tmp_path):
    with pytest.raises(InputError, match="fetch_models.py"):
        people.segment_person(np.zeros((32, 32, 3), np.float32), model_dir=tmp_path)


@pytest.fixture(scope="module")
def astronaut():
    skimage_data = pytest.importorskip("skimage.data")
    image = skimage_data.astronaut().astype(np.float32) / 255
    mask = cv2.imread(str(MASK), cv2.IMREAD_GRAYSCALE) > 127
    return image, mask


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


@needs_models
def test_selfie_model_finds_astronaut(astronaut):
    image, mask = astronaut
    person = people.segment_person(image)
    assert person.shape == mask.shape and 0 <= person.min() and person.max() <= 1
    assert _iou(person > 0.5, mask) > 0.8


@needs_models
def test_face_detector_finds_face_in_head(astronaut):
    image, _ = astronaut
    faces = people.detect_faces(image)
    assert faces and faces[0].score > 0.7
    x, y = faces[0].center
    assert 180 < x < 270 and 80 < y < 180  # her face, below the hair line, above the collar
    x0, y0, x1, y1 = faces[0].box
    assert 50 < x1 - x0 < 150


@needs_models
def test_auto_on_astronaut(astronaut):
    from lensblur.color import srgb_to_linear

    image, mask = astronaut
    estimate = get_estimator("auto")(srgb_to_linear(image))
    assert estimate.disparity.shape == mask.shape
    assert estimate.disparity.min() == pytest.approx(0.0, abs=1e-6) and estimate.disparity.max() == pytest.approx(1.0, abs=1e-6)
    assert _iou(estimate.matte > 0.5, mask) > 0.85
    fx, fy = estimate.focus_point
    assert 180 < fx < 270 and 80 < fy < 180
    assert any("face" in note for note in estimate.notes)


def test_srgb_to_lab_matches_opencv_and_the_cie_white_and_black():
    """The contrast cue's CIELAB: within half a unit of OpenCV's float conversion on random colours,
    and exactly L=100, a=b=0 for white and L=0 for black (a wrong matrix row or white point fails)."""
    from lensblur.color import srgb_to_lab

    rng = np.random.default_rng(3)
    colours = rng.random((32, 32, 3), dtype=np.float32)
    colours[0, 0], colours[0, 1], colours[0, 2] = 0.0, 1.0, (0.01, 0.02, 0.03)
    reference = cv2.cvtColor(colours, cv2.COLOR_RGB2Lab)
    assert np.abs(srgb_to_lab(colours) - reference).max() < 0.6
    assert np.allclose(srgb_to_lab(colours)[0, 1], (100.0, 0.0, 0.0), atol=0.05)
    assert np.allclose(srgb_to_lab(colours)[0, 0], (0.0, 0.0, 0.0), atol=1e-4)


def test_a_thumbnail_runs_no_people_models_cues_or_matting(monkeypatch):
    """Under MIN_CUE_SIDE px on a side the estimate is the layout prior and a salient subject only:
    the person/face models (which find faces in upscaled noise) and the matting solver never run."""
    from lensblur.depth import auto, people as people_models

    def refuse(*args, **kwargs):
        raise AssertionError("must not run on a thumbnail")

    monkeypatch.setattr(people_models, "segment_person", refuse)
    monkeypatch.setattr(people_models, "detect_faces", refuse)
    monkeypatch.setattr(auto, "matte_band", refuse)
    noise = np.random.default_rng(0).random((16, 16, 3), dtype=np.float32)
    estimate = auto.estimate_auto(noise)
    assert estimate.disparity.shape == (16, 16) and np.isfinite(estimate.disparity).all()
    assert any("people models not run" in note for note in estimate.notes)
    calls = []
    monkeypatch.setattr(auto, "_people", lambda small, notes: calls.append(small.shape) or (None, None))
    big = np.random.default_rng(0).random((auto.MIN_CUE_SIDE, auto.MIN_CUE_SIDE, 3), dtype=np.float32)
    auto.estimate_auto(big, matte=False)
    assert calls == [(auto.MIN_CUE_SIDE, auto.MIN_CUE_SIDE, 3)]  # from MIN_CUE_SIDE on, the models run
