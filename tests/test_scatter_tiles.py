"""The scatter renderer's tile-restricted slabs (lensblur.renderers.scatter.TILE) and the coarse
crowd counts of highlight recovery give the same pictures as whole-frame work."""

import math

import cv2
import numpy as np
import pytest

import lensblur.renderers.scatter as scatter
from lensblur.aperture import Aperture
from lensblur.highlights import CROWD_CLIPPED, CROWD_COUNT, CROWD_RADIUS_FRACTION, _crowd_grid, _spots
from lensblur.lens import Lens
from lensblur.renderers.discs import CompactTiles, DiscScatter


def _floor_with_subject(height=200, width=260, seed=5):
    """Textured tilted floor (disparity rising downwards) with an ellipse standing on it and a
    few clipped lights in the far part, so slabs are bands with hidden areas, several levels
    (up to 1/8 resolution) and full-resolution lights."""
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur(rng.uniform(0, 0.8, (height, width, 3)).astype(np.float32), (0, 0), 1.5)
    disparity = np.repeat(np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None], width, axis=1)
    yy, xx = np.mgrid[:height, :width]
    subject = ((yy - 0.5 * height) / (0.25 * height)) ** 2 + ((xx - 0.5 * width) / (0.1 * width)) ** 2 <= 1
    disparity[subject] = 0.75
    for y, x in [(12, 30), (20, 200), (35, 120), (150, 40)]:
        image[y:y + 2, x:x + 2] = 1.0
    return image, disparity


def _render(monkeypatch, tile, image, disparity, lens):
    monkeypatch.setattr(scatter, "TILE", tile)
    return scatter.render_scatter(image, disparity, lens)


@pytest.mark.parametrize("lens", [Lens(blur=60, focus_disparity=0.75),
                                  Lens(blur=40, focus_disparity=0.3, aperture=Aperture(6, 15, 0)),
                                  Lens(blur=50, focus_disparity=0.75, rim=0.5, cat_eye=0.7)])
def test_tiled_slabs_match_whole_frame_slabs(monkeypatch, lens):
    # One tile larger than the frame is the whole-frame work the renderer did before tiles.
    image, disparity = _floor_with_subject()
    whole = _render(monkeypatch, 4096, image, disparity, lens)
    for tile in (8, 32):
        tiled = _render(monkeypatch, tile, image, disparity, lens)
        assert np.abs(tiled - whole).max() < 1e-4, tile


def test_tiled_slabs_match_on_an_odd_sized_frame_with_a_subject_matte(monkeypatch):
    image, disparity = _floor_with_subject(173, 221, seed=9)
    matte = np.zeros(disparity.shape, np.float32)
    matte[60:120, 90:130] = 1.0
    matte = cv2.GaussianBlur(matte, (0, 0), 2.0)
    lens = Lens(blur=45, focus_disparity=0.8)
    monkeypatch.setattr(scatter, "TILE", 4096)
    whole = scatter.render_scatter(image, disparity, lens, matte=matte)
    monkeypatch.setattr(scatter, "TILE", 16)
    tiled = scatter.render_scatter(image, disparity, lens, matte=matte)
    assert np.abs(tiled - whole).max() < 1e-4


def test_tile_mask_skips_only_empty_tiles():
    # Discs drawn from the active tiles alone equal the full scatter when the other tiles are
    # empty, and garbage left in inactive tiles is never read.
    rng = np.random.default_rng(2)
    values = np.zeros((96, 128, 4), np.float32)
    values[40:56, 64:80, :3] = rng.uniform(0, 1, (16, 16, 3))
    values[40:56, 64:80, 3] = 1.0
    radii = np.where(values[..., 3] > 0, 5.5, 0).astype(np.float32)
    discs = DiscScatter(Aperture(), (96, 128))
    full = discs(values, radii)
    active = np.zeros((6, 8), bool)
    active[2:4, 4:5] = True  # 16-pixel tiles covering rows 32–63, columns 64–79
    dirty_values, dirty_radii = values.copy(), radii.copy()
    dirty_values[:16, :16] = 7.0
    dirty_radii[:16, :16] = 40.0
    tiled = discs(dirty_values, dirty_radii, tiles=(active, 16, 5.5))
    assert np.abs(tiled - full).max() < 1e-5


