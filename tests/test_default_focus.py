"""Default focus and blur follow what the phone stored: GFocus (Google) and the portrait matte (Apple)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lensblur.batch import render_options
from lensblur.commands.render import lens_from_args
from lensblur.depth_source import DepthChoice, choose_depth, subject_point
from lensblur.io.images import read_image

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"


def test_subject_point_lies_inside_an_off_centre_subject():
    matte = np.zeros((300, 400), np.float32)
    matte[40:260, 20:120] = 1.0          # a standing subject at the left edge
    matte[40:90, 120:200] = 1.0          # an arm out to the right
    x, y = subject_point(matte)
    assert matte[int(y), int(x)] == 1.0 and x < 150
    assert subject_point(np.zeros((300, 400), np.float32)) is None   # no subject: no point
    tiny = np.zeros((300, 400), np.float32)
    tiny[10:14, 10:14] = 1.0
    assert subject_point(tiny) is None   # under 1 % of the frame
    disparity = np.where(matte > 0.5, 0.6, 0.1).astype(np.float32)
    disparity[150:260, 20:120] = 0.62    # legs, a little nearer: the body (most of it) is at 0.6...
    disparity[40:90, 120:200] = 0.9      # ...and the arm held out towards the camera is not typical
    x, y = subject_point(matte, disparity)
    assert matte[int(y), int(x)] == 1.0 and abs(disparity[int(y), int(x)] - np.median(disparity[matte > 0.5])) <= 0.01


def test_the_lens_focuses_on_the_matte_subject_not_the_centre():
    height, width = 120, 160
    disparity = np.full((height, width), 0.2, np.float32)
    disparity[20:100, 10:50] = 0.8       # the subject, off centre; the centre is background
    matte = np.zeros_like(disparity)
    matte[20:100, 10:50] = 1.0
    point = subject_point(matte, disparity)
    choice = DepthChoice(disparity, np.zeros((height, width, 3), np.float32), matte, "test", [], point)
    args = render_options([])
    lens = lens_from_args(args, None, disparity, choice)
    assert lens.focus_disparity == pytest.approx(0.8)
    assert lens.blur == pytest.approx(0.02 * width)


@pytest.mark.skipif(not (SAMPLES / "google" / "lens_blur_dahlias.jpg").exists(), reason="samples absent")
def test_google_lens_blur_defaults_are_the_phones():
    path = SAMPLES / "google" / "lens_blur_dahlias.jpg"
    photo = read_image(path)
    choice = choose_depth(str(path), photo.pixels)
    lens = lens_from_args(render_options([]), photo, choice.disparity, choice)
    width = choice.disparity.shape[1]
    # GFocus: FocalDistance 26.517597 with Near 18.8495, Far 633.3235 (RangeInverse) → disparity
    stored = (1 / 26.517597 - 1 / 633.323486328125) / (1 / 18.849538803100586 - 1 / 633.323486328125)
    assert lens.focus_disparity == pytest.approx(stored, abs=0.01)
    assert lens.blur * lens.focus_disparity == pytest.approx(0.00796752 * width, rel=1e-3)


@pytest.mark.skipif(not (SAMPLES / "apple" / "image-with-matte.jpg").exists(), reason="samples absent")
def test_apple_portrait_defaults_focus_on_the_matte_subject():
    path = SAMPLES / "apple" / "image-with-matte.jpg"
    photo = read_image(path)
    choice = choose_depth(str(path), photo.pixels)
    x, y = choice.focus_point
    assert choice.matte[int(y), int(x)] > 0.5
    lens = lens_from_args(render_options([]), photo, choice.disparity, choice)
    subject = float(np.median(choice.disparity[choice.matte > 0.5]))
    assert abs(lens.focus_disparity - subject) < 0.02
    assert any("portrait matte" in note for note in choice.notes)
