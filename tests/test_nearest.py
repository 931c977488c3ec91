"""nearest_zero: the nearest False pixel of a mask, checked against scipy's exact transform."""

import numpy as np
import pytest
from scipy import ndimage

from lensblur.renderers.nearest import nearest_zero


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nearest_zero_points_at_a_false_pixel_about_as_near_as_the_exact_one(seed):
    rng = np.random.default_rng(seed)
    mask = np.ones((90, 120), bool)
    mask[rng.random(mask.shape) < 0.003] = False
    mask[20:40, 30:70] = False
    distance, iy, ix = nearest_zero(mask)
    exact = ndimage.distance_transform_edt(mask)
    assert not mask[iy, ix].any()                                  # every answer is a False pixel
    yy, xx = np.mgrid[:90, :120]
    assert (iy[~mask] == yy[~mask]).all() and (ix[~mask] == xx[~mask]).all()  # False pixels are their own
    found = np.hypot(iy - yy, ix - xx)
    assert np.all(found <= exact * 1.03 + 1.0)                     # about as near as the nearest
    assert np.allclose(distance, exact, rtol=0.03, atol=1.0)
