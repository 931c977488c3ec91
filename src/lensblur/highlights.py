"""Radiance recovery of clipped highlights (the "radiance virtualization" of D2F).

A camera clips lights at 1.0, so blurring the saved image turns street lamps into dim grey
discs. Pixels near the clip level get their linear radiance boosted before blurring, so their
out-of-focus discs come out bright. Pixels that stay sharp are not boosted (they would clip back
anyway, and this keeps in-focus pixels exactly unchanged), and slightly defocused ones are
boosted less, so a sunlit edge just out of focus does not glow.
"""

from __future__ import annotations

import numpy as np

from lensblur.color import linear_to_srgb, srgb_to_linear
from lensblur.lens import Highlights

FADE_START, FADE_END = 1.0, 6.0  # |c| in pixels over which the boost fades in


def recover_highlights(linear: np.ndarray, coc: np.ndarray, settings: Highlights | None) -> np.ndarray:
    """Boosted linear radiance, float32 H×W×3.

    linear: H×W×3 linear image in [0, 1]; coc: signed circle of confusion in pixels (H×W);
    settings: threshold (encoded level in (0, 1) where boosting starts) and strength (a pixel at
    the clip level is multiplied by 1 + strength). The boost rises smoothly (smoothstep) from the
    threshold to the clip level and fades in as |c| grows from 0.5 to 2 px.
    """
    if settings is None or not settings.enabled:
        return linear
    peak = np.maximum(np.maximum(linear[..., 0], linear[..., 1]), linear[..., 2])
    bright = np.nonzero((peak >= srgb_to_linear(np.float32(settings.threshold))) & (np.abs(coc) > 0.5))
    if bright[0].size == 0:
        return linear
    t = np.clip((linear_to_srgb(peak[bright]) - settings.threshold) / max(1.0 - settings.threshold, 1e-6), 0, 1)
    u = np.clip((np.abs(coc[bright]) - FADE_START) / (FADE_END - FADE_START), 0.0, 1.0)
    gain = 1.0 + np.float32(settings.strength) * (t * t * (3 - 2 * t)) * (u * u * (3 - 2 * u))
    boosted = linear.copy()
    boosted[bright] *= gain[:, None].astype(np.float32)
    return boosted
