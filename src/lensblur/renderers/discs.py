"""Drawing bokeh discs: the aperture shape plus the optics that vary it across the frame."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lensblur.aot import get_num_threads
from lensblur.aperture import Aperture
from lensblur.renderers.kernels import scatter_spans
from lensblur.renderers.spans import span_table

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

    def __call__(self, values: np.ndarray, radii: np.ndarray, origin: tuple[int, int] = (0, 0),
                 scale: int = 1, composite_into: np.ndarray | None = None,
                 tiles: tuple[np.ndarray, int, float] | None = None) -> np.ndarray | None:
        """Sum of the discs of every pixel of ``values`` (h×w×C premultiplied, coverage last;
        pixels with zero coverage spread nothing) with radius ``radii`` (h×w, in these pixels),
        as float32 h×w×C. The grid covers the image at 1/scale resolution from ``origin`` (in
        those units), which places the cat's-eye effect. With ``composite_into`` (a full-size
        premultiplied H×W×4 image, scale 1 only) the discs are composited over it in place at
        ``origin`` instead, and None is returned. tiles: (active, tile, max_radius) to read only
        the tile×tile blocks where ``active`` (bool) is True, whose radii are at most max_radius
        (the other blocks of ``values`` and ``radii`` may hold anything); default: all of it."""
        if tiles is None:
            radii = np.ascontiguousarray(radii, dtype=np.float32)
            active, tile = _ALL_ACTIVE, max(radii.shape[0], radii.shape[1], 1)
            max_radius = float(radii.max()) if radii.size else 0.0
        else:
            active, tile, max_radius = tiles
        table = span_table(self.aperture, max(MIN_TABLE_RADIUS, math.ceil(max_radius) + 1.0))
        height, width = self.image_shape
        optics = np.array([self.rim, self.cat_eye, origin[0], origin[1], height / 2 / scale, width / 2 / scale,
                           max(math.hypot(height, width) / 2 / scale, 1.0)], dtype=np.float64)
        target = _NO_TARGET if composite_into is None else composite_into
        values = np.ascontiguousarray(values, dtype=np.float32)
        out = np.zeros((0, 0, values.shape[2]) if composite_into is not None else values.shape, np.float32)
        n_bands = 8 * max(get_num_threads(), 2)  # the same bands on one thread as on two: the same sums
        scatter_spans(values, radii, table.left, table.right, table.weight, table.reach, table.steps_per_pixel,
                      n_bands, optics, target, origin[0], origin[1], active, int(tile), float(max_radius), out, 0,
                      n_bands)
        return None if composite_into is not None else out


_NO_TARGET = np.zeros((0, 0, 4), np.float32)
_ALL_ACTIVE = np.ones((1, 1), bool)
