"""Compositing a matted subject (alpha in [0, 1], hair-level detail) over the rendered background.

Pixels along hair and other fine boundaries mix subject and background colour. Blurring them as
one would smear subject colour into the background and leave background colour in the subject's
edge. Instead each such pixel is split (I = α·F + (1 − α)·B): the background B is rendered with
the background's blur, and the subject F is laid over it with its own blur and alpha.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from lensblur.masks import mask_positions
from lensblur.renderers.nearest import nearest_zero

SURE = 0.98      # alpha above which a pixel is pure subject
SURE_NOT = 0.02  # alpha below which a pixel is pure background
TILE = 32        # side (pixels) of the blocks whose sources the disc kernel reads or skips
BOUNDARY_TRUST = 0.01  # depth within this fraction of the diagonal of a matte's outline is not used


@dataclass(frozen=True)
class SubjectLayers:
    """A photo split along its subject matte: everything about the split that does not depend on
    focus or aperture, so an interactive session computes it once per photo.

    matte: H×W alpha in [0, 1]; foreground, background: linear H×W×3 colours F and B with
    image ≈ α·F + (1 − α)·B; subject_disparity: the disparity with the subject's outline band
    taken from its interior; background_disparity: the disparity with the subject and its outline
    band taken from the background around them (so the background renders as if the subject were
    absent). Disparities are H×W in [0, 1].
    """

    matte: np.ndarray
    foreground: np.ndarray
    background: np.ndarray
    subject_disparity: np.ndarray
    background_disparity: np.ndarray


def split_subject(image: np.ndarray, disparity: np.ndarray, matte: np.ndarray) -> SubjectLayers:
    """Split ``image`` (linear H×W×3) and ``disparity`` (H×W, [0, 1]) along ``matte`` (H×W, [0, 1]).

    Depth maps are least reliable along the subject's outline, where the matte is most precise:
    disparity within BOUNDARY_TRUST of the diagonal of the outline is replaced by the nearest
    trusted value on the same side.
    """
    matte = np.clip(matte, 0, 1).astype(np.float32)
    foreground, background = split_foreground_background(image, matte)
    margin = max(2, int(round(BOUNDARY_TRUST * math.hypot(*matte.shape))))
    subject = matte > 0.5
    subject_disparity = fill_from(disparity, _eroded(subject, margin)) if subject.any() else disparity
    background_disparity = fill_from(disparity, _eroded(matte <= SURE_NOT, margin))
    return SubjectLayers(matte, foreground, background, subject_disparity, background_disparity)


def _eroded(mask: np.ndarray, margin: int) -> np.ndarray:
    """``mask`` shrunk by ``margin`` pixels, or ``mask`` itself when that would leave nothing."""
    shrunk = cv2.erode(mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1,) * 2))
    return shrunk.astype(bool) if shrunk.any() else mask


def split_foreground_background(image: np.ndarray, alpha: np.ndarray, smoothing_px: float = 8.0):
    """Subject colour F and background colour B with image ≈ α·F + (1 − α)·B.

    image: linear H×W×3; alpha: H×W in [0, 1]; smoothing_px: Gaussian scale (pixels) of the
    colour priors, taken from nearby pure subject and pure background pixels. Each pixel's (F, B)
    is the pair closest to those priors that reproduces its colour exactly.
    """
    # Outside the soft band the answer is known: the pixel itself on its own side, the smooth
    # prior (an extension of the nearby pure pixels) on the other.
    foreground = _normalised_blur(image, alpha >= SURE, smoothing_px)
    background = _normalised_blur(image, alpha <= SURE_NOT, smoothing_px)
    subject, rest = alpha >= SURE, alpha <= SURE_NOT
    foreground[subject] = image[subject]
    background[rest] = image[rest]
    ys, xs = mask_positions(~subject & ~rest)
    if ys.size:
        foreground[ys, xs], background[ys, xs] = closest_pair(image[ys, xs], alpha[ys, xs], foreground[ys, xs],
                                                              background[ys, xs])
    return foreground.astype(np.float32, copy=False), background.astype(np.float32, copy=False)


def closest_pair(colour: np.ndarray, alpha: np.ndarray, prior_f: np.ndarray, prior_b: np.ndarray):
    """(F, B), each N×3 and ≥ 0, closest to the priors (N×3) with colour = α·F + (1 − α)·B for
    the N pixels' colours (N×3, linear, ≥ 0) and alphas (N, in [0, 1]). Where the closest pair
    has a negative channel, that channel is 0 and the other colour takes what is left."""
    a = alpha[:, None]
    residual = colour - a * prior_f - (1 - a) * prior_b
    norm = a * a + (1 - a) * (1 - a)
    foreground, background = prior_f + a * residual / norm, prior_b + (1 - a) * residual / norm
    with np.errstate(divide="ignore", invalid="ignore"):
        foreground = np.where(background < 0, colour / a, foreground)
        background = np.where(foreground < 0, colour / (1 - a), background)
    return np.maximum(np.nan_to_num(foreground), 0), np.maximum(np.nan_to_num(background), 0)


def _normalised_blur(image: np.ndarray, valid: np.ndarray, sigma: float, max_cells: int = 500_000) -> np.ndarray:
    """Smooth average of the valid pixels around each pixel (Gaussian scale ``sigma`` pixels,
    widened ×4 where no valid pixel is near), H×W×3; the mean of all valid pixels where none is
    found (the image mean when there are none). Computed on a grid of at most ``max_cells`` cells
    and upsampled: the priors it gives are smooth, and the cost stays linear."""
    if not valid.any():
        return np.broadcast_to(image.reshape(-1, 3).mean(axis=0), image.shape).astype(np.float32)
    height, width = valid.shape
    factor = max(1, math.ceil(math.sqrt(height * width / max_cells)))
    size = (max(1, width // factor), max(1, height // factor))
    weight = cv2.resize(valid.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    weighted = cv2.resize(image * valid[..., None], size, interpolation=cv2.INTER_AREA)
    result = np.empty_like(weighted)
    done = np.zeros(weight.shape, bool)
    scale = max(sigma / factor, 0.5)
    while not done.all() and scale < 4 * max(size):
        w, v = _blur_pair(weight, weighted, scale)
        ready = (w > 1e-3) & ~done
        result[ready] = v[ready] / w[ready, None]
        done |= ready
        scale *= 4
    result[~done] = image[valid].mean(axis=0)
    if factor == 1:
        return result
    return cv2.resize(result, (width, height), interpolation=cv2.INTER_LINEAR)


def _blur_pair(weight: np.ndarray, weighted: np.ndarray, sigma: float):
    """Gaussian blur of both arrays; large sigmas on a grid reduced so sigma is about 4 cells."""
    factor = max(1, int(sigma // 4))
    if factor == 1:
        return cv2.GaussianBlur(weight, (0, 0), sigma), cv2.GaussianBlur(weighted, (0, 0), sigma)
    height, width = weight.shape
    size = (max(1, width // factor), max(1, height // factor))
    blurred = [cv2.resize(cv2.GaussianBlur(cv2.resize(a, size, interpolation=cv2.INTER_AREA), (0, 0), sigma / factor),
                          (width, height), interpolation=cv2.INTER_LINEAR) for a in (weight, weighted)]
    return blurred[0], blurred[1]


def fill_from(values: np.ndarray, source: np.ndarray, max_cells: int = 1_000_000) -> np.ndarray:
    """``values`` (H×W) with every pixel outside ``source`` replaced by its nearest source pixel's.

    The nearest-pixel search runs on a grid of at most ``max_cells`` cells (a block of pixels
    counts as source when any of it is), so it stays fast on large photos.
    """
    if source.all() or not source.any():
        return values
    height, width = source.shape
    factor = max(1, math.ceil(math.sqrt(height * width / max_cells)))
    if factor > 1:
        small = (max(1, width // factor), max(1, height // factor))
        source_small = cv2.resize(source.astype(np.uint8), small, interpolation=cv2.INTER_AREA) > 0
        if not source_small.any():
            source_small = cv2.resize(source.astype(np.uint8), small, interpolation=cv2.INTER_NEAREST) > 0
        values_small = cv2.resize(np.where(source, values, 0).astype(np.float32), small, interpolation=cv2.INTER_AREA)
        weight_small = cv2.resize(source.astype(np.float32), small, interpolation=cv2.INTER_AREA)
        values_small = values_small / np.maximum(weight_small, 1e-6)  # mean over the block's source pixels
    else:
        source_small, values_small = source, values
    if source_small.all() or not source_small.any():
        filled_small = values_small
    else:
        _, iy, ix = nearest_zero(~source_small)
        filled_small = values_small[iy, ix]
    if factor > 1:
        filled = cv2.resize(filled_small.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    else:
        filled = filled_small
    return np.where(source, values, filled).astype(values.dtype)


def scatter_premultiplied(premultiplied: np.ndarray, radius: np.ndarray, discs, level_radius: float = 6.0):
    """Scatter (rgb·α, α) H×W×4 with per-pixel radius (pixels) through ``discs``
    (a :class:`lensblur.renderers.discs.DiscScatter`); returns H×W×4 premultiplied.

    Pixels below 0.5 px stay where they are; the others are drawn at full resolution up to
    ``level_radius`` and at 1/2, 1/4, ... resolution beyond, as in the slab renderer. Only the
    box around the pixels with coverage is worked on (a subject rarely fills the frame).
    """
    height, width = radius.shape
    covered = premultiplied[..., 3] > 0
    radius = np.where(covered, radius, 0).astype(np.float32, copy=False)
    sharp = radius < 0.5
    out = np.where(sharp[..., None], premultiplied, 0).astype(np.float32, copy=False)
    if sharp.all():
        return out
    upper = float(radius.max())
    coarsest = 1
    while level_radius * coarsest < upper:
        coarsest *= 2
    # the box: every disc fits, and it starts on the coarsest level's grid so levels line up
    margin = int(math.ceil(upper)) + 2 * coarsest
    rows, cols = np.flatnonzero(covered.any(axis=1)), np.flatnonzero(covered.any(axis=0))
    y0 = max(rows[0] - margin, 0) // coarsest * coarsest
    x0 = max(cols[0] - margin, 0) // coarsest * coarsest
    y1, x1 = min(rows[-1] + margin + 1, height), min(cols[-1] + margin + 1, width)
    box = (slice(y0, y1), slice(x0, x1))
    values_box, radius_box = premultiplied[box], radius[box]
    box_h, box_w = y1 - y0, x1 - x0
    scale, low = 1, 0.5
    while low < upper:
        high = level_radius * scale
        in_level = (radius_box >= low) & (radius_box < high) if high < upper else (radius_box >= low)
        if in_level.any():
            values = np.where(in_level[..., None], values_box, 0).astype(np.float32)
            if scale == 1:
                # radii outside the level are zeroed so the kernel's row reach stays the level's;
                # only the tiles holding pixels of the level are read (an in-focus subject has few)
                level_radius_px = np.where(in_level, radius_box, 0)
                tiles = (_tiles_of(in_level, TILE), TILE, float(level_radius_px.max()))
                out[box] += discs(values, level_radius_px, (y0, x0), tiles=tiles)
            else:
                small = (-(-box_w // scale), -(-box_h // scale))
                values_small = cv2.resize(values, small, interpolation=cv2.INTER_AREA) * np.float32(scale * scale)
                weight = cv2.resize(in_level.astype(np.float32), small, interpolation=cv2.INTER_AREA)
                radius_small = cv2.resize(np.where(in_level, radius_box, 0), small, interpolation=cv2.INTER_AREA)
                radius_small = radius_small / np.maximum(weight, 1e-6) / scale
                tiles = (_tiles_of(weight > 0, TILE), TILE, float(radius_small.max()))
                drawn = discs(values_small, radius_small, (y0 // scale, x0 // scale), scale, tiles=tiles)
                out[box] += cv2.resize(drawn, (box_w, box_h), interpolation=cv2.INTER_LINEAR) / np.float32(
                    scale * scale)
        low, scale = high, scale * 2
    return out


def _tiles_of(mask: np.ndarray, tile: int) -> np.ndarray:
    """bool (ceil(H/tile), ceil(W/tile)): which tile×tile blocks of the H×W ``mask`` hold a True."""
    height, width = mask.shape
    n_ty, n_tx = -(-height // tile), -(-width // tile)
    padded = np.zeros((n_ty * tile, n_tx * tile), bool)
    padded[:height, :width] = mask
    return padded.reshape(n_ty, tile, n_tx, tile).any(axis=(1, 3))
