"""Radiance recovery of clipped highlights (the "radiance virtualization" of D2F).

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

import math

import cv2
import numpy as np

from lensblur.color import linear_to_srgb, srgb_to_linear
from lensblur.lens import Highlights

FADE_START, FADE_END = 1.0, 6.0     # |c| in pixels over which the boost fades in
SPOT_RADIUS_FRACTION = 0.004        # largest light spot radius, as a fraction of the diagonal
AREA_SHARE = 0.1                    # share of the boost that large clipped areas get


def recover_highlights(linear: np.ndarray, coc: np.ndarray, settings: Highlights | None) -> np.ndarray:
    """Boosted linear radiance, float32 H×W×3: ``linear`` times :func:`highlight_gain` (the
    input itself when nothing is boosted, a new array otherwise).

    linear: H×W×3 linear image in [0, 1]; coc: signed circle of confusion in pixels (H×W);
    settings: see :func:`highlight_gain`.
    """
    gain = highlight_gain(linear, coc, settings)
    return linear if gain is None else linear * gain[..., None]


def highlight_gain(linear: np.ndarray, coc: np.ndarray, settings: Highlights | None) -> np.ndarray | None:
    """Per-pixel radiance gain (float32 H×W, ≥ 1), or None when no pixel is boosted.

    linear: H×W×3 linear image in [0, 1]; coc: signed circle of confusion in pixels (H×W);
    settings: threshold (encoded level in (0, 1) where boosting starts) and strength (a clipped
    light spot is multiplied by up to 1 + strength). The boost rises smoothly (smoothstep) from
    the threshold to the clip level and fades in (smoothstep) as |c| grows from FADE_START to
    FADE_END pixels.
    """
    if settings is None or not settings.enabled:
        return None
    peak = np.maximum(np.maximum(linear[..., 0], linear[..., 1]), linear[..., 2])
    candidate = peak >= srgb_to_linear(np.float32(settings.threshold))
    bright = np.nonzero(candidate & (np.abs(coc) > FADE_START))
    if bright[0].size == 0:
        return None
    share = np.where(light_spots(candidate)[bright], np.float32(1.0), np.float32(AREA_SHARE))
    t = np.clip((linear_to_srgb(peak[bright]) - settings.threshold) / max(1.0 - settings.threshold, 1e-6), 0, 1)
    u = np.clip((np.abs(coc[bright]) - FADE_START) / (FADE_END - FADE_START), 0.0, 1.0)
    gain = np.ones(peak.shape, np.float32)
    gain[bright] = 1.0 + np.float32(settings.strength) * share * (t * t * (3 - 2 * t)) * (u * u * (3 - 2 * u))
    return gain


def light_spots(clipped: np.ndarray) -> np.ndarray:
    """True on the clipped pixels that form small spots (connected areas no larger than a disc
    of SPOT_RADIUS_FRACTION of the diagonal, at least 2 px radius)."""
    height, width = clipped.shape
    max_area = math.pi * max(2.0, SPOT_RADIUS_FRACTION * math.hypot(height, width)) ** 2
    count, labels, stats, _ = cv2.connectedComponentsWithStats(clipped.astype(np.uint8), connectivity=8)
    small = stats[:, cv2.CC_STAT_AREA] <= max_area
    small[0] = False  # label 0 is the unclipped rest
    return small[labels]
