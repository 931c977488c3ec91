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
