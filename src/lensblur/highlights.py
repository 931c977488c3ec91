"""Radiance recovery of clipped highlights (the "radiance virtualization" of D2F).

Small spots in crowds (glints on pavement or water, sun through leaves) keep only a share of the
boost (:func:`uncrowded`). Lights in night photos (clipped cores with dark surroundings in a
mostly dark photo) get the energy their glare halo shows, and their glare and starburst spikes
are removed before blurring (lensblur.lamps). Everything else follows the size rule below.

A camera clips lights at 1.0, so blurring the saved image turns street lamps into dim grey
discs. Clipped pixels get their linear radiance boosted before blurring, so their out-of-focus
discs come out bright. Two kinds of clipped area are told apart by size:
- small clipped spots (lamps, glints, stars; up to SPOT_RADIUS_FRACTION of the image diagonal in
  radius) are light sources whose true radiance is far above the clip level: full boost;
- large clipped areas (a white wall, an overexposed sky, a sunlit rim) are mostly surfaces that
  are merely bright: a tenth of the boost, so they do not bloom over their surroundings.
Pixels that stay sharp are not boosted (they would clip back anyway, and this keeps in-focus
pixels exactly unchanged), and slightly defocused ones are boosted less, so a bright edge just
out of focus does not glow.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from lensblur.color import linear_to_srgb, srgb_to_linear
from lensblur.lamps import Lights, find_lights
from lensblur.lens import Highlights
from lensblur.masks import mask_positions

FADE_START, FADE_END = 1.0, 6.0     # |c| in pixels over which the boost fades in
SPOT_RADIUS_FRACTION = 0.004        # largest light spot radius, as a fraction of the diagonal
AREA_SHARE = 0.1                    # share of the boost that large clipped areas get
CROWD_RADIUS_FRACTION = 0.05        # spots are counted within this fraction of the diagonal...
CROWD_COUNT = 4.0                   # ...and lose their boost when many more than this are there,
CROWD_CLIPPED = 0.06                # or when clipped pixels cover much more than this share there
DEFAULT_STRENGTH = Highlights().strength  # at this strength a lamp gets its estimated radiance


def recover_highlights(linear: np.ndarray, coc: np.ndarray, settings: Highlights | None,
                       analysis: "ClippedAnalysis | None" = None, in_place: bool = False) -> np.ndarray:
    """Linear radiance to scatter, float32 H×W×3: ``linear`` with the glare and starburst spikes
    around night lamps removed (where defocused) and times :func:`highlight_gain` (the input
    itself when nothing changes, a new array otherwise).

    linear: H×W×3 linear image in [0, 1]; coc: signed circle of confusion in pixels (H×W);
    settings: see :func:`highlight_gain`; analysis: see :func:`sparse_recovery`; in_place: the
    caller gives ``linear`` up (float32, C-contiguous): its boosted pixels are multiplied where
    they are and ``linear`` itself is returned, instead of a 12 bytes-per-pixel copy (night
    lamps' cleaned image is a new array either way).
    """
    parts = sparse_recovery(linear, coc, settings, clean=True, analysis=analysis)
    if parts is None:
        return linear
    bright, gain, cleaned = parts
    # the cleaned image is already a new array; the input itself is copied before it is boosted
    if cleaned is not None:
        result = cleaned.astype(np.float32, copy=False)
    elif in_place and linear.dtype == np.float32 and linear.flags.c_contiguous and linear.flags.writeable:
        result = linear
    else:
        result = np.array(linear, dtype=np.float32, copy=True)
    # gathered and put back by flat pixel index: about half the time of ``result[bright] *= gain``
    pixels = result.reshape(-1, result.shape[-1])
    index = bright[0] * result.shape[1] + bright[1]
    boosted = np.take(pixels, index, axis=0)
    boosted *= gain[:, None]
    pixels[index] = boosted
    return result


def highlight_gain(linear: np.ndarray, coc: np.ndarray, settings: Highlights | None) -> np.ndarray | None:
    """Per-pixel radiance gain (float32 H×W, ≥ 1), or None when no pixel is boosted.

    linear: H×W×3 linear image in [0, 1]; coc: signed circle of confusion in pixels (H×W);
    settings: threshold (encoded level in (0, 1) where boosting starts) and strength.
    A night lamp's core (lensblur.lamps) is raised to 1 + (L − 1)·strength/DEFAULT_STRENGTH, L its
    radiance estimated from its glare halo (never less than the size rule below gives). Any other
    clipped pixel is multiplied by up to 1 + strength·share (share: 1 for small spots standing
    alone, less in crowds, :func:`uncrowded`; AREA_SHARE for large areas); that boost rises
    smoothly (smoothstep) from the threshold to the clip level. Both fade in (smoothstep) as |c|
    grows from FADE_START to FADE_END pixels.
    """
    return recover_parts(linear, coc, settings, clean=False)[0]


def recover_parts(linear: np.ndarray, coc: np.ndarray, settings: Highlights | None,
                  clean: bool = True) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(:func:`highlight_gain`, ``linear`` with the glare and spikes of defocused night lamps
    removed and their cores given their colour, float32 H×W×3, or None where there are none);
    clean=False skips the second. Arguments as :func:`highlight_gain`."""
    parts = sparse_recovery(linear, coc, settings, clean)
    if parts is None:
        return None, None
    bright, bright_gain, cleaned = parts
    gain = np.ones(coc.shape, np.float32)
    gain[bright] = bright_gain
    return gain, cleaned


@dataclass(frozen=True)
class ClippedAnalysis:
    """What highlight recovery reads off a photo before the lens is known, for one threshold and
    lamp setting: so an interactive session finds it once per photo (see :func:`analyse_clipped`).

    candidate: H×W bool, clipped (largest linear channel at or above the threshold); spots,
    crowd, factor: :func:`light_spots` and :func:`uncrowded`'s share on its block grid; lights:
    the night lamps (lensblur.lamps) or None. Per clipped pixel (in the order of ``rows``,
    ``columns``, their coordinates), so that a render only gathers them: share (the size and
    crowd rules' share of the boost), smooth (its rise from the threshold to the clip level), and
    for night lamps lamp_weight and lamp_radiance (else None).
    """

    threshold: float
    lamps: bool
    candidate: np.ndarray
    spots: np.ndarray
    crowd: np.ndarray
    factor: int
    lights: Lights | None
    rows: np.ndarray
    columns: np.ndarray
    share: np.ndarray
    smooth: np.ndarray
    lamp_weight: np.ndarray | None
    lamp_radiance: np.ndarray | None

    def fits(self, linear: np.ndarray, settings: Highlights) -> bool:
        """Whether this analysis holds for a photo of ``linear``'s size under ``settings``."""
        return (self.threshold, self.lamps) == (settings.threshold, settings.lamps) and \
            self.candidate.shape == linear.shape[:2]


def analyse_clipped(linear: np.ndarray, settings: Highlights) -> ClippedAnalysis:
    """The lens-independent part of highlight recovery of ``linear`` (H×W×3, [0, 1]) under
    ``settings`` (its threshold and lamp setting; strength does not enter)."""
    return _analysis(linear, settings, _clipped(linear, settings))


def _clipped(linear, settings):
    """bool H×W: the pixels whose largest channel is at or above the threshold (one kernel pass,
    no full-size peak array)."""
    from lensblur.renderers.kernels import clipped_mask

    linear = np.ascontiguousarray(linear, dtype=np.float32)
    candidate = np.empty(linear.shape[:2], bool)
    clipped_mask(linear, np.float32(srgb_to_linear(np.float32(settings.threshold))), candidate, 0,
                 candidate.shape[0])
    return candidate


def _analysis(linear, settings, candidate, where=None) -> ClippedAnalysis:
    rows, columns = mask_positions(candidate) if where is None else where
    height, width = candidate.shape
    # the largest channel, at the clipped pixels only (gathered by flat index: no 2-D fancy index;
    # np.maximum of the channels: a reduction along an axis of 3 is several times slower)
    at_clipped = np.take(np.asarray(linear).reshape(height * width, -1), rows * width + columns, axis=0)
    peak = functools.reduce(np.maximum, at_clipped.T)
    spots, in_spot, centroids = _spot_mask(candidate, (rows, columns))
    # nothing clipped: no lamps, as find_lights would find
    lights = find_lights(linear, candidate) if settings.lamps and rows.size else None
    crowd, factor = _crowd_grid(centroids, candidate, (rows, columns))
    crowd_at = np.take(crowd, (rows // factor) * crowd.shape[1] + columns // factor)
    share = np.where(in_spot, crowd_at, np.float32(AREA_SHARE))
    t = np.clip((linear_to_srgb(peak) - settings.threshold) / max(1.0 - settings.threshold, 1e-6), 0, 1)
    lamp_weight = lamp_radiance = None
    if lights is not None:
        lamp_weight, lamp_radiance = lights.weight[rows, columns], lights.radiance[rows, columns]
    return ClippedAnalysis(settings.threshold, settings.lamps, candidate, spots, crowd, factor, lights,
                           rows, columns, share, t * t * (3 - 2 * t), lamp_weight, lamp_radiance)


def sparse_recovery(linear: np.ndarray, coc: np.ndarray, settings: Highlights | None, clean: bool = True,
                    analysis: ClippedAnalysis | None = None):
    """:func:`recover_parts` kept sparse: ((rows, columns) of the boosted pixels, their gain
    (float32, ≥ 1), the cleaned image or None), or None when nothing is boosted (the gain is 1
    everywhere else). Arguments as :func:`recover_parts`; analysis: ``analyse_clipped(linear,
    settings)`` when the caller keeps it between renders of the same photo (ignored when it was
    made for other settings or another size)."""
    if settings is None or not settings.enabled:
        return None
    if analysis is not None and not analysis.fits(linear, settings):
        analysis = None
    if analysis is None:
        candidate = _clipped(linear, settings)
        where = mask_positions(candidate)  # clipped pixels are few: test |c| on them alone
        if not (np.abs(coc[where]) > FADE_START).any():
            return None  # nothing clipped is defocused: the analysis is not needed
        analysis = _analysis(linear, settings, candidate, where)
    at_clipped = np.take(coc, analysis.rows * coc.shape[1] + analysis.columns)  # flat gather
    defocused = np.abs(at_clipped) > FADE_START
    if not defocused.any():
        return None
    bright = (analysis.rows[defocused], analysis.columns[defocused])
    u = _fade(at_clipped[defocused])
    boost = np.float32(settings.strength) * analysis.share[defocused] * analysis.smooth[defocused]
    cleaned = None
    if analysis.lights is not None:
        lamp = analysis.lamp_weight[defocused]
        lamp_boost = (analysis.lamp_radiance[defocused] - 1.0) * np.float32(settings.strength / DEFAULT_STRENGTH)
        # never below the size rule: a light whose glare is too faint to read keeps that boost
        boost = (1 - lamp) * boost + lamp * np.maximum(lamp_boost, boost)
        if clean:
            cleaned = linear + _fade(coc)[..., None] * (analysis.lights.cleaned - linear)
    return bright, (1.0 + boost * u).astype(np.float32), cleaned


def _fade(coc: np.ndarray) -> np.ndarray:
    """Smoothstep of |c| from FADE_START to FADE_END pixels (0 in focus, 1 defocused)."""
    u = np.clip((np.abs(coc) - FADE_START) / (FADE_END - FADE_START), 0.0, 1.0)
    return (u * u * (3 - 2 * u)).astype(np.float32)


def uncrowded(spots: np.ndarray, clipped: np.ndarray) -> np.ndarray:
    """Share of the boost each pixel of ``spots`` (bool H×W) keeps, float32 H×W in (0, 1]:
    1 / (1 + ((n − 1) / CROWD_COUNT)² + (f / CROWD_CLIPPED)²), n the number of spots within
    CROWD_RADIUS_FRACTION of the diagonal and f the share of ``clipped`` pixels (bool H×W) within
    four times that distance. Lights are few and stand alone; glints on pavement or water come in
    crowds, and a sunlit wall seen through leaves is a large clipped area broken into spots:
    surfaces barely above the clip level. On large photos both are counted on blocks of
    ``factor`` pixels (windows of at least 32 blocks), see :func:`_crowd_grid`."""
    _, _, _, centroids = cv2.connectedComponentsWithStats(spots.astype(np.uint8), connectivity=8)
    crowd, factor = _crowd_grid(centroids[1:], clipped)
    height, width = spots.shape
    return crowd[np.arange(height)[:, None] // factor, np.arange(width)[None, :] // factor]


def _crowd_grid(centroids: np.ndarray, clipped: np.ndarray,
                where: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, int]:
    """:func:`uncrowded`'s share on a grid of factor×factor-pixel blocks (float32), and the
    factor; centroids: (x, y) of the spots (n×2); where: ``np.nonzero(clipped)`` when the caller
    has it. The counting windows are a few hundred pixels wide on a phone photo, so blocks of
    1/32 of the window change the counts only at the windows' edges."""
    height, width = clipped.shape
    side = 2 * int(round(CROWD_RADIUS_FRACTION * math.hypot(height, width))) + 1
    factor = max(1, side // 32)
    grid_h, grid_w = -(-height // factor), -(-width // factor)
    if not len(centroids) and not clipped.any():
        return np.ones((grid_h, grid_w), np.float32), factor  # no spots, nothing clipped: 1 / (1 + 0 + 0)
    centres = np.zeros((grid_h, grid_w), np.float32)
    if len(centroids):
        cx = np.clip(np.round(centroids[:, 0]).astype(int), 0, width - 1) // factor
        cy = np.clip(np.round(centroids[:, 1]).astype(int), 0, height - 1) // factor
        np.add.at(centres, (cy, cx), 1.0)
    side_cells = max(1, side // factor) | 1
    wide_cells = max(1, (4 * side + 1) // factor) | 1
    if factor == 1:
        clipped_share = clipped.astype(np.float32)
    elif where is not None and grid_h * factor - height < height and grid_w * factor - width < width:
        clipped_share = _block_share(where, height, width, factor)
    else:  # share of clipped pixels per block (edge blocks padded by reflection)
        padded = np.pad(clipped, ((0, grid_h * factor - height), (0, grid_w * factor - width)), mode="reflect")
        clipped_share = padded.reshape(grid_h, factor, grid_w, factor).mean(axis=(1, 3), dtype=np.float32)
    nearby = cv2.boxFilter(centres, -1, (side_cells, side_cells), normalize=False, borderType=cv2.BORDER_CONSTANT)
    share = cv2.boxFilter(clipped_share, -1, (wide_cells, wide_cells), borderType=cv2.BORDER_REFLECT)
    others = np.maximum(nearby - 1, 0)
    return (1.0 / (1.0 + (others / CROWD_COUNT) ** 2 + (share / CROWD_CLIPPED) ** 2)).astype(np.float32), factor


def _block_share(where: tuple[np.ndarray, np.ndarray], height: int, width: int, factor: int) -> np.ndarray:
    """The share of clipped pixels per factor×factor block, float32, equal bit for bit to the mean
    of the mask padded by reflection (numpy's "reflect", padding shorter than the image) over
    each block, counted from the clipped pixels' coordinates ``where`` alone."""
    grid_h, grid_w = -(-height // factor), -(-width // factor)
    rows, cols = (np.asarray(index, np.int64) for index in where)
    # a pixel's mirror image 2·(size − 1) − index lies in the padding when it is past the edge
    mirror_rows, mirror_cols = 2 * (height - 1) - rows, 2 * (width - 1) - cols
    in_rows = (mirror_rows >= height) & (mirror_rows < grid_h * factor)
    in_cols = (mirror_cols >= width) & (mirror_cols < grid_w * factor)
    both = in_rows & in_cols
    padded_rows = np.concatenate([rows, mirror_rows[in_rows], rows[in_cols], mirror_rows[both]])
    padded_cols = np.concatenate([cols, cols[in_rows], mirror_cols[in_cols], mirror_cols[both]])
    counts = np.bincount((padded_rows // factor) * grid_w + padded_cols // factor,
                         minlength=grid_h * grid_w).reshape(grid_h, grid_w)
    return _share_lookup(factor)[counts]


@functools.lru_cache(maxsize=8)
def _share_lookup(factor: int) -> np.ndarray:
    # k clipped pixels of factor² → their float32 mean as ndarray.mean(dtype=float32) computes it:
    # the exact float32 count divided by the count of items, an intp (read-only: shared)
    table = np.arange(factor * factor + 1, dtype=np.float32)
    np.true_divide(table, np.intp(factor * factor), out=table, casting="unsafe")
    table.flags.writeable = False
    return table


def light_spots(clipped: np.ndarray) -> np.ndarray:
    """True on the clipped pixels that form small spots (connected areas no larger than a disc
    of SPOT_RADIUS_FRACTION of the diagonal, at least 2 px radius)."""
    return _spots(clipped)[0]


def _spots(clipped: np.ndarray, where: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`light_spots` and the spots' centroids (x, y), n×2; where: ``np.nonzero(clipped)``
    when the caller has it."""
    spots, _, centroids = _spot_mask(clipped, mask_positions(clipped) if where is None else where)
    return spots, centroids


def _spot_mask(clipped: np.ndarray, where: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`light_spots`, whether each clipped pixel (``where = np.nonzero(clipped)``) is in a
    spot (bool, in the order of ``where``), and the spots' centroids (x, y), n×2."""
    rows, columns = where
    spots = np.zeros(clipped.shape, bool)
    if rows.size == 0:
        return spots, np.zeros(0, bool), np.empty((0, 2))
    in_spot, centroids = _spot_flags(clipped, (rows, columns))
    spots[rows[in_spot], columns[in_spot]] = True
    return spots, in_spot, centroids


def _spot_flags(clipped: np.ndarray, where: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Whether each clipped pixel (``where = np.nonzero(clipped)``, not empty) belongs to a light
    spot (bool, in the order of ``where``), and the spots' centroids (x, y), n×2. The components
    are found in the clipped pixels' bounding box, read in place (a bool mask is 0/1 bytes), with
    16-bit labels unless there are too many components for them (half the label image's memory)."""
    rows, columns = where
    height, width = clipped.shape
    max_area = math.pi * max(2.0, SPOT_RADIUS_FRACTION * math.hypot(height, width)) ** 2
    y0, x0 = int(rows[0]), int(columns.min())  # rows come sorted (row-major order)
    box = clipped[y0:int(rows[-1]) + 1, x0:int(columns.max()) + 1]
    box = box.view(np.uint8) if box.dtype == bool else box.astype(np.uint8)
    try:
        count, labels, stats, centroids = cv2.connectedComponentsWithStats(box, connectivity=8, ltype=cv2.CV_16U)
    except cv2.error:  # 65535 components or more: OpenCV refuses 16-bit labels
        count, labels, stats, centroids = cv2.connectedComponentsWithStats(box, connectivity=8, ltype=cv2.CV_32S)
    small = stats[:, cv2.CC_STAT_AREA] <= max_area
    small[0] = False  # label 0 is the unclipped rest
    in_spot = small[np.take(labels, (rows - y0) * labels.shape[1] + (columns - x0))]
    return in_spot, centroids[small] + (x0, y0)
