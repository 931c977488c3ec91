"""The core renderer: occlusion-aware, layered scatter of linear radiance.

Method (docs/renderer.md has the full argument):
1. Clipped highlights get their radiance recovered (lensblur.highlights).
2. Pixels are split into depth slabs by their signed circle of confusion c (back to front),
   with slab edges at |c| = 0.5, 1, 2, 4 and then every half octave, so pixels in one slab
   have similar blur and only slabs occlude each other.
3. Each slab is extended behind the nearer content it borders: every pixel hidden by nearer
   slabs takes the colour and blur of the nearest visible pixel behind it, and it belongs to
   the slab of that pixel (a Voronoi split of the hidden area), up to the distance the nearer
   blur can reveal. So a blurred foreground edge reveals plausible background, and a smooth
   surface split across two slabs stays opaque along the split (no seams).
4. Each slab scatters its premultiplied radiance and coverage: every pixel spreads its value
   over its own anti-aliased aperture-shaped disc of radius |c| (exact, continuous radius). Slabs
   with large blur are scattered at 1/2, 1/4, ... resolution so that the cost per pixel stays
   flat in the radius.
5. Slabs are composited back to front with the over operator (level-0 slabs straight from the
   scatter kernel's rows, saving a full-size layer); the result is divided by the accumulated
   coverage (which only differs from 1 next to the image border).
Steps 3–5 work only inside each slab's footprint: the frame is cut into TILE×TILE tiles, and a
slab's block sums, disc sources and composite visit only the tiles that hold its own or hidden
pixels (and the columns its discs reach). On continuous depth each slab is a band across the
frame, so this replaces about three full-frame passes per slab by work in proportion to the
slab's area; the picture is the same as with one tile covering the frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from lensblur.aperture import Aperture
from lensblur.grain import add_grain, estimate_noise
from lensblur.highlights import ClippedAnalysis, recover_highlights, sparse_recovery
from lensblur.lens import Lens, signed_coc
from lensblur.masks import mask_positions
from lensblur.renderers import register
from lensblur.renderers.discs import CompactTiles, DiscScatter
from lensblur.renderers.edge_matte import edge_subject
from lensblur.renderers.nearest import nearest_zero_within
from lensblur.renderers.kernels import (add_points_to_blocks, brighter_than, composite_over, composite_tiles,
                                     slab_block_sum, slab_labels, tile_occupancy, unpremultiply)
from lensblur.renderers.subject import SURE, SURE_NOT, SubjectLayers, scatter_premultiplied, split_subject
from lensblur.threads import ahead

LEVEL_RADIUS = 6.0        # largest radius scattered at a level's own resolution, pixels
IN_FOCUS_RADIUS = 0.5     # |c| below this is a point: copied, not scattered
ANALYSIS_PIXELS = 120_000  # size of the grid on which hidden areas are assigned to slabs
HIGHLIGHT_RADIANCE = 1.0   # pixels brighter than this (recovered lights) scatter at full resolution
HIGHLIGHT_BUDGET = 4e6     # most disc rows spent on them per slab; dimmer ones join the slab
TILE = 32                  # side (pixels) of the blocks in which a slab's work is done or skipped


@register("scatter")
def render_scatter(image: np.ndarray, disparity: np.ndarray, lens: Lens, matte: np.ndarray | None = None,
                   subject: SubjectLayers | None = None, clipped: ClippedAnalysis | None = None,
                   overwrite_image: bool = False) -> np.ndarray:
    """Occlusion-aware layered scatter (the default renderer); see the module docstring.

    image: linear float32 H×W×3 in [0, 1]; disparity: float32 H×W in [0, 1]; lens: settings;
    matte: optional subject alpha (H×W, [0, 1]): the subject is split from the background along
    it (lensblur.renderers.subject) and composited over the rendered background; subject:
    ``split_subject(image, disparity, matte)`` when the caller keeps it between renders of the
    same photo (it does not depend on the lens), used instead of ``matte``; clipped:
    ``lensblur.highlights.analyse_clipped(image, lens.highlights)``, kept between renders the same way;
    overwrite_image: the caller hands ``image`` over and never reads it again (the command line
    with its decoded photo): without a subject layer, clipped pixels are boosted in it and the
    result is written into it, so the render allocates no full-size copy of the photo (12 bytes
    per pixel, 139 MB at 12 MP). The default leaves ``image`` untouched.
    Returns linear float32 H×W×3 (highlights may exceed 1); with overwrite_image, often ``image`` itself.
    """
    coc = signed_coc(disparity, lens.blur, lens.focus_disparity, lens.focus_range)
    discs = DiscScatter(lens.aperture, coc.shape, lens.rim, lens.cat_eye)
    if subject is None and matte is not None and (matte > SURE_NOT).any():
        subject = split_subject(image, disparity, matte)
    if subject is None and matte is None and lens.edge_matte:
        subject = edge_subject(image, disparity, coc)
    # read off the photo before a hand-over (overwrite_image) replaces it by the result
    sigma = None if lens.grain is None else estimate_noise(image) if lens.grain == "auto" else float(lens.grain)
    if subject is None:
        radiance = recover_highlights(image, coc, lens.highlights, clipped, in_place=overwrite_image)
        # a copy made by recover_highlights, or the image handed over, can hold the result
        result = scatter_layers(radiance, coc, discs, reuse_input=overwrite_image or radiance is not image)
    else:
        if subject.matte.shape != coc.shape:
            raise ValueError(f"subject layers of {subject.matte.shape} for an image of {coc.shape}")
        result = _render_with_subject(image, coc, subject, lens, discs, clipped)
    if sigma is not None:
        result = add_grain(result, coc, sigma)
    return result


def scatter_layers(radiance: np.ndarray, coc: np.ndarray, discs: DiscScatter | Aperture,
                   reuse_input: bool = False) -> np.ndarray:
    """Layered, occlusion-aware scatter of linear ``radiance`` (H×W×3) by signed ``coc`` (H×W, px).

    discs: how discs are drawn (an Aperture alone means plain discs of that shape);
    reuse_input: write the result into ``radiance`` (saves memory when the caller owns it).
    """
    radiance = np.ascontiguousarray(radiance, dtype=np.float32)
    coc = np.ascontiguousarray(coc, dtype=np.float32)
    height, width = coc.shape
    edges = slab_edges(float(max(coc.max(), -coc.min())))  # the largest |c|, without a full-size |c| array
    # The hidden-area analysis and each slab's hidden part are found on another thread (serial
    # numpy and OpenCV work) while this one labels the pixels and draws the slabs before it.
    owners = ahead(HiddenAreaOwners, radiance, coc, edges, min_elements=height * width)
    labels = np.empty((height, width), np.uint8)
    slab_labels(coc, edges, labels, 0, height)
    if isinstance(discs, Aperture):
        discs = DiscScatter(discs, coc.shape)
    occupancy = np.zeros((len(edges) + 1, -(-height // TILE), -(-width // TILE)), np.int32)
    tile_occupancy(labels, TILE, occupancy, 0, occupancy.shape[1])
    drawn = [int(label) for label in np.flatnonzero(occupancy.any(axis=(1, 2)))]
    hidden_parts = [ahead(_hidden_part, owners, label, edges, height, width, min_elements=height * width)
                    for label in drawn]
    work = _Scratch(-(-height // TILE) * TILE * -(-width // TILE) * TILE)
    lights = _bright_pixels(radiance, labels)
    accumulated = np.zeros((height, width, 4), dtype=np.float32)
    for index, label in enumerate(drawn):
        upper = _slab_upper_radius(label, edges)
        hidden, hidden_tiles = hidden_parts[index].result()
        hidden_parts[index] = None  # a drawn slab's hidden part is not kept
        slab = _Slab(label, upper, _slab_scale(upper), occupancy[label] > 0, hidden, hidden_tiles)
        _composite_slab(accumulated, radiance, coc, labels, slab, work, lights, discs)
    out = radiance if reuse_input and radiance.flags.writeable else np.empty_like(radiance)
    unpremultiply(accumulated, radiance, out, 0, height)
    return out


def slab_edges(max_radius: float) -> np.ndarray:
    """Sorted signed c values separating slabs: ±0.5, ±1, ±2, ±4, then every half octave."""
    magnitudes = [IN_FOCUS_RADIUS, 1.0, 2.0, 4.0]
    while magnitudes[-1] < max_radius:
        magnitudes.append(magnitudes[-1] * math.sqrt(2))
    positive = np.array(magnitudes, dtype=np.float32)
    return np.concatenate([-positive[::-1], positive])


def _slab_scale(upper: float) -> int:
    """The resolution divisor of a slab whose radii reach ``upper`` pixels: 1 up to
    LEVEL_RADIUS, then the power of 2 that brings ``upper`` within it."""
    return 1 if upper <= LEVEL_RADIUS else 2 ** math.ceil(math.log2(upper / LEVEL_RADIUS))


def _hidden_part(owners, label: int, edges: np.ndarray, height: int, width: int):
    """(the hidden part of slab ``label`` or None, its tiles as :func:`_slab_tiles` needs them
    or None); owners: the image's HiddenAreaOwners, as made by threads.ahead."""
    hidden = owners.result().hidden_part(label)
    if hidden is None:
        return None, None
    pool = max(TILE, _slab_scale(_slab_upper_radius(label, edges))) // TILE
    return hidden, hidden.tiles(TILE * pool, height, width)


