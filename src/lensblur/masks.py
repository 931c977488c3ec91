"""Positions of the True pixels of a boolean mask, the way numpy's 2-D ``nonzero`` gives them."""

from __future__ import annotations

import numpy as np


def mask_positions(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.nonzero(mask)`` of a 2-D bool mask: the rows and columns (int64, row-major order) of
    its True pixels, found from the flat indices. numpy's 2-D ``nonzero`` walks the mask with a
    multi-index and takes 2–3.5 ns per pixel however few are True (5 ms on 1.5 MP, 29 ms on
    12 MP on the project's 2-core machine); the flat search takes about a tenth of that."""
    if mask.ndim != 2:
        raise ValueError(f"mask_positions needs a 2-D mask, got shape {mask.shape}")
    return np.divmod(np.flatnonzero(mask), mask.shape[1])
