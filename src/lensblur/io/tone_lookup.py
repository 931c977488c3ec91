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


@njit(cache=True, parallel=True, chunked=True, noalias=True)
def encode_channels(linear: np.ndarray, tables: np.ndarray, out: np.ndarray, lo: int, hi: int) -> None:
    """out[k, c] = tables[c] interpolated at √clip(linear[k, c], 0, 1)·(steps), float32, for rows
    k = lo … hi − 1 (0, N for all).

    linear, out: N×C float32; tables: C×(steps + 2) float32 (lensblur.io.icc._encode_table)."""
    for k in prange(max(lo, 0), min(hi, linear.shape[0])):
        for c in range(linear.shape[1]):
            out[k, c] = _lookup(linear[k, c], tables[c])


@njit(cache=True, parallel=True, chunked=True, noalias=True)
def quantize_channels(linear: np.ndarray, tables: np.ndarray, levels: int, out: np.ndarray, lo: int,
                      hi: int) -> None:
    """As :func:`encode_channels`, rounded to integers 0..levels into ``out`` (uint8 or uint16)."""
    for k in prange(max(lo, 0), min(hi, linear.shape[0])):
        for c in range(linear.shape[1]):
            out[k, c] = int(_lookup(linear[k, c], tables[c]) * levels + 0.5)


BUCKETS = 1 << 14  # uniform buckets over linear [0, 1] in which quantize_steps starts its level search
# (few enough that the tables stay under lensblur.threads.MIN_ELEMENTS: a thumbnail starts no pool)


@njit(cache=True)
def level_steps(table: np.ndarray, levels: int, thresholds: np.ndarray, start: np.ndarray) -> int:
    """The step function that :func:`quantize_channels` applies to one channel, as thresholds.

    table: one row of quantize_channels' ``tables``; fills thresholds (float32, levels + 2):
    thresholds[L] = the smallest float32 linear value in (0, 1] whose level is at least L
    (+inf where no value reaches L; thresholds[levels + 1] = +inf), and start (int32,
    BUCKETS + 1): the level of linear b / BUCKETS. Returns the level of linear <= 0 (and NaN).
    Exact when the level never decreases as linear grows, which holds for a non-decreasing table
    (tests/test_io_images.py checks it around every threshold)."""
    bits = np.zeros(1, np.int32)
    value = bits.view(np.float32)
    one = 0x3F800000  # the bits of float32 1.0; positive floats order as their bits
    bits[0] = one
    top = int(_lookup(value[0], table) * levels + 0.5)
    for level in range(levels + 2):
        if level > top:
            thresholds[level] = np.inf
            continue
        low, high = 1, one  # smallest bits in [low, high] whose level is >= level
        while low < high:
            middle = (low + high) // 2
            bits[0] = middle
            if int(_lookup(value[0], table) * levels + 0.5) >= level:
                high = middle
            else:
                low = middle + 1
        bits[0] = low
        thresholds[level] = value[0]
    for b in range(BUCKETS + 1):
        start[b] = int(_lookup(np.float32(b / BUCKETS), table) * levels + 0.5)
    return int(_lookup(np.float32(0.0), table) * levels + 0.5)


@njit(cache=True, parallel=True, chunked=True, noalias=True)
def quantize_steps(linear: np.ndarray, thresholds: np.ndarray, start: np.ndarray, low: np.ndarray, out: np.ndarray,
                   lo: int, hi: int) -> None:
    """:func:`quantize_channels` through each channel's :func:`level_steps` (the same integers,
    a bucket lookup and a comparison or two per value instead of a square root and an
    interpolation), for rows k = lo … hi − 1 (0, N for all).

    linear: N×3 float32; thresholds: 3×(levels + 2) float32, start: 3×(BUCKETS + 1) int32 and
    low: 3 int32 from level_steps; out: N×3 uint8 (levels <= 255). Three channels exactly: a
    constant channel loop is unrolled, which more than halves the time per value."""
    for k in prange(max(lo, 0), min(hi, linear.shape[0])):
        for c in range(3):
            y = linear[k, c]
            if not y > 0:  # NaN and negatives
                level = low[c]
            elif y >= 1:
                level = start[c, BUCKETS]
            else:
                level = start[c, int(y * BUCKETS)]
                while y >= thresholds[c, level + 1]:
                    level += 1
            out[k, c] = level
