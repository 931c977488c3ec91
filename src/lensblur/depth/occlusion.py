"""Occlusion boundaries: which side of a region boundary is in front.

Where one surface overlaps another, the boundary belongs to the occluder, and the occluder's
outline is locally convex (it bulges into the surface behind it). Fowlkes, Martin & Malik, "Local
figure–ground cues are valid for natural images" (Journal of Vision 7(8), 2007) measured on the
Berkeley figure/ground data that local convexity (and the lower region) predict the occluding side.

Here the image is cut into regions (Felzenszwalb–Huttenlocher graph segmentation, scikit-image);
at every boundary pixel pair the side whose region fills less of a small disc around the pixel is
the convex one. Averaged along each shared boundary this gives an ownership in [-1, 1]; a
least-squares solve over all regions turns the pairwise "A is in front of B by s" into one
relative depth per region, pulled weakly towards zero so unconnected regions stay put.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import lsqr



def segment(image_srgb: np.ndarray, min_fraction: float = 0.002) -> np.ndarray:
    """Region labels (int32 H×W, 0..n-1) of an sRGB image H×W×3 in [0, 1].

    Felzenszwalb–Huttenlocher with scale 200 and regions of at least ``min_fraction`` of the frame,
    then :func:`merge_thin`.
    """
    from skimage.segmentation import felzenszwalb

    height, width = image_srgb.shape[:2]
    labels = felzenszwalb(np.asarray(image_srgb, np.float64), scale=200, sigma=0.8,
                          min_size=max(8, int(min_fraction * height * width)))
    return merge_thin(labels.astype(np.int32))


def merge_thin(labels: np.ndarray, min_thickness: float = 3.0) -> np.ndarray:
    """Merge regions thinner than ``min_thickness`` px (area / boundary length) into the neighbour
    they share the longest boundary with: the slivers a segmentation leaves along soft edges would
    otherwise sit between the two surfaces whose order is wanted. Returns int32 labels 0..n-1."""
    labels = np.asarray(labels, np.int64)
    n = int(labels.max()) + 1
    a, b, length = _touching(labels)
    perimeter = np.bincount(a, weights=length, minlength=n) + np.bincount(b, weights=length, minlength=n)
    area = np.bincount(labels.ravel(), minlength=n)
    thin = area < min_thickness * np.maximum(perimeter, 1)
    target = np.arange(n)
    best = np.zeros(n)
    for first, second, shared in zip(a, b, length):
        for region, other in ((first, second), (second, first)):
            if thin[region] and not thin[other] and shared > best[region]:
                best[region], target[region] = shared, other
    _, relabelled = np.unique(target[labels], return_inverse=True)
    return relabelled.reshape(labels.shape).astype(np.int32)


def _touching(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs a < b of 4-connected touching regions and their shared boundary length in pixel pairs."""
    n = int(labels.max()) + 1
    p = np.concatenate([labels[:, :-1][labels[:, :-1] != labels[:, 1:]], labels[:-1][labels[:-1] != labels[1:]]])
    q = np.concatenate([labels[:, 1:][labels[:, :-1] != labels[:, 1:]], labels[1:][labels[:-1] != labels[1:]]])
    key = np.minimum(p, q) * n + np.maximum(p, q)
    unique, count = np.unique(key, return_counts=True)
    return unique // n, unique % n, count.astype(np.float64)


def same_label_fraction(labels: np.ndarray, radius: int) -> np.ndarray:
    """For each pixel, the fraction of the (2r+1)² window around it that has its own label; float32 H×W."""
    height, width = labels.shape
    padded = np.pad(labels, radius, mode="edge")
    count = np.zeros((height, width), np.float32)
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            count += padded[dy:dy + height, dx:dx + width] == labels
    return count / float((2 * radius + 1) ** 2)


def boundary_ownership(labels: np.ndarray, radius: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pairwise figure/ground from local convexity along region boundaries.

    labels: int H×W region labels 0..n-1. radius: px of the convexity window. Returns (a, b,
    ownership, length): for each pair of touching regions a < b, the mean ownership in [-1, 1]
    (positive: a is in front of b) and the shared boundary length in pixel pairs.
    """
    labels = np.asarray(labels, np.int64)
    fraction = same_label_fraction(labels, radius)
    n = int(labels.max()) + 1
    firsts, seconds, scores = [], [], []
    for p, q, fp, fq in ((labels[:, :-1], labels[:, 1:], fraction[:, :-1], fraction[:, 1:]),
                         (labels[:-1], labels[1:], fraction[:-1], fraction[1:])):
        cut = p != q
        firsts.append(p[cut]); seconds.append(q[cut])
        scores.append(fq[cut] - fp[cut])  # p's region convex (fills little), q's concave: p in front
    first, second, score = (np.concatenate(x) for x in (firsts, seconds, scores))
    flip = first > second
    a, b = np.where(flip, second, first), np.where(flip, first, second)
    score = np.where(flip, -score, score)
    key = a * n + b
    unique, inverse = np.unique(key, return_inverse=True)
    length = np.bincount(inverse).astype(np.float64)
    total = np.bincount(inverse, weights=score)
    return unique // n, unique % n, (total / length).astype(np.float64), length


def occlusion_depth(labels: np.ndarray, radius: int = 4, step: float = 1.0, prior: float = 1e-3,
                    saturation: float = 0.02) -> np.ndarray:
    """Relative depth per pixel from boundary ownership (bigger = nearer), float32 H×W, mean 0.

    labels: int H×W regions; radius: convexity window in px; step: depth difference implied by
    a clearly owned boundary; prior: weight per pixel pulling each region's depth to 0;
    saturation: ownership at which a boundary counts as clearly owned. Ownership says which side
    is in front, not by how much, so each pair asks for s_ab = step·clip(ownership / saturation,
    −1, 1). Solves min Σ_pairs L·(d_a − d_b − s_ab)² + prior·Σ_regions area·d² by LSQR.
    """
    a, b, ownership, length = boundary_ownership(labels, radius)
    ownership = np.clip(ownership / saturation, -1.0, 1.0)
    n = int(labels.max()) + 1
    area = np.bincount(np.asarray(labels).ravel(), minlength=n).astype(np.float64)
    m = len(a)
    root = np.sqrt(length)
    rows = np.concatenate([np.arange(m), np.arange(m), m + np.arange(n)])
    cols = np.concatenate([a, b, np.arange(n)])
    vals = np.concatenate([root, -root, np.sqrt(prior * area)])
    system = sparse.csr_matrix((vals, (rows, cols)), shape=(m + n, n))
    target = np.concatenate([root * step * ownership, np.zeros(n)])
    depth = lsqr(system, target, atol=1e-8, btol=1e-8, iter_lim=2000)[0]
    per_pixel = depth[np.asarray(labels)]
    return (per_pixel - np.average(per_pixel)).astype(np.float32)
