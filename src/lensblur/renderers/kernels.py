"""numba kernels of the scatter renderer: span scatter, slab block sums, compositing."""

from __future__ import annotations

import numpy as np
from numba import njit, prange


RIM_INNER = 0.8  # inner radius of the bright rim, as a fraction of the disc radius


@njit(cache=True, inline="always")
def _add_span(drow, a, b, width, value, scale):
    """Add value·scale (a C-vector) over the continuous interval [a, b] (pixel k covers [k−½, k+½]) of a
    row's difference buffer, with fractional coverage at both ends."""
    if b < -0.5 or a > width - 0.5 or b <= a:
        return
    a = max(a, -1.0)
    b = min(b, width + 0.0)
    kl = int(np.floor(a + 0.5))
    kr = int(np.floor(b + 0.5))
    channels = value.shape[0]
    if kl == kr:
        cover = b - a
        for c in range(channels):
            v = value[c] * scale
            drow[kl + 1, c] += v * cover
            drow[kl + 2, c] -= v * cover
    else:
        cl = kl + 0.5 - a
        cr = b - (kr - 0.5)
        for c in range(channels):
            v = value[c] * scale
            drow[kl + 1, c] += v * cl
            drow[kl + 2, c] += v * (1 - cl)
            drow[kr + 1, c] += v * (cr - 1)
            drow[kr + 2, c] -= v * cr


@njit(cache=True, inline="always")
def _table_span(left, right, weight, k, t, row):
    """Span (a, b, weight) of a table row, interpolated between radius entries k and k+1."""
    wt = (1 - t) * weight[k, row] + t * weight[k + 1, row]
    a = (1 - t) * left[k, row] + t * left[k + 1, row]
    b = (1 - t) * right[k, row] + t * right[k + 1, row]
    return a, b, wt


@njit(cache=True, inline="always")
def _table_index(radius, steps_per_pixel, n_radii):
    f = radius * steps_per_pixel
    k = int(f)
    if k >= n_radii - 1:
        return n_radii - 2, 1.0
    return k, f - k


