"""Image-quality metrics as bokeh papers report them: on 8-bit sRGB images.

psnr, ssim: whole image. boundary_mask + boundary_psnr: only the band around depth edges where
occlusion handling decides the result. lpips_distance: learned perceptual distance, only when
torch and LPIPS weights are available.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from lensblur.errors import InputError, LensblurError

EDGE_STEP = 0.02  # a disparity jump larger than this between neighbours is a depth edge
MIN_BAND = 2.0  # pixels: the boundary band is never narrower than this


def _as_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise InputError(f"images differ in size: {a.shape} vs {b.shape}")
    return a.astype(np.float64), b.astype(np.float64)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 sRGB images (peak 255); inf when identical."""
    a, b = _as_pair(a, b)
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity in [-1, 1] of two uint8 sRGB H×W×3 images (skimage, data_range 255)."""
    from skimage.metrics import structural_similarity

    a, b = _as_pair(a, b)
    return float(structural_similarity(a, b, channel_axis=2 if a.ndim == 3 else None, data_range=255.0))


def boundary_mask(disparity: np.ndarray, coc_radius: np.ndarray | float) -> np.ndarray:
    """Pixels within the local blur radius (at least 2 px) of a disparity edge, bool H×W.

    disparity: float H×W in [0, 1]. coc_radius: |c| in pixels, H×W or a scalar. An edge pixel
    is one whose disparity differs from a 4-neighbour by more than 0.02; its band radius is the
    largest |c| in its 3×3 neighbourhood (so the blurrier side of the edge decides), at least 2.
    """
    disparity = np.asarray(disparity, dtype=np.float32)
    radius = np.broadcast_to(np.abs(np.asarray(coc_radius, dtype=np.float32)), disparity.shape)
    edges = np.zeros(disparity.shape, bool)
    dy = np.abs(np.diff(disparity, axis=0)) > EDGE_STEP
    dx = np.abs(np.diff(disparity, axis=1)) > EDGE_STEP
    edges[1:] |= dy
    edges[:-1] |= dy
    edges[:, 1:] |= dx
    edges[:, :-1] |= dx
    mask = np.zeros(disparity.shape, bool)
    if not edges.any():
        return mask
    band = np.maximum(ndimage.maximum_filter(radius, size=3), MIN_BAND)
    levels = np.ceil(band[edges]).astype(int)
    # One distance transform per integer band radius: exact and cheap (a few dozen levels).
    for level in np.unique(levels):
        seeds = edges & (np.ceil(band) == level)
        distance = ndimage.distance_transform_edt(~seeds)
        mask |= distance <= level
    return mask


def boundary_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """PSNR in dB of two uint8 images over the pixels where ``mask`` is True; nan for an empty mask."""
    a, b = _as_pair(a, b)
    mask = np.asarray(mask, bool)
    if not mask.any():
        return math.nan
    mse = float(np.mean((a[mask] - b[mask]) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse)


def lpips_distance(a: np.ndarray, b: np.ndarray, weights_path: str) -> float:
    """LPIPS (AlexNet variant) between two uint8 sRGB images; lower is more similar (≥ 0).

    weights_path: a torch file holding both the AlexNet feature weights (keys ``features.N.*``
    as in torchvision's alexnet, or ``net.sliceK.N.*`` as in the lpips package) and the linear
    heads ``lin0..lin4.model.1.weight``. Needs torch; raises LensblurError without it.
    """
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        raise LensblurError("LPIPS needs torch: install it (pip install torch) or leave out --lpips") from None
    a, b = _as_pair(a, b)
    from lensblur.models import load_tensors

    state = load_tensors(weights_path, "LPIPS weights")
    try:
        features = _alexnet_weights(state)
        heads = [state[f"lin{i}.model.1.weight"].float() for i in range(5)]
    except (KeyError, TypeError, AttributeError) as error:
        raise InputError(f"LPIPS weights {weights_path} lack {error}: need the AlexNet backbone and the "
                         "lin0..lin4 heads in one file") from None
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)

    def activations(image):
        x = torch.from_numpy(image / 127.5 - 1.0).float().permute(2, 0, 1)[None]
        x = (x - shift) / scale
        outs = []
        for index, (weight, bias, stride, padding, pool) in enumerate(features):
            if pool:
                x = F.max_pool2d(x, kernel_size=3, stride=2)
            x = F.relu(F.conv2d(x, weight, bias, stride=stride, padding=padding))
            outs.append(x)
        return outs

    with torch.no_grad():
        total = 0.0
        for fa, fb, head in zip(activations(a), activations(b), heads):
            fa = fa / (fa.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            fb = fb / (fb.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total += float(F.conv2d((fa - fb) ** 2, head).mean())
    return total


def _alexnet_weights(state) -> list:
    """(weight, bias, stride, padding, max-pool-before) for AlexNet's five conv layers."""
    layout = [(0, 4, 2, False), (3, 1, 2, True), (6, 1, 1, True), (8, 1, 1, False), (10, 1, 1, False)]
    slices = {0: 1, 3: 2, 6: 3, 8: 4, 10: 5}
    out = []
    for index, stride, padding, pool in layout:
        for key in (f"features.{index}", f"net.slice{slices[index]}.{index}"):
            if f"{key}.weight" in state:
                out.append((state[f"{key}.weight"].float(), state[f"{key}.bias"].float(), stride, padding, pool))
                break
        else:
            raise InputError(f"LPIPS weights lack AlexNet layer features.{index}: need backbone and heads in one file")
    return out


def depth_rank_correlation(estimate: np.ndarray, truth: np.ndarray, valid: np.ndarray | None = None,
                           max_samples: int = 200_000, seed: int = 0) -> float:
    """Spearman rank correlation in [-1, 1] between two H×W depth maps of the same size.

    Both maps must order depth the same way (e.g. both disparity, bigger = nearer). valid: bool
    H×W of pixels to compare (default: where both are finite). At most ``max_samples`` random
    valid pixels are used (fixed ``seed``). NaN when either map is constant over them.
    """
    from scipy.stats import rankdata

    estimate, truth = _as_pair(estimate, truth)
    keep = np.isfinite(estimate) & np.isfinite(truth)
    if valid is not None:
        keep &= np.asarray(valid, bool)
    index = np.flatnonzero(keep.ravel())
    if index.size > max_samples:
        index = np.random.default_rng(seed).choice(index, max_samples, replace=False)
    a, b = rankdata(estimate.ravel()[index]), rankdata(truth.ravel()[index])
    if index.size < 2 or a.std() == 0 or b.std() == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def ordinal_error(estimate: np.ndarray, truth: np.ndarray, pairs: int = 20000, min_gap: float = 0.1,
                  seed: int = 0) -> float:
    """WHDR-style ordinal error in [0, 1] of an H×W disparity estimate against the truth.

    Over ``pairs`` random pixel pairs whose true disparities differ by more than ``min_gap`` of
    the valid range, the fraction whose order the estimate gets wrong; ties in the estimate count
    0.5. Invalid truth (non-finite or ≤ 0) is skipped. Both maps: bigger = nearer.
    """
    rng = np.random.default_rng(seed)
    t, e = np.asarray(truth, np.float64).ravel(), np.asarray(estimate, np.float64).ravel()
    valid = np.flatnonzero(np.isfinite(t) & (t > 0))
    gap = min_gap * (t[valid].max() - t[valid].min())
    a, b = [], []
    for _ in range(100):
        i, j = rng.choice(valid, 4 * pairs), rng.choice(valid, 4 * pairs)
        keep = np.abs(t[i] - t[j]) > gap
        a.extend(i[keep]); b.extend(j[keep])
        if len(a) >= pairs:
            break
    if not a:
        raise InputError("the true depth has no pairs that differ by more than the minimum gap")
    a, b = np.array(a[:pairs]), np.array(b[:pairs])
    truth_sign = np.sign(t[a] - t[b])
    est_sign = np.sign(e[a] - e[b])
    return float(np.mean(np.where(est_sign == 0, 0.5, (est_sign != truth_sign).astype(float))))
