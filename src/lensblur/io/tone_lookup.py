"""numba kernel of the tone-curve encoder: one pass of table interpolation over √linear."""

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def interpolate_sqrt(linear: np.ndarray, table: np.ndarray, out: np.ndarray) -> None:
    """out[k] = table interpolated linearly at √clip(linear[k], 0, 1)·(table.size − 2).

    linear, out: 1-D float32 of one length; table: float32, its last entry a repeat of the one
    before (so that linear = 1 finds a right neighbour). NaN counts as 0."""
    steps = table.size - 2
    for k in prange(linear.size):
        y = linear[k]
        if not y > 0.0:
            y = 0.0
        elif y > 1.0:
            y = 1.0
        position = np.sqrt(y) * steps
        index = int(position)
        out[k] = table[index] + (position - index) * (table[index + 1] - table[index])