def _slab_upper_radius(label: int, edges: np.ndarray) -> float:
    """Largest |c| a slab can hold (labels come from np.digitize against ``edges``)."""
    low = edges[label - 1] if label > 0 else -np.inf
    high = edges[label] if label < len(edges) else np.inf
    bound = max(abs(low), abs(high))
    if not np.isfinite(bound):  # the outermost slabs end at the largest |c| (their inner edge ≥ 0.5)
        bound = abs(edges[0]) * math.sqrt(2)
    return float(bound)


@dataclass(frozen=True)
class _Slab:
    """One slab: its label, largest radius (pixels), resolution divisor, which TILE×TILE blocks
    hold its own pixels (bool), the hidden area it extends to (or None) and which tiles of side
    max(TILE, scale) that area touches (``hidden.tiles``; None without one)."""

    label: int
    upper: float
    scale: int
    own_tiles: np.ndarray
    hidden: "HiddenPart | None"
    hidden_tiles: np.ndarray | None

    @property
    def in_focus(self) -> bool:
        return self.upper <= IN_FOCUS_RADIUS


class _Scratch:
    """One reusable buffer for every slab's block sums, radii and (when drawn at 1/scale
    resolution) disc layer, one after the other. Block sums are stored tile by tile: a slab's n
    active tiles of c×c cells take the first n·c² cells, in the order of its tile list, so the
    memory ever touched is that of the largest slab's active tiles and layer, not the frame's.
    Only the listed tiles are ever written or read, and the disc kernel writes every pixel of a
    layer, so nothing needs clearing between slabs."""

    def __init__(self, cells: int):
        # sums, radii and a layer of at most (H/2)·(W/2)·4 values: within 6·cells (a frame's padded pixels)
        self.memory = np.empty(cells * 6, np.float32)

    def views(self, n_tiles: int, tile: int, layer: tuple[int, int] | None = None):
        """(n_tiles, tile, tile, 4) block sums, (n_tiles, tile, tile) radii and a (h, w, 4) layer
        of any content for ``layer`` = (h, w) (else None), all float32, not overlapping."""
        cells = n_tiles * tile * tile
        layer_size = 0 if layer is None else layer[0] * layer[1] * 4
        if self.memory.size < cells * 5 + layer_size:
            self.memory = np.empty(cells * 5 + layer_size, np.float32)
        sums = self.memory[:cells * 4].reshape(n_tiles, tile, tile, 4)
        radius = self.memory[cells * 4:cells * 5].reshape(n_tiles, tile, tile)
        if layer is None:
            return sums, radius, None
        return sums, radius, self.memory[cells * 5:cells * 5 + layer_size].reshape(layer[0], layer[1], 4)


