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
                 tiles: tuple[np.ndarray, int, float] | None = None,
                 compact: "CompactTiles | None" = None, out: np.ndarray | None = None) -> np.ndarray | None:
        """Sum of the discs of every pixel of ``values`` (h×w×C premultiplied, coverage last;
        pixels with zero coverage spread nothing) with radius ``radii`` (h×w, in these pixels),
        as float32 h×w×C. The grid covers the image at 1/scale resolution from ``origin`` (in
        those units), which places the cat's-eye effect. With ``composite_into`` (a full-size
        premultiplied H×W×4 image, scale 1 only) the discs are composited over it in place at
        ``origin`` instead, and None is returned. tiles: (active, tile, max_radius) to read only
        the tile×tile blocks where ``active`` (bool) is True, whose radii are at most max_radius
        (the other blocks of ``values`` and ``radii`` may hold anything); default: all of it.
        compact: instead of ``tiles``, the sources stored tile by tile (values n×tile×tile×C,
        radii n×tile×tile, as :class:`CompactTiles` describes) for an h×w grid. out: where to
        write the result (float32 h×w×C, C-contiguous, any content; default: a new array)."""
        if compact is not None:
            height_out, width_out = compact.shape
            slots, origins, tile, max_radius = compact.slots, compact.origins, compact.tile, compact.max_radius
        else:
            height_out, width_out = radii.shape
            if tiles is None:
                active, tile = _ALL_ACTIVE, max(height_out, width_out, 1)
                max_radius = float(radii.max()) if radii.size else 0.0
            else:
                active, tile, max_radius = tiles
            # the whole grid is one stored block: every active tile reads it from its origin (0, 0)
            slots = np.where(active, 0, -1).astype(np.int32)
            origins = _ONE_BLOCK
            values, radii = np.ascontiguousarray(values, dtype=np.float32)[None], radii[None]
        radii = np.ascontiguousarray(radii, dtype=np.float32)
        values = np.ascontiguousarray(values, dtype=np.float32)
        table = span_table(self.aperture, max(MIN_TABLE_RADIUS, math.ceil(max_radius) + 1.0))
        height, width = self.image_shape
        optics = np.array([self.rim, self.cat_eye, origin[0], origin[1], height / 2 / scale, width / 2 / scale,
                           max(math.hypot(height, width) / 2 / scale, 1.0)], dtype=np.float64)
        target = _NO_TARGET if composite_into is None else composite_into
        channels = values.shape[3]
        if composite_into is not None:
            out = np.zeros((0, 0, channels), np.float32)
        elif out is None:
            out = np.empty((height_out, width_out, channels), np.float32)  # the kernel writes every pixel
        n_bands = 8 * max(get_num_threads(), 2)  # the same bands on one thread as on two: the same sums
        scatter_spans(values, radii, height_out, width_out, table.left, table.right, table.weight, table.reach,
                      table.steps_per_pixel, n_bands, optics, target, origin[0], origin[1], slots, origins, int(tile),
                      float(max_radius), out, 0, n_bands)
        return None if composite_into is not None else out


@dataclass(frozen=True)
class CompactTiles:
    """Where the sources of an h×w grid (``shape``) are stored tile by tile: tile (ty, tx) of
    ``tile``×``tile`` cells is at index slots[ty, tx] (int32 (ceil(h/tile), ceil(w/tile)) or
    larger; −1: holds no source, not stored) of the values/radii arrays, and that index's
    origins (int64 (n, 2)) row is the tile's corner (ty·tile, tx·tile). max_radius bounds the
    stored radii (cells)."""

    shape: tuple[int, int]
    slots: np.ndarray
    origins: np.ndarray
    tile: int
    max_radius: float

    @classmethod
    def of(cls, active: np.ndarray, tile: int, shape: tuple[int, int], max_radius: float) -> "CompactTiles":
        """The layout that stores the tiles where ``active`` (bool (n_ty, n_tx)) is True, in row-major
        order (np.argwhere's); ``origins`` C-contiguous like a one-block layout's, so the kernel
        is compiled for one layout."""
        slots = np.full(active.shape, -1, np.int32)
        slots[active] = np.arange(np.count_nonzero(active), dtype=np.int32)
        return cls(shape, slots, np.ascontiguousarray(np.argwhere(active), dtype=np.int64) * tile, tile, max_radius)

    @property
    def n_tiles(self) -> int:
        return len(self.origins)


_ONE_BLOCK = np.zeros((1, 2), np.int64)
_NO_TARGET = np.zeros((0, 0, 4), np.float32)
_ALL_ACTIVE = np.ones((1, 1), bool)
