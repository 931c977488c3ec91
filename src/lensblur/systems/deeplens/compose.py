"""In-focus pass-through: where the thin lens leaves a pixel sharp, the output is the input.

Not in the paper (a documented deviation, docs/deeplens.md): the DeepLens network renders every
pixel, in-focus ones included, and a small network run below full resolution and brought back by
guided upsampling loses a little texture there and leaves a slight haze. The thin-lens model says
exactly which pixels stay sharp: those whose own circle of confusion is below about half a pixel
*and* that no nearer defocused surface spreads over (a blurred foreground covers the in-focus
background within its radius; a blurred background is hidden behind an in-focus subject). The
renderer keeps the input there and the network's output everywhere else, with a soft ramp between.
"""

from __future__ import annotations

import cv2
import numpy as np

SHARP_RADIUS = 0.5   # pixels: below this reach the output is the input
FULL_RADIUS = 1.0    # pixels: from this reach on the output is the network's
_STEP = 1.25         # ratio between the radius thresholds of the foreground spread


def blur_reach(coc: np.ndarray, sharp: float = SHARP_RADIUS) -> np.ndarray:
    """Largest blur radius reaching each pixel, float32 H×W, pixels ≥ 0: the larger of the pixel's
    own |c| and max over nearer defocused pixels q of c(q) − |p − q| (the foreground's disc
    spreading over what lies behind it).

    coc: signed circle of confusion in pixels, float32 H×W (c > 0: nearer than the focus).
    The spread is computed for thresholds ``sharp``·1.25^k and the largest c, with a Euclidean
    distance transform each, so it is exact to within a factor 1.25 of the radius.
    """
    coc = np.asarray(coc, dtype=np.float32)
    reach = np.abs(coc)
    front = np.maximum(coc, 0.0)
    largest = float(front.max()) if front.size else 0.0
    thresholds = []
    while sharp * _STEP ** len(thresholds) < largest:
        thresholds.append(sharp * _STEP ** len(thresholds))
    for threshold in thresholds + [largest] if largest > sharp else []:
        outside = (front < threshold).astype(np.uint8)
        distance = cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        np.maximum(reach, threshold - distance, out=reach)
    return reach


def network_share(coc: np.ndarray, sharp: float = SHARP_RADIUS, full: float = FULL_RADIUS) -> np.ndarray:
    """Weight of the network's output per pixel, float32 H×W in [0, 1]: 0 where
    :func:`blur_reach` is at most ``sharp`` pixels (the input is kept), 1 from ``full`` pixels on,
    a smoothstep between. coc: signed circle of confusion in pixels, float32 H×W."""
    t = np.clip((blur_reach(coc, sharp) - sharp) / (full - sharp), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def compose(image: np.ndarray, rendered: np.ndarray, share: np.ndarray) -> np.ndarray:
    """``image`` where ``share`` is 0, ``rendered`` where it is 1, a blend between: H×W×3 arrays
    of the same encoding, share H×W in [0, 1] → float32 H×W×3."""
    share = share[..., None]
    return (image + share * (rendered - image)).astype(np.float32)