def test_ramp_over_many_tiles_has_no_banding():
    # A tall ramp from sharp to 40 px over fine stripes: contrast falls smoothly row by row,
    # through slab, level (up to 1/8 resolution) and tile boundaries.
    height, width = 480, 96
    image = np.zeros((height, width, 3), np.float32)
    image[:, ::6] = 1.0
    coc = np.linspace(0.0, -40.0, height, dtype=np.float32)[:, None].repeat(width, axis=1)
    out = scatter.scatter_layers(image, coc, Aperture())[..., 0]
    contrast = out[:, 24:72].std(axis=1)
    steps = np.abs(np.diff(contrast[20:-60]))
    assert steps.max() < 0.02
    assert contrast[20] > 5 * contrast[-60]  # the blur did grow along the ramp


def _exact_crowd_share(centroids, clipped):
    """uncrowded's formula counted per pixel (the definition the block grid approximates)."""
    height, width = clipped.shape
    centres = np.zeros((height, width), np.float32)
    cx = np.clip(np.round(centroids[:, 0]).astype(int), 0, width - 1)
    cy = np.clip(np.round(centroids[:, 1]).astype(int), 0, height - 1)
    np.add.at(centres, (cy, cx), 1.0)
    side = 2 * int(round(CROWD_RADIUS_FRACTION * math.hypot(height, width))) + 1
    nearby = cv2.boxFilter(centres, -1, (side, side), normalize=False, borderType=cv2.BORDER_CONSTANT)
    share = cv2.boxFilter(clipped.astype(np.float32), -1, (4 * side + 1,) * 2, borderType=cv2.BORDER_REFLECT)
    others = np.maximum(nearby - 1, 0)
    return 1.0 / (1.0 + (others / CROWD_COUNT) ** 2 + (share / CROWD_CLIPPED) ** 2)


