"""Defocus already in the photo: blur measured at edges and spread over the image.

Zhuo & Sim, "Defocus map estimation from a single image", Pattern Recognition 44(9), 2011: an
edge blurred by a Gaussian of unknown σ, re-blurred with a known σ0, has gradient magnitudes in
the ratio R = |∇i| / |∇i₁| = sqrt(σ² + σ0²) / σ at the edge (their Eq. 6), so
σ = σ0 / sqrt(R² − 1) (Eq. 7). That sparse estimate at edge pixels is propagated to the whole image;
the paper uses the matting Laplacian, here a normalised convolution followed by the guided filter
(lensblur.depth.refine), which also follows the image's edges and costs O(pixels).

The blur says how far a point is from the photo's focal plane, not whether it is in front or
behind: lensblur.depth.auto resolves that with the subject and layout priors.
"""

from __future__ import annotations

import cv2
import numpy as np

from lensblur.depth.refine import edge_aware_fill

MAX_SIGMA = 8.0  # px: blur beyond this is not measurable from a gradient ratio at these sizes


def edge_blur(gray: np.ndarray, sigma0: float = 1.0, low: float = 0.02, high: float = 0.05,
              max_sigma: float = MAX_SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """Sparse blur σ (px) at the edge pixels of a gray image.

    gray: H×W float in [0, 1]. sigma0: the re-blur σ in px. low, high: Canny hysteresis
    thresholds as gradient magnitudes in gray units per px. Returns
    (sigma, edges): float32 H×W σ in [0, max_sigma] (0 off the edges) and bool H×W edge pixels
    where the ratio was measurable (R > 1).
    """
    gray = np.asarray(gray, np.float32)
    reblurred = cv2.GaussianBlur(gray, (0, 0), sigma0, borderType=cv2.BORDER_REFLECT)
    magnitude = _gradient_magnitude(gray)
    magnitude_reblurred = _gradient_magnitude(reblurred)
    gray8 = np.round(np.clip(gray, 0, 1) * 255).astype(np.uint8)
    # Sobel 3×3 responds 8× the per-pixel difference; the thresholds are given per pixel
    edges = cv2.Canny(gray8, 255 * 8 * low, 255 * 8 * high, L2gradient=True) > 0
    ratio = magnitude / np.maximum(magnitude_reblurred, 1e-6)
    measurable = edges & (ratio > 1.0 + 1e-3)
    sigma = np.zeros_like(gray)
    sigma[measurable] = sigma0 / np.sqrt(ratio[measurable] ** 2 - 1.0)
    return np.minimum(sigma, max_sigma).astype(np.float32), measurable


def _gradient_magnitude(gray: np.ndarray) -> np.ndarray:
    gy, gx = np.gradient(gray)
    return np.hypot(gx, gy).astype(np.float32)


def defocus_map(image_srgb: np.ndarray, side: int = 1024, sigma0: float = 1.0,
                propagate_side: int = 256) -> tuple[np.ndarray, float]:
    """Dense defocus blur of a photo and how much the blur varies over it.

    image_srgb: H×W×3 sRGB-encoded in [0, 1]. side: long side in px at which edges are measured
    (σ values are in px of that size). propagate_side: long side in px of the propagation.
    Returns (sigma, spread): float32 H×W dense σ in px at ``side`` scale, at the input's size,
    following the image's edges; spread = 90th − 10th percentile of the measured edge σ, in px
    (near 0 for an all-in-focus photo: then the map carries no depth).
    """
    height, width = image_srgb.shape[:2]
    scale = min(1.0, side / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    work = cv2.resize(np.asarray(image_srgb, np.float32), size, interpolation=cv2.INTER_AREA) if scale < 1 else image_srgb
    gray = cv2.cvtColor(np.asarray(work, np.float32), cv2.COLOR_RGB2GRAY)
    sigma, edges = edge_blur(gray, sigma0)
    if edges.sum() < 20:
        return np.zeros((height, width), np.float32), 0.0
    spread = float(np.percentile(sigma[edges], 90) - np.percentile(sigma[edges], 10))
    dense = edge_aware_fill(cv2.cvtColor(np.asarray(work, np.float32), cv2.COLOR_RGB2GRAY), sigma, edges.astype(np.float32),
                            side=propagate_side)
    dense = cv2.resize(dense, (width, height), interpolation=cv2.INTER_LINEAR)
    return dense.astype(np.float32), spread
