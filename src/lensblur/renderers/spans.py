"""Precomputed anti-aliased row spans of an aperture at many radii, for the scatter kernels.

A disc (or polygon) of radius r is drawn as one horizontal span per image row: the span's left
and right ends are averaged over sub-rows so the disc edge is anti-aliased vertically, and the
row's weight is the fraction of its height inside the shape. Weights are divided by the shape's
drawn area so every radius spreads a total energy of exactly 1.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from lensblur.aperture import Aperture

STEPS_PER_PIXEL = 8  # radius quantisation of the table; kernels interpolate between entries
SUBROWS = 8


@dataclass(frozen=True)
class SpanTable:
    """Spans for radii 0, 1/q, 2/q, ... max_radius.

    left, right, weight: float32 arrays (n_radii, 2·reach+1); row index i is the offset
    i − reach from the disc centre. Weights are area-normalised.
    reach: int32 (n_radii,), rows each radius touches on either side of the centre.
    steps_per_pixel: q.
    """

    left: np.ndarray
    right: np.ndarray
    weight: np.ndarray
    reach: np.ndarray
    steps_per_pixel: int


def unit_row_bounds(aperture: Aperture, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left and right x of the unit shape's outline at heights y (image y down); NaN outside."""
    y = np.asarray(y, dtype=np.float64)
    if aperture.is_disk:
        half = np.sqrt(np.clip(1 - y * y, 0, None))
        half[np.abs(y) > 1] = np.nan
        return -half, half
    return _polygon_bounds(aperture, y)


def _polygon_bounds(aperture: Aperture, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    angles = np.linspace(0, 2 * math.pi, 4096, endpoint=False)
    rho = aperture.radius_at(angles)
    ox, oy = rho * np.cos(angles), -rho * np.sin(angles)
    top, bottom = int(np.argmin(oy)), int(np.argmax(oy))
    order = np.roll(np.arange(angles.size), -top)
    split = (bottom - top) % angles.size
    chains = [order[:split + 1], np.append(order[split:], order[0])]
    bounds = []
    for chain in chains:
        cy, cx = oy[chain], ox[chain]
        if cy[0] > cy[-1]:
            cy, cx = cy[::-1], cx[::-1]
        cy = np.maximum.accumulate(cy)  # guard tiny non-monotonic steps from sampling
        bounds.append(np.interp(y, cy, cx, left=np.nan, right=np.nan))
    first, second = bounds
    left, right = np.fmin(first, second), np.fmax(first, second)
    outside = (y < oy.min()) | (y > oy.max())
    left[outside] = np.nan
    right[outside] = np.nan
    return left, right


@functools.lru_cache(maxsize=16)
def span_table(aperture: Aperture, max_radius: float, steps_per_pixel: int = STEPS_PER_PIXEL) -> SpanTable:
    """The span table of ``aperture`` for radii up to ``max_radius`` pixels (cached)."""
    n_radii = int(math.ceil(max_radius * steps_per_pixel)) + 2
    radii = np.arange(n_radii) / steps_per_pixel
    reach_max = int(math.ceil(radii[-1] + 0.5))
    left, right, count = _raw_spans(aperture, n_radii, reach_max, steps_per_pixel)
    weight = count / SUBROWS
    # Radius 0 (and radii so small that no sub-row hits) is a single pixel.
    empty = weight.sum(axis=1) == 0
    left[empty], right[empty], weight[empty] = 0, 0, 0
    left[empty, reach_max], right[empty, reach_max], weight[empty, reach_max] = -0.5, 0.5, 1.0
    area = (weight * (right - left)).sum(axis=1)
    weight = weight / area[:, None]
    reach = np.array([int(math.ceil(r + 0.5)) for r in radii], dtype=np.int32)
    return SpanTable(left.astype(np.float32), right.astype(np.float32), weight.astype(np.float32),
                     reach, steps_per_pixel)


RAW_BLOCK = 16 * STEPS_PER_PIXEL  # radii are computed in blocks of 16 px, so a render's slabs share them


def _raw_spans(aperture: Aperture, n_radii: int, reach_max: int,
               steps_per_pixel: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Span ends (pixels) and inside sub-row counts (float64, fresh copies) of radii
    ``arange(n_radii) / steps_per_pixel`` on rows −reach_max..reach_max: slices of a table
    computed for a few more radii and rows (cached), with the same values element by element."""
    block = -(-n_radii // RAW_BLOCK) * RAW_BLOCK
    left, right, count = _raw_block(aperture, block, steps_per_pixel)
    centre = (left.shape[1] - 1) // 2
    rows = slice(centre - reach_max, centre + reach_max + 1)
    return left[:n_radii, rows].copy(), right[:n_radii, rows].copy(), count[:n_radii, rows].copy()


@functools.lru_cache(maxsize=8)
def _raw_block(aperture: Aperture, n_radii: int, steps_per_pixel: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Read-only once built: threads share it (the web app renders on several).
    radii = np.arange(n_radii) / steps_per_pixel
    reach_max = int(math.ceil(radii[-1] + 0.5))
    rows = np.arange(-reach_max, reach_max + 1)
    sub = (np.arange(SUBROWS) + 0.5) / SUBROWS - 0.5
    y = rows[None, :, None] + sub[None, None, :]                      # pixels
    with np.errstate(divide="ignore", invalid="ignore"):
        unit_y = y / np.maximum(radii, 1e-9)[:, None, None]
    left_u, right_u = unit_row_bounds(aperture, unit_y.ravel())
    left_u = left_u.reshape(unit_y.shape)
    right_u = right_u.reshape(unit_y.shape)
    inside = np.isfinite(left_u)
    count = inside.sum(axis=2)
    with np.errstate(invalid="ignore"):
        left = np.where(count > 0, np.nansum(np.where(inside, left_u, 0), axis=2) / np.maximum(count, 1), 0)
        right = np.where(count > 0, np.nansum(np.where(inside, right_u, 0), axis=2) / np.maximum(count, 1), 0)
    left *= radii[:, None]
    right *= radii[:, None]
    for array in (left, right, count):
        array.flags.writeable = False
    return left, right, count