def test_crowd_counts_on_blocks_match_per_pixel_counts():
    rng = np.random.default_rng(4)
    height, width = 1500, 2000
    clipped = np.zeros((height, width), bool)
    # a crowd of glints in one corner, a few lone lamps elsewhere, one large clipped area
    for y, x in rng.integers([0, 0], [400, 500], (60, 2)):
        clipped[y:y + 2, x:x + 2] = True
    for y, x in [(900, 1500), (1200, 300), (700, 1900)]:
        clipped[y:y + 3, x:x + 3] = True
    clipped[1000:1300, 900:1300] = True
    spots, centroids = _spots(clipped)
    grid, factor = _crowd_grid(centroids, clipped)
    assert factor > 1
    ys, xs = np.nonzero(spots)
    coarse = grid[ys // factor, xs // factor]
    exact = _exact_crowd_share(centroids, clipped)[ys, xs]
    assert np.abs(coarse - exact).mean() < 0.01
    assert np.abs(coarse - exact).max() < 0.1
    lone = (ys == 1200) & (xs == 300)
    assert coarse[lone].min() > 0.9  # a lamp standing alone keeps its boost


@pytest.mark.parametrize("shape", [(1500, 2000), (1001, 1517), (333, 777), (120, 90)])
def test_spots_and_crowd_from_clipped_coordinates_equal_the_whole_mask_path(shape):
    """Given the clipped pixels' coordinates, _spots labels only their bounding box and
    _crowd_grid counts blocks from the coordinates (mirrored into the reflected padding): the
    same spots, centroids (to their rounding) and bit-identical crowd grid as from the mask."""
    rng = np.random.default_rng(7)
    height, width = shape
    for density in (1e-4, 1e-2, 0.3):
        clipped = rng.random(shape) < density
        clipped[-3:, :5] = clipped[:4, -2:] = True  # spots in the corners and the padding's mirror
        clipped[height // 2:height // 2 + 9, width // 3:width // 3 + 7] = True
        where = np.nonzero(clipped)
        spots, centroids = _spots(clipped)
        boxed, boxed_centroids = _spots(clipped, where)
        assert np.array_equal(spots, boxed)
        assert np.array_equal(np.round(centroids), np.round(boxed_centroids))
        grid, factor = _crowd_grid(centroids, clipped)
        sparse, sparse_factor = _crowd_grid(boxed_centroids, clipped, where)
        assert factor == sparse_factor and grid.dtype == sparse.dtype == np.float32
        assert grid.tobytes() == sparse.tobytes()


def _composite_over_per_pixel(acc, layer, scale, y0, x0):
    """composite_over as it was written before its columns were tabled (6a64e51), in plain
    Python: the interpolation position of every pixel computed on the pixel."""
    height, width = acc.shape[:2]
    lh, lw = layer.shape[:2]
    inv_area = 1.0 / (scale * scale)
    covered = layer[..., 3] > 0
    for y in range(max(y0 * scale, 0), min(height, (y0 + lh) * scale)):
        fy = (y + 0.5) / scale - 0.5 - y0
        iy = math.floor(fy)
        ty = fy - iy
        iy0, iy1 = min(max(iy, 0), lh - 1), min(max(iy + 1, 0), lh - 1)
        cols = np.flatnonzero(covered[iy0] | covered[iy1])
        if cols.size == 0:
            continue
        lo, hi = int(cols[0]), int(cols[-1])
        c_lo, c_hi = max(lo - 1, 0), min(hi + 1, lw - 1)
        row = ((1 - ty) * layer[iy0, c_lo:c_hi + 1].astype(np.float64)
               + ty * layer[iy1, c_lo:c_hi + 1].astype(np.float64)) * inv_area
        row = row.astype(np.float32)
        for x in range(max((x0 + lo - 1) * scale, x0 * scale, 0), min((x0 + hi + 2) * scale, width, (x0 + lw) * scale)):
            fx = (x + 0.5) / scale - 0.5 - x0
            ix = math.floor(fx)
            tx = fx - ix
            ix0 = min(max(ix, c_lo), c_hi) - c_lo
            ix1 = min(max(ix + 1, c_lo), c_hi) - c_lo
            alpha = (1 - tx) * float(row[ix0, 3]) + tx * float(row[ix1, 3])
            if alpha <= 0:
                continue
            clip = 1.0 if alpha <= 1 else 1.0 / alpha
            keep = 1.0 - alpha * clip
            for c in range(4):
                value = ((1 - tx) * float(row[ix0, c]) + tx * float(row[ix1, c])) * clip + keep * float(acc[y, x, c])
                acc[y, x, c] = np.float32(value)


@pytest.mark.parametrize("scale,y0,x0,shape", [(2, 0, 0, (23, 30)), (4, 3, 2, (9, 8)), (8, 1, 5, (7, 9)),
                                               (2, 11, 15, (12, 10)), (4, 0, 0, (13, 15))])
def test_composite_over_with_tabled_columns_equals_the_per_pixel_formula(scale, y0, x0, shape):
    """composite_over (columns tabled once per call, rows in blocks) equals the per-pixel formula
    on random layers with empty rows and columns, α above 1, crops reaching past the frame's
    right and bottom borders, and a call on a band of rows only (as the threads split it):
    exactly, or within float32 rounding on numba's fastmath JIT route."""
    from lensblur.renderers.kernels import composite_over

    rng = np.random.default_rng(scale * 100 + y0)
    height, width = 45, 61
    layer = rng.uniform(0, 1.6, shape + (4,)).astype(np.float32)
    layer[..., 3] *= rng.random(shape) > 0.3  # uncovered cells
    layer[rng.integers(0, shape[0], 3)] = 0.0  # empty rows
    layer[:, rng.integers(0, shape[1], 2)] = 0.0  # empty columns
    acc = rng.uniform(0, 1, (height, width, 4)).astype(np.float32)
    want = acc.copy()
    _composite_over_per_pixel(want, layer, scale, y0, x0)
    got = acc.copy()
    composite_over(got, layer, scale, y0, x0, y0 * scale, (y0 + shape[0]) * scale)
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-7)
    assert np.abs(got - acc).max() > 0.01  # the layer was drawn
    banded = acc.copy()  # rows lo … hi − 1 only: the other rows are left alone
    lo, hi = y0 * scale + 5, y0 * scale + 5 + 2 * scale + 3
    composite_over(banded, layer, scale, y0, x0, lo, hi)
    np.testing.assert_array_equal(banded[:lo], acc[:lo])
    np.testing.assert_array_equal(banded[hi:], acc[hi:])
    np.testing.assert_allclose(banded[lo:hi], want[lo:hi], rtol=2e-6, atol=2e-7)


def _pack_tiles(full, layout, fill):
    """``full`` (h, w, ...) stored tile by tile as ``layout`` says; cells of border tiles beyond
    the frame hold ``fill`` (they must never be read)."""
    tile = layout.tile
    packed = np.full((layout.n_tiles, tile, tile) + full.shape[2:], fill, np.float32)
    for i, (oy, ox) in enumerate(layout.origins):
        block = full[oy:oy + tile, ox:ox + tile]
        packed[i, :block.shape[0], :block.shape[1]] = block
    return packed


def _scattered_tiles(rng, shape, tile):
    """A random set of tiles of an odd-sized frame, always with the border ones at the right and bottom."""
    n_ty, n_tx = -(-shape[0] // tile), -(-shape[1] // tile)
    active = rng.random((n_ty, n_tx)) < 0.35
    active[-1, -1] = active[-1, 0] = active[0, -1] = True
    return active


@pytest.mark.parametrize("rim,cat_eye,composite,channels", [(0.0, 0.0, False, 4), (0.0, 0.0, True, 4),
                                                            (0.5, 0.7, False, 4), (0.4, 0.0, True, 4),
                                                            (0.0, 0.0, False, 3)])
def test_compact_tiles_scatter_exactly_like_the_full_frame(rim, cat_eye, composite, channels):
    # The same sources stored tile by tile (CompactTiles) or in a full frame with an active-tile
    # mask (the renderer's addressing before compaction) give bit-identical discs.
    rng = np.random.default_rng(int(rim * 10) + 3 * composite + channels)
    shape, tile = (75, 101), 16
    active = _scattered_tiles(rng, shape, tile)
    values = rng.uniform(0, 1, shape + (channels,)).astype(np.float32)
    values[..., -1] *= rng.random(shape) > 0.2  # some pixels spread nothing
    radii = rng.uniform(0, 6, shape).astype(np.float32)
    inactive = ~np.repeat(np.repeat(active, tile, 0), tile, 1)[:shape[0], :shape[1]]
    values[inactive], radii[inactive] = 7.0, 3.0  # garbage outside the tiles: never read
    discs = DiscScatter(Aperture(6, 10, 0.2), (300, 400), rim, cat_eye)
    layout = CompactTiles.of(active, tile, shape, 6.0)
    packed, packed_radii = _pack_tiles(values, layout, 7.0), _pack_tiles(radii, layout, 3.0)
    origin = (40, 17)
    if composite:
        target = rng.uniform(0, 1, (120, 130, 4)).astype(np.float32)
        full, compact = target.copy(), target.copy()
        discs(values, radii, origin, composite_into=full, tiles=(active, tile, 6.0))
        discs(packed, packed_radii, origin, composite_into=compact, compact=layout)
        assert np.abs(full - target).max() > 0.01
    else:
        full = discs(values, radii, origin, 2, tiles=(active, tile, 6.0))
        compact = discs(packed, packed_radii, origin, 2, compact=layout)
        assert full.shape == compact.shape == shape + (channels,) and full.max() > 0.01
    np.testing.assert_array_equal(compact, full)


def _unpack(packed, tiles, tile, frame):
    """Compare-friendly: the stored tiles of ``packed`` as (tile list row, cells within frame)."""
    for i, (ty, tx) in enumerate(tiles):
        h = min(tile, frame[0] - ty * tile)
        w = min(tile, frame[1] - tx * tile)
        yield i, (slice(ty * tile, ty * tile + h), slice(tx * tile, tx * tile + w)), packed[i, :h, :w]


@pytest.mark.parametrize("scale,with_hidden", [(1, True), (1, False), (2, True), (4, False), (64, True)])
def test_compact_block_sums_equal_full_frame_block_sums(scale, with_hidden):
    # slab_block_sum, add_points_to_blocks and composite_tiles on tiles stored one after another
    # give exactly what one block covering the whole crop (the old full-frame addressing) holds
    # on those tiles: random label maps, scattered tiles including partial ones at the borders,
    # scaled slabs, lights left out and points added (as for lights over budget).
    from lensblur.renderers.kernels import add_points_to_blocks, composite_tiles, slab_block_sum, slab_labels

    rng = np.random.default_rng(scale)
    height, width = 333, 461
    radiance = rng.uniform(0, 1, (height, width, 3)).astype(np.float32)
    radiance[rng.random((height, width)) < 0.01] = 3.0  # lights
    coc = cv2.resize(rng.uniform(-20, 20, (12, 16)).astype(np.float32), (width, height),
                     interpolation=cv2.INTER_NEAREST)
    coc += rng.uniform(-0.4, 0.4, coc.shape).astype(np.float32)
    edges = scatter.slab_edges(float(np.abs(coc).max()))
    labels = np.empty((height, width), np.uint8)
    slab_labels(coc, edges, labels, 0, height)
    owners = scatter.HiddenAreaOwners(radiance, coc, edges)
    parts = {int(k): owners.hidden_part(int(k)) for k in np.unique(labels)}
    label = next(k for k, part in sorted(parts.items()) if (part is not None) == with_hidden)
    hidden = parts[label].kernel_args if with_hidden else scatter.NO_HIDDEN
    cells = max(scatter.TILE, scale) // scale
    low_h, low_w = -(-height // scale), -(-width // scale)
    y0, x0 = (cells, 0) if low_h > 2 * cells else (0, 0)  # a crop starting on a tile boundary
    frame = (low_h - y0, low_w - x0)
    active = _scattered_tiles(rng, frame, cells)
    tiles = np.argwhere(active).astype(np.int32)
    whole = max(frame)  # one block holding the whole crop
    ref_sums, ref_radius = np.zeros((1, whole, whole, 4), np.float32), np.zeros((1, whole, whole), np.float32)
    light = 1.0 if scale > 1 else 0.0
    slab_block_sum(radiance, coc, labels, label, scale, y0, x0, ref_sums, ref_radius, np.zeros((1, 2), np.int32),
                   whole, light, hidden, 0, 1)
    sums = np.full((len(tiles), cells, cells, 4), 9.0, np.float32)
    radius = np.full((len(tiles), cells, cells), 9.0, np.float32)
    slab_block_sum(radiance, coc, labels, label, scale, y0, x0, sums, radius, tiles, cells, light, hidden, 0,
                   len(tiles))
    n = rng.integers(200, 400)
    ys, xs = rng.integers(0, height, n).astype(np.int32), rng.integers(0, width, n).astype(np.int32)
    colours, radii = rng.uniform(0, 5, (n, 3)).astype(np.float32), rng.uniform(1, 30, n).astype(np.float32)
    slots = CompactTiles.of(active, cells, frame, 0.0).slots
    add_points_to_blocks(ref_sums, ref_radius, np.zeros((1, 1), np.int32), whole, ys, xs, colours, radii, scale,
                         y0, x0)
    add_points_to_blocks(sums, radius, slots, cells, ys, xs, colours, radii, scale, y0, x0)
    assert ref_sums[0, ..., 3].max() > 0
    for i, where, block in _unpack(sums, tiles, cells, frame):
        np.testing.assert_array_equal(block, ref_sums[0][where])
        np.testing.assert_array_equal(radius[i][:block.shape[0], :block.shape[1]], ref_radius[0][where])
    if scale == 1:
        acc = rng.uniform(0, 1, (height, width, 4)).astype(np.float32)
        want, got = acc.copy(), acc.copy()
        composite_tiles(want, ref_sums / 50, np.zeros((1, 2), np.int32), whole, y0, x0, 0, 1)
        composite_tiles(got, sums / 50, tiles, cells, y0, x0, 0, len(tiles))
        drawn = np.repeat(np.repeat(active, cells, 0), cells, 1)[:frame[0], :frame[1]]
        np.testing.assert_array_equal(got[y0:, x0:][drawn], want[y0:, x0:][drawn])
        np.testing.assert_array_equal(got[y0:, x0:][~drawn], acc[y0:, x0:][~drawn])
        np.testing.assert_array_equal(got[:y0], acc[:y0])


def test_lights_over_budget_and_within_match_whole_frame_slabs(monkeypatch):
    # Full-resolution lights (stored tile by tile) and, with a tiny budget, lights added into the
    # slab's compact block sums give the same picture as whole-frame work.
    image, disparity = _floor_with_subject(220, 250, seed=11)
    rng = np.random.default_rng(11)
    for y, x in zip(rng.integers(0, 90, 40), rng.integers(0, 250, 40)):
        image[y, x] = rng.uniform(1.5, 4.0, 3)
    lens = Lens(blur=70, focus_disparity=0.8, highlights=None)
    for budget in (scatter.HIGHLIGHT_BUDGET, 300.0):
        monkeypatch.setattr(scatter, "HIGHLIGHT_BUDGET", budget)
        whole = _render(monkeypatch, 4096, image, disparity, lens)
        for tile in (8, 32):
            tiled = _render(monkeypatch, tile, image, disparity, lens)
            assert np.abs(tiled - whole).max() < 1e-4, (budget, tile)


@pytest.mark.parametrize("shaped", [False, True])
def test_band_windows_skip_the_columns_no_disc_reaches(shaped):
    # Two groups of sources in the same rows, far apart: each band zero-fills and integrates only
    # the columns their discs reach. The discs equal those of one window over the whole width
    # (tiles=None) within float32 rounding, the columns between are left exactly as they were,
    # and a column just inside a group's reach is drawn.
    rng = np.random.default_rng(8)
    shape, tile, radius = (96, 400), 16, 5.5
    values = np.zeros(shape + (4,), np.float32)
    for x0 in (16, 320):
        values[32:64, x0:x0 + 32, :3] = rng.uniform(0, 1, (32, 32, 3))
        values[32:64, x0:x0 + 32, 3] = 1.0
    radii = np.where(values[..., 3] > 0, radius, 0).astype(np.float32)
    discs = DiscScatter(Aperture(), shape, 0.4 if shaped else 0.0, 0.5 if shaped else 0.0)
    whole = discs(values, radii)
    active = np.zeros((6, 25), bool)
    active[2:4, [1, 2, 20, 21]] = True
    tiled = discs(values, radii, tiles=(active, tile, radius))
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
    assert (tiled[:, 60:300] == 0).all()  # nothing drawn between the groups' reaches
    assert tiled[40, 48 + 4, 3] > 0.01 and tiled[40, 320 - 5, 3] > 0.01
    target = rng.uniform(0, 1, shape + (4,)).astype(np.float32)
    composited = target.copy()
    discs(values, radii, composite_into=composited, tiles=(active, tile, radius))
    np.testing.assert_array_equal(composited[:, 60:300], target[:, 60:300])
    assert np.abs(composited[40, 320 - 5] - target[40, 320 - 5]).max() > 0.001


def test_disc_layer_is_written_everywhere_whatever_out_held(monkeypatch):
    # A layer drawn into a reused buffer (NaN here) comes out as into a zeroed one: the kernel
    # writes every pixel, 0 where no disc reaches — also when its bands are split into chunks
    # (as the compiled route's threads split them), rows above and below the sources included.
    import lensblur.renderers.discs as discs_module

    rng = np.random.default_rng(12)
    shape, tile = (160, 200), 16
    values = np.zeros(shape + (4,), np.float32)
    values[64:96, 16:48] = rng.uniform(0, 1, (32, 32, 4))
    values[64:96, 144:176] = rng.uniform(0, 1, (32, 32, 4))
    radii = np.where(values[..., 3] > 0, 4.5, 0).astype(np.float32)
    active = np.zeros((10, 13), bool)
    active[4:6, [1, 2, 9, 10]] = True
    discs = DiscScatter(Aperture(), shape)
    whole = discs(values, radii)
    kernel = discs_module.scatter_spans
    for chunks in (1, 3, 40):
        def chunked(*args):
            *head, lo, hi = args
            for bounds in np.array_split(np.arange(lo, hi), chunks):
                if bounds.size:
                    kernel(*head, int(bounds[0]), int(bounds[-1]) + 1)

        monkeypatch.setattr(discs_module, "scatter_spans", chunked)
        for fill in (np.nan, 0.0):
            out = np.full(shape + (4,), fill, np.float32)
            drawn = discs(values, radii, tiles=(active, tile, 4.5), out=out)
            assert drawn is out and not np.isnan(out).any(), (chunks, fill)
            np.testing.assert_allclose(out, whole, atol=1e-5)
            assert (out[:50] == 0).all() and (out[110:] == 0).all() and (out[:, 60:130] == 0).all()


def _block_sums_by_hand(radiance, coc, labels, label, scale, y0, x0, tiles, tile, light_level, hidden):
    """slab_block_sum written out plainly: each cell's pixels in row-major order, added one by one
    into Python floats (float64, as the kernel adds them)."""
    owned, source_y, source_x, colour, coc_small, cell_y, cell_x = hidden
    height, width = labels.shape
    sums = np.zeros((len(tiles), tile, tile, 4), np.float32)
    radius = np.zeros((len(tiles), tile, tile), np.float32)
    low_h, low_w = -(-height // scale) - y0, -(-width // scale) - x0
    for i, (ty, tx) in enumerate(tiles):
        for by in range(ty * tile, min((ty + 1) * tile, low_h)):
            for bx in range(tx * tile, min((tx + 1) * tile, low_w)):
                total, count, radii = [0.0, 0.0, 0.0], 0.0, 0.0
                for y in range((y0 + by) * scale, min((y0 + by + 1) * scale, height)):
                    for x in range((x0 + bx) * scale, min((x0 + bx + 1) * scale, width)):
                        if labels[y, x] == label:
                            pixel = radiance[y, x]
                            if light_level > 0 and pixel.max() > light_level:
                                continue
                            value, r = pixel, abs(coc[y, x])
                        elif owned.size and labels[y, x] > label and owned[cell_y[y], cell_x[x]]:
                            cy, cx = source_y[cell_y[y], cell_x[x]], source_x[cell_y[y], cell_x[x]]
                            value, r = colour[cy, cx], abs(coc_small[cy, cx])
                        else:
                            continue
                        total = [t + float(v) for t, v in zip(total, value)]
                        count += 1.0
                        radii += float(r)
                sums[i, by - ty * tile, bx - tx * tile] = (*total, count)
                radius[i, by - ty * tile, bx - tx * tile] = radii / count / scale if count > 0 else 0.0
    return sums, radius


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_block_sums_equal_the_cells_added_by_hand(scale):
    # the kernel's one-pixel-cell path (scale 1) and its cell loops give bit for bit the plain sums,
    # with own pixels, lights left out (scaled slabs) and hidden pixels taking their source's colour
    from lensblur.renderers.kernels import slab_block_sum, slab_labels

    rng = np.random.default_rng(10 + scale)
    height, width = 61, 83
    radiance = rng.uniform(0, 1, (height, width, 3)).astype(np.float32)
    radiance[rng.random((height, width)) < 0.03] = 2.5
    coc = cv2.resize(rng.uniform(-12, 12, (5, 7)).astype(np.float32), (width, height),
                     interpolation=cv2.INTER_NEAREST)
    edges = scatter.slab_edges(float(np.abs(coc).max()))
    labels = np.empty((height, width), np.uint8)
    slab_labels(coc, edges, labels, 0, height)
    owners = scatter.HiddenAreaOwners(radiance, coc, edges)
    checked = 0
    for label in np.unique(labels):
        part = owners.hidden_part(int(label))
        hidden = scatter.NO_HIDDEN if part is None else part.kernel_args
        tile = 8
        frame = (-(-height // scale), -(-width // scale))
        tiles = np.argwhere(np.ones((-(-frame[0] // tile), -(-frame[1] // tile)), bool)).astype(np.int32)
        light = 1.0 if scale > 1 else 0.0
        sums = np.full((len(tiles), tile, tile, 4), 7.0, np.float32)
        radius = np.full((len(tiles), tile, tile), 7.0, np.float32)
        slab_block_sum(radiance, coc, labels, int(label), scale, 0, 0, sums, radius, tiles, tile, light, hidden,
                       0, len(tiles))
        want_sums, want_radius = _block_sums_by_hand(radiance, coc, labels, int(label), scale, 0, 0, tiles, tile,
                                                     light, hidden)
        for i, where, block in _unpack(sums, tiles, tile, frame):
            np.testing.assert_array_equal(block, want_sums[i][:block.shape[0], :block.shape[1]])
            np.testing.assert_array_equal(radius[i][:block.shape[0], :block.shape[1]],
                                          want_radius[i][:block.shape[0], :block.shape[1]])
        checked += part is not None
    assert checked >= 2  # slabs with hidden pixels were among them
