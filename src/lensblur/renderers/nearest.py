"""Nearest-pixel lookups on masks (Voronoi fills), shared by the renderers."""

from __future__ import annotations

import cv2
import numpy as np


def nearest_zero(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every pixel of a boolean H×W ``mask``, the distance (pixels, float32) to the nearest
    pixel where the mask is False and that pixel's row and column (int32 H×W each); pixels where
    the mask is False are their own nearest. The mask must hold at least one False.

    Uses OpenCV's 5×5 distance transform, within about 2 % of the Euclidean distance and several
    times faster than an exact transform; the renderers only need a plausible nearest pixel.
    """
    source = (~mask).astype(np.uint8)
    # cv2 measures the distance to the nearest zero: zeros are the pixels we look up.
    distance, labels = cv2.distanceTransformWithLabels(1 - source, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    ys, xs = np.nonzero(source)
    own = labels[ys, xs]
    row = np.zeros(int(own.max()) + 1, np.int32)
    col = np.zeros_like(row)
    row[own], col[own] = ys, xs
    return distance, row[labels], col[labels]
