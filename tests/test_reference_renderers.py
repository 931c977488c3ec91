import shutil

import numpy as np
import pytest

from lensblur.lens import Lens
from lensblur.renderers import get_renderer
from lensblur.renderers.reference import naive_levels


def _case():
    rng = np.random.default_rng(3)
    image = rng.uniform(0.05, 0.95, size=(48, 96, 3)).astype(np.float32)
    disparity = np.full((48, 96), 0.5, np.float32)
    disparity[:, 48:] = 0.0  # right half far behind the focal plane: |c| = 10 px
    return image, disparity, Lens(blur=20.0, focus_disparity=0.5)


def test_identity_returns_the_input():
    image, disparity, lens = _case()
    out = get_renderer("identity")(image, disparity, lens)
    np.testing.assert_array_equal(out, image)
    assert out is not image


def test_naive_blurs_more_where_the_blur_radius_is_larger():
    image, disparity, lens = _case()
    out = get_renderer("naive")(image, disparity, lens)
    assert out.shape == image.shape and out.dtype == np.float32
    np.testing.assert_allclose(out[:, :30], image[:, :30], atol=1e-5)  # in focus: untouched
    assert out[:, 70:].std() < 0.3 * image[:, 70:].std()


def test_naive_levels_bracket_the_largest_radius():
    assert list(naive_levels(10.0)) == [0, 1, 2, 4, 8, 16]
    levels = naive_levels(80.0)
    assert levels[-1] == pytest.approx(80.0) and len(levels) == 7


@pytest.mark.skipif(shutil.which("gegl") is None, reason="gegl is not installed")
def test_gegl_blurs_where_the_mask_says():
    image, disparity, lens = _case()
    out = get_renderer("gegl")(image, disparity, lens)
    assert out.shape == image.shape
    assert np.abs(out[:, :30] - image[:, :30]).max() < 2e-3
    assert out[:, 70:].std() < 0.3 * image[:, 70:].std()
