"""Lights in night photos: their true energy, and the glare and starburst around them.

A stopped-down camera records a street lamp as a clipped core of many pixels wrapped in veiling
glare (a wide halo) and diffraction spikes. The halo is linear in the light's energy, so its
level just outside the core tells how bright the core really was. For each fully clipped core
(brightest pixel ≥ FULL_CLIP) whose surroundings are dark, in a photo that is mostly dark:

1. The halo is fitted: predicted(p) = g·(K0 ∗ core)(p), with K0 a power-law kernel
   (1 + (r/r0)²)^(−3/2) (r0 = GLARE_R0_FRACTION of the diagonal, normalised over 24·r0) and
   g = GLARE_SHARE the share of the energy a lens spreads into it. Per channel, the radiance
   above the clip level is the median over the first ring around the core of
   (observed − background) / predicted (the median ignores the spikes crossing the ring), and no
   more than over the next, wider ring; the background is a low percentile of the surroundings.
   This gives the core's linear radiance L ≥ 1 (the light's energy is L times its core area) and
   its colour, which the clipped core (white) has lost.
   Not lamps: a core whose rings disagree by more than FALLOFF_MISMATCH (glare falls off as the
   kernel; a lit surface falls off slower, a fuzzy object such as a galaxy faster), or whose
   first ring is brighter than HALO_MAX (glare right next to a core is faint).
2. The fitted halo is subtracted around the core, and the starburst spikes (thin bright rays)
   are removed with a grey opening (5×5 ellipse) within the lamp's zone (2·r0 per doubling of
   its energy).

Both are weighted by how "night" the place is: ``night_weight`` of the whole photo (the share
of dark pixels) times that of the lamp's surroundings, so daylight clipped areas (walls, skies,
water, glints on pavement) are not treated as lamps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from lensblur.color import linear_to_srgb, luminance, srgb_to_linear

GLARE_SHARE = 0.045          # share of a light's energy (above the clip level) in its glare halo
GLARE_R0_FRACTION = 0.003    # halo core width r0 as a fraction of the image diagonal (≥ 1.2 px)
DARK_LEVEL = 0.2             # encoded luminance below which a pixel counts as dark
NIGHT_SHARE = (0.45, 0.75)   # share of dark pixels over which a photo (or surround) turns "night"
MAX_CORE_FRACTION = 0.025    # largest core radius treated as a lamp, fraction of the diagonal
MAX_RADIANCE = 5000.0        # cap on a recovered core radiance (linear, clip level 1)
FULL_CLIP = 0.996            # a lamp's core reaches this linear level (255 in 8 bits) somewhere
HALO_MAX = 0.2               # largest median linear level of the first ring around a lamp core
FALLOFF_MISMATCH = 3.0       # outer-ring estimate this many times the inner one: not glare
DIRECT_HALO_PIXELS = 48      # cores (in halo blocks) up to this many pixels sum the kernel directly
MAX_LAMPS = 4000             # at most this many cores are analysed (largest first)


@dataclass
class Lights:
    """The lamps found in a photo.

    radiance: float32 H×W, the estimated linear radiance (brightest channel) of lamp-core pixels
    (0 elsewhere);
    weight: float32 H×W in [0, 1], how surely each core pixel is a night lamp (0 elsewhere);
    cleaned: float32 H×W×3, the linear image with glare and spikes removed around the lamps
    and lamp cores given the colour of their halo (blended by each lamp's weight); count: lamps found.
    """

    radiance: np.ndarray
    weight: np.ndarray
    cleaned: np.ndarray
    count: int


def night_weight(dark_share: float | np.ndarray) -> np.ndarray:
    """0 for a share of dark pixels below NIGHT_SHARE[0], 1 above NIGHT_SHARE[1], smoothstep between."""
    t = np.clip((np.asarray(dark_share, np.float32) - NIGHT_SHARE[0]) / (NIGHT_SHARE[1] - NIGHT_SHARE[0]), 0, 1)
    return (t * t * (3 - 2 * t)).astype(np.float32)


def glare_r0(shape: tuple[int, int]) -> float:
    """The assumed halo core width in pixels for an image of ``shape``."""
    return max(1.2, GLARE_R0_FRACTION * math.hypot(*shape))


def find_lights(linear: np.ndarray, clipped: np.ndarray) -> Lights | None:
    """Lamps among the ``clipped`` cores (bool H×W) of ``linear`` (H×W×3 in [0, 1]); None when the
    photo is not dark enough to hold any, or none is found (see module doc)."""
    dark_level = srgb_to_linear(np.float32(DARK_LEVEL))  # linear_to_srgb(lum) < DARK_LEVEL, without encoding
    # share of dark pixels outside the clipped ones, counted without gathering them
    open_count = clipped.size - np.count_nonzero(clipped)
    photo_night = float(night_weight(_dark_open(linear, clipped, dark_level) / open_count if open_count else 0.0))
    if photo_night <= 0:
        return None
    lum = luminance(linear)
    dark = lum < dark_level
    height, width = clipped.shape
    r0 = glare_r0(clipped.shape)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(clipped.astype(np.uint8), connectivity=8)
    max_area = math.pi * (MAX_CORE_FRACTION * math.hypot(height, width)) ** 2
    order = [i for i in np.argsort(-stats[:, cv2.CC_STAT_AREA], kind="stable") if i and stats[i, 4] <= max_area]
    lights = Lights(np.zeros((height, width), np.float32), np.zeros((height, width), np.float32),
                    linear.astype(np.float32, copy=True), 0)
    halo_model = _HaloModel(r0)
    near_clipped = cv2.dilate(clipped.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))) > 0
    for label in order[:MAX_LAMPS]:
        x, y, w, h, area = (int(v) for v in stats[label])
        core_radius = math.sqrt(area / math.pi)
        margin = int(min(max(4 * core_radius + 8 * r0 + 8, 16), 128))
        box = (slice(max(y - margin, 0), min(y + h + margin, height)),
               slice(max(x - margin, 0), min(x + w + margin, width)))
        core = labels[box] == label
        if float(linear[box][core].max()) < FULL_CLIP:
            continue  # barely clipped: a bright object, not a light far above the clip level
        others = near_clipped[box] & ~cv2.dilate(core.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        distance = cv2.distanceTransform((~core).astype(np.uint8), cv2.DIST_L2, 5)
        far = (distance > 0.6 * margin) & ~others
        if far.sum() < 8:
            continue
        lamp_weight = photo_night * float(night_weight(dark[box][far].mean()))
        if lamp_weight <= 0:
            continue
        predicted = halo_model.predict(core)
        fit = _fit_halo(linear[box], lum[box], predicted, distance, ~others, far,
                        max(3.0, 1.5 * r0, core_radius))
        if fit is None:
            continue
        peak, tint = fit
        lights.radiance[box][core] = peak
        lights.weight[box][core] = lamp_weight
        lights.count += 1
        reach = min(margin, core_radius + 2 * r0 * math.log2(1 + (peak - 1) * area))
        _remove_glare(lights.cleaned[box], core, clipped[box], distance, reach,
                      (GLARE_SHARE * (peak - 1.0)) * predicted[..., None] * tint, tint, lamp_weight)
    return lights if lights.count else None


def _dark_open(linear: np.ndarray, clipped: np.ndarray, level, rows: int = 256) -> int:
    """How many pixels outside ``clipped`` have a linear luminance below ``level``, counted on
    bands of ``rows`` rows: most photos are not dark, and then no full-size luminance is made."""
    count = 0
    for y in range(0, clipped.shape[0], rows):
        dark = luminance(linear[y:y + rows]) < level
        count += np.count_nonzero(dark) - np.count_nonzero(dark & clipped[y:y + rows])
    return count


def _fit_halo(rgb, lum, predicted, distance, usable, far, ring_width):
    """(peak radiance, colour with brightest channel 1) of a core from its halo, or None when the
    surroundings do not look like glare. rgb, lum: the crop (linear); predicted: halo per unit
    radiance; distance: px from the core; usable: pixels clear of other cores; far: the
    surroundings the background is read from."""
    background = np.percentile(rgb[far], 30, axis=0)
    usable = usable & (predicted > 1e-6)
    inner = (distance >= 1.5) & (distance <= 1.5 + ring_width) & usable
    outer = (distance > 1.5 + ring_width) & (distance <= 1.5 + 3 * ring_width) & usable
    if inner.sum() < 4 or float(np.median(lum[inner])) > HALO_MAX:
        return None
    excess = np.median((rgb[inner] - background) / predicted[inner][:, None], axis=0)
    if outer.sum() >= 8:
        further = np.median((rgb[outer] - background) / predicted[outer][:, None], axis=0)
        ratio = float(further.max()) / max(float(excess.max()), 1e-6)
        if not 1 / FALLOFF_MISMATCH <= ratio <= FALLOFF_MISMATCH:
            return None
        excess = np.minimum(excess, further)
    excess = np.maximum(excess / GLARE_SHARE, 0.0)
    peak = float(np.clip(1.0 + float(excess.max()), 1.0, MAX_RADIANCE))
    return peak, np.clip((1.0 + excess) / peak, 0.0, 1.0)


def _remove_glare(patch, core, clipped, distance, reach, halo, tint, weight):
    """In place on ``patch`` (linear crop): subtract ``halo`` and open away the spikes within
    ``reach`` px of the core (other clipped cores kept), give the core its colour ``tint``; all
    blended by ``weight``."""
    zone = (distance >= 1.0) & (distance <= reach) & ~clipped
    without_halo = np.maximum(patch - halo, 0.0)
    opened = cv2.morphologyEx(without_halo, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
    patch[zone] += weight * (np.minimum(without_halo, opened)[zone] - patch[zone])
    core_peak = patch[core].max(axis=1, keepdims=True)
    patch[core] += weight * (core_peak * tint - patch[core])


class _HaloModel:
    """The assumed halo kernel K0 (normalised over 24·r0), convolved with a core mask. Where r0 is
    large (big photos) the convolution runs on blocks of about r0/3 px (core pixels counted per
    block, the kernel sampled at block spacing) and is upsampled: the halo is smooth at that scale."""

    def __init__(self, r0: float):
        self.factor = max(1, int(r0 / 3))
        step = r0 / self.factor  # r0 in block units
        reach = int(math.ceil(24 * step))
        y, x = np.mgrid[-reach:reach + 1, -reach:reach + 1].astype(np.float32)
        kernel = (1 + (x * x + y * y) / np.float32(step * step)) ** -1.5
        if self.factor == 1:
            kernel[reach, reach] = 0
        self.kernel = (kernel / kernel.sum()).astype(np.float32)

    def predict(self, core: np.ndarray) -> np.ndarray:
        """Halo per unit radiance above the clip level of a uniform ``core`` (bool h×w), float32."""
        f = self.factor
        height, width = core.shape
        counts = core.astype(np.float32)
        if f > 1:
            counts = cv2.resize(counts, (-(-width // f), -(-height // f)), interpolation=cv2.INTER_AREA) * f * f
        # within an h×w crop no offset exceeds max(h, w): the rest of the kernel cannot contribute
        reach = self.kernel.shape[0] // 2
        cut = min(reach, max(counts.shape))
        kernel = self.kernel[reach - cut:reach + cut + 1, reach - cut:reach + cut + 1]
        ys, xs = np.nonzero(counts)
        if ys.size <= DIRECT_HALO_PIXELS:
            halo = self._direct(counts, ys, xs, kernel)
        else:
            halo = cv2.filter2D(counts, -1, kernel, borderType=cv2.BORDER_CONSTANT)
        if f > 1:
            halo = cv2.resize(halo, (width, height), interpolation=cv2.INTER_LINEAR) / (f * f)
        return halo

    @staticmethod
    def _direct(counts, ys, xs, kernel):
        """filter2D's sum for a core of few pixels (the kernel is symmetric): one shifted copy of
        the kernel per core pixel, far cheaper than the large convolution for small lamps."""
        height, width = counts.shape
        cut = kernel.shape[0] // 2
        span = max(height, width)
        if cut < span:  # offsets beyond the kernel's reach contribute nothing
            kernel = np.pad(kernel, span - cut)
            cut = span
        halo = np.zeros((height, width), np.float32)
        for y, x in zip(ys, xs):
            halo += counts[y, x] * kernel[cut - y:cut - y + height, cut - x:cut - x + width]
        return halo
