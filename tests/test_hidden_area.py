"""The hidden-area owners (scatter.HiddenAreaOwners) give the same owned cells, sources and block
tiles as the per-slab computation they replaced (kept below as the reference, as it was at
6a64e51: one full nearest-pixel map per slab window, per-slab boolean maxima, an integral image
for the tiles), on random label maps with slabs at the borders, empty slabs and single cells."""

import math

import cv2
import numpy as np
import pytest

from lensblur.renderers.nearest import nearest_zero, nearest_zero_within
from lensblur.lens import signed_coc
from lensblur.renderers.scatter import ANALYSIS_PIXELS, HiddenAreaOwners, slab_edges


def _reference_nearest_zero(mask):
    """nearest_zero as it was: OpenCV's labelled transform, mapped through np.nonzero."""
    source = (~mask).astype(np.uint8)
    distance, labels = cv2.distanceTransformWithLabels(1 - source, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    ys, xs = np.nonzero(source)
    own = labels[ys, xs]
    row = np.zeros(int(own.max()) + 1, np.int32)
    col = np.zeros_like(row)
    row[own], col[own] = ys, xs
    return distance, row[labels], col[labels]


def _reference_hidden_part(owners: HiddenAreaOwners, label: int):
    """(owned, source rows, source columns) of slab ``label`` as the old hidden_part found them."""
    labels, coc, factor = owners.labels_small, owners.coc_small, owners.factor
    nearer_small = labels > label
    own_small = labels == label
    if not nearer_small.any() or not own_small.any():
        return None
    own_radius = float(np.abs(coc[own_small]).max())
    reveal = float(np.abs(coc[nearer_small]).max()) + own_radius + 2.0
    reach = int(math.ceil(reveal / factor)) + 1
    rows, cols = np.flatnonzero(own_small.any(axis=1)), np.flatnonzero(own_small.any(axis=0))
    height, width = own_small.shape
    y0, y1 = max(int(rows[0]) - 2 * reach, 0), min(int(rows[-1]) + 2 * reach + 1, height)
    x0, x1 = max(int(cols[0]) - 2 * reach, 0), min(int(cols[-1]) + 2 * reach + 1, width)
    window = nearer_small[y0:y1, x0:x1]
    if not window.any():
        return None
    distance, wy, wx = _reference_nearest_zero(window)
    owned_window = window & (own_small[y0:y1, x0:x1][wy, wx]) & (distance * factor <= reveal)
    if not owned_window.any():
        return None
    owned = np.zeros_like(nearer_small)
    owned[y0:y1, x0:x1] = owned_window
    iy = np.zeros(own_small.shape, np.int32)
    ix = np.zeros(own_small.shape, np.int32)
    iy[y0:y1, x0:x1] = wy + y0
    ix[y0:y1, x0:x1] = wx + x0
    return owned, iy, ix


def _reference_tiles(owned, cell_y, cell_x, tile, height, width):
    integral = cv2.integral(owned.astype(np.uint8))
    starts_y, starts_x = np.arange(0, height, tile), np.arange(0, width, tile)
    top, bottom = cell_y[starts_y], cell_y[np.minimum(starts_y + tile, height) - 1] + 1
    left, right = cell_x[starts_x], cell_x[np.minimum(starts_x + tile, width) - 1] + 1
    count = (integral[bottom][:, right] - integral[top][:, right] - integral[bottom][:, left]
             + integral[top][:, left])
    return count > 0


def _coc_for_labels(labels, edges, rng):
    """A float32 blur map whose slab labels (np.digitize against ``edges``) are ``labels``."""
    low = np.concatenate([[edges[0] - 8.0], edges])      # label k holds edges[k-1] <= c < edges[k]
    high = np.concatenate([edges, [edges[-1] + 8.0]])
    t = rng.uniform(0.05, 0.95, labels.shape)
    return (low[labels] + t * (high[labels] - low[labels])).astype(np.float32)


def _label_maps(seed):
    """Random label maps on a grid small enough to be its own analysis grid (factor 1)."""
    rng = np.random.default_rng(seed)
    height, width = int(rng.integers(1, 90)), int(rng.integers(1, 120))
    edges = slab_edges(float(rng.uniform(5, 60)))
    n = len(edges) + 1
    kind = seed % 5
    if kind == 0:  # smooth blobs: slabs as regions, touching the borders
        field = cv2.GaussianBlur(rng.normal(size=(height, width)).astype(np.float32), (0, 0), 4)
        field = (field - field.min()) / max(float(np.ptp(field)), 1e-6)
        labels = np.minimum((field * n).astype(np.intp), n - 1)
    elif kind == 1:  # every cell its own draw: single-cell slabs everywhere
        labels = rng.integers(0, n, (height, width))
    elif kind == 2:  # few labels with empty slabs between them
        chosen = np.sort(rng.choice(n, size=min(3, n), replace=False))
        labels = chosen[rng.integers(0, len(chosen), (height, width))]
        labels = cv2.medianBlur(labels.astype(np.uint8), 3).astype(np.intp) if min(height, width) > 2 else labels
    elif kind == 3:  # a far background with single near cells and a near slab on a border
        labels = np.full((height, width), int(rng.integers(0, n // 2)), np.intp)
        for _ in range(int(rng.integers(1, 6))):
            labels[rng.integers(0, height), rng.integers(0, width)] = int(rng.integers(n // 2, n))
        labels[:, : max(1, width // 8)] = n - 1
    else:  # a ramp across the frame (continuous depth), plus a lone cell of the farthest slab
        labels = np.minimum(np.arange(height)[:, None] * n // max(height, 1), n - 1) + np.zeros((1, width), np.intp)
        labels[rng.integers(0, height), rng.integers(0, width)] = 0
    coc = _coc_for_labels(labels, edges, rng)
    radiance = rng.uniform(0, 1, (height, width, 3)).astype(np.float32)
    return radiance, coc, edges, labels


def _assert_same_as_reference(owners, labels_expected=None, reference=_reference_hidden_part):
    """Every slab's hidden part equals ``reference``'s; returns how many slabs have one."""
    height, width = owners.cell_y.size, owners.cell_x.size
    if labels_expected is not None:
        assert np.array_equal(owners.labels_small, labels_expected)
    found = 0
    for label in range(owners._largest.size):
        new, old = owners.hidden_part(label), reference(owners, label)
        assert (new is None) == (old is None), label
        if old is None:
            continue
        found += 1
        owned, iy, ix = old
        assert np.array_equal(new.kernel_args[0], owned), label
        assert np.array_equal(new.kernel_args[1][owned], iy[owned]), label
        assert np.array_equal(new.kernel_args[2][owned], ix[owned]), label
        rows, cols = new.cells
        assert np.array_equal(np.sort(rows * owned.shape[1] + cols), np.flatnonzero(owned))
        for tile in (1, 5, 32, 64):
            assert np.array_equal(new.tiles(tile, height, width),
                                  _reference_tiles(owned, owners.cell_y, owners.cell_x, tile, height, width))
    return found


@pytest.mark.parametrize("seed", range(40))
def test_same_owners_and_sources_as_before_on_random_label_maps(seed):
    radiance, coc, edges, labels = _label_maps(seed)
    owners = HiddenAreaOwners(radiance, coc, edges)
    assert owners.factor == 1
    _assert_same_as_reference(owners, labels)


def test_the_random_maps_do_hide_areas_and_hold_single_cells_and_empty_slabs():
    """The maps above exercise what they claim to (so the comparison is not vacuous)."""
    hidden = single = empty = 0
    for seed in range(40):
        radiance, coc, edges, labels = _label_maps(seed)
        hidden += _assert_same_as_reference(HiddenAreaOwners(radiance, coc, edges)) > 0
        counts = np.bincount(labels.ravel(), minlength=len(edges) + 1)
        single += (counts == 1).any()
        present = np.flatnonzero(counts)
        empty += (counts[present[0]:present[-1] + 1] == 0).any()
    assert hidden >= 25 and single >= 6 and empty >= 5


@pytest.mark.parametrize("shape", [(700, 500), (401, 1203), (1024, 768)])
def test_same_owners_and_tiles_on_downscaled_analysis_grids(shape):
    """Images above ANALYSIS_PIXELS: the grid is an INTER_AREA reduction, cells span several pixels."""
    rng = np.random.default_rng(shape[0])
    height, width = shape
    yy, xx = np.mgrid[:height, :width]
    disparity = (yy / height * 0.8 + 0.1 * np.sin(xx / 37.0)).astype(np.float32)
    disparity[(yy - height / 2) ** 2 + (xx - width / 2) ** 2 < (min(shape) / 5) ** 2] = 0.95
    coc = (40 * (disparity - 0.5)).astype(np.float32)
    edges = slab_edges(float(np.abs(coc).max()))
    owners = HiddenAreaOwners(rng.uniform(0, 1, (height, width, 3)).astype(np.float32), coc, edges)
    assert owners.factor == math.ceil(math.sqrt(height * width / ANALYSIS_PIXELS)) > 1
    assert _assert_same_as_reference(owners) >= 3


@pytest.mark.parametrize("seed", range(6))
def test_nearest_zero_and_within_match_the_old_mapping(seed):
    rng = np.random.default_rng(seed)
    mask = rng.random((int(rng.integers(1, 70)), int(rng.integers(1, 70)))) < rng.uniform(0.3, 0.999)
    mask.flat[int(rng.integers(0, mask.size))] = False  # at least one False
    distance, iy, ix = nearest_zero(mask)
    old_distance, old_iy, old_ix = _reference_nearest_zero(mask)
    assert np.array_equal(distance, old_distance) and np.array_equal(iy, old_iy) and np.array_equal(ix, old_ix)
    # limits equal to distances that occur (1, 2, 3 px straight) check the boundary is kept
    for limit, pixel in ((0.0, 1), (1.0, 1), (2.0, 1), (2.5, 1), (3.0, 3), (7.0, 3), (1e9, 1)):
        cells, sources = nearest_zero_within(mask, limit, pixel)
        expected = np.flatnonzero(mask & (distance * pixel <= limit))
        assert np.array_equal(cells, expected)
        assert np.array_equal(sources, (iy * mask.shape[1] + ix).ravel()[expected])


def _whole_grid_hidden_part(owners: HiddenAreaOwners, label: int):
    """The hidden area of slab ``label`` found with one transform over the whole analysis grid."""
    nearer = owners.labels_small > label
    if not nearer.any() or nearer.all():
        return None
    distance, iy, ix = nearest_zero(nearer)
    own = owners.labels_small == label
    own_radius = float(np.abs(owners.coc_small[own]).max()) if own.any() else 0.0
    reveal = float(np.abs(owners.coc_small[nearer]).max()) + own_radius + 2.0
    owned = nearer & (owners.labels_small[iy, ix] == label) & (distance * owners.factor <= reveal)
    return (owned, iy, ix) if owned.any() else None


@pytest.mark.parametrize("focus", [0.3, 0.7, 0.95])
def test_windowed_hidden_area_equals_the_whole_grid_transform(focus):
    """The window around a slab's own cells gives what one transform over the whole grid gives."""
    height, width = 300, 420
    rng = np.random.default_rng(3)
    disparity = np.repeat(np.linspace(0.05, 1.0, height, dtype=np.float32)[:, None], width, axis=1)
    yy, xx = np.mgrid[:height, :width]
    disparity[((yy - 0.55 * height) / (0.25 * height)) ** 2 + ((xx - 0.5 * width) / (0.12 * width)) ** 2 <= 1] = 0.7
    coc = signed_coc(disparity, 60.0, focus, 0.0)
    edges = slab_edges(float(np.abs(coc).max()))
    owners = HiddenAreaOwners(rng.uniform(0, 0.8, (height, width, 3)).astype(np.float32), coc, edges)
    assert _assert_same_as_reference(owners, reference=_whole_grid_hidden_part) >= 2
