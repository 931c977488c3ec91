"""Drawing bokeh discs: the aperture shape plus the optics that vary it across the frame."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from lensblur.aperture import Aperture
from lensblur.render.kernels import scatter_spans
from lensblur.render.spans import span_table

MIN_TABLE_RADIUS = 9.0  # tables are built at least this large so few sizes get cached


@dataclass(frozen=True)
class DiscScatter:
    """Scatters source pixels into aperture-shaped discs for an image of ``image_shape``.

    aperture: the shape; rim: share of each disc's energy in a bright outer ring (0 to 1,
    "soap-bubble" bokeh); cat_eye: mechanical vignetting strength (0 to 1): discs are clipped
    into cat's-eye shapes increasingly towards the corners.
    """

    aperture: Aperture
    image_shape: tuple[int, int]
    rim: float = 0.0
    cat_eye: float = 0.0

    def __call__(self, ys: np.ndarray, xs: np.ndarray, values: np.ndarray, radii: np.ndarray,
                 out_shape: tuple[int, int], origin: tuple[int, int] = (0, 0), scale: int = 1) -> np.ndarray:
        """Sum of the discs of sources (ys, xs sorted by row, in the output's pixels) holding
        ``values`` (n×C) with radius ``radii`` (n, in the output's pixels), as float32
        out_shape×C. The output covers the image at 1/scale resolution from ``origin`` (in
        those units), which places the cat's-eye effect."""
        radii = np.ascontiguousarray(radii, dtype=np.float32)
        max_radius = float(radii.max()) if radii.size else 0.0
        table = span_table(self.aperture, max(MIN_TABLE_RADIUS, math.ceil(max_radius) + 1.0))
        height, width = self.image_shape
        optics = np.array([self.rim, self.cat_eye, origin[0], origin[1], height / 2 / scale, width / 2 / scale,
                           max(math.hypot(height, width) / 2 / scale, 1.0)], dtype=np.float64)
        return scatter_spans(np.ascontiguousarray(ys, dtype=np.int32), np.ascontiguousarray(xs, dtype=np.int32),
                             np.ascontiguousarray(values, dtype=np.float32), radii, out_shape[0], out_shape[1],
                             table.left, table.right, table.weight, table.reach, table.steps_per_pixel,
                             numba.get_num_threads() * 8, optics)