def _bright_pixels(radiance: np.ndarray, labels: np.ndarray):
    """Rows, columns and slab labels of the pixels brighter than HIGHLIGHT_RADIANCE."""
    mask = np.empty(labels.shape, bool)
    brighter_than(radiance, HIGHLIGHT_RADIANCE, mask, 0, mask.shape[0])
    ly, lx = mask_positions(mask)
    return ly, lx, labels[ly, lx]


def _slab_tiles(slab: _Slab) -> np.ndarray:
    """Which tiles of side max(TILE, scale) pixels the slab draws from (own or hidden pixels)."""
    pool = max(TILE, slab.scale) // TILE
    own = slab.own_tiles
    if pool > 1:
        n_ty, n_tx = -(-own.shape[0] // pool), -(-own.shape[1] // pool)
        padded = np.zeros((n_ty * pool, n_tx * pool), bool)
        padded[:own.shape[0], :own.shape[1]] = own
        own = padded.reshape(n_ty, pool, n_tx, pool).any(axis=(1, 3))
    if slab.hidden is not None:
        own = own | slab.hidden_tiles
    return own


def _composite_slab(accumulated, radiance, coc, labels, slab: _Slab, work: _Scratch, lights, discs):
    """Draw one slab and composite it over ``accumulated`` (premultiplied H×W×4, in place).

    The slab is its own pixels (``labels == slab.label``) plus the hidden pixels it extends to,
    drawn at 1/scale resolution, and only in the tiles that hold any of them (and the margin its
    discs reach); its bright lights are drawn after it at full resolution so their bokeh keeps a
    crisp outline.
    """
    height, width = labels.shape
    scale = slab.scale
    active = _slab_tiles(slab)
    cells = max(TILE, scale) // scale  # a tile's side in cells of this slab's grid
    rows, cols = np.flatnonzero(active.any(axis=1)), np.flatnonzero(active.any(axis=0))
    margin = 0 if slab.in_focus else int(math.ceil(LEVEL_RADIUS + 2))
    low_h, low_w = -(-height // scale), -(-width // scale)
    # the crop starts on a tile boundary, so crop tile (i, j) is tile (i + ty0, j + tx0)
    y0 = max(rows[0] * cells - margin, 0) // cells * cells
    x0 = max(cols[0] * cells - margin, 0) // cells * cells
    y1 = min((rows[-1] + 1) * cells + margin, low_h)
    x1 = min((cols[-1] + 1) * cells + margin, low_w)
    crop_active = np.ascontiguousarray(active[y0 // cells:-(-y1 // cells), x0 // cells:-(-x1 // cells)])
    tile_list = np.argwhere(crop_active).astype(np.int32)
    sums, radius_low, layer_memory = work.views(len(tile_list), cells, (y1 - y0, x1 - x0) if scale > 1 else None)
    light_level = HIGHLIGHT_RADIANCE if scale > 1 else 0.0
    slab_block_sum(radiance, coc, labels, slab.label, scale, y0, x0, sums, radius_low, tile_list, cells,
                   light_level, NO_HIDDEN if slab.hidden is None else slab.hidden.kernel_args, 0, len(tile_list))
    if slab.in_focus:
        composite_tiles(accumulated, sums, tile_list, cells, y0, x0, 0, len(tile_list))
        return
    tiles = CompactTiles.of(crop_active, cells, (y1 - y0, x1 - x0), slab.upper / scale)  # sums' order
    own_lights = None
    if scale > 1:
        mine = lights[2] == slab.label
        own_lights = _lights_within_budget(lights[0][mine], lights[1][mine], radiance, coc)
    if own_lights is not None and own_lights[2] is not None:  # over budget: the dimmer ones join the slab
        add_points_to_blocks(sums, radius_low, tiles.slots, cells, *own_lights[2], scale, y0, x0)
    if scale == 1:
        discs(sums, radius_low, (y0, x0), composite_into=accumulated, compact=tiles)
    else:
        layer = discs(sums, radius_low, (y0, x0), scale, compact=tiles, out=layer_memory)
        composite_over(accumulated, layer, scale, y0, x0, y0 * scale, (y0 + layer.shape[0]) * scale)
    if own_lights is not None and own_lights[0].size:
        ly, lx = own_lights[0], own_lights[1]
        light_radius = np.abs(coc[ly, lx])
        reach = int(math.ceil(light_radius.max() + 1.5))
        ly0, lx0 = max(int(ly.min()) - reach, 0), max(int(lx.min()) - reach, 0)
        ly1, lx1 = min(int(ly.max()) + reach + 1, height), min(int(lx.max()) + reach + 1, width)
        # the lights tile by tile (only the tiles holding one are stored), in a zeroed buffer
        gy, gx = ly - ly0, lx - lx0
        n_ty, n_tx = -(-(ly1 - ly0) // TILE), -(-(lx1 - lx0) // TILE)
        light_tiles = np.zeros((n_ty, n_tx), bool)
        light_tiles[gy // TILE, gx // TILE] = True
        layout = CompactTiles.of(light_tiles, TILE, (ly1 - ly0, lx1 - lx0), float(light_radius.max()))
        at = layout.slots[gy // TILE, gx // TILE], gy % TILE, gx % TILE
        grid = np.zeros((layout.n_tiles, TILE, TILE, 4), np.float32)
        grid[at + (slice(0, 3),)] = radiance[ly, lx]
        grid[at + (3,)] = 1.0
        grid_radius = np.zeros(grid.shape[:3], np.float32)
        grid_radius[at] = light_radius
        discs(grid, grid_radius, (ly0, lx0), composite_into=accumulated, compact=layout)


def _lights_within_budget(ly, lx, radiance, coc):
    """Of the bright lights at (ly, lx), the coordinates of those to scatter at full resolution,
    brightest first within HIGHLIGHT_BUDGET disc rows, and (ys, xs, colours, radii) of those
    left over (or None); None when there are no lights."""
    if ly.size == 0:
        return None
    radius = np.abs(coc[ly, lx])
    rows = 2 * radius + 1
    left_over = None
    total_rows = float(rows.sum())
    if total_rows > HIGHLIGHT_BUDGET:
        # Brightest first; when lights are everywhere (a bright sky, noise) none is special.
        if total_rows > 8 * HIGHLIGHT_BUDGET:
            n_keep, order = 0, np.arange(ly.size)
        else:
            order = np.argsort(-radiance[ly, lx].max(axis=1), kind="stable")
            n_keep = int(np.searchsorted(np.cumsum(rows[order]), HIGHLIGHT_BUDGET))
        rest = np.sort(order[n_keep:])
        left_over = (ly[rest].astype(np.int32), lx[rest].astype(np.int32), radiance[ly[rest], lx[rest]],
                     radius[rest])
        kept = np.sort(order[:n_keep])
        ly, lx = ly[kept], lx[kept]
    return ly, lx, left_over


class HiddenAreaOwners:
    """Assigns the area hidden behind nearer slabs to the slab directly behind it.

    Works on a grid of at most ANALYSIS_PIXELS: for slab l, every cell nearer than l takes the
    nearest cell that is not nearer (lensblur.renderers.nearest); cells whose nearest visible
    cell lies in slab l, within the distance the nearer blur can reveal, extend slab l with that
    cell's colour and blur radius. Which labels the grid holds and each label's largest |c| are
    found once here; a slab then costs one distance transform on its window and work in
    proportion to the cells within the reveal distance.
    """

    def __init__(self, radiance: np.ndarray, coc: np.ndarray, edges: np.ndarray):
        height, width = coc.shape
        self.factor = max(1, math.ceil(math.sqrt(height * width / ANALYSIS_PIXELS)))
        small = (max(1, width // self.factor), max(1, height // self.factor))
        self.coc_small = cv2.resize(coc, small, interpolation=cv2.INTER_AREA)
        self.colour_small = cv2.resize(radiance, small, interpolation=cv2.INTER_AREA)
        self.labels_small = np.digitize(self.coc_small, edges).astype(np.int16)
        # map every full-resolution pixel to its analysis cell
        self.cell_y = np.minimum(np.arange(height) * small[1] // height, small[1] - 1)
        self.cell_x = np.minimum(np.arange(width) * small[0] // width, small[0] - 1)
        # each label's largest |c|: how far the blur of nearer slabs reaches
        self._largest = np.zeros(len(edges) + 1, np.float32)
        np.maximum.at(self._largest, self.labels_small.ravel(), np.abs(self.coc_small).ravel())
        self._present = np.bincount(self.labels_small.ravel(), minlength=len(edges) + 1) > 0

    def hidden_part(self, label: int) -> "HiddenPart | None":
        """The part hidden behind nearer slabs that slab ``label`` extends to, or None."""
        # a cell is owned only when its nearest not-nearer cell is one of the slab's own cells
        if not self._present[label] or not self._present[label + 1:].any():
            return None
        own_radius = float(self._largest[label])
        reveal = float(self._largest[label + 1:].max()) + own_radius + 2.0
        # Owned cells lie within `reach` cells of the slab's own cells, and so does the nearest
        # not-nearer cell of each: a window around the own cells widened by twice that holds
        # every path the transform needs (the same cells come out as on the whole grid).
        reach = int(math.ceil(reveal / self.factor)) + 1
        own_small = self.labels_small == label
        rows, cols = np.flatnonzero(own_small.any(axis=1)), np.flatnonzero(own_small.any(axis=0))
        height, width = own_small.shape
        y0, y1 = max(int(rows[0]) - 2 * reach, 0), min(int(rows[-1]) + 2 * reach + 1, height)
        x0, x1 = max(int(cols[0]) - 2 * reach, 0), min(int(cols[-1]) + 2 * reach + 1, width)
        window_labels = self.labels_small[y0:y1, x0:x1]
        window = window_labels > label
        if not window.any():
            return None
        cells, sources = nearest_zero_within(window, reveal, self.factor)
        mine = window_labels.ravel()[sources] == label
        if not mine.any():
            return None
        cy, cx = np.divmod(cells[mine], x1 - x0)
        sy, sx = np.divmod(sources[mine], x1 - x0)
        cy += y0
        cx += x0
        owned = np.zeros((height, width), bool)
        owned[cy, cx] = True
        # the sources of owned cells; the kernel reads no other cell of these
        iy = np.zeros((height, width), np.int32)
        ix = np.zeros((height, width), np.int32)
        iy[cy, cx] = sy + y0
        ix[cy, cx] = sx + x0
        return HiddenPart((owned, iy, ix, self.colour_small, self.coc_small, self.cell_y, self.cell_x), (cy, cx))


@dataclass(frozen=True)
class HiddenPart:
    """Where a slab extends behind nearer content: the arguments kernels.slab_block_sum takes
    for it (owned analysis cells, their sources, the analysis grid's colour and blur, and the
    cell of every full-resolution row and column), and the rows and columns (int arrays of equal
    length) of the owned cells."""

    kernel_args: tuple
    cells: tuple[np.ndarray, np.ndarray]

    def tiles(self, tile: int, height: int, width: int) -> np.ndarray:
        """bool (ceil(H/tile), ceil(W/tile)): the tile×tile blocks of the H×W image that hold a
        pixel whose analysis cell is owned."""
        grid_h, grid_w = self.kernel_args[0].shape
        # Owned cell (c, d) covers pixel rows ceil(c·H/h) … ceil((c + 1)·H/h) − 1 (the rows whose
        # cell_y is c), likewise columns: it touches the blocks from its first pixel's to its last's.
        rows, cols = self.cells
        ty0, ty1 = -(-rows * height // grid_h) // tile, (-(-(rows + 1) * height // grid_h) - 1) // tile
        tx0, tx1 = -(-cols * width // grid_w) // tile, (-(-(cols + 1) * width // grid_w) - 1) // tile
        active = np.zeros((-(-height // tile), -(-width // tile)), bool)
        for dy in range(int((ty1 - ty0).max()) + 1):
            for dx in range(int((tx1 - tx0).max()) + 1):
                active[np.minimum(ty0 + dy, ty1), np.minimum(tx0 + dx, tx1)] = True
        return active


NO_HIDDEN = (np.zeros((0, 0), bool), np.zeros((0, 0), np.int32), np.zeros((0, 0), np.int32),
             np.zeros((0, 0, 3), np.float32), np.zeros((0, 0), np.float32), np.zeros(0, np.int64),
             np.zeros(0, np.int64))


def _render_with_subject(image, coc, subject: SubjectLayers, lens: Lens, discs, clipped=None):
    """Render the background without the subject, then lay the matted subject over it."""
    matte = subject.matte
    foreground, background = subject.foreground, subject.background
    # The boost of a clipped light belongs to the layer the light is part of: gain ⊙ (αF + (1 − α)B)
    # = α(gain ⊙ F) + (1 − α)(gain ⊙ B), and each layer keeps its own prior elsewhere.
    parts = sparse_recovery(image, coc, lens.highlights, analysis=clipped)
    if parts is not None:
        (ys, xs), gain, cleaned = parts
        if cleaned is not None:  # glare around night lamps belongs to the background's lights
            background = np.maximum(background + np.where(matte < SURE, 1, 0)[..., None] * (cleaned - image), 0)
        else:
            background = background.copy()
        # the gain is 1 but on the boosted pixels: multiply just those
        in_subject, in_background = matte[ys, xs] > SURE_NOT, matte[ys, xs] < SURE
        foreground = foreground.copy()
        foreground[ys[in_subject], xs[in_subject]] *= gain[in_subject][:, None]
        background[ys[in_background], xs[in_background]] *= gain[in_background][:, None]
    subject_coc = signed_coc(subject.subject_disparity, lens.blur, lens.focus_disparity, lens.focus_range)
    background_coc = signed_coc(subject.background_disparity, lens.blur, lens.focus_disparity, lens.focus_range)
    rendered_background = scatter_layers(background, background_coc, discs, reuse_input=parts is not None)
    premultiplied = np.empty(matte.shape + (4,), np.float32)
    np.multiply(foreground, matte[..., None], out=premultiplied[..., :3])
    premultiplied[..., 3] = matte
    layer = scatter_premultiplied(premultiplied, np.abs(subject_coc), discs)
    alpha = np.clip(layer[..., 3:4], 0, 1)
    rendered_background *= 1 - alpha  # the subject over the background, in the background's memory
    rendered_background += layer[..., :3]
    return rendered_background