@njit(cache=True, parallel=True, fastmath=True)
def scatter_spans(values, radii, left, right, weight, reach, steps_per_pixel, n_bands, optics, target, target_y,
                  target_x):
    """Spread each source pixel's values over its aperture-shaped disc.

    values: float32 (H, W, C) what each pixel spreads (premultiplied colour, then coverage α
    last; pixels with α <= 0 spread nothing); radii: float32 (H, W) disc radius in pixels, within
    the table. left/right/weight/reach: a SpanTable's arrays; n_bands: row bands processed in
    parallel (a few per thread). optics: float64 (7,) = (rim, vignette, origin_y, origin_x,
    centre_y, centre_x, half_diagonal): rim in [0, 1] moves that share of each disc's energy into
    a bright ring (outer 20% of the radius); vignette in [0, 1] clips discs by a circle of the
    same radius shifted towards the image centre by vignette·r·(distance from centre /
    half_diagonal), giving cat's-eye discs towards the corners; the other five place this
    output's pixel (0, 0) at (origin_y, origin_x) of an image whose centre and half-diagonal are
    given, in the same pixel units. Every disc keeps a total of exactly its source's value.
    Returns float32 (H, W, C), the sum of all discs (parts falling outside are lost) — unless
    ``target`` is a non-empty premultiplied (rgb, α) image: then the sum (C = 4) is composited
    over it in place at (target_y, target_x) with :func:`composite_over`'s rule, and an empty
    array is returned (this saves a full-size layer).

    Rows of the output are split into bands, one thread per band, so no two threads write the
    same row; each source touches only the rows of its disc.
    """
    height, width, channels = values.shape
    n_radii = reach.shape[0]
    centre = (left.shape[1] - 1) // 2
    rim, vignette = optics[0], optics[1]
    shaped = rim > 0 or vignette > 0
    outer_scale = (1 - rim) + rim / (1 - RIM_INNER * RIM_INNER)
    inner_scale = rim * RIM_INNER * RIM_INNER / (1 - RIM_INNER * RIM_INNER)
    k_max, _ = _table_index(radii.max() if radii.size else 0.0, steps_per_pixel, n_radii)
    max_reach = reach[k_max + 1]
    in_place = target.shape[0] > 0
    out = np.zeros((0 if in_place else height, width, channels), dtype=np.float32)
    n_bands = max(1, min(height, n_bands))
    band_rows = (height + n_bands - 1) // n_bands
    for band in prange(n_bands):
        y0 = band * band_rows
        y1 = min(height, y0 + band_rows)
        if y0 >= y1:
            continue
        diff = np.zeros((y1 - y0, width + 3, channels), dtype=np.float32)
        last = channels - 1
        for sy in range(max(y0 - max_reach, 0), min(y1 + max_reach, height)):
            for sx in range(width):
                if values[sy, sx, last] <= 0:
                    continue
                r = radii[sy, sx]
                k, t = _table_index(r, steps_per_pixel, n_radii)
                r_reach = reach[k + 1]
                row_lo = max(sy - r_reach, y0)
                row_hi = min(sy + r_reach, y1 - 1)
                if not shaped:
                    for y in range(row_lo, row_hi + 1):
                        a, b, wt = _table_span(left, right, weight, k, t, y - sy + centre)
                        if wt > 0:
                            _add_span(diff[y - y0], sx + a, sx + b, width, values[sy, sx], wt)
                    continue
                ki, ti = _table_index(r * RIM_INNER, steps_per_pixel, n_radii)
                # cat's-eye clip circle: same radius, centre shifted towards the image centre
                dy = (optics[4] - (optics[2] + sy)) / optics[6]
                dx = (optics[5] - (optics[3] + sx)) / optics[6]
                clip_y = vignette * r * dy
                clip_x = vignette * r * dx
                # first pass: the clipped, rimmed disc's total, to keep its energy exact
                total = 0.0
                for pass_ in range(2):
                    scale = 1.0 if pass_ == 0 else (1.0 / total if total > 0 else 0.0)
                    lo = sy - r_reach if pass_ == 0 else row_lo
                    hi = sy + r_reach if pass_ == 0 else row_hi
                    for y in range(lo, hi + 1):
                        row = y - sy + centre
                        ca, cb = -1e30, 1e30
                        if vignette > 0:
                            h2 = r * r - (y - sy - clip_y) ** 2
                            if h2 <= 0:
                                continue
                            half = np.sqrt(h2)
                            ca, cb = clip_x - half, clip_x + half
                        a, b, wt = _table_span(left, right, weight, k, t, row)
                        if wt > 0:
                            a, b = max(a, ca), min(b, cb)
                            if b > a:
                                if pass_ == 0:
                                    total += wt * outer_scale * (b - a)
                                else:
                                    _add_span(diff[y - y0], sx + a, sx + b, width, values[sy, sx],
                                              wt * outer_scale * scale)
                        if rim > 0 and abs(y - sy) <= reach[ki + 1]:
                            a, b, wt = _table_span(left, right, weight, ki, ti, row)
                            if wt > 0:
                                a, b = max(a, ca), min(b, cb)
                                if b > a:
                                    if pass_ == 0:
                                        total -= wt * inner_scale * (b - a)
                                    else:
                                        _add_span(diff[y - y0], sx + a, sx + b, width, values[sy, sx],
                                                  -wt * inner_scale * scale)
        running = np.zeros(channels, dtype=np.float64)
        for y in range(y1 - y0):
            running[:] = 0.0
            for c in range(channels):
                running[c] += diff[y, 0, c]
            for x in range(width):
                for c in range(channels):
                    running[c] += diff[y, x + 1, c]
                if not in_place:
                    for c in range(channels):
                        out[y0 + y, x, c] = running[c]
                    continue
                alpha = running[channels - 1]
                if alpha <= 0:
                    continue
                clip = 1.0 if alpha <= 1 else 1.0 / alpha
                keep = 1.0 - alpha * clip
                for c in range(channels):
                    target[target_y + y0 + y, target_x + x, c] = (
                        running[c] * clip + keep * target[target_y + y0 + y, target_x + x, c])
    return out


