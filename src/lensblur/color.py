"""Transfer functions between encoded (sRGB) values and linear light.

All arrays are float32; linear values are scene-referred (1.0 = the sensor's clip level,
highlights may exceed it after radiance recovery).
"""

import numpy as np


def srgb_to_linear(encoded: np.ndarray) -> np.ndarray:
    """Decode sRGB-encoded values in [0, 1] to linear light in [0, 1] (IEC 61966-2-1)."""
    encoded = np.asarray(encoded, dtype=np.float32)
    low = encoded / np.float32(12.92)
    high = ((np.maximum(encoded, 0.04045) + np.float32(0.055)) / np.float32(1.055)) ** np.float32(2.4)
    return np.where(encoded <= 0.04045, low, high).astype(np.float32)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """Encode linear light to sRGB values; the input is clipped to [0, 1] first."""
    linear = np.clip(np.asarray(linear, dtype=np.float32), 0.0, 1.0)
    low = linear * np.float32(12.92)
    high = np.float32(1.055) * np.maximum(linear, 0.0031308) ** np.float32(1 / 2.4) - np.float32(0.055)
    return np.where(linear <= 0.0031308, low, high).astype(np.float32)


def luminance(linear: np.ndarray) -> np.ndarray:
    """Relative luminance (Rec. 709 weights) of an H×W×3 linear image, H×W float32."""
    weights = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    return np.asarray(linear, dtype=np.float32) @ weights


# sRGB (D65) linear RGB → CIE XYZ, each row divided by the D65 white's X, Y, Z (IEC 61966-2-1).
_RGB_TO_XYZ_OVER_WHITE = (np.array([[0.4124, 0.3576, 0.1805],
                                    [0.2126, 0.7152, 0.0722],
                                    [0.0193, 0.1192, 0.9505]], dtype=np.float32)
                          / np.array([[0.95047], [1.0], [1.08883]], dtype=np.float32))


def srgb_to_lab(encoded: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of H×W×3 sRGB-encoded values in [0, 1]: float32, L in [0, 100], a and b about ±128.

    The same values as OpenCV's float ``COLOR_RGB2Lab``, without its 0.2–0.35 s of table
    building on the first call in a process (which dominated a small image's start-up).
    """
    ratios = srgb_to_linear(encoded) @ _RGB_TO_XYZ_OVER_WHITE.T
    epsilon, kappa = np.float32(216 / 24389), np.float32(24389 / 27)
    f = np.where(ratios > epsilon, np.cbrt(np.maximum(ratios, epsilon)), (kappa * ratios + 16) / 116)
    lab = np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)
    return lab.astype(np.float32)
