"""Nearest-pixel lookups on masks (Voronoi fills), shared by the renderers."""

from __future__ import annotations

import cv2
import numpy as np


def _transform(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV's 5×5 distance transform of a boolean mask to its False pixels, with labels: the
    distance (float32) and, per pixel, the label of its nearest False pixel (int32)."""
    # cv2 measures the distance to the nearest zero: True pixels are the non-zero ones
    mask = np.ascontiguousarray(mask, dtype=bool)
    return cv2.distanceTransformWithLabels(mask.view(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)


def _label_positions(mask: np.ndarray) -> np.ndarray:
    """Flat index (into the mask) of the False pixel each label of :func:`_transform` names, by
    label: OpenCV numbers the zero pixels 1, 2, … in row-major order (tests/test_hidden_area.py
    checks the lookups against a mapping that does not assume it)."""
    return np.concatenate([[0], np.flatnonzero(~mask.ravel())])


def nearest_zero(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every pixel of a boolean H×W ``mask``, the distance (pixels, float32) to the nearest
    pixel where the mask is False and that pixel's row and column (int32 H×W each); pixels where
    the mask is False are their own nearest. The mask must hold at least one False.

    Uses OpenCV's 5×5 distance transform, within about 2 % of the Euclidean distance and several
    times faster than an exact transform; the renderers only need a plausible nearest pixel.
    """
    distance, labels = _transform(mask)
    row, col = np.divmod(_label_positions(mask).astype(np.int32), np.int32(mask.shape[1]))
    return distance, row[labels], col[labels]


def nearest_zero_within(mask: np.ndarray, limit: float, pixel: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The True pixels of a boolean H×W ``mask`` whose nearest False pixel lies within ``limit``,
    and that nearest pixel: (cells, sources), flat indices into the mask (intp, same length, in
    row-major order of the cells). Distances are those of :func:`nearest_zero` times ``pixel``
    (the length of one mask pixel in the unit of ``limit``), so this is exactly the True pixels
    where ``nearest_zero(mask)[0] * pixel <= limit``. The mask must hold at least one False.

    Cheaper than :func:`nearest_zero` when few pixels are that near: no H×W row and column maps.
    """
    distance, labels = _transform(mask)
    cells = np.flatnonzero(mask & (distance * pixel <= limit))
    if cells.size == 0:
        return cells, cells
    return cells, _label_positions(mask)[labels.ravel()[cells]]
