"""Reference renderers that bound the others from below: ``identity`` and ``naive``.

identity: the input unchanged (what "no blur" scores).
naive: the classic gather blur without occlusion handling. The sRGB-encoded input is blurred by
aperture-shaped kernels at a handful of radii (0, 1, 2, 4, 8, 16, 32, scaled up when the largest
|c| exceeds 32) and each pixel takes the linear blend of the two copies that bracket its |c|.
Sharp foreground edges therefore bleed into blurred backgrounds and highlights stay dull.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np

from lensblur.aperture import Aperture
from lensblur.color import linear_to_srgb, srgb_to_linear
from lensblur.lens import Lens, signed_coc
from lensblur.renderers import register

NAIVE_RADII = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


@register("identity")
def render_identity(image: np.ndarray, disparity: np.ndarray, lens: Lens, matte=None) -> np.ndarray:
    """The input image, unchanged (a copy, linear float32 H×W×3)."""
    return np.array(image, dtype=np.float32, copy=True)


@register("naive")
def render_naive(image: np.ndarray, disparity: np.ndarray, lens: Lens, matte=None) -> np.ndarray:
    """Depth-dependent blur by blending pre-blurred copies in sRGB; no occlusion handling.

    image: linear float32 H×W×3; disparity: float32 H×W in [0, 1]; returns linear float32.
    """
    radius = np.abs(signed_coc(disparity, lens.blur, lens.focus_disparity, lens.focus_range))
    largest = float(radius.max()) if radius.size else 0.0
    if largest <= 0.0:
        return render_identity(image, disparity, lens)
    levels = naive_levels(largest)
    encoded = linear_to_srgb(image)
    out = np.zeros_like(encoded)
    previous = encoded
    for low, high in zip(levels[:-1], levels[1:]):
        blurred = blur_with_aperture(encoded, high, lens.aperture)
        weight = np.clip((radius - low) / (high - low), 0.0, 1.0)
        band = (radius >= low) & ((radius < high) | (high == levels[-1]))
        mix = previous + weight[..., None] * (blurred - previous)
        out[band] = mix[band]
        previous = blurred
    return srgb_to_linear(out)


def naive_levels(largest: float) -> np.ndarray:
    """Blur radii in pixels the naive renderer pre-computes, ending at the first ≥ ``largest``."""
    radii = np.array(NAIVE_RADII) * max(1.0, largest / NAIVE_RADII[-1])
    stop = int(np.searchsorted(radii, largest - 1e-9)) + 1
    return radii[:max(stop, 2)]


def blur_with_aperture(image: np.ndarray, radius: float, aperture: Aperture) -> np.ndarray:
    """``image`` (H×W×C float32) convolved with the normalised aperture of ``radius`` pixels.

    Borders replicate the edge pixels. cv2.filter2D switches to the DFT for large kernels.
    """
    if radius <= 0:
        return image.copy()
    kernel = aperture_kernel(aperture, float(radius))
    return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REPLICATE)


@functools.lru_cache(maxsize=64)
def aperture_kernel(aperture: Aperture, radius: float, supersample: int = 8) -> np.ndarray:
    """The aperture shape scaled to ``radius`` pixels, area-sampled (``supersample``² per pixel),
    float32 (2R+1)² summing to 1, R = ceil(radius + 0.5). Rows point down, as images do."""
    reach = int(math.ceil(radius + 0.5))
    sub = (np.arange(supersample) + 0.5) / supersample - 0.5
    coords = (np.arange(-reach, reach + 1)[:, None] + sub[None, :]).reshape(-1) / max(radius, 1e-6)
    inside = aperture.contains(coords[None, :], coords[:, None])
    size = 2 * reach + 1
    kernel = inside.reshape(size, supersample, size, supersample).mean(axis=(1, 3))
    return (kernel / kernel.sum()).astype(np.float32)
