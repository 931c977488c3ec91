"""Edge-aware refinement: the guided filter of He, Sun and Tang (ECCV 2010 / TPAMI 2013).

Everything is built from box filters (``cv2.boxFilter``), so the cost is O(pixels) whatever the
radius. Images are float32 arrays; the guide is H×W (gray) or H×W×3 (color), values in [0, 1];
the filtered input ``src`` is H×W. Radii are in pixels of the array they apply to.
"""

from __future__ import annotations

import cv2
import numpy as np

from lensblur.aot import njit, prange  # numba's, or the ahead-of-time compiled kernel


def box_mean(array: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the (2·radius+1)² window around each pixel (border: reflect), float32, same shape."""
    size = 2 * int(radius) + 1
    return cv2.boxFilter(np.asarray(array, dtype=np.float32), -1, (size, size), normalize=True,
                         borderType=cv2.BORDER_REFLECT)


def _local_fit(guide: np.ndarray, src: np.ndarray, radius: int, eps: float):
    """Per window: src ≈ a·guide + b (He et al., Eq. 5–6); also the covariance and guide variance."""
    mean_i = box_mean(guide, radius)
    mean_p = box_mean(src, radius)
    cov_ip = box_mean(guide * src, radius) - mean_i * mean_p
    var_i = box_mean(guide * guide, radius) - mean_i * mean_i
    a = cov_ip / (var_i + np.float32(eps))
    return a, mean_p - a * mean_i, cov_ip, var_i, mean_p


def _coefficients_gray(guide: np.ndarray, src: np.ndarray, radius: int, eps: float):
    a, b = _local_fit(guide, src, radius, eps)[:2]
    return box_mean(a, radius), box_mean(b, radius)


def _coefficients_color(guide: np.ndarray, src: np.ndarray, radius: int, eps: float):
    mean_i = np.stack([box_mean(guide[..., c], radius) for c in range(3)], axis=-1)
    mean_p = box_mean(src, radius)
    cov_ip = np.stack([box_mean(guide[..., c] * src, radius) for c in range(3)], axis=-1) - mean_i * mean_p[..., None]
    sigma = np.empty(guide.shape[:2] + (3, 3), dtype=np.float32)
    for i in range(3):
        for j in range(i, 3):
            v = box_mean(guide[..., i] * guide[..., j], radius) - mean_i[..., i] * mean_i[..., j]
            sigma[..., i, j] = v
            sigma[..., j, i] = v
    sigma += np.eye(3, dtype=np.float32) * np.float32(eps)
    a = np.linalg.solve(sigma, cov_ip[..., None])[..., 0].astype(np.float32)
    b = mean_p - np.einsum("hwc,hwc->hw", a, mean_i)
    mean_a = np.stack([box_mean(a[..., c], radius) for c in range(3)], axis=-1)
    return mean_a, box_mean(b, radius)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int = 8, eps: float = 1e-3) -> np.ndarray:
    """Guided filter of ``src`` (H×W) by ``guide`` (H×W gray or H×W×3 color, in [0, 1]).

    radius: window radius in pixels (≥ 1). eps: regularisation in guide-variance units
    (guide values², e.g. 1e-3 ≈ edges with a step above ~0.03 are kept). Returns float32 H×W.
    Where the guide is flat in a window the output is the box mean of ``src``.
    """
    guide = np.asarray(guide, dtype=np.float32)
    src = np.asarray(src, dtype=np.float32)
    if guide.ndim == 3:
        a, b = _coefficients_color(guide, src, radius, eps)
        return (np.einsum("hwc,hwc->hw", a, guide) + b).astype(np.float32)
    a, b = _coefficients_gray(guide, src, radius, eps)
    return a * guide + b


def guided_upsample(guide_full: np.ndarray, guide_small: np.ndarray, src_small: np.ndarray,
                    radius: int = 4, eps: float = 1e-3) -> np.ndarray:
    """Fast guided filter (He & Sun 2015): coefficients at low resolution, applied at full resolution.

    guide_full: H×W gray guide in [0, 1]; guide_small, src_small: h×w gray guide and input at the
    reduced size; radius in pixels of the reduced size. Returns float32 H×W ≈ the guided filter of
    the upsampled input, at the cost of one multiply-add per full-resolution pixel.
    """
    a, b = _coefficients_gray(np.asarray(guide_small, np.float32), np.asarray(src_small, np.float32), radius, eps)
    height, width = guide_full.shape[:2]
    a = cv2.resize(a, (width, height), interpolation=cv2.INTER_LINEAR)
    b = cv2.resize(b, (width, height), interpolation=cv2.INTER_LINEAR)
    return a * np.asarray(guide_full, dtype=np.float32) + b


def domain_transform(guide: np.ndarray, src: np.ndarray, sigma_s: float, sigma_r: float = 0.1,
                     iterations: int = 3) -> np.ndarray:
    """Edge-aware smoothing by the recursive domain-transform filter (Gastal & Oliveira,
    SIGGRAPH 2011, Eq. 21 and Sec. 4.3): a first-order recursion whose feedback a^d weakens across
    guide edges, d = 1 + σs/σr·|∇guide| (their Eq. 11), run left/right then up/down ``iterations``
    times with σ_H,i = σs·√3·2^(N−i)/√(4^N − 1) (Eq. 14).

    guide: H×W gray in [0, 1]; src: H×W float. sigma_s: spatial reach in px; sigma_r: guide
    range scale in guide units (smaller = stops at fainter edges).
    Returns float32 H×W; values never leave the range of ``src``.
    """
    guide = np.asarray(guide, np.float32)
    ratio = np.float32(sigma_s / sigma_r)
    dx = 1.0 + ratio * np.abs(np.diff(guide, axis=1))  # distance between x and x+1
    dy = 1.0 + ratio * np.abs(np.diff(guide, axis=0))
    out = np.array(src, dtype=np.float32, copy=True)
    for i in range(iterations):
        sigma_h = sigma_s * np.sqrt(3.0) * 2.0 ** (iterations - i - 1) / np.sqrt(4.0 ** iterations - 1)
        a = np.float32(np.exp(-np.sqrt(2.0) / sigma_h))
        _recursive_rows(out, np.power(a, dx).astype(np.float32))
        _recursive_rows(out.T, np.ascontiguousarray(np.power(a, dy).T.astype(np.float32)))
    return out


@njit(cache=True)
def _recursive_rows(values, feedback):
    """In place, per row: left→right then right→left, v[x] += w[x]·(v[x∓1] − v[x]) with w the
    feedback between x and its neighbour (``feedback`` is H×(W−1))."""
    height, width = values.shape
    for y in range(height):
        for x in range(1, width):
            values[y, x] += feedback[y, x - 1] * (values[y, x - 1] - values[y, x])
        for x in range(width - 2, -1, -1):
            values[y, x] += feedback[y, x] * (values[y, x + 1] - values[y, x])


def edge_aware_fill(guide: np.ndarray, values: np.ndarray, weights: np.ndarray, side: int = 256,
                    spread: float = 0.1, sigma_r: float = 0.1) -> np.ndarray:
    """Dense map from sparse, weighted samples, smooth inside regions and changing at the guide's edges.

    guide: H×W gray in [0, 1]; values: H×W samples (any unit), read only where weights > 0;
    weights: H×W confidences ≥ 0. side: long side in px at which the fill runs. spread: reach of
    the fill as a fraction of that side. sigma_r: guide contrast (in guide units) at which the
    fill stops spreading. Normalised convolution, Σ w·v / Σ w, with the edge-aware domain-transform
    filter (:func:`domain_transform`) as the kernel: samples spread within regions, not across
    the image's edges, and the map has no box edges where the image has none. Returns float32
    H×W in the range of the sampled values.
    """
    guide = np.asarray(guide, np.float32)
    height, width = guide.shape[:2]
    scale = min(1.0, side / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    weights = np.asarray(weights, np.float32)
    weighted = np.asarray(values, np.float32) * weights
    small_guide, small_num, small_den = (cv2.resize(a, size, interpolation=cv2.INTER_AREA)
                                         for a in (guide, weighted, weights))
    total = float(small_den.sum())
    fallback = float(small_num.sum() / total) if total > 0 else 0.0
    sigma_s = max(1.0, spread * max(size))
    num = domain_transform(small_guide, small_num, sigma_s, sigma_r)
    den = domain_transform(small_guide, small_den, sigma_s, sigma_r)
    filled = np.where(den > 1e-6 * max(total, 1e-12) / small_den.size, num / np.maximum(den, 1e-12), fallback)
    filled = filled.astype(np.float32)
    if scale == 1.0:
        return filled
    return cv2.resize(filled, (width, height), interpolation=cv2.INTER_LINEAR).astype(np.float32)


def photo_guide(pixels: np.ndarray, space: str = "srgb") -> np.ndarray:
    """The grey guide for edge-aware depth upsampling from a photo's linear H×W×3 (or H×W grey)
    pixels, finite.

    space: "srgb" (default) encodes the grey with the sRGB curve (IEC 61966-2-1; its linear toe
    below 0.0031 linear, the darkest 4 % of codes, is replaced by the power law clipped at 0, which
    is as monotonic and costs one OpenCV pass instead of four numpy ones), so a dark edge (a vase
    against a dark wall) has the contrast the eye sees and the guided filter's ``eps`` means the
    same in shadows as in highlights; "linear" keeps linear light. Returns float32 H×W in [0, 1].
    """
    pixels = np.ascontiguousarray(pixels, dtype=np.float32)
    grey = cv2.cvtColor(pixels[..., :3], cv2.COLOR_RGB2GRAY) if pixels.ndim == 3 else pixels.copy()
    np.clip(grey, 0.0, 1.0, out=grey)
    if space == "linear":
        return grey
    if space != "srgb":
        raise ValueError(f"guide space must be 'srgb' or 'linear', got {space!r}")
    encoded = cv2.pow(grey, 1 / 2.4, dst=grey)  # in place, as the two steps below
    cv2.addWeighted(encoded, 1.055, encoded, 0.0, -0.055, dst=encoded)
    return np.maximum(encoded, 0.0, out=encoded)


def upsample_where_explained(guide: np.ndarray, small: np.ndarray, radius: int = 2, eps: float = 1e-3,
                             overwrite_guide: bool = False) -> np.ndarray:
    """Edge-aware upsampling of a low-resolution map (a phone's 768×576 disparity for a 12 MP
    photo) to the size of the full-resolution ``guide``, so its edges land on the photo's edges.

    :func:`guided_upsample` (the fast guided filter, used for mattes and estimates) plus a
    fallback to bilinear wherever the photo does not explain the map. The fast guided filter
    (He & Sun 2015): the map p is explained as ``a·I + b`` in windows at
    the map's own resolution, against the guide I area-averaged to that size, and the smooth a, b
    are applied to the full-resolution guide. Across a guide edge the map's step then follows
    the guide's edge to the pixel, and a soft guide edge (hair, fur) gives a soft depth
    transition, as a matte would. Working at the map's resolution matters: the windows hold the
    map's whole edge, not part of an interpolated ramp that would leak into the plateaus beside it.

    Where the guide does not explain the map, the filter would only blur it (a depth edge the
    photo does not show, two surfaces of one colour) or copy texture into it (a textured wall
    seen at an angle). So the result is blended with the bilinear enlargement by the local
    correlation ρ² = cov(I, p)² / (var I · var p) of guide and map (box-averaged): 1 where an
    image edge explains a depth edge, 0 on a textured but smooth surface or an invisible edge.
    As resizing is linear, the blend costs no extra full-resolution pass:
    out = up(ρ²·a)·I + up(ρ²·b + (1 − ρ²)·p).

    guide: H×W grey in [0, 1] (:func:`photo_guide`); small: h×w map, h ≤ H and w ≤ W, any unit.
    radius: window radius in pixels of the map (it must cover the map's misalignment with the
    photo, about a pixel of the map). eps: regularisation in guide units² (guide contrast
    below ~√eps does not steer the map). overwrite_guide: the caller gives ``guide`` up (float32,
    C-contiguous): the result is written into it, and the enlargement allocates nothing at full
    size. Returns float32 H×W within the range of ``small``.

    The two enlargements and the blend run as one pass (:func:`_fit_rows`): the same numbers as
    ``clip(cv2.resize(A)·I + cv2.resize(B))`` with OpenCV's bilinear resize (its sampling
    positions and its Intel IPP arithmetic, bit for bit in tests/test_depth_upsample.py; where
    OpenCV runs without IPP its own arithmetic differs by float32 rounding).
    """
    guide = np.asarray(guide, dtype=np.float32)
    p = np.ascontiguousarray(small, dtype=np.float32)
    i = cv2.resize(guide, p.shape[::-1], interpolation=cv2.INTER_AREA)
    a, b, cov, var_i, mean_p = _local_fit(i, p, radius, eps)
    var_i = np.maximum(var_i, 0)
    var_p = np.maximum(box_mean(p * p, radius) - mean_p * mean_p, 0)
    weight = box_mean(np.clip(cov * cov / ((var_i + np.float32(1e-6)) * (var_p + np.float32(1e-6))), 0, 1), radius)
    a = weight * box_mean(a, radius)
    b = weight * box_mean(b, radius) + (1 - weight) * p
    height, width = guide.shape
    writable = guide.flags.c_contiguous and guide.flags.writeable
    out = guide if overwrite_guide and writable else np.array(guide, dtype=np.float32, order="C")
    rows, row_weights = _linear_taps(p.shape[0], height)
    columns, column_weights = _linear_taps(p.shape[1], width)
    starts = np.searchsorted(rows, np.arange(p.shape[0] + 1))  # rows is non-decreasing
    _fit_rows(np.ascontiguousarray(a, dtype=np.float32), np.ascontiguousarray(b, dtype=np.float32), rows,
              row_weights, columns, column_weights, starts, p.min(), p.max(), out, 0, p.shape[0])
    return out


def _linear_taps(size: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """cv2.resize's bilinear taps from ``size`` samples to ``length``: per output index the first
    source index (int64, the second is the next one, clamped) and the second's weight (float32
    in [0, 1)), with OpenCV's arithmetic (position (i + ½)·size/length − ½ in float64, its
    fraction rounded to float32; clamped at both ends with weight 0)."""
    scale = 1.0 / (length / size)
    position = (np.arange(length) + 0.5) * scale - 0.5
    first = np.floor(position)
    weight = (position - first).astype(np.float32)
    index = first.astype(np.int64)
    outside = (index < 0) | (index >= size - 1)
    weight[outside] = 0
    np.clip(index, 0, size - 1, out=index)
    return index, weight


@njit(cache=True, inline="always")
def _lerp(first, second, weight):
    """first + (second − first)·weight in float32 with the multiply-add fused (one rounding, done
    in float64, where the product is exact): the arithmetic of OpenCV's (IPP's) bilinear resize."""
    return np.float32(np.float64(first) + np.float64(second - first) * np.float64(weight))


@njit(cache=True, parallel=True, chunked=True, noalias=True)
def _fit_rows(a, b, rows, row_weights, columns, column_weights, starts, low, high, values, lo, hi):
    """In place on float32 H×W ``values`` (the guide I): clip(A·I + B, low, high), A and B the
    h×w ``a`` and ``b`` enlarged bilinearly by the taps of :func:`_linear_taps` (rows,
    row_weights for the rows, columns, column_weights for the columns), for the output rows
    whose first source row is lo … hi − 1 (0, h for all): output rows starts[k] … starts[k+1] − 1
    take source rows k and k + 1. As cv2.resize does, the two source rows are interpolated along
    x (once per source row, not per output row), then along y, each by :func:`_lerp`."""
    last_row, last_column = a.shape[0] - 1, a.shape[1] - 1
    width = values.shape[1]
    for k in prange(lo, hi):
        if starts[k] == starts[k + 1]:
            continue
        k1 = min(k + 1, last_row)
        a0 = np.empty(width, np.float32)
        a1 = np.empty(width, np.float32)
        b0 = np.empty(width, np.float32)
        b1 = np.empty(width, np.float32)
        for x in range(width):
            x0 = columns[x]
            x1 = min(x0 + 1, last_column)
            wx = column_weights[x]
            a0[x] = _lerp(a[k, x0], a[k, x1], wx)
            a1[x] = _lerp(a[k1, x0], a[k1, x1], wx)
            b0[x] = _lerp(b[k, x0], b[k, x1], wx)
            b1[x] = _lerp(b[k1, x0], b[k1, x1], wx)
        for y in range(starts[k], starts[k + 1]):
            wy = row_weights[y]
            for x in range(width):
                v = _lerp(a0[x], a1[x], wy) * values[y, x] + _lerp(b0[x], b1[x], wy)
                values[y, x] = min(max(v, low), high)
