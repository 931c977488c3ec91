"""Depth layers for the portrait renderer (Xu et al., Sec. 3.3, Eq. 7–9).

A disparity map is split into K layers by minimising

    E(l) = Σ_i u(l_i | z_i) + λ Σ_(i,j)∈N 1(l_i ≠ l_j) · exp(−‖f_S(z)_i→j‖)

over the 4-neighbourhood N, with λ = 10 (section 4.1). Two forms of u and e (``energy``):

``"paper"`` (the default): Eq. 8 and Eq. 9 as printed, z being the disparity in [0, 1]:
- unaries u(l|z) = |z − C_l| / σ_l², with K-means (K = 6) cluster centres C_l and variances σ_l²;
- pairwise e = 1(l_i ≠ l_j)·exp(−|f_S(z)_i→j|), f_S the 3×3 Sobel response of z across the edge.

``"project"``: the form this project used before (docs/portrait.md says why it may be preferred):
- u is the Gaussian negative log-likelihood (z − C_l)² / (2σ_l²) + ln σ_l (Eq. 8's words: "the
  negative log-likelihood … Gaussian"; the printed formula drops the square and the normaliser);
- the Sobel response is measured in units of its own root-mean-square over the image (the paper
  leaves the depth units open), so a depth step far above the map's typical variation costs
  nothing to cut and smooth or noisy areas are smoothed.
λ keeps the value 10 in both, but it weighs a different balance: with z in [0, 1] the paper's
pairwise weights stay near 1 at all but the steepest steps, while its unaries grow as 1/σ².

Both are minimised by α-expansion: one binary graph cut per label per sweep (PyMaxflow grid graphs,
  built with whole-array operations), until a sweep changes nothing.

The labelling runs on a copy of the disparity reduced to at most LABEL_PIXELS pixels; callers
upsample what they derive from it (the portrait renderer feathers the layers with a Gaussian
anyway).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from lensblur.errors import InputError

LAYERS = 6               # K of the paper (section 4.1)
SMOOTHNESS = 10.0        # λ of the paper (section 4.1)
ENERGY = "paper"         # Eq. 8-9 as printed; "project" is the earlier, rescaled form
ENERGIES = ("paper", "project")
LABEL_PIXELS = 250_000   # largest grid the graph cut runs on (500×300 and 384×576 run at full size)
MIN_SIGMA = 0.004        # floor of a cluster's standard deviation, disparity units
MAX_SWEEPS = 4
RIGHT = np.array([[0, 0, 0], [0, 0, 1], [0, 0, 0]])
DOWN = np.array([[0, 0, 0], [0, 0, 0], [0, 1, 0]])


@dataclass(frozen=True)
class DepthLayers:
    """A labelling of a disparity map into depth layers.

    labels: int32 h×w in [0, count) on the labelling grid (``scale`` times smaller than the image);
    centres: float32 (count,) K-means centres in disparity units, ascending (layer 0 is farthest);
    sigmas: float32 (count,) their standard deviations; scale: image pixels per labelling pixel.
    """

    labels: np.ndarray
    centres: np.ndarray
    sigmas: np.ndarray
    scale: int

    @property
    def count(self) -> int:
        return int(self.centres.size)


def split_depth_layers(disparity: np.ndarray, layers: int = LAYERS, smoothness: float = SMOOTHNESS,
                       exclude: np.ndarray | None = None, max_pixels: int = LABEL_PIXELS,
                       energy: str = ENERGY) -> DepthLayers:
    """K-means unaries + Sobel-weighted Potts + α-expansion on ``disparity`` (H×W in [0, 1]).

    energy: "paper" (Eq. 8–9 as printed) or "project" (Gaussian log-likelihood unaries and
    RMS-normalised Sobel weights; see the module docstring).
    layers: K (1 to 32; fewer when the map has fewer distinct values); smoothness: λ ≥ 0;
    exclude: optional H×W bool of pixels left out of the K-means fit (e.g. the person, so all K
    layers describe the background), still labelled; max_pixels: size of the labelling grid.
    """
    disparity = np.asarray(disparity, dtype=np.float32)
    if disparity.ndim != 2 or disparity.size == 0:
        raise InputError(f"disparity must be a non-empty H×W array, got shape {disparity.shape}")
    if energy not in ENERGIES:
        raise InputError(f"unknown depth-layer energy {energy!r}: choose from {', '.join(ENERGIES)}")
    if not 1 <= layers <= 32 or not smoothness >= 0:
        raise InputError(f"need 1 to 32 layers and smoothness >= 0, got {layers} and {smoothness}")
    height, width = disparity.shape
    scale = max(1, math.ceil(math.sqrt(height * width / max_pixels)))
    small_size = (max(1, width // scale), max(1, height // scale))
    small = cv2.resize(disparity, small_size, interpolation=cv2.INTER_AREA) if scale > 1 else disparity
    fit_values = small.ravel()
    if exclude is not None:
        keep = cv2.resize(np.asarray(exclude, np.float32), small_size, interpolation=cv2.INTER_AREA) < 0.5 \
            if scale > 1 else ~np.asarray(exclude, bool)
        if keep.any():
            fit_values = small[keep]
    centres, sigmas = kmeans_1d(fit_values, layers)
    paper = energy == "paper"
    unaries = (paper_unaries if paper else gaussian_unaries)(small, centres, sigmas)
    weight_right, weight_down = sobel_edge_weights(small, normalise=not paper)
    labels = alpha_expansion(unaries, smoothness * weight_right, smoothness * weight_down)
    return DepthLayers(labels, centres, sigmas, scale)


def kmeans_1d(values: np.ndarray, clusters: int, iterations: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's K-means on scalars: (centres ascending, standard deviations), float32.

    Starts from evenly spaced quantiles; clusters that end up empty are dropped, so at most as
    many clusters as distinct values come back. Standard deviations are floored at MIN_SIGMA.
    """
    values = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if values.size == 0:
        raise InputError("no disparity values to cluster")
    distinct = np.unique(values)
    if distinct.size <= clusters:
        centres = distinct
    else:
        centres = np.unique(np.quantile(values, (np.arange(clusters) + 0.5) / clusters))
    for _ in range(iterations):
        # values are sorted, so each cluster is a contiguous run between midpoints
        cuts = np.searchsorted(values, (centres[:-1] + centres[1:]) / 2)
        bounds = np.concatenate([[0], cuts, [values.size]])
        counts = np.diff(bounds)
        sums = np.add.reduceat(values, np.minimum(bounds[:-1], values.size - 1))
        sums[counts == 0] = 0
        nonempty = counts > 0
        updated = sums[nonempty] / counts[nonempty]
        if updated.size == centres.size and np.allclose(updated, centres, atol=1e-7):
            centres = updated
            break
        centres = updated
    cuts = np.searchsorted(values, (centres[:-1] + centres[1:]) / 2)
    bounds = np.concatenate([[0], cuts, [values.size]])
    sigmas = np.array([values[a:b].std() if b > a else 0.0 for a, b in zip(bounds[:-1], bounds[1:])])
    return centres.astype(np.float32), np.maximum(sigmas, MIN_SIGMA).astype(np.float32)


