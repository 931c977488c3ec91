"""The core renderer: occlusion-aware, layered scatter of linear radiance.

Method (docs/renderer.md has the full argument):
1. Clipped highlights get their radiance recovered (lensblur.highlights).
2. Pixels are split into depth slabs by their signed circle of confusion c (back to front),
   with slab edges at |c| = 0.5, 1, 2, 4 and then every half octave, so pixels in one slab
   have similar blur and only slabs occlude each other.
3. Each slab is extended behind the nearer content it borders: every pixel hidden by nearer
   slabs takes the colour and blur of the nearest visible pixel behind it, and it belongs to
   the slab of that pixel (a Voronoi split of the hidden area), up to the distance the nearer
   blur can reveal. So a blurred foreground edge reveals plausible background, and a smooth
   surface split across two slabs stays opaque along the split (no seams).
4. Each slab scatters its premultiplied radiance and coverage: every pixel spreads its value
   over its own anti-aliased aperture-shaped disc of radius |c| (exact, continuous radius). Slabs
   with large blur are scattered at 1/2, 1/4, ... resolution so that the cost per pixel stays
   flat in the radius.
5. Slabs are composited back to front with the over operator; the result is divided by the
   accumulated coverage (which only differs from 1 next to the image border).
"""

from __future__ import annotations

import math

import cv2
import numba
import numpy as np
from scipy import ndimage

from lensblur.grain import add_grain, estimate_noise
from lensblur.highlights import recover_highlights
from lensblur.lens import Lens, signed_coc
from lensblur.render import register
from lensblur.render.kernels import block_sum, composite_over, scatter_spans
from lensblur.render.spans import span_table

LEVEL_RADIUS = 8.0        # largest radius scattered at a level's own resolution, pixels
IN_FOCUS_RADIUS = 0.5     # |c| below this is a point: copied, not scattered
ANALYSIS_PIXELS = 250_000  # size of the grid on which hidden areas are assigned to slabs
HIGHLIGHT_RADIANCE = 1.0   # pixels brighter than this (recovered lights) scatter at full resolution
HIGHLIGHT_BUDGET = 4e7     # most disc rows spent on them per slab before falling back


@register("scatter")
def render_scatter(image: np.ndarray, disparity: np.ndarray, lens: Lens, matte: np.ndarray | None = None) -> np.ndarray:
    """Occlusion-aware layered scatter (the default renderer); see the module docstring.

    image: linear float32 H×W×3 in [0, 1]; disparity: float32 H×W in [0, 1]; lens: settings;
    matte: optional subject alpha (H×W, [0, 1]); pixels where it exceeds 0.5 are kept in the
    subject's slab. Returns linear float32 H×W×3 (highlights may exceed 1).
    """
    coc = signed_coc(disparity, lens.blur, lens.focus_disparity, lens.focus_range)
    if matte is not None:
        coc = _snap_subject_to_focus(coc, matte)
    radiance = recover_highlights(image, coc, lens.highlights)
    result = scatter_layers(radiance, coc, lens.aperture)
    if lens.grain is not None:
        sigma = estimate_noise(image) if lens.grain == "auto" else float(lens.grain)
        result = add_grain(result, coc, sigma)
    return result


def scatter_layers(radiance: np.ndarray, coc: np.ndarray, aperture) -> np.ndarray:
    """Layered, occlusion-aware scatter of linear ``radiance`` (H×W×3) by signed ``coc`` (H×W, px)."""
    radiance = np.ascontiguousarray(radiance, dtype=np.float32)
    coc = np.ascontiguousarray(coc, dtype=np.float32)
    height, width = coc.shape
    edges = slab_edges(float(np.abs(coc).max()))
    labels = np.digitize(coc, edges).astype(np.int16)
    table = span_table(aperture, LEVEL_RADIUS + 1.0)
    hidden_owners = HiddenAreaOwners(radiance, coc, labels, edges)
    accumulated = np.zeros((height, width, 4), dtype=np.float32)
    radius = np.abs(coc)
    for label in np.flatnonzero(np.bincount(labels.ravel() - labels.min()) > 0) + labels.min():
        own = labels == label
        hidden = hidden_owners.hidden_part(int(label), own)
        upper = _slab_upper_radius(int(label), edges)
        scale = 1 if upper <= LEVEL_RADIUS else 2 ** math.ceil(math.log2(upper / LEVEL_RADIUS))
        scattered = _scatter_slab(radiance, radius, own, hidden, scale, upper <= IN_FOCUS_RADIUS, table, aperture)
        if scattered is not None:
            composite_over(accumulated, *scattered)
    coverage = accumulated[..., 3:4]
    return np.where(coverage > 1e-6, accumulated[..., :3] / np.maximum(coverage, 1e-6), radiance).astype(np.float32)


