"""Matted two-layer rendering where the disparity steps from a sharp side to a much blurrier one.

Pixels along an object's outline mix its colour with the background's, and a depth map's edge
never falls exactly on that outline (phones store it at a fifth of the photo's resolution). So
whichever side such a pixel is given, the renderer spreads some of the object's colour with the
background's blur: an in-focus edge glows. Where the map has a strong step, this module finds the
object's side, solves an alpha matte in a narrow band along the step (closed-form matting,
lensblur.depth.matting), splits each band pixel into subject and background colour
(lensblur.renderers.subject.closest_pair) and returns :class:`SubjectLayers`, which the scatter
renderer draws as two layers exactly as it does a portrait matte (scatter._render_with_subject).

Where it applies: a step whose near side is the sharper one by more than STEP_BLUR pixels of blur
radius (an in-focus subject in front of a blurred background). Steps whose near side is the
blurrier one are left alone: the scatter renderer's background extension already handles a
blurred foreground over a sharp background. Nor does it apply where the map's steps are as sharp
as the photo (they lie on the outline already), or to images under MIN_SIDE pixels a side (a
thumbnail's start-up would otherwise import the matting solver). Everything else is rendered
exactly as without this module.

Cost: everything but the final assembly runs on one grid on which the band is SOLVE_BAND cells
wide (the photo scaled by SOLVE_BAND / band; 0.9 MP for a 12 MP photo); at full resolution only
the pixels of the layer are written, and only the band pixels are computed one by one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from lensblur.depth.matting import solve_alpha
from lensblur.depth.refine import _coefficients_gray
from lensblur.renderers.subject import SURE, SURE_NOT, SubjectLayers, _normalised_blur, closest_pair, fill_from

STEP_BLUR = 2.0         # px: a step is matted when its far side's blur radius exceeds its near side's by this
BAND_FRACTION = 0.003   # half-width of the unknown band, as a fraction of the image diagonal
MIN_BAND = 2            # px: the narrowest half-width of the unknown band
SOLVE_BAND = 4          # cells: the widest the band's half-width is on the grid where steps are found and matting solved
STEP_REACH = 2          # cells either side of a pixel over which a step's two sides are compared
STRAIGHTNESS = 0.75     # a step keeps this share of its blur difference over twice the reach (a slope: half)
MIN_RAMP = 1.0          # px: a map whose steps cross in less is as sharp as the photo: nothing to matte
MIN_SIDE = 64           # px: smaller images are left alone
MIN_STEP_CELLS = 4      # fewer step cells than this are noise
MAX_STEP_LENGTH = 0.015  # steps longer (in cells) than this share of the grid's cells are a noisy map, not outlines
SMOOTHING_PX = 8.0      # Gaussian scale (px) of the colour priors, as lensblur.renderers.subject uses
GREY = np.array([0.299, 0.587, 0.114], np.float32)


def band_width(height: int, width: int) -> int:
    """Half-width in pixels of the band matted along a step: BAND_FRACTION of the diagonal, at
    least MIN_BAND (15 px on a 12 MP photo, about three pixels of a phone's depth map)."""
    return max(MIN_BAND, int(round(BAND_FRACTION * math.hypot(height, width))))


def matte_band(height: int, width: int, ramp: float) -> int:
    """Half-width in pixels of the unknown band for a map whose steps cross in ``ramp`` px:
    :func:`band_width`, widened to half the ramp plus a pixel, where the map's edge may lie."""
    return max(band_width(height, width), int(math.ceil(ramp / 2)) + 1)


def grid_size(height: int, width: int) -> tuple[float, tuple[int, int]]:
    """(scale, (width, height)) of the analysis grid: the photo scaled so the band is SOLVE_BAND cells."""
    scale = min(1.0, SOLVE_BAND / band_width(height, width))
    return scale, (max(8, int(round(width * scale))), max(8, int(round(height * scale))))


@dataclass(frozen=True)
class Steps:
    """Strong depth steps on the analysis grid: which cells lie on one (bool), the c midway
    across the step carried to every cell (px), the largest far-side blur radius (px), and the
    grid's scale (cells per photo pixel)."""

    strong: np.ndarray
    middle: np.ndarray
    far_blur: float
    scale: float
    coc_small: np.ndarray
    reach: int

    @property
    def length_px(self) -> float:
        """Rough length of the steps in photo pixels (a step is marked 2·reach + 1 cells wide)."""
        return float(self.strong.sum()) / (2 * self.reach + 1) / self.scale


def find_steps(coc: np.ndarray, reach: int = STEP_REACH, coc_small: np.ndarray | None = None) -> Steps | None:
    """Steps of ``coc`` (signed circle of confusion, H×W px, larger = nearer; lensblur.lens.signed_coc)
    whose far side's blur radius exceeds the near side's by more than STEP_BLUR, on the grid of
    :func:`grid_size`, comparing the sides ``reach`` cells apart; None when there is none (or when
    the "steps" are longer than MAX_STEP_LENGTH × the grid's cells: a noisy map, not outlines).
    coc_small: ``coc`` already on that grid. Costs one area resize of ``coc`` and grid work."""
    height, width = coc.shape
    if min(height, width) < MIN_SIDE or float(coc.max() - coc.min()) <= STEP_BLUR:
        return None
    scale, size = grid_size(height, width)
    if coc_small is None:
        coc_small = cv2.resize(coc, size, interpolation=cv2.INTER_AREA) if scale < 1 else np.asarray(coc, np.float32)
    near, far = _extremes(coc_small, reach)
    difference = np.abs(far) - np.abs(near)
    wide_near, wide_far = _extremes(coc_small, 2 * reach)
    # a slope's difference doubles when the window does; a step's stays
    strong = (difference > STEP_BLUR) & (difference >= STRAIGHTNESS * (np.abs(wide_far) - np.abs(wide_near)))
    count = int(strong.sum())
    if count < MIN_STEP_CELLS or count / (2 * reach + 1) > MAX_STEP_LENGTH * strong.size:
        return None
    middle = fill_from(np.where(strong, 0.5 * (near + far), 0).astype(np.float32), strong)
    return Steps(strong, middle, float(np.abs(far[strong]).max()), scale, coc_small, reach)


def ramp_width(coc: np.ndarray, steps: Steps) -> float:
    """Mean width in photo pixels over which ``coc`` (H×W) crosses its strong steps: the share of
    pixels in step cells whose c lies strictly between the cell's two sides (15–85 %), times the
    width of the marked band. About 0–1 px for a map as sharp as the photo; a map enlarged from
    a fifth of the size crosses in several pixels, and its edge misses the outline by as much."""
    near, far = _extremes(steps.coc_small, steps.reach)
    cy, cx = np.nonzero(steps.strong)
    cell = 1.0 / steps.scale
    offsets = np.arange(max(1, int(math.floor(cell))))
    height, width = coc.shape
    ys = np.minimum((cy[:, None] * cell).astype(np.intp) + offsets[None, :], height - 1)
    xs = np.minimum((cx[:, None] * cell).astype(np.intp) + offsets[None, :], width - 1)
    values = coc[ys[:, :, None], xs[:, None, :]]
    low, high = far[cy, cx][:, None, None], near[cy, cx][:, None, None]
    share = ((values - low) / np.maximum(high - low, 1e-6))
    inside = float(((share > 0.15) & (share < 0.85)).mean())
    return inside * (2 * steps.reach + 1) * cell


def _extremes(values: np.ndarray, reach: int) -> tuple[np.ndarray, np.ndarray]:
    """(max, min) of ``values`` over a disc of radius ``reach`` cells around each cell."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1,) * 2)
    return cv2.dilate(values, kernel), cv2.erode(values, kernel)


def edge_subject(image: np.ndarray, disparity: np.ndarray, coc: np.ndarray) -> SubjectLayers | None:
    """The photo split into the near side of every strong step (matted) and the rest, or None.

    image: linear float32 H×W×3 in [0, 1]; disparity: float32 H×W in [0, 1]; coc: its signed
    circle of confusion (px). The matte is 1 on the near side within three bands of a step,
    fractional only within ±band px of the step itself (band: the larger of :func:`band_width`
    and the map's :func:`ramp_width`), 0 elsewhere. None also when the map's steps are as sharp as
    the photo (ramp below MIN_RAMP): then they lie on the outline already, and matting a one-pixel
    edge only adds its errors. Outside the matte every returned array equals its input.
    """
    steps = find_steps(coc)
    if steps is None:
        return None
    ramp = ramp_width(coc, steps)
    if ramp < MIN_RAMP:
        return None
    height, width = coc.shape
    scale, size = grid_size(height, width)
    if ramp * scale > steps.reach:  # a wide ramp: compare the sides across all of it
        steps = find_steps(coc, int(math.ceil(ramp * scale)), steps.coc_small) or steps
    reach = steps.reach
    distance = cv2.distanceTransform((~steps.strong).astype(np.uint8), cv2.DIST_L2, 3)
    # The layer needs only to hold the band: behind the sure subject beyond it, the background's
    # own extension of the far side (scatter.HiddenAreaOwners) finds the far side's colour.
    band = matte_band(height, width, ramp)
    cells = max(1, int(round(band * scale)))  # the band's half-width on the grid
    zone = distance <= reach + 3 * cells
    coc_small = steps.coc_small
    near = (zone & (coc_small > steps.middle)).astype(np.uint8)
    ring = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * cells + 1,) * 2)
    unknown = (cv2.dilate(near, ring) > cv2.erode(near, ring)) & (distance <= reach + cells)
    # Matting needs sure subject nearby: a near side thinner than the band (a strand, a twig) has
    # none and is left to the renderer as it is, as is the band around it.
    sure = (near > 0) & ~unknown
    supported = cv2.dilate(sure.astype(np.uint8), cv2.getStructuringElement(
        cv2.MORPH_ELLIPSE, (4 * cells + 1,) * 2)) > 0
    near = (near > 0) & supported
    unknown &= supported
    if not sure.any() or not unknown.any():
        return None
    small = (lambda a: cv2.resize(a, size, interpolation=cv2.INTER_AREA)) if scale < 1 else (lambda a: a)
    image_small = small(np.ascontiguousarray(image, dtype=np.float32))
    trimap = np.where(unknown, 0.5, near).astype(np.float32)
    # matting sees sRGB-like values: its colour-line model separates dark colours better there
    encoded_small = np.sqrt(np.clip(image_small, 0, 1))
    alpha_small = _solve_in_box(encoded_small, trimap, unknown)
    sigma = max(SMOOTHING_PX * scale, 0.5)
    prior_f = _normalised_blur(image_small, alpha_small >= SURE, sigma)
    prior_b = _normalised_blur(image_small, alpha_small <= SURE_NOT, sigma)
    disparity_small = small(np.ascontiguousarray(disparity, dtype=np.float32))
    # the subject's band takes the disparity of its sure side, the hidden background that of the far side
    subject_disparity_small = fill_from(disparity_small, trimap == 1)
    background_disparity_small = fill_from(disparity_small, trimap == 0)
    coefficients = _coefficients_gray(encoded_small @ GREY, alpha_small, 2, 1e-4)
    # The far side is hidden behind the subject only near the step: deeper in, the background
    # layer keeps the subject itself, so the layer's inner cut is no seam.
    hidden = (trimap == 1) & (distance <= reach + 2 * cells)
    return _assemble(image, disparity, scale, trimap, hidden, prior_f, prior_b, subject_disparity_small,
                     background_disparity_small, coefficients)


def _assemble(image, disparity, scale, trimap, hidden, prior_f, prior_b, subject_disparity_small,
              background_disparity_small, coefficients) -> SubjectLayers:
    """Full-resolution SubjectLayers from the grid's results. Only the layer's box is visited:
    sure-subject cells near the step (``hidden``) get the background prior and the far side's
    disparity behind them; band
    cells get an alpha from the guided filter's coefficients (brought to each pixel
    bilinearly, applied to its own grey) and the closest (F, B) pair."""
    height, width = disparity.shape
    matte = np.zeros((height, width), np.float32)
    foreground, background = image.copy(), image.copy()
    subject_disparity, background_disparity = disparity.copy(), disparity.copy()
    layer = trimap > 0
    rows, cols = np.flatnonzero(layer.any(axis=1)), np.flatnonzero(layer.any(axis=0))
    cell = 1.0 / scale
    y0, y1 = int(rows[0] * cell), min(height, int(math.ceil((rows[-1] + 1) * cell)) + 1)
    x0, x1 = int(cols[0] * cell), min(width, int(math.ceil((cols[-1] + 1) * cell)) + 1)
    gy = np.minimum(((np.arange(y0, y1) + 0.5) * scale).astype(np.intp), trimap.shape[0] - 1)
    gx = np.minimum(((np.arange(x0, x1) + 0.5) * scale).astype(np.intp), trimap.shape[1] - 1)
    box_trimap = trimap[gy[:, None], gx[None, :]]
    ys, xs = np.nonzero(box_trimap == 1)
    matte[ys + y0, xs + x0] = 1.0
    ys, xs = np.nonzero(hidden[gy[:, None], gx[None, :]])
    cy, cx = gy[ys], gx[xs]
    ys, xs = ys + y0, xs + x0
    background[ys, xs] = prior_b[cy, cx]
    background_disparity[ys, xs] = background_disparity_small[cy, cx]
    ys, xs = np.nonzero(box_trimap == 0.5)
    ys, xs = ys + y0, xs + x0
    grid = (ys + 0.5) * scale - 0.5, (xs + 0.5) * scale - 0.5
    colour = image[ys, xs]
    alpha = np.clip(_bilinear(coefficients[0], *grid) * (np.sqrt(np.clip(colour, 0, 1)) @ GREY)
                    + _bilinear(coefficients[1], *grid), 0, 1)
    matte[ys, xs] = alpha
    foreground[ys, xs], background[ys, xs] = closest_pair(colour, alpha, _bilinear(prior_f, *grid),
                                                          _bilinear(prior_b, *grid))
    subject_disparity[ys, xs] = _bilinear(subject_disparity_small, *grid)
    background_disparity[ys, xs] = _bilinear(background_disparity_small, *grid)
    return SubjectLayers(matte, foreground, background, subject_disparity, background_disparity)


def _bilinear(values: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``values`` (h×w or h×w×C) interpolated bilinearly at fractional cells (y, x), clamped to the grid."""
    height, width = values.shape[:2]
    y = np.clip(y, 0, height - 1)
    x = np.clip(x, 0, width - 1)
    y0, x0 = np.minimum(y.astype(np.intp), height - 2 if height > 1 else 0), np.minimum(
        x.astype(np.intp), width - 2 if width > 1 else 0)
    y1, x1 = np.minimum(y0 + 1, height - 1), np.minimum(x0 + 1, width - 1)
    fy, fx = (y - y0).astype(np.float32), (x - x0).astype(np.float32)
    if values.ndim == 3:
        fy, fx = fy[:, None], fx[:, None]
    top = values[y0, x0] * (1 - fx) + values[y0, x1] * fx
    bottom = values[y1, x0] * (1 - fx) + values[y1, x1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def _solve_in_box(image: np.ndarray, trimap: np.ndarray, unknown: np.ndarray) -> np.ndarray:
    """lensblur.depth.matting.solve_alpha on the bounding box of the unknown cells (plus a
    margin of known ones); the trimap elsewhere."""
    rows, cols = np.flatnonzero(unknown.any(axis=1)), np.flatnonzero(unknown.any(axis=0))
    y0, y1 = max(0, rows[0] - 2), min(unknown.shape[0], rows[-1] + 3)
    x0, x1 = max(0, cols[0] - 2), min(unknown.shape[1], cols[-1] + 3)
    alpha = trimap.copy()
    alpha[y0:y1, x0:x1] = solve_alpha(image[y0:y1, x0:x1], trimap[y0:y1, x0:x1])
    return alpha
