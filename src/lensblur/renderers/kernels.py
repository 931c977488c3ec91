"""numba kernels of the scatter renderer: span scatter, slab block sums, compositing."""

from __future__ import annotations

import numpy as np
from lensblur.aot import njit, prange  # numba's, or the ahead-of-time compiled kernels


RIM_INNER = 0.8  # inner radius of the bright rim, as a fraction of the disc radius
COMPOSITE_ROWS = 32  # output rows per block of composite_over (one row buffer per block)


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


N_SLOTS = 16  # table entries with an open run at once, per band (slot = entry mod N_SLOTS)
RUN_GAP = 8   # columns without a source that a run bridges (as zeros) before it is drawn and restarted


@njit(cache=True, inline="always")
def _span_taps(left, right, weight):
    """Each table span as difference-buffer updates relative to its source's column.

    Returns at: int64 (n_radii, rows, 2), the columns kl + 1 and kr + 1 of the span's two ends
    (kl, kr: the pixels holding them); taps: float32 (n_radii, rows, 4), what the span adds at
    kl + 1, kl + 2, kr + 1 and kr + 2, i.e. (cl, 1 − cl, cr − 1, −cr)·weight with cl, cr the
    ends' fractional coverages of their pixels (so its prefix sum is the anti-aliased span);
    drawn: int64 (n_radii,), the largest |row offset| with weight > 0 (0 for a single pixel)."""
    n_radii, n_rows = weight.shape
    centre = (n_rows - 1) // 2
    at = np.zeros((n_radii, n_rows, 2), np.int64)
    taps = np.zeros((n_radii, n_rows, 4), np.float32)
    drawn = np.zeros(n_radii, np.int64)
    for k in range(n_radii):
        for row in range(n_rows):
            wt = np.float64(weight[k, row])
            a = np.float64(left[k, row])
            b = np.float64(right[k, row])
            if wt <= 0 or b <= a:
                continue
            kl = int(np.floor(a + 0.5))
            kr = int(np.floor(b + 0.5))
            cl = kl + 0.5 - a
            cr = b - (kr - 0.5)
            at[k, row, 0] = kl + 1
            at[k, row, 1] = kr + 1
            taps[k, row, 0] = wt * cl
            taps[k, row, 1] = wt * (1 - cl)
            taps[k, row, 2] = wt * (cr - 1)
            taps[k, row, 3] = -wt * cr
            drawn[k] = max(drawn[k], abs(row - centre))
    return at, taps, drawn


@njit(cache=True, inline="always")
def _end_taps(drow, run, first, n, column, coef0, coef1, limit):
    """One span end of a whole run: drow[column + j] += coef0·run[first + 1 + j] + coef1·run[first + j]
    for j ≤ n, on flat four-channel rows (a unit is four floats; ``run`` holds the run's n
    sources at units first + 1 … first + n with a zero unit on either side). What falls left of
    column 0 is added to column 0 (the prefix sum starts there), what falls at or beyond
    ``limit`` is dropped (outside the output)."""
    j0 = min(max(-column, 0), n + 1)
    j1 = max(min(n + 1, limit - column), j0)
    for j in range(j0):
        for c in range(4):
            drow[c] += coef0 * run[(first + 1 + j) * 4 + c] + coef1 * run[(first + j) * 4 + c]
    # slices indexed from 0 (no negative-index wrap), so the compiler vectorises the loop
    dst = drow[(column + j0) * 4:(column + j1) * 4]
    here = run[(first + 1 + j0) * 4:(first + 1 + j1) * 4]
    before = run[(first + j0) * 4:(first + j1) * 4]
    for i in range(dst.shape[0]):
        dst[i] += coef0 * here[i] + coef1 * before[i]


@njit(cache=True, inline="always")
def _draw_run(dflat, runs, slot, lo, hi, k, sy, y0, y1, centre, at, taps, drawn, local_w):
    """Add the run of sources at band columns lo..hi of source row sy (runs[slot], units lo + 1 …
    hi + 1, four channels each already scaled by its share of table disc k) to the band's
    difference rows y0..y1 − 1: per disc row, two shifted multiply-adds of the whole run
    instead of one span per source."""
    run = runs[slot]
    for c in range(4):
        run[(hi + 2) * 4 + c] = 0.0
    for y in range(max(sy - drawn[k], y0), min(sy + drawn[k], y1 - 1) + 1):
        row = y - sy + centre
        drow = dflat[y - y0]
        for end in range(2):
            _end_taps(drow, run, lo, hi - lo + 1, lo + at[k, row, end], taps[k, row, 2 * end],
                      taps[k, row, 2 * end + 1], local_w + 3)