def paper_unaries(disparity: np.ndarray, centres: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """Eq. 8 as printed: costs K×H×W float32 |z − C_l| / σ_l² of giving each pixel each layer
    (disparity units; σ floored at MIN_SIGMA), shifted so the best layer of every pixel costs 0."""
    z = np.asarray(disparity, np.float32)[None]
    c = centres.reshape(-1, 1, 1).astype(np.float32)
    s = sigmas.reshape(-1, 1, 1).astype(np.float32)
    cost = np.abs(z - c) / (s * s)
    return (cost - cost.min(axis=0, keepdims=True)).astype(np.float32)


def gaussian_unaries(disparity: np.ndarray, centres: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """Costs K×H×W float32 of giving each pixel each layer: the Gaussian negative log-likelihood
    (z − C_l)² / (2σ_l²) + ln σ_l, shifted so the best layer of every pixel costs 0."""
    z = np.asarray(disparity, np.float32)[None]
    c = centres.reshape(-1, 1, 1).astype(np.float32)
    s = sigmas.reshape(-1, 1, 1).astype(np.float32)
    cost = (z - c) ** 2 / (2 * s * s) + np.log(s)
    return (cost - cost.min(axis=0, keepdims=True)).astype(np.float32)


def sobel_edge_weights(disparity: np.ndarray, normalise: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Potts weights exp(−|f_S|) of the edges to the right and downwards, each H×W float32 in (0, 1].

    f_S is the 3×3 Sobel derivative of the disparity across the edge (x for horizontal neighbours,
    y for vertical ones), the smaller of its magnitudes at the edge's two pixels (a step between
    columns x and x+1 responds at both, a step one column away at only one): Eq. 9. normalise:
    divide it by the root mean square of the Sobel gradient magnitude over the map (the
    "project" form). Entries of the last column (right)
    and last row (down) have no edge and are 0.
    """
    z = np.asarray(disparity, np.float32)
    gx = np.abs(cv2.Sobel(z, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REPLICATE))
    gy = np.abs(cv2.Sobel(z, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REPLICATE))
    unit = np.float32(1.0)
    if normalise:
        rms = math.sqrt(float(np.mean(gx * gx + gy * gy)))
        unit = np.float32(1.0 / rms) if rms > 1e-12 else np.float32(0.0)
    right = np.zeros_like(z)
    down = np.zeros_like(z)
    right[:, :-1] = np.exp(-np.minimum(gx[:, :-1], gx[:, 1:]) * unit)
    down[:-1, :] = np.exp(-np.minimum(gy[:-1, :], gy[1:, :]) * unit)
    return right, down


def potts_energy(labels: np.ndarray, unaries: np.ndarray, weight_right: np.ndarray, weight_down: np.ndarray) -> float:
    """E(l) = Σ unaries + Σ over cut edges of their weights (λ already folded into the weights)."""
    rows, cols = np.indices(labels.shape)
    data = float(unaries[labels, rows, cols].sum())
    cut_right = float((weight_right[:, :-1] * (labels[:, :-1] != labels[:, 1:])).sum())
    cut_down = float((weight_down[:-1, :] * (labels[:-1, :] != labels[1:, :])).sum())
    return data + cut_right + cut_down


def alpha_expansion(unaries: np.ndarray, weight_right: np.ndarray, weight_down: np.ndarray,
                    initial: np.ndarray | None = None, max_sweeps: int = MAX_SWEEPS) -> np.ndarray:
    """Minimise Σ_i unaries[l_i, i] + Σ_edges w_ij·1(l_i ≠ l_j) on a 4-connected grid.

    unaries: K×H×W float costs; weight_right / weight_down: H×W non-negative weights of the edge
    from each pixel to its right / lower neighbour (λ included). Each move lets every pixel keep
    its label or switch to α; for a Potts term that binary problem is submodular and one
    minimum cut solves it exactly. Sweeps over all labels repeat until none changes a pixel (at
    most ``max_sweeps``). Returns int32 H×W labels.
    """
    import maxflow

    count, height, width = unaries.shape
    labels = np.argmin(unaries, axis=0).astype(np.int32) if initial is None else np.array(initial, np.int32)
    if count == 1:
        return labels
    rows, cols = np.indices((height, width))
    right = np.ascontiguousarray(weight_right, np.float64)
    down = np.ascontiguousarray(weight_down, np.float64)
    for _ in range(max_sweeps):
        changed = False
        for alpha in range(count):
            if _expand(labels, alpha, unaries, right, down, rows, cols, maxflow):
                changed = True
        if not changed:
            break
    return labels


def _expand(labels, alpha, unaries, right, down, rows, cols, maxflow) -> bool:
    """One α-expansion move, in place on ``labels``; True when some pixel switched to α.

    x_i = 1 means "switch to α" (sink side of the cut), x_i = 0 "keep". A pairwise term with
    E00 = A, E01 = B, E10 = C, E11 = D equals A + (C−A)·x_p + (D−C)·x_q + (B+C−A−D)·(1−x_p)·x_q:
    the linear parts go to the terminal edges and the last one is an edge p→q, cut exactly when
    p keeps and q switches.
    """
    keep_cost = unaries[labels, rows, cols].astype(np.float64)
    switch_cost = unaries[alpha].astype(np.float64)
    pair_right = np.zeros_like(right)
    pair_down = np.zeros_like(down)
    for weight, pair, p, q in ((right, pair_right, (slice(None), slice(None, -1)), (slice(None), slice(1, None))),
                               (down, pair_down, (slice(None, -1), slice(None)), (slice(1, None), slice(None)))):
        w = weight[p]
        lp, lq = labels[p], labels[q]
        a = w * (lp != lq)        # both keep
        b = w * (lp != alpha)     # p keeps, q switches
        c = w * (lq != alpha)     # p switches, q keeps; both switch costs D = 0
        switch_cost[p] += c - a
        switch_cost[q] -= c
        pair[p] = b + c - a       # ≥ 0: the Potts distance is a metric
    floor = np.minimum(keep_cost, switch_cost)
    graph = maxflow.Graph[float]()
    nodes = graph.add_grid_nodes(labels.shape)
    graph.add_grid_edges(nodes, weights=pair_right, structure=RIGHT, symmetric=False)
    graph.add_grid_edges(nodes, weights=pair_down, structure=DOWN, symmetric=False)
    # a node on the sink side (switches) pays its source capacity, on the source side its sink one
    graph.add_grid_tedges(nodes, switch_cost - floor, keep_cost - floor)
    graph.maxflow()
    switch = graph.get_grid_segments(nodes) & (labels != alpha)
    if not switch.any():
        return False
    labels[switch] = alpha
    return True