@njit(cache=True, parallel=True, fastmath=True)
def composite_over(acc, layer, scale, y0, x0):
    """acc ← layer + (1 − α)·acc over the layer's footprint, in place.

    acc: float32 (H, W, 4) premultiplied (rgb, α); layer: float32 (h, w, 4) premultiplied at
    1/scale resolution whose pixel (0, 0) covers full-resolution block (y0, x0); it is
    upsampled bilinearly (divided by scale² so energy is kept). The layer's α is clipped to 1
    and its colour scaled with it.
    """
    height, width = acc.shape[0], acc.shape[1]
    lh, lw = layer.shape[0], layer.shape[1]
    if scale == 1:
        for y in prange(y0, min(height, y0 + lh)):
            for x in range(x0, min(width, x0 + lw)):
                alpha = layer[y - y0, x - x0, 3]
                if alpha <= 0:
                    continue
                clip = 1.0 if alpha <= 1 else 1.0 / alpha
                keep = 1.0 - alpha * clip
                for c in range(4):
                    acc[y, x, c] = layer[y - y0, x - x0, c] * clip + keep * acc[y, x, c]
        return
    inv_area = 1.0 / (scale * scale)
    y_end = min(height, (y0 + lh) * scale)
    x_end = min(width, (x0 + lw) * scale)
    for y in prange(y0 * scale, y_end):
        fy = (y + 0.5) / scale - 0.5 - y0
        iy = int(np.floor(fy))
        ty = fy - iy
        iy0 = min(max(iy, 0), lh - 1)
        iy1 = min(max(iy + 1, 0), lh - 1)
        for x in range(x0 * scale, x_end):
            fx = (x + 0.5) / scale - 0.5 - x0
            ix = int(np.floor(fx))
            tx = fx - ix
            ix0 = min(max(ix, 0), lw - 1)
            ix1 = min(max(ix + 1, 0), lw - 1)
            w00 = (1 - ty) * (1 - tx) * inv_area
            w01 = (1 - ty) * tx * inv_area
            w10 = ty * (1 - tx) * inv_area
            w11 = ty * tx * inv_area
            alpha = (w00 * layer[iy0, ix0, 3] + w01 * layer[iy0, ix1, 3]
                     + w10 * layer[iy1, ix0, 3] + w11 * layer[iy1, ix1, 3])
            if alpha <= 0:
                continue
            clip = 1.0 if alpha <= 1 else 1.0 / alpha
            keep = 1.0 - alpha * clip
            for c in range(4):
                v = (w00 * layer[iy0, ix0, c] + w01 * layer[iy0, ix1, c]
                     + w10 * layer[iy1, ix0, c] + w11 * layer[iy1, ix1, c])
                acc[y, x, c] = v * clip + keep * acc[y, x, c]


@njit(cache=True)
def slab_bounds(labels, n_labels):
    """Per label: (count, min y, max y, min x, max x) of its pixels, int64 (n_labels, 5)."""
    height, width = labels.shape
    bounds = np.zeros((n_labels, 5), dtype=np.int64)
    bounds[:, 1] = height
    bounds[:, 3] = width
    bounds[:, 2] = -1
    bounds[:, 4] = -1
    for y in range(height):
        for x in range(width):
            k = labels[y, x]
            bounds[k, 0] += 1
            if y < bounds[k, 1]:
                bounds[k, 1] = y
            if y > bounds[k, 2]:
                bounds[k, 2] = y
            if x < bounds[k, 3]:
                bounds[k, 3] = x
            if x > bounds[k, 4]:
                bounds[k, 4] = x
    return bounds


