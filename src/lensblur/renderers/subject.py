"""Compositing a matted subject (alpha in [0, 1], hair-level detail) over the rendered background.

Pixels along hair and other fine boundaries mix subject and background colour. Blurring them as
one would smear subject colour into the background and leave background colour in the subject's
edge. Instead each such pixel is split (I = α·F + (1 − α)·B): the background B is rendered with
the background's blur, and the subject F is laid over it with its own blur and alpha.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from scipy import ndimage


SURE = 0.98      # alpha above which a pixel is pure subject
SURE_NOT = 0.02  # alpha below which a pixel is pure background


def split_foreground_background(image: np.ndarray, alpha: np.ndarray, smoothing_px: float = 8.0):
    """Subject colour F and background colour B with image ≈ α·F + (1 − α)·B.

    image: linear H×W×3; alpha: H×W in [0, 1]; smoothing_px: Gaussian scale (pixels) of the
    colour priors, taken from nearby pure subject and pure background pixels. Each pixel's (F, B)
    is the pair closest to those priors that reproduces its colour exactly.
    """
    alpha3 = alpha[..., None]
    prior_f = _normalised_blur(image, alpha >= SURE, smoothing_px)
    prior_b = _normalised_blur(image, alpha <= SURE_NOT, smoothing_px)
    residual = image - alpha3 * prior_f - (1 - alpha3) * prior_b
    norm = alpha3 * alpha3 + (1 - alpha3) * (1 - alpha3)
    foreground = prior_f + alpha3 * residual / norm
    background = prior_b + (1 - alpha3) * residual / norm
    foreground = np.where(alpha3 >= SURE, image, foreground)
    background = np.where(alpha3 <= SURE_NOT, image, background)
    return np.clip(foreground, 0, None).astype(np.float32), np.clip(background, 0, None).astype(np.float32)


def _normalised_blur(image: np.ndarray, valid: np.ndarray, sigma: float) -> np.ndarray:
    """Average of the valid pixels around each pixel, widening the scale until every pixel has
    some; falls back to the mean of all valid pixels (or the image mean when there are none)."""
    weight = valid.astype(np.float32)
    if not valid.any():
        return np.broadcast_to(image.reshape(-1, 3).mean(axis=0), image.shape).astype(np.float32)
    result = np.empty_like(image)
    done = np.zeros(valid.shape, bool)
    scale = sigma
    while not done.all() and scale < 4 * max(valid.shape):
        w = cv2.GaussianBlur(weight, (0, 0), scale)
        v = cv2.GaussianBlur(image * weight[..., None], (0, 0), scale)
        ready = (w > 1e-3) & ~done
        result[ready] = v[ready] / w[ready, None]
        done |= ready
        scale *= 4
    result[~done] = image[valid].mean(axis=0)
    return result


def fill_from(values: np.ndarray, source: np.ndarray) -> np.ndarray:
    """``values`` with every pixel outside ``source`` replaced by its nearest source pixel's."""
    if source.all() or not source.any():
        return values
    _, (iy, ix) = ndimage.distance_transform_edt(~source, return_indices=True)
    return values[iy, ix]


def scatter_premultiplied(premultiplied: np.ndarray, radius: np.ndarray, discs, level_radius: float = 8.0):
    """Scatter (rgb·α, α) H×W×4 with per-pixel radius (pixels) through ``discs``
    (a :class:`lensblur.renderers.discs.DiscScatter`); returns H×W×4 premultiplied.

    Large radii are scattered at 1/2, 1/4, ... resolution, as in the slab renderer.
    """
    height, width = radius.shape
    max_radius = float(radius.max()) if radius.size else 0.0
    if max_radius < 0.5:
        return premultiplied
    scale = 1 if max_radius <= level_radius else 2 ** math.ceil(math.log2(max_radius / level_radius))
    if scale > 1:
        small = (-(-width // scale), -(-height // scale))
        values = cv2.resize(premultiplied, small, interpolation=cv2.INTER_AREA) * np.float32(scale * scale)
        radius_small = cv2.resize(radius, small, interpolation=cv2.INTER_AREA) / scale
    else:
        values, radius_small = premultiplied, radius
    out = discs(values, radius_small, (0, 0), scale)
    if scale > 1:
        out = cv2.resize(out, (width, height), interpolation=cv2.INTER_LINEAR) / np.float32(scale * scale)
    return out
