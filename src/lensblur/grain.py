"""Grain: blurring removes the sensor's noise, which looks plastic; put matching noise back."""

from __future__ import annotations

import numpy as np

from lensblur.color import linear_to_srgb, srgb_to_linear


def estimate_noise(linear: np.ndarray) -> float:
    """Standard deviation of the image's noise in sRGB-encoded units (0 to ~0.1).

    Robust (median absolute deviation) estimate from the difference of each pixel with its
    neighbours on the encoded luminance, over a central crop of at most 1024×1024.
    """
    height, width = linear.shape[:2]
    y0, x0 = max(0, height // 2 - 512), max(0, width // 2 - 512)
    crop = linear_to_srgb(linear[y0:y0 + 1024, x0:x0 + 1024].mean(axis=2)).astype(np.float64)
    if crop.shape[0] < 3 or crop.shape[1] < 3:
        return 0.0
    # 4·centre − 4 neighbours of white noise with deviation s has deviation s·sqrt(20).
    lap = (4 * crop[1:-1, 1:-1] - crop[:-2, 1:-1] - crop[2:, 1:-1] - crop[1:-1, :-2] - crop[1:-1, 2:])
    mad = np.median(np.abs(lap - np.median(lap)))
    return float(1.4826 * mad / np.sqrt(20.0))


def add_grain(rendered: np.ndarray, coc: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """Add Gaussian grain of deviation ``sigma`` (encoded units) where blur removed the noise.

    A disc of radius r averages about π·r² pixels, leaving 1/(√π·r) of the noise; the grain
    added restores the rest: sigma·sqrt(1 − 1/(π·r²)). Deterministic for a seed.
    """
    if sigma <= 0:
        return rendered
    radius = np.maximum(np.abs(coc), 0.5642)  # 1/sqrt(pi): no grain at or below one pixel
    amount = np.float32(sigma) * np.sqrt(np.clip(1 - 1 / (np.pi * radius * radius), 0, 1))
    noise = np.random.default_rng(seed).standard_normal(rendered.shape[:2], dtype=np.float32)
    bright = np.maximum(rendered, 0)
    over = np.maximum(bright - 1.0, 0)  # keep radiance above the clip level untouched
    encoded = linear_to_srgb(bright) + (amount * noise)[..., None]
    grainy = srgb_to_linear(np.clip(encoded, 0, 1)) + over
    return np.where((np.abs(coc) > 0.6)[..., None], grainy, rendered).astype(np.float32)