@njit(cache=True, inline="always")
def _runs_band4(values, radii, width, diff, slots, origins, tile, s_lo, s_hi, t_lo, t_hi, x_lo, y0, y1, local_w,
                steps_per_pixel, centre, at, taps, drawn):
    """scatter_spans' band work for plain four-channel discs, drawn as runs.

    A source of radius r between table radii k/q and (k+1)/q adds (1 − t)·value to the run of
    disc k and t·value to the run of disc k+1 (t = r·q − k): its disc is the linear blend of the
    two table discs, so it keeps exactly its energy. Consecutive sources of a row on the same
    entry form a run (gaps of up to RUN_GAP columns are bridged with zeros), drawn by
    :func:`_draw_run` when the row ends, the gap grows too long or its slot is wanted."""
    n_radii = drawn.shape[0]
    dflat = diff.reshape((diff.shape[0], diff.shape[1] * 4))
    runs = np.empty((N_SLOTS, (local_w + 2) * 4), np.float32)  # column x at unit x + 1
    slot_k = np.full(N_SLOTS, -1, np.int64)
    slot_lo = np.zeros(N_SLOTS, np.int64)
    slot_hi = np.zeros(N_SLOTS, np.int64)
    for sy in range(s_lo, s_hi):
        ty = sy // tile
        for tx in range(t_lo, t_hi + 1):
            slot_of = slots[ty, tx]
            if slot_of < 0:
                continue
            vy = sy - origins[slot_of, 0]
            vx = origins[slot_of, 1]
            for sx in range(tx * tile, min((tx + 1) * tile, width)):
                if values[slot_of, vy, sx - vx, 3] <= 0:
                    continue
                lx = sx - x_lo
                k, t = _table_index(radii[slot_of, vy, sx - vx], steps_per_pixel, n_radii)
                for part in range(2):
                    kk = k + part
                    share = np.float32(1 - t if part == 0 else t)
                    if share <= 0 or sy + drawn[kk] < y0 or sy - drawn[kk] >= y1:
                        continue
                    slot = kk % N_SLOTS
                    if slot_k[slot] != kk or lx - slot_hi[slot] > RUN_GAP + 1:
                        if slot_k[slot] >= 0:
                            _draw_run(dflat, runs, slot, slot_lo[slot], slot_hi[slot], slot_k[slot], sy, y0, y1,
                                      centre, at, taps, drawn, local_w)
                        slot_k[slot] = kk
                        slot_lo[slot] = lx
                        for c in range(4):
                            runs[slot, lx * 4 + c] = 0.0
                    else:
                        for i in range((slot_hi[slot] + 2) * 4, (lx + 1) * 4):
                            runs[slot, i] = 0.0
                    slot_hi[slot] = lx
                    for c in range(4):
                        runs[slot, (lx + 1) * 4 + c] = values[slot_of, vy, sx - vx, c] * share
        for slot in range(N_SLOTS):
            if slot_k[slot] >= 0:
                _draw_run(dflat, runs, slot, slot_lo[slot], slot_hi[slot], slot_k[slot], sy, y0, y1, centre, at,
                          taps, drawn, local_w)
                slot_k[slot] = -1


@njit(cache=True, inline="always")
def _integrate4(diff, y0, y1, x_lo, spans, n_spans, out, in_place, target, target_y, target_x):
    """scatter_spans' prefix sum of a band's four-channel difference rows over its column spans,
    written to ``out`` or composited over ``target`` (same arithmetic as its general loop, with
    the sums in registers)."""
    for y in range(y1 - y0):
        r0 = np.float64(0.0)
        r1 = np.float64(0.0)
        r2 = np.float64(0.0)
        r3 = np.float64(0.0)
        for span in range(n_spans):
            a, b = spans[span, 0], spans[span, 1]
            r0 += diff[y, a, 0]
            r1 += diff[y, a, 1]
            r2 += diff[y, a, 2]
            r3 += diff[y, a, 3]
            for x in range(a, b):
                r0 += diff[y, x + 1, 0]
                r1 += diff[y, x + 1, 1]
                r2 += diff[y, x + 1, 2]
                r3 += diff[y, x + 1, 3]
                if not in_place:
                    out[y0 + y, x_lo + x, 0] = r0
                    out[y0 + y, x_lo + x, 1] = r1
                    out[y0 + y, x_lo + x, 2] = r2
                    out[y0 + y, x_lo + x, 3] = r3
                    continue
                if r3 <= 0:
                    continue
                clip = 1.0 if r3 <= 1 else 1.0 / r3
                keep = 1.0 - r3 * clip
                ty_ = target_y + y0 + y
                tx_ = target_x + x_lo + x
                target[ty_, tx_, 0] = r0 * clip + keep * target[ty_, tx_, 0]
                target[ty_, tx_, 1] = r1 * clip + keep * target[ty_, tx_, 1]
                target[ty_, tx_, 2] = r2 * clip + keep * target[ty_, tx_, 2]
                target[ty_, tx_, 3] = r3 * clip + keep * target[ty_, tx_, 3]


