"""Edge-aware refinement: the guided filter of He, Sun and Tang (ECCV 2010 / TPAMI 2013).

Everything is built from box filters (``cv2.boxFilter``), so the cost is O(pixels) whatever the
radius. Images are float32 arrays; the guide is H×W (gray) or H×W×3 (color), values in [0, 1];
the filtered input ``src`` is H×W. Radii are in pixels of the array they apply to.
"""

from __future__ import annotations

import cv2
import numpy as np


def box_mean(array: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the (2·radius+1)² window around each pixel (border: reflect), float32, same shape."""
    size = 2 * int(radius) + 1
    return cv2.boxFilter(np.asarray(array, dtype=np.float32), -1, (size, size), normalize=True,
                         borderType=cv2.BORDER_REFLECT)


def _coefficients_gray(guide: np.ndarray, src: np.ndarray, radius: int, eps: float):
    mean_i = box_mean(guide, radius)
    mean_p = box_mean(src, radius)
    cov_ip = box_mean(guide * src, radius) - mean_i * mean_p
    var_i = box_mean(guide * guide, radius) - mean_i * mean_i
    a = cov_ip / (var_i + np.float32(eps))
    b = mean_p - a * mean_i
    return box_mean(a, radius), box_mean(b, radius)


def _coefficients_color(guide: np.ndarray, src: np.ndarray, radius: int, eps: float):
    mean_i = np.stack([box_mean(guide[..., c], radius) for c in range(3)], axis=-1)
    mean_p = box_mean(src, radius)
    cov_ip = np.stack([box_mean(guide[..., c] * src, radius) for c in range(3)], axis=-1) - mean_i * mean_p[..., None]
    sigma = np.empty(guide.shape[:2] + (3, 3), dtype=np.float32)
    for i in range(3):
        for j in range(i, 3):
            v = box_mean(guide[..., i] * guide[..., j], radius) - mean_i[..., i] * mean_i[..., j]
            sigma[..., i, j] = v
            sigma[..., j, i] = v
    sigma += np.eye(3, dtype=np.float32) * np.float32(eps)
    a = np.linalg.solve(sigma, cov_ip[..., None])[..., 0].astype(np.float32)
    b = mean_p - np.einsum("hwc,hwc->hw", a, mean_i)
    mean_a = np.stack([box_mean(a[..., c], radius) for c in range(3)], axis=-1)
    return mean_a, box_mean(b, radius)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int = 8, eps: float = 1e-3) -> np.ndarray:
    """Guided filter of ``src`` (H×W) by ``guide`` (H×W gray or H×W×3 color, in [0, 1]).

    radius: window radius in pixels (≥ 1). eps: regularisation in guide-variance units
    (guide values², e.g. 1e-3 ≈ edges with a step above ~0.03 are kept). Returns float32 H×W.
    Where the guide is flat in a window the output is the box mean of ``src``.
    """
    guide = np.asarray(guide, dtype=np.float32)
    src = np.asarray(src, dtype=np.float32)
    if guide.ndim == 3:
        a, b = _coefficients_color(guide, src, radius, eps)
        return (np.einsum("hwc,hwc->hw", a, guide) + b).astype(np.float32)
    a, b = _coefficients_gray(guide, src, radius, eps)
    return a * guide + b


def guided_upsample(guide_full: np.ndarray, guide_small: np.ndarray, src_small: np.ndarray,
                    radius: int = 4, eps: float = 1e-3) -> np.ndarray:
    """Fast guided filter (He & Sun 2015): coefficients at low resolution, applied at full resolution.

    guide_full: H×W gray guide in [0, 1]; guide_small, src_small: h×w gray guide and input at the
    reduced size; radius in pixels of the reduced size. Returns float32 H×W ≈ the guided filter of
    the upsampled input, at the cost of one multiply-add per full-resolution pixel.
    """
    a, b = _coefficients_gray(np.asarray(guide_small, np.float32), np.asarray(src_small, np.float32), radius, eps)
    height, width = guide_full.shape[:2]
    a = cv2.resize(a, (width, height), interpolation=cv2.INTER_LINEAR)
    b = cv2.resize(b, (width, height), interpolation=cv2.INTER_LINEAR)
    return a * np.asarray(guide_full, dtype=np.float32) + b