@njit(cache=True, parallel=True)
def slab_block_sum(radiance, coc_full, labels, label, scale, y0, x0, low_h, low_w, light_level, hidden):
    """Block sums of one slab over a crop, at 1/scale resolution.

    radiance: float32 (H, W, 3); coc: float32 (H, W) signed circle of confusion in full-resolution
    pixels; labels: int (H, W). The crop starts at low-resolution cell (y0, x0) and is low_h×low_w cells. The
    slab is its own pixels (``labels == label``) plus, when ``hidden`` is given, the nearer
    pixels it extends to: hidden = (owned, source_y, source_x, colour, coc, cell_y, cell_x), where
    a pixel (y, x) nearer than the slab whose analysis cell (cell_y[y], cell_x[x]) is ``owned``
    takes the colour and |coc| of analysis cell (source_y, source_x) of that cell. Own pixels
    brighter than ``light_level`` (any channel; ignored when <= 0) are left out and flagged in
    the returned mask. Returns sums (low_h, low_w, 4) of (rgb, count), the mean radius per cell
    divided by scale, and the light mask (full-resolution crop, bool).
    """
    owned, source_y, source_x, colour, coc, cell_y, cell_x = hidden
    has_hidden = owned.shape[0] > 0
    height, width = labels.shape
    sums = np.zeros((low_h, low_w, 4), dtype=np.float32)
    radius_low = np.zeros((low_h, low_w), dtype=np.float32)
    lights = np.zeros((low_h * scale, low_w * scale), dtype=np.bool_)
    for by in prange(low_h):
        for bx in range(low_w):
            s0 = 0.0
            s1 = 0.0
            s2 = 0.0
            count = 0.0
            sr = 0.0
            for y in range((y0 + by) * scale, min((y0 + by + 1) * scale, height)):
                for x in range((x0 + bx) * scale, min((x0 + bx + 1) * scale, width)):
                    k = labels[y, x]
                    if k == label:
                        r = radiance[y, x, 0]
                        g = radiance[y, x, 1]
                        b = radiance[y, x, 2]
                        if light_level > 0 and (r > light_level or g > light_level or b > light_level):
                            lights[y - y0 * scale, x - x0 * scale] = True
                            continue
                        rad = abs(coc_full[y, x])
                    elif has_hidden and k > label and owned[cell_y[y], cell_x[x]]:
                        cy = source_y[cell_y[y], cell_x[x]]
                        cx = source_x[cell_y[y], cell_x[x]]
                        r = colour[cy, cx, 0]
                        g = colour[cy, cx, 1]
                        b = colour[cy, cx, 2]
                        rad = abs(coc[cy, cx])
                    else:
                        continue
                    s0 += r
                    s1 += g
                    s2 += b
                    count += 1.0
                    sr += rad
            sums[by, bx, 0] = s0
            sums[by, bx, 1] = s1
            sums[by, bx, 2] = s2
            sums[by, bx, 3] = count
            if count > 0:
                radius_low[by, bx] = sr / count / scale
    return sums, radius_low, lights


@njit(cache=True)
def add_points_to_blocks(sums, radius_low, ys, xs, colours, radii, scale, y0, x0):
    """Add extra full-resolution points (y, x, rgb, radius) into block sums made by
    :func:`slab_block_sum` (keeps the per-cell mean radius consistent)."""
    for i in range(ys.shape[0]):
        by = ys[i] // scale - y0
        bx = xs[i] // scale - x0
        if by < 0 or bx < 0 or by >= sums.shape[0] or bx >= sums.shape[1]:
            continue
        count = sums[by, bx, 3]
        total_radius = radius_low[by, bx] * count * scale + radii[i]
        for c in range(3):
            sums[by, bx, c] += colours[i, c]
        sums[by, bx, 3] = count + 1.0
        radius_low[by, bx] = total_radius / (count + 1.0) / scale


@njit(cache=True, parallel=True)
def unpremultiply(acc, fallback, out):
    """rgb / α of a premultiplied (H, W, 4) image into float32 ``out`` (H, W, 3), ``fallback``
    where α≈0; ``out`` may be ``fallback`` itself. Returns ``out``."""
    height, width = acc.shape[0], acc.shape[1]
    for y in prange(height):
        for x in range(width):
            alpha = acc[y, x, 3]
            if alpha > 1e-6:
                inv = 1.0 / alpha
                for c in range(3):
                    out[y, x, c] = acc[y, x, c] * inv
            else:
                for c in range(3):
                    out[y, x, c] = fallback[y, x, c]
    return out


@njit(cache=True, parallel=True)
def slab_labels(coc, edges):
    """Slab label of every pixel: the index of ``coc`` among the sorted ``edges`` (as
    np.digitize), uint8 (H, W)."""
    height, width = coc.shape
    labels = np.empty((height, width), dtype=np.uint8)
    n = edges.shape[0]
    for y in prange(height):
        for x in range(width):
            c = coc[y, x]
            lo = 0
            hi = n
            while lo < hi:  # first edge greater than c
                mid = (lo + hi) // 2
                if edges[mid] <= c:
                    lo = mid + 1
                else:
                    hi = mid
            labels[y, x] = lo
    return labels
