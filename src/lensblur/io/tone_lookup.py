"""numba kernels of the tone-curve encoder: table interpolation over √linear, one pass per image."""

import numpy as np
from lensblur.aot import njit, prange  # numba's, or the ahead-of-time compiled kernels


@njit(cache=True, inline="always")
def _lookup(y, table):
    # NaN and negatives count as 0, above 1 as 1; the table's last entry repeats the one before
    if not y > 0.0:
        y = 0.0
    elif y > 1.0:
        y = 1.0
    position = np.sqrt(y) * (table.size - 2)
    index = int(position)
    return table[index] + (position - index) * (table[index + 1] - table[index])


@njit(cache=True, parallel=True, chunked=True)
def encode_channels(linear: np.ndarray, tables: np.ndarray, out: np.ndarray, lo: int, hi: int) -> None:
    """out[k, c] = tables[c] interpolated at √clip(linear[k, c], 0, 1)·(steps), float32, for rows
    k = lo … hi − 1 (0, N for all).

    linear, out: N×C float32; tables: C×(steps + 2) float32 (lensblur.io.icc._encode_table)."""
    for k in prange(max(lo, 0), min(hi, linear.shape[0])):
        for c in range(linear.shape[1]):
            out[k, c] = _lookup(linear[k, c], tables[c])


@njit(cache=True, parallel=True, chunked=True)
def quantize_channels(linear: np.ndarray, tables: np.ndarray, levels: int, out: np.ndarray, lo: int,
                      hi: int) -> None:
    """As :func:`encode_channels`, rounded to integers 0..levels into ``out`` (uint8 or uint16)."""
    for k in prange(max(lo, 0), min(hi, linear.shape[0])):
        for c in range(linear.shape[1]):
            out[k, c] = int(_lookup(linear[k, c], tables[c]) * levels + 0.5)
