"""Plain discs drawn as runs (kernels._runs_band4) against a direct reference: each source's disc
is the linear blend of the span table's discs at the two radii around its own, every span
anti-aliased by exact box coverage; and against the interpolation of span ends it replaced."""

import numpy as np
import pytest

from lensblur.aperture import Aperture
from lensblur.renderers import kernels
from lensblur.renderers.discs import MIN_TABLE_RADIUS, DiscScatter
from lensblur.renderers.reference import aperture_kernel
from lensblur.renderers.spans import span_table


def _coverage(a, b, width):
    """Share of each of ``width`` pixels (pixel j covers [j − ½, j + ½]) inside [a, b]."""
    j = np.arange(width)
    return np.clip(np.minimum(b, j + 0.5) - np.maximum(a, j - 0.5), 0, None)


def _reference(values, radii, table, blend=True, active=None, tile=1):
    """Sum of the discs of every source with coverage > 0, in float64. blend: each disc is
    (1 − t)·disc k + t·disc k+1 (the kernel's rule); else the spans' ends and weights are
    interpolated between the entries (the rule before runs)."""
    height, width, channels = values.shape
    out = np.zeros((height, width, channels))
    n_radii = table.reach.shape[0]
    centre = (table.left.shape[1] - 1) // 2
    for sy, sx in zip(*np.nonzero(values[..., -1] > 0)):
        if active is not None and not active[sy // tile, sx // tile]:
            continue
        f = float(radii[sy, sx]) * table.steps_per_pixel
        k, t = (n_radii - 2, 1.0) if int(f) >= n_radii - 1 else (int(f), f - int(f))
        reach = int(table.reach[k + 1])
        for y in range(max(sy - reach, 0), min(sy + reach, height - 1) + 1):
            row = y - sy + centre
            if blend:
                parts = [(k, 1 - t), (k + 1, t)]
                spans = [(table.left[kk, row], table.right[kk, row], table.weight[kk, row] * share)
                         for kk, share in parts]
            else:
                mix = lambda array: (1 - t) * array[k, row] + t * array[k + 1, row]  # noqa: E731
                spans = [(mix(table.left), mix(table.right), mix(table.weight))]
            for a, b, w in spans:
                if w > 0 and b > a:
                    out[y] += w * _coverage(sx + float(a), sx + float(b), width)[:, None] * values[sy, sx]
    return out


def _table(radii):
    return span_table(Aperture(), max(MIN_TABLE_RADIUS, np.ceil(float(radii.max())) + 1.0))


@pytest.mark.parametrize("seed", [0, 1])
def test_runs_equal_the_blend_of_table_discs_on_random_radii(seed):
    rng = np.random.default_rng(seed)
    values = rng.uniform(0, 1, (36, 48, 4)).astype(np.float32)
    values[rng.uniform(size=(36, 48)) < 0.25, 3] = 0  # holes: short runs and bridged gaps
    values[:, 20:31, 3] = 0                          # a gap wider than RUN_GAP
    radii = rng.uniform(0, 6.5, (36, 48)).astype(np.float32)  # many table entries in one row
    radii[5] = 3.3                                            # one row on a single entry
    radii[9] = np.linspace(0.2, 6.4, 48)                      # more entries than run slots
    fast = DiscScatter(Aperture(), (36, 48))(values, radii)
    expected = _reference(values, radii, _table(radii))
    assert np.abs(fast - expected).max() < 2e-5 * max(1.0, np.abs(expected).max())


def test_runs_at_the_borders_keep_what_falls_inside():
    """Discs reaching past every border (the kernel's spill into column 0 and its dropped right
    end) and rows longer than a tile."""
    values = np.zeros((20, 70, 4), np.float32)
    values[:, :4] = 1.0
    values[:, -3:] = 0.5
    values[0, :] = 0.25
    values[-1, :] = 0.75
    radii = np.full((20, 70), 5.7, np.float32)
    radii[:, :2] = 2.4
    fast = DiscScatter(Aperture(), (20, 70))(values, radii)
    expected = _reference(values, radii, _table(radii))
    assert np.abs(fast - expected).max() < 2e-5
    assert fast[..., 3].sum() < values[..., 3].sum() - 1  # what falls outside is lost


def test_runs_on_tiles_read_only_the_active_tiles():
    rng = np.random.default_rng(4)
    values = rng.uniform(0, 1, (48, 64, 4)).astype(np.float32)
    radii = rng.uniform(1, 5, (48, 64)).astype(np.float32)
    active = rng.uniform(size=(6, 8)) < 0.4
    active[0, 0] = active[5, 7] = True
    # inactive tiles hold anything: NaN must not be read
    inactive = np.repeat(np.repeat(~active, 8, axis=0), 8, axis=1)
    values[inactive] = np.nan
    radii[inactive] = np.nan
    fast = DiscScatter(Aperture(), (48, 64))(values, radii, tiles=(active, 8, 5.0))
    expected = _reference(np.nan_to_num(values), np.nan_to_num(radii), _table(np.full(1, 5.0)),
                          active=active, tile=8)
    assert np.isfinite(fast).all()
    assert np.abs(fast - expected).max() < 2e-5 * np.abs(expected).max()


@pytest.mark.parametrize("radius", [0.51, 0.56, 0.7, 1.3, 2.77, 4.05, 5.93, 14.4])
def test_each_disc_keeps_its_energy_and_is_as_close_to_the_exact_disc_as_before(radius):
    """One point: the blend spreads exactly its value (the old interpolation of span ends did
    not: up to 1.2 % more just above r = ½); against the exact area-sampled disc it is as close
    as the old disc (closer just above r = ½, where the old one kept the side pixels dark), and
    from r = 1 on it differs from the old disc by < 0.2 % of the point per pixel, only on the rim."""
    size = 2 * int(radius) + 9
    c = size // 2
    values = np.zeros((size, size, 4), np.float32)
    values[c, c] = 1.0
    radii = np.full((size, size), radius, np.float32)
    fast = DiscScatter(Aperture(), (size, size))(values, radii)[..., 3]
    old = _reference(values, radii, _table(radii), blend=False)[..., 3]
    kernel = aperture_kernel(Aperture(), radius, supersample=64)
    half = kernel.shape[0] // 2
    exact = np.zeros((size, size))
    exact[c - half:c + half + 1, c - half:c + half + 1] = kernel
    assert abs(fast.sum() - 1.0) < 1e-5
    assert np.abs(fast - exact).sum() <= np.abs(old - exact).sum() + 0.012
    if radius >= 1:
        assert np.abs(fast - old).max() < 2e-3
        yy, xx = np.mgrid[:size, :size] - c
        inner = np.hypot(yy, xx) < radius - 1.5
        assert np.abs(fast - old)[inner].max(initial=0.0) < 1e-6


@pytest.mark.parametrize("radius", [1.3, 4.05, 7.6])
def test_rimmed_discs_keep_the_interpolated_span_ends(radius):
    """Rims (and cat's eyes) keep their per-source path and its interpolation of span ends: a
    rimmed disc is the outer disc minus the inner 0.8·r one (scaled by the rim's share),
    normalised to the point's value."""
    rim = 0.6
    size = 2 * int(radius) + 9
    values = np.zeros((size, size, 4), np.float32)
    values[size // 2, size // 2] = 1.0
    radii = np.full((size, size), radius, np.float32)
    rimmed = DiscScatter(Aperture(), (size, size), rim=rim)(values, radii)[..., 3]
    table = _table(radii)
    inner2 = kernels.RIM_INNER ** 2
    outer = _reference(values, radii, table, blend=False)[..., 3] * ((1 - rim) + rim / (1 - inner2))
    inner = _reference(values, radii * kernels.RIM_INNER, table, blend=False)[..., 3] * (rim * inner2 / (1 - inner2))
    expected = (outer - inner) / (outer - inner).sum()
    assert np.abs(rimmed - expected).max() < 1e-5


def test_span_tables_cut_from_shared_blocks_equal_tables_built_alone(monkeypatch):
    """span_table cuts each table from radii computed for a 16 px block (cached per process and
    shared read-only between threads): every array is bit-identical to the table computed at
    exactly its own size, for discs and polygons, and the cached block cannot be written."""
    from lensblur.renderers import spans

    apertures = [Aperture(), Aperture(6), Aperture(5, 17.0, 0.3)]
    radii = [0.3, 2.5, 9, 10, 12.7, 16, 17, 31, 33, 77.2]
    shared = {(a, r): spans.span_table.__wrapped__(a, r) for a in apertures for r in radii}
    monkeypatch.setattr(spans, "RAW_BLOCK", 1)  # every table its own block: the uncut computation
    spans._raw_block.cache_clear()
    try:
        for (aperture, radius), table in shared.items():
            alone = spans.span_table.__wrapped__(aperture, radius)
            for field in ("left", "right", "weight", "reach"):
                mine, reference = getattr(table, field), getattr(alone, field)
                assert mine.dtype == reference.dtype and mine.shape == reference.shape, (aperture, radius, field)
                assert mine.tobytes() == reference.tobytes(), (aperture, radius, field)
    finally:
        spans._raw_block.cache_clear()
    left, _, _ = spans._raw_block(Aperture(), 16, 8)
    with pytest.raises(ValueError):
        left[0, 0] = 1.0