@njit(cache=True, inline="always")
def _clear_outside(out, y0, y1, x_lo, spans, n_spans):
    """Zeros on out's rows y0 … y1 − 1 outside the band's column spans (from x_lo)."""
    width = out.shape[1]
    for y in range(y0, y1):
        x = 0
        for span in range(n_spans):
            out[y, x:x_lo + spans[span, 0]] = 0.0
            x = x_lo + spans[span, 1]
        out[y, x:width] = 0.0


@njit(cache=True, inline="always")
def _band_spans(slots, tile, s_lo, s_hi, t_lo, t_hi, x_lo, local_w, max_reach, spans):
    """The column spans a band's discs can reach: the tile columns holding a source in its source
    rows s_lo … s_hi − 1, each widened by the largest reach, as pixel columns [a, b) of the band's
    window (from x_lo, local_w wide) into ``spans`` (int64 (≥ n_tx, 2)), merged where they
    touch; returns how many. Every difference-buffer entry a source writes (but zeros added
    when a run bridges a gap) lies in a … b of its span, so these entries alone need zeroing
    and integrating."""
    n = 0
    for tx in range(t_lo, t_hi + 1):
        holds = False
        for ty in range(s_lo // tile, (s_hi - 1) // tile + 1):
            if slots[ty, tx] >= 0:
                holds = True
                break
        if not holds:
            continue
        a = max(tx * tile - max_reach - 2 - x_lo, 0)
        b = min((tx + 1) * tile + max_reach + 4 - x_lo, local_w)
        if n > 0 and a <= spans[n - 1, 1] + 2:
            spans[n - 1, 1] = b
        else:
            spans[n, 0] = a
            spans[n, 1] = b
            n += 1
    return n


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


@njit(cache=True, parallel=True, fastmath=True, chunked=True, noalias=True)
def scatter_spans(values, radii, height, width, left, right, weight, reach, steps_per_pixel, n_bands, optics,
                  target, target_y, target_x, slots, origins, tile, max_radius, out, band_lo, band_hi):
    """Spread each source pixel's values over its aperture-shaped disc.

    The sources are an H×W frame stored block by block: pixel (y, x) of tile (ty, tx) =
    (y // tile, x // tile) is values[s, y − origins[s, 0], x − origins[s, 1]] with s = slots[ty,
    tx] (int32 (n_ty, n_tx); −1: the tile holds no source and is not read). So values may be the
    whole frame as one block (1, H, W, C) with every origin 0, or tile-compact (n, tile, tile, C)
    with origins[s] the corner of the tile stored at s; height, width: the frame's size (pixels
    beyond it, in border tiles, are not read). values: float32 what each pixel spreads
    (premultiplied colour, then coverage α last; pixels with α <= 0 spread nothing); radii:
    float32 (values' first three axes) disc radius in pixels, within the table; a radius
    between table entries k and k+1 (r·steps_per_pixel = k + t) gets (1 − t)·disc k + t·disc
    k+1, except rimmed or cat's-eye discs, which interpolate the spans'
    ends between the entries. left/right/weight/reach: a SpanTable's arrays; n_bands: row bands
    processed in parallel (a few per thread). optics: float64 (7,) = (rim, vignette, origin_y, origin_x,
    centre_y, centre_x, half_diagonal): rim in [0, 1] moves that share of each disc's energy into
    a bright ring (outer 20% of the radius); vignette in [0, 1] clips discs by a circle of the
    same radius shifted towards the image centre by vignette·r·(distance from centre /
    half_diagonal), giving cat's-eye discs towards the corners; the other five place this
    output's pixel (0, 0) at (origin_y, origin_x) of an image whose centre and half-diagonal are
    given, in the same pixel units. Every disc keeps a total of exactly its source's value.
    Writes into ``out`` (float32 (H, W, C), any content on entry) the sum of all discs (parts
    falling outside are lost) on every pixel, 0 where no disc reaches — unless ``target`` is a
    non-empty premultiplied (rgb, α) image: then the sum (C = 4) is composited over it in
    place at (target_y, target_x) with :func:`composite_over`'s rule, and ``out`` is not
    touched (it may be empty; this saves a full-size layer).

    max_radius: bound on the radii of the stored pixels (pixels).

    Rows of the output are split into bands, one thread per band, so no two threads write the
    same row; each source touches only the rows of its disc. A band works only on the columns
    its sources' discs can reach: the tile columns holding its sources, widened by the largest
    reach (:func:`_band_spans`); its prefix sums skip the columns between them, where nothing
    was drawn (the float64 running sum carries over the gap, so every drawn pixel gets the sum
    it would get on a window integrated from its left end; gap pixels get 0 in ``out`` and are
    not composited, where a whole window left float32 rounding noise of ~10⁻⁶). Only bands
    band_lo … band_hi − 1 are drawn (pass 0, n_bands for all; the compiled route splits this
    range over threads).
    """
    channels = values.shape[3]
    n_radii = reach.shape[0]
    centre = (left.shape[1] - 1) // 2
    rim, vignette = optics[0], optics[1]
    shaped = rim > 0 or vignette > 0
    outer_scale = (1 - rim) + rim / (1 - RIM_INNER * RIM_INNER)
    inner_scale = rim * RIM_INNER * RIM_INNER / (1 - RIM_INNER * RIM_INNER)
    k_max, _ = _table_index(max_radius, steps_per_pixel, n_radii)
    max_reach = reach[k_max + 1]
    at, taps, drawn = _span_taps(left, right, weight)
    in_place = target.shape[0] > 0
    n_tx = slots.shape[1]
    last = channels - 1
    # Only the rows the active tiles' discs can reach are split into bands: on continuous depth a
    # slab is a narrow band across the frame, and bands of the whole height would leave all of
    # its work to one thread. Bands are at least a disc high, so few sources are visited twice.
    ty_first = slots.shape[0]
    ty_last = -1
    for ty in range(slots.shape[0]):
        for tx in range(n_tx):
            if slots[ty, tx] >= 0:
                ty_first = min(ty_first, ty)
                ty_last = ty
    # out's rows outside the bands are cleared by the call holding the first or the last band
    first_call = band_lo <= 0 < band_hi
    last_call = band_lo <= n_bands - 1 < band_hi
    if ty_last < 0:
        if not in_place and first_call:
            out[:] = 0.0
        return
    rows_lo = max(ty_first * tile - max_reach, 0)
    rows_hi = min((ty_last + 1) * tile + max_reach, height)
    if not in_place:
        if first_call:
            out[:rows_lo] = 0.0
        if last_call:
            out[rows_hi:] = 0.0
    n_rows = rows_hi - rows_lo
    band_rows = max((n_rows + n_bands - 1) // max(n_bands, 1), 2 * max_reach + 1, 16)
    n_bands = (n_rows + band_rows - 1) // band_rows
    for band in prange(max(band_lo, 0), min(band_hi, n_bands)):
        y0 = rows_lo + band * band_rows
        y1 = min(rows_hi, y0 + band_rows)
        if y0 >= y1:
            continue
        s_lo = max(y0 - max_reach, 0)
        s_hi = min(y1 + max_reach, height)
        t_lo = n_tx
        t_hi = -1
        for ty in range(s_lo // tile, (s_hi - 1) // tile + 1):
            for tx in range(n_tx):
                if slots[ty, tx] >= 0:
                    t_lo = min(t_lo, tx)
                    t_hi = max(t_hi, tx)
        if t_hi < 0:
            if not in_place:
                out[y0:y1] = 0.0
            continue
        # the band's window: every disc of a source in the active tiles fits inside it
        x_lo = max(t_lo * tile - max_reach - 2, 0)
        x_hi = min((t_hi + 1) * tile + max_reach + 2, width)
        local_w = x_hi - x_lo
        spans = np.empty((t_hi - t_lo + 1, 2), np.int64)
        n_spans = _band_spans(slots, tile, s_lo, s_hi, t_lo, t_hi, x_lo, local_w, max_reach, spans)
        if not in_place:
            _clear_outside(out, y0, y1, x_lo, spans, n_spans)
        diff = np.empty((y1 - y0, local_w + 3, channels), dtype=np.float32)
        for y in range(y1 - y0):
            for span in range(n_spans):
                diff[y, spans[span, 0]:min(spans[span, 1] + 3, local_w + 3)] = 0.0
        if not shaped and channels == 4:
            _runs_band4(values, radii, width, diff, slots, origins, tile, s_lo, s_hi, t_lo, t_hi, x_lo, y0, y1,
                        local_w, steps_per_pixel, centre, at, taps, drawn)
            _integrate4(diff, y0, y1, x_lo, spans, n_spans, out, in_place, target, target_y, target_x)
            continue
        for sy in range(s_lo, s_hi):
            ty = sy // tile
            for tx in range(t_lo, t_hi + 1):
                slot_of = slots[ty, tx]
                if slot_of < 0:
                    continue
                vy = sy - origins[slot_of, 0]
                vx = origins[slot_of, 1]
                for sx in range(tx * tile, min((tx + 1) * tile, width)):
                    value = values[slot_of, vy, sx - vx]
                    if value[last] <= 0:
                        continue
                    lx = sx - x_lo
                    r = radii[slot_of, vy, sx - vx]
                    k, t = _table_index(r, steps_per_pixel, n_radii)
                    r_reach = reach[k + 1]
                    row_lo = max(sy - r_reach, y0)
                    row_hi = min(sy + r_reach, y1 - 1)
                    if not shaped:
                        # the blend of table discs k and k+1, as in _runs_band4 (but one span at a time)
                        for part in range(2):
                            kk = k + part
                            share = 1 - t if part == 0 else t
                            if share <= 0:
                                continue
                            for y in range(max(sy - drawn[kk], y0), min(sy + drawn[kk], y1 - 1) + 1):
                                row = y - sy + centre
                                if weight[kk, row] > 0:
                                    _add_span(diff[y - y0], lx + left[kk, row], lx + right[kk, row], local_w,
                                              value, weight[kk, row] * share)
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
                                        _add_span(diff[y - y0], lx + a, lx + b, local_w, value,
                                                  wt * outer_scale * scale)
                            if rim > 0 and abs(y - sy) <= reach[ki + 1]:
                                a, b, wt = _table_span(left, right, weight, ki, ti, row)
                                if wt > 0:
                                    a, b = max(a, ca), min(b, cb)
                                    if b > a:
                                        if pass_ == 0:
                                            total -= wt * inner_scale * (b - a)
                                        else:
                                            _add_span(diff[y - y0], lx + a, lx + b, local_w, value,
                                                      -wt * inner_scale * scale)
        if channels == 4:
            _integrate4(diff, y0, y1, x_lo, spans, n_spans, out, in_place, target, target_y, target_x)
            continue
        running = np.zeros(channels, dtype=np.float64)
        for y in range(y1 - y0):
            running[:] = 0.0
            for span in range(n_spans):
                a, b = spans[span, 0], spans[span, 1]
                for c in range(channels):
                    running[c] += diff[y, a, c]
                for x in range(a, b):
                    for c in range(channels):
                        running[c] += diff[y, x + 1, c]
                    if not in_place:
                        for c in range(channels):
                            out[y0 + y, x_lo + x, c] = running[c]
                        continue
                    alpha = running[channels - 1]
                    if alpha <= 0:
                        continue
                    clip = 1.0 if alpha <= 1 else 1.0 / alpha
                    keep = 1.0 - alpha * clip
                    ty_ = target_y + y0 + y
                    tx_ = target_x + x_lo + x
                    for c in range(channels):
                        target[ty_, tx_, c] = running[c] * clip + keep * target[ty_, tx_, c]


@njit(cache=True, parallel=True, fastmath=True, chunked=True, noalias=True)
def composite_over(acc, layer, scale, y0, x0, lo, hi):
    """acc ← layer + (1 − α)·acc over the layer's footprint, in place, on acc's rows lo … hi − 1.

    acc: float32 (H, W, 4) premultiplied (rgb, α); layer: float32 (h, w, 4) premultiplied at
    1/scale resolution whose pixel (0, 0) covers full-resolution block (y0, x0); it is
    upsampled bilinearly (divided by scale² so energy is kept). The layer's α is clipped to 1
    and its colour scaled with it. Only the columns near the layer's covered pixels (α > 0) of
    each row are visited. lo, hi: pass y0·scale, (y0 + h)·scale for the whole footprint.
    """
    height, width = acc.shape[0], acc.shape[1]
    lh, lw = layer.shape[0], layer.shape[1]
    y_start = max(lo, y0 * scale)
    y_end = min(height, (y0 + lh) * scale, hi)
    if y_start >= y_end:
        return
    # the layer rows these output rows interpolate between (a row more each side: rounding)
    iy_lo = min(max(int(np.floor((y_start + 0.5) / scale - 0.5)) - y0 - 1, 0), lh - 1)
    iy_hi = min(max(int(np.floor((y_end - 0.5) / scale - 0.5)) - y0 + 2, 0), lh - 1)
    first = np.empty(lh, np.int64)
    last = np.empty(lh, np.int64)
    for iy in prange(iy_lo, iy_hi + 1):
        first[iy] = lw
        last[iy] = -1
        for ix in range(lw):
            if layer[iy, ix, 3] > 0:
                first[iy] = min(first[iy], ix)
                last[iy] = ix
    inv_area = 1.0 / (scale * scale)
    # Column x samples cells floor(fx) and the next one, fx = (x + 0.5)/scale − 0.5 − x0, the
    # same on every row: tabled once per call for the layer's columns.
    x_base = max(x0 * scale, 0)
    n_x = max(min(width, (x0 + lw) * scale) - x_base, 0)
    cell = np.empty(n_x, np.int64)
    frac = np.empty(n_x, np.float64)
    for j in range(n_x):
        fx = (x_base + j + 0.5) / scale - 0.5 - x0
        ix = int(np.floor(fx))
        cell[j] = ix
        frac[j] = fx - ix
    # rows in blocks, one interpolated-row buffer per block (not one allocation per row)
    n_blocks = (y_end - y_start + COMPOSITE_ROWS - 1) // COMPOSITE_ROWS
    for block in prange(n_blocks):
        row = np.empty((lw, 4), np.float32)
        for y in range(y_start + block * COMPOSITE_ROWS, min(y_start + (block + 1) * COMPOSITE_ROWS, y_end)):
            fy = (y + 0.5) / scale - 0.5 - y0
            iy = int(np.floor(fy))
            ty = fy - iy
            iy0 = min(max(iy, 0), lh - 1)
            iy1 = min(max(iy + 1, 0), lh - 1)
            lo = min(first[iy0], first[iy1])
            hi = max(last[iy0], last[iy1])
            if hi < 0:
                continue
            # the layer's row interpolated to this y (cells lo − 1 … hi + 1, from row[0]), then along x
            c_lo = max(lo - 1, 0)
            c_hi = min(hi + 1, lw - 1)
            for ix in range(c_lo, c_hi + 1):
                for c in range(4):
                    row[ix - c_lo, c] = ((1 - ty) * layer[iy0, ix, c] + ty * layer[iy1, ix, c]) * inv_area
            x_start = max((x0 + lo - 1) * scale, x0 * scale, 0)
            x_stop = min((x0 + hi + 2) * scale, width, (x0 + lw) * scale)
            for x in range(x_start, x_stop):
                ix = cell[x - x_base]
                tx = frac[x - x_base]
                ix0 = min(max(ix, c_lo), c_hi) - c_lo
                ix1 = min(max(ix + 1, c_lo), c_hi) - c_lo
                alpha = (1 - tx) * row[ix0, 3] + tx * row[ix1, 3]
                if alpha <= 0:
                    continue
                clip = 1.0 if alpha <= 1 else 1.0 / alpha
                keep = 1.0 - alpha * clip
                for c in range(4):
                    acc[y, x, c] = ((1 - tx) * row[ix0, c] + tx * row[ix1, c]) * clip + keep * acc[y, x, c]


@njit(cache=True, parallel=True, chunked=True, noalias=True)
def composite_tiles(acc, layer, tiles, tile, y0, x0, lo, hi):
    """acc ← layer + (1 − α)·acc, in place, on the listed tiles of a full-resolution layer.

    acc: float32 (H, W, 4) premultiplied; layer: float32 (n, tile, tile, 4) premultiplied, tile
    by tile: layer[i] is the ``tile``×``tile`` block (row, column) = tiles[i] (int32 (n, 2)) of a
    frame whose pixel (0, 0) is acc's (y0, x0); here the tiles lo … hi − 1 (0, n for all). Cells
    of a block beyond acc's edge are not read. α is clipped to 1.
    """
    height, width = acc.shape[0], acc.shape[1]
    for i in prange(max(lo, 0), min(hi, tiles.shape[0])):
        ty0 = tiles[i, 0] * tile
        tx0 = tiles[i, 1] * tile
        for y in range(ty0, min(ty0 + tile, height - y0)):
            for x in range(tx0, min(tx0 + tile, width - x0)):
                alpha = layer[i, y - ty0, x - tx0, 3]
                if alpha <= 0:
                    continue
                clip = 1.0 if alpha <= 1 else 1.0 / alpha
                keep = 1.0 - alpha * clip
                for c in range(4):
                    acc[y0 + y, x0 + x, c] = layer[i, y - ty0, x - tx0, c] * clip + keep * acc[y0 + y, x0 + x, c]


@njit(cache=True, parallel=True, chunked=True, noalias=True)
def tile_occupancy(labels, tile, counts, lo, hi):
    """Adds into ``counts`` (int32 (n_labels, ceil(H/tile), ceil(W/tile)), zeros on entry) the
    pixels of each label in each ``tile``×``tile`` block of ``labels`` (H, W), for the block rows
    lo … hi − 1 (0, ceil(H/tile) for all)."""
    height, width = labels.shape
    for ty in prange(max(lo, 0), min(hi, counts.shape[1])):
        for y in range(ty * tile, min((ty + 1) * tile, height)):
            for x in range(width):
                counts[labels[y, x], ty, x // tile] += 1


@njit(cache=True, inline="always")
def _hidden_source(owned, source_y, source_x, colour, coc, row, column):
    """Whether analysis cell (row, column) is owned by the slab, and the colour (r, g, b) and |c|
    of its source cell (zeros when not owned): what slab_block_sum adds for a hidden pixel there."""
    if owned[row, column]:
        cy = source_y[row, column]
        cx = source_x[row, column]
        return True, colour[cy, cx, 0], colour[cy, cx, 1], colour[cy, cx, 2], abs(coc[cy, cx])
    zero = np.float32(0.0)
    return False, zero, zero, zero, zero


@njit(cache=True, parallel=True, chunked=True, noalias=True)
def slab_block_sum(radiance, coc_full, labels, label, scale, y0, x0, sums, radius_low, tiles, tile, light_level,
                   hidden, lo, hi):
    """Block sums of one slab over the listed tiles of a crop, at 1/scale resolution, tile by tile.

    radiance: float32 (H, W, 3); coc: float32 (H, W) signed circle of confusion in full-resolution
    pixels; labels: int (H, W). The crop starts at low-resolution cell (y0, x0); ``tiles`` (int32
    (n, 2)) lists (row, column) of its ``tile``×``tile``-cell blocks, and block i's cells go to
    sums[i] (float32 (≥ n, tile, tile, 4)) and radius_low[i] (float32 (≥ n, tile, tile)), cell
    (by, bx) of the crop at [i, by − row·tile, bx − column·tile]; cells beyond the image
    (ceil(H/scale) × ceil(W/scale) cells) and the rest of the arrays are not written. The slab is
    its own pixels (``labels == label``) plus, when ``hidden`` is given,
    the nearer pixels it extends to: hidden = (owned, source_y, source_x, colour, coc, cell_y,
    cell_x), where a pixel (y, x) nearer than the slab whose analysis cell (cell_y[y],
    cell_x[x]) is ``owned`` takes the colour and |coc| of analysis cell (source_y, source_x) of
    that cell. Own pixels brighter than ``light_level`` (any channel; ignored when <= 0) are
    left out (the caller scatters them on their own). sums holds (rgb, count) and radius_low
    the mean radius per cell divided by scale. Only rows lo … hi − 1 of ``tiles`` are done (0, n
    for all).
    """
    owned, source_y, source_x, colour, coc, cell_y, cell_x = hidden
    has_hidden = owned.shape[0] > 0
    height, width = labels.shape
    low_h = (height + scale - 1) // scale - y0
    low_w = (width + scale - 1) // scale - x0
    for i in prange(max(lo, 0), min(hi, tiles.shape[0])):
        ty0 = tiles[i, 0] * tile
        tx0 = tiles[i, 1] * tile
        # A nearer pixel's hidden-area lookup (owned, source cell, its colour and radius) is that
        # of its analysis cell, shared by runs of neighbouring pixels: kept from the last pixel.
        last_row = -1
        last_column = -1
        owned_here = False
        hidden_r = np.float32(0.0)
        hidden_g = np.float32(0.0)
        hidden_b = np.float32(0.0)
        hidden_radius = np.float32(0.0)
        if scale == 1:
            # a cell is one pixel: its sums are the pixel itself (what the loops below give)
            for by in range(ty0, min(ty0 + tile, low_h)):
                y = y0 + by
                for bx in range(tx0, min(tx0 + tile, low_w)):
                    x = x0 + bx
                    k = labels[y, x]
                    drawn = False
                    r = g = b = rad = np.float32(0.0)
                    if k == label:
                        r = radiance[y, x, 0]
                        g = radiance[y, x, 1]
                        b = radiance[y, x, 2]
                        drawn = not (light_level > 0 and (r > light_level or g > light_level or b > light_level))
                        rad = abs(coc_full[y, x])
                    elif has_hidden and k > label:
                        row = cell_y[y]
                        column = cell_x[x]
                        if row != last_row or column != last_column:
                            last_row = row
                            last_column = column
                            owned_here, hidden_r, hidden_g, hidden_b, hidden_radius = _hidden_source(
                                owned, source_y, source_x, colour, coc, row, column)
                        drawn = owned_here
                        r = hidden_r
                        g = hidden_g
                        b = hidden_b
                        rad = hidden_radius
                    cell = sums[i, by - ty0, bx - tx0]
                    if drawn:
                        cell[0] = r
                        cell[1] = g
                        cell[2] = b
                        cell[3] = 1.0
                        radius_low[i, by - ty0, bx - tx0] = rad
                    else:
                        cell[0] = 0.0
                        cell[1] = 0.0
                        cell[2] = 0.0
                        cell[3] = 0.0
                        radius_low[i, by - ty0, bx - tx0] = 0.0
        else:
            for by in range(ty0, min(ty0 + tile, low_h)):
                for bx in range(tx0, min(tx0 + tile, low_w)):
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
                                    continue
                                rad = abs(coc_full[y, x])
                            elif has_hidden and k > label:
                                row = cell_y[y]
                                column = cell_x[x]
                                if row != last_row or column != last_column:
                                    last_row = row
                                    last_column = column
                                    owned_here, hidden_r, hidden_g, hidden_b, hidden_radius = _hidden_source(
                                        owned, source_y, source_x, colour, coc, row, column)
                                if not owned_here:
                                    continue
                                r = hidden_r
                                g = hidden_g
                                b = hidden_b
                                rad = hidden_radius
                            else:
                                continue
                            s0 += r
                            s1 += g
                            s2 += b
                            count += 1.0
                            sr += rad
                    sums[i, by - ty0, bx - tx0, 0] = s0
                    sums[i, by - ty0, bx - tx0, 1] = s1
                    sums[i, by - ty0, bx - tx0, 2] = s2
                    sums[i, by - ty0, bx - tx0, 3] = count
                    radius_low[i, by - ty0, bx - tx0] = sr / count / scale if count > 0 else 0.0


@njit(cache=True)
def add_points_to_blocks(sums, radius_low, slots, tile, ys, xs, colours, radii, scale, y0, x0):
    """Add extra full-resolution points (y, x, rgb, radius) into tile-by-tile block sums made by
    :func:`slab_block_sum` (keeps the per-cell mean radius consistent). slots: int32 (n_ty, n_tx),
    the index in ``sums`` of each ``tile``×``tile``-cell block of the crop (−1: not stored; points
    there are dropped)."""
    for i in range(ys.shape[0]):
        by = ys[i] // scale - y0
        bx = xs[i] // scale - x0
        if by < 0 or bx < 0 or by >= slots.shape[0] * tile or bx >= slots.shape[1] * tile:
            continue
        slot = slots[by // tile, bx // tile]
        if slot < 0:
            continue
        cy = by - by // tile * tile
        cx = bx - bx // tile * tile
        count = sums[slot, cy, cx, 3]
        total_radius = radius_low[slot, cy, cx] * count * scale + radii[i]
        for c in range(3):
            sums[slot, cy, cx, c] += colours[i, c]
        sums[slot, cy, cx, 3] = count + 1.0
        radius_low[slot, cy, cx] = total_radius / (count + 1.0) / scale


@njit(cache=True, parallel=True, chunked=True)
def unpremultiply(acc, fallback, out, lo, hi):
    """rgb / α of a premultiplied (H, W, 4) image into float32 ``out`` (H, W, 3), ``fallback``
    where α≈0, on rows lo … hi − 1 (0, H for all); ``out`` may be ``fallback`` itself."""
    height, width = acc.shape[0], acc.shape[1]
    for y in prange(max(lo, 0), min(hi, height)):
        for x in range(width):
            alpha = acc[y, x, 3]
            if alpha > 1e-6:
                inv = 1.0 / alpha
                for c in range(3):
                    out[y, x, c] = acc[y, x, c] * inv
            else:
                for c in range(3):
                    out[y, x, c] = fallback[y, x, c]


@njit(cache=True, parallel=True, chunked=True, noalias=True)
def slab_labels(coc, edges, labels, lo, hi):
    """Slab label of every pixel of ``coc`` (H, W) on rows lo … hi − 1 (0, H for all) into uint8
    ``labels`` (H, W): the index of ``coc`` among the sorted ``edges`` (as np.digitize)."""
    height, width = coc.shape
    n = edges.shape[0]
    for y in prange(max(lo, 0), min(hi, height)):
        for x in range(width):
            c = coc[y, x]
            first = 0
            last = n
            while first < last:  # first edge greater than c
                mid = (first + last) // 2
                if edges[mid] <= c:
                    first = mid + 1
                else:
                    last = mid
            labels[y, x] = first


@njit(cache=True, parallel=True, chunked=True, noalias=True)
def brighter_than(radiance, level, mask, lo, hi):
    """Into bool ``mask`` (H, W), rows lo … hi − 1 (0, H for all): which pixels of float32
    (H, W, 3) ``radiance`` have a channel above ``level``."""
    height, width = radiance.shape[0], radiance.shape[1]
    for y in prange(max(lo, 0), min(hi, height)):
        for x in range(width):
            mask[y, x] = radiance[y, x, 0] > level or radiance[y, x, 1] > level or radiance[y, x, 2] > level


@njit(cache=True, parallel=True, chunked=True, noalias=True)
def clipped_mask(radiance, level, mask, lo, hi):
    """Into bool ``mask`` (H, W), rows lo … hi − 1 (0, H for all): which pixels of float32
    (H, W, 3) ``radiance`` have their largest channel at or above ``level``, as
    ``np.maximum.reduce(radiance, axis=2) >= level`` says (a pixel with a NaN channel: no)."""
    height, width = radiance.shape[0], radiance.shape[1]
    for y in prange(max(lo, 0), min(hi, height)):
        for x in range(width):
            r = radiance[y, x, 0]
            g = radiance[y, x, 1]
            b = radiance[y, x, 2]
            mask[y, x] = (r >= level or g >= level or b >= level) and not (r != r or g != g or b != b)
