"""KNN matting (Chen, Li & Tang 2013) of a hard segmentation, restricted to its boundary band.

The trimap marks pixels within ``band`` pixels of the segmentation boundary as unknown. The
KNN matting Laplacian links every pixel to its nearest neighbours in (colour, weighted position)
space, as pymatting's ``estimate_alpha_knn`` does, but only over the unknown band and a margin of
known pixels around it (the constraints that fix the band's alpha): the rest of the image cannot
change the answer much and would dominate the cost. pymatting supplies the k-d tree search, the
linear system and the preconditioned conjugate-gradient solver. Large images are matted at a
reduced scale and the alpha is brought back with the fast guided filter, fractional only inside
the full-resolution band.
"""

from __future__ import annotations

import cv2
import numpy as np
import scipy.sparse

from lensblur.depth.refine import guided_upsample

NEIGHBOURS = (20, 10)             # k of the two neighbour searches (pymatting's defaults)
POSITION_WEIGHTS = (2.0, 0.1)     # weight of the position features in each search
MAX_SIDE = 640                    # long side in pixels of the grid the solver sees
GRAY = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def knn_matte(image: np.ndarray, segmentation: np.ndarray, band: int = 10, max_side: int = MAX_SIDE) -> np.ndarray:
    """Alpha H×W float32 in [0, 1] of ``segmentation`` (H×W bool) on ``image`` (H×W×3 in [0, 1]).

    band: half-width in full-resolution pixels of the trimap's unknown band (≥ 1); max_side:
    long side of the grid the matting is solved on (the band shrinks with it, to at least 1 px).
    Alpha equals the segmentation (0/1) outside the band.
    """
    hard = np.asarray(segmentation, bool)
    if not hard.any() or hard.all():
        return hard.astype(np.float32)
    height, width = hard.shape
    image = np.clip(np.asarray(image[..., :3], np.float32), 0.0, 1.0)
    scale = min(1.0, max_side / max(height, width))
    small_size = (max(2, round(width * scale)), max(2, round(height * scale)))
    small_image = cv2.resize(image, small_size, interpolation=cv2.INTER_AREA) if scale < 1 else image
    small_mask = cv2.resize(hard.astype(np.float32), small_size, interpolation=cv2.INTER_AREA) if scale < 1 else hard
    small_band = max(1, round(band * scale))
    trimap = band_trimap(small_mask, small_band)
    alpha_small = solve_band(small_image, trimap, margin=max(2, small_band // 2))
    if scale < 1:
        gray = image @ GRAY
        alpha = np.clip(guided_upsample(gray, small_image @ GRAY, alpha_small, radius=2, eps=1e-4), 0, 1)
    else:
        alpha = alpha_small
    full_trimap = band_trimap(hard, band)
    unknown = full_trimap == 0.5
    out = full_trimap.copy()
    out[unknown] = alpha[unknown]
    return out.astype(np.float32)


def band_trimap(mask: np.ndarray, band: int) -> np.ndarray:
    """Trimap of a hard mask: 1 = sure subject, 0 = sure background, 0.5 = unknown.

    The unknown band spans ``band`` pixels (≥ 1) either side of the mask's boundary, except
    across parts thinner than the band (strands, gaps), which stay as the mask says: eroding
    them away would hand the solver a band with nothing known on one side, and they would vanish.
    Returns float32 H×W in {0, 0.5, 1}.
    """
    hard = (np.asarray(mask) > 0.5).astype(np.uint8)
    size = 2 * max(1, int(band)) + 1
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    sure_subject = cv2.erode(hard, disk, borderType=cv2.BORDER_REPLICATE)
    sure_background = cv2.erode(1 - hard, disk, borderType=cv2.BORDER_REPLICATE)
    thick_subject = cv2.dilate(sure_subject, disk) & hard
    thick_background = cv2.dilate(sure_background, disk) & (1 - hard)
    trimap = np.full(hard.shape, 0.5, dtype=np.float32)
    trimap[(sure_background > 0) | ((hard == 0) & (thick_background == 0))] = 0.0
    trimap[(sure_subject > 0) | ((hard > 0) & (thick_subject == 0))] = 1.0
    return trimap


def solve_band(image: np.ndarray, trimap: np.ndarray, margin: int) -> np.ndarray:
    """KNN matting of ``trimap`` (values 0, 0.5 = unknown, 1) on ``image`` over the unknown pixels
    and the known ones within ``margin`` pixels of them. Returns float32 H×W alpha (the trimap
    where nothing is unknown or nothing is known nearby)."""
    from pymatting import cg, jacobi
    from pymatting.util.kdtree import knn

    unknown = trimap == 0.5
    size = 2 * margin + 1
    domain = cv2.dilate(unknown.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))) > 0
    ys, xs = np.nonzero(domain)
    count = ys.size
    known = ~unknown[ys, xs]
    alpha = trimap.astype(np.float32).copy()
    if not unknown.any() or not known.any() or count <= max(NEIGHBOURS):
        return np.clip(alpha, 0, 1)
    height, width = trimap.shape
    side = float(max(height, width))
    colours = image[ys, xs].astype(np.float32)
    rows, cols = [], []
    for k, weight in zip(NEIGHBOURS, POSITION_WEIGHTS):
        features = np.concatenate([colours, weight * np.stack([xs, ys], axis=1).astype(np.float32) / side], axis=1)
        _, neighbours = knn(features, features, k=k)
        rows.append(np.repeat(np.arange(count), k))
        cols.append(neighbours.ravel())
    i, j = np.concatenate(rows), np.concatenate(cols)
    # symmetric affinity with a binary kernel, rows normalised: L = I − D⁻¹W
    affinity = scipy.sparse.csr_matrix((np.ones(2 * i.size), (np.concatenate([i, j]), np.concatenate([j, i]))),
                                       shape=(count, count))
    degree = np.asarray(affinity.sum(axis=1)).ravel()
    laplacian = scipy.sparse.identity(count, format="csr") - scipy.sparse.diags(1.0 / degree) @ affinity
    constraint = 100.0 * known
    system = (laplacian + scipy.sparse.diags(constraint)).tocsr()
    rhs = constraint * (trimap[ys, xs] > 0.5)
    solution = cg(system, rhs, M=jacobi(system), rtol=1e-5, maxiter=400)
    alpha[ys, xs] = np.where(known, trimap[ys, xs], np.clip(solution, 0, 1))
    return np.clip(alpha, 0, 1).astype(np.float32)