def slab_edges(max_radius: float) -> np.ndarray:
    """Sorted signed c values separating slabs: ±0.5, ±1, ±2, ±4, then every half octave."""
    magnitudes = [IN_FOCUS_RADIUS, 1.0, 2.0, 4.0]
    while magnitudes[-1] < max_radius:
        magnitudes.append(magnitudes[-1] * math.sqrt(2))
    positive = np.array(magnitudes, dtype=np.float32)
    return np.concatenate([-positive[::-1], positive])


def _slab_upper_radius(label: int, edges: np.ndarray) -> float:
    """Largest |c| a slab can hold (labels come from np.digitize against ``edges``)."""
    low = edges[label - 1] if label > 0 else -np.inf
    high = edges[label] if label < len(edges) else np.inf
    bound = max(abs(low), abs(high))
    if not np.isfinite(bound):  # the outermost slabs end at the largest |c| (their inner edge ≥ 0.5)
        bound = abs(edges[0]) * math.sqrt(2)
    return float(bound)


def _scatter_slab(radiance, radius, own, hidden, scale, in_focus, table, aperture):
    """Premultiplied (rgb, α) of one slab (its own pixels plus the hidden pixels it extends to),
    cropped, at 1/scale resolution (or at full resolution when it holds lights); returns
    (layer, scale, y0, x0) or None when the slab is empty."""
    membership = own
    if hidden is not None:
        membership = own.copy()
        membership[hidden[0], hidden[1]] = True
    rows = np.flatnonzero(membership.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(membership.any(axis=0))
    margin = 0 if in_focus else int(math.ceil(LEVEL_RADIUS + 2))
    height, width = membership.shape
    low_h, low_w = -(-height // scale), -(-width // scale)
    y0 = max(rows[0] // scale - margin, 0)
    x0 = max(cols[0] // scale - margin, 0)
    y1 = min(rows[-1] // scale + margin + 1, low_h)
    x1 = min(cols[-1] // scale + margin + 1, low_w)
    crop = (slice(y0 * scale, y1 * scale), slice(x0 * scale, x1 * scale))
    colour_crop, radius_crop = radiance[crop], radius[crop]
    membership_crop = membership[crop].astype(np.float32)
    if hidden is not None:
        colour_crop, radius_crop = colour_crop.copy(), radius_crop.copy()
        at = (hidden[0] - y0 * scale, hidden[1] - x0 * scale)
        colour_crop[at] = hidden[2]
        radius_crop[at] = hidden[3]
    lights = None
    if scale > 1:
        # Bright lights are scattered at full resolution so their bokeh keeps a crisp outline.
        peak = np.maximum(np.maximum(colour_crop[..., 0], colour_crop[..., 1]), colour_crop[..., 2])
        lights = np.nonzero((membership_crop > 0) & (peak > HIGHLIGHT_RADIANCE))
        if lights[0].size * (2 * float(radius_crop.max()) + 1) > HIGHLIGHT_BUDGET:
            lights = None
        elif lights[0].size:
            membership_crop[lights] = 0
    sums, radius_low = block_sum(np.ascontiguousarray(colour_crop), np.ascontiguousarray(membership_crop),
                                 np.ascontiguousarray(radius_crop), scale, y1 - y0, x1 - x0)
    if in_focus:
        return sums, 1, y0, x0
    ys, xs = np.nonzero(sums[..., 3] > 0)
    layer = _scatter(ys, xs, sums[ys, xs], np.minimum(radius_low[ys, xs], table.max_radius),
                     (y1 - y0, x1 - x0), table)
    if lights is None or lights[0].size == 0:
        return layer, scale, y0, x0
    full_h, full_w = min((y1 - y0) * scale, height - y0 * scale), min((x1 - x0) * scale, width - x0 * scale)
    layer = cv2.resize(layer, ((x1 - x0) * scale, (y1 - y0) * scale), interpolation=cv2.INTER_LINEAR)
    layer = layer[:full_h, :full_w] / np.float32(scale * scale)
    light_values = np.concatenate([colour_crop[lights], np.ones((lights[0].size, 1), np.float32)], axis=1)
    light_radius = radius_crop[lights]
    layer += _scatter(lights[0], lights[1], light_values, light_radius, (full_h, full_w),
                      span_table(aperture, float(light_radius.max()) + 1.0))
    return layer, 1, y0 * scale, x0 * scale


def _scatter(ys, xs, values, radii, shape, table):
    return scatter_spans(ys.astype(np.int32), xs.astype(np.int32), np.ascontiguousarray(values, dtype=np.float32),
                         np.ascontiguousarray(radii, dtype=np.float32), shape[0], shape[1],
                         table.left, table.right, table.weight, table.reach, table.steps_per_pixel,
                         numba.get_num_threads() * 8)


class HiddenAreaOwners:
    """Assigns the area hidden behind nearer slabs to the slab directly behind it.

    Works on a grid of at most ANALYSIS_PIXELS: for slab l, every cell nearer than l takes the
    nearest cell that is not nearer (Euclidean distance transform); cells whose nearest visible
    cell lies in slab l, within the distance the nearer blur can reveal, extend slab l with that
    cell's colour and blur radius.
    """

    def __init__(self, radiance: np.ndarray, coc: np.ndarray, labels: np.ndarray, edges: np.ndarray):
        height, width = coc.shape
        self.shape = (height, width)
        self.factor = max(1, math.ceil(math.sqrt(height * width / ANALYSIS_PIXELS)))
        small = (max(1, width // self.factor), max(1, height // self.factor))
        self.coc_small = cv2.resize(coc, small, interpolation=cv2.INTER_AREA)
        self.colour_small = cv2.resize(radiance, small, interpolation=cv2.INTER_AREA)
        self.labels_small = np.digitize(self.coc_small, edges).astype(np.int16)
        self.labels = labels
        # map every full-resolution pixel to its analysis cell
        self.cell_y = np.minimum(np.arange(height) * small[1] // height, small[1] - 1)
        self.cell_x = np.minimum(np.arange(width) * small[0] // width, small[0] - 1)
        self.radiance = radiance
        self.radius = np.abs(coc)

    def hidden_part(self, label: int, own: np.ndarray):
        """Pixels hidden behind nearer slabs that slab ``label`` extends to: (ys, xs, colour
        (n×3), radius (n)), or None."""
        nearer_small = self.labels_small > label
        if not nearer_small.any() or nearer_small.all():
            return None
        distance, (iy, ix) = ndimage.distance_transform_edt(nearer_small, return_indices=True)
        reveal = float(np.abs(self.coc_small[nearer_small]).max()) + float(self.radius[own].max()) + 2.0
        owned = nearer_small & (self.labels_small[iy, ix] == label) & (distance * self.factor <= reveal)
        if not owned.any():
            return None
        ys, xs = np.nonzero(owned[np.ix_(self.cell_y, self.cell_x)] & (self.labels > label))
        src_y, src_x = iy[self.cell_y[ys], self.cell_x[xs]], ix[self.cell_y[ys], self.cell_x[xs]]
        return ys, xs, self.colour_small[src_y, src_x], np.abs(self.coc_small[src_y, src_x])


def _snap_subject_to_focus(coc: np.ndarray, matte: np.ndarray) -> np.ndarray:
    """Give the matte's subject one blur: the median c under the confident part of the matte."""
    subject = matte > 0.5
    if not subject.any():
        return coc
    return np.where(subject, np.float32(np.median(coc[subject])), coc).astype(np.float32)
