"""Spatial propagation network refining a coarse segmentation and disparity (Xu et al. 2018,
sections 3.1 and 3.2, after Liu et al. 2017).

A guidance CNN (encoder-decoder with concatenation skips, :class:`GuidanceNet`) reads the sRGB
image with the coarse maps and predicts, for each task and each of four directions, the
three-way affinities p₋₁, p₀, p₊₁ of a linear propagation

    h[i, k] = (1 − Σ_m p_m[i, k])·x[i, k] + Σ_m p_m[i, k]·h[i − 1, k + m],   m ∈ {−1, 0, +1},

scanned left→right, right→left, top→bottom and bottom→top (Σ|p| ≤ 1 keeps it stable). The four
results are merged (``merge``) with per-pixel softmax weights that the guidance CNN also predicts
(``"softmax"``, the default and the shipped model's: a learned mix keeps the disparity unbiased)
or, as Liu et al. and the paper do, by their per-pixel maximum (``"max"``). The segmentation is propagated as
logits v and read as m = 1/(1 + exp(−v)); the disparity directly.

Losses: :func:`segmentation_loss` (Eq. 1), :func:`ranking_loss` (Eq. 2),
:func:`body_consistency_loss` (Eq. 3). Tensors are N×C×H×W float32.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from lensblur.systems.xu_portrait.recursive_filter import DIRECTIONS, GuidanceNet, pad_to_multiple, scan_in_direction

LOGIT_SCALE = 6.0  # a coarse mask value M becomes the logit LOGIT_SCALE·(2M − 1)
TASKS = ("segmentation", "disparity")


def three_way_propagation(x: torch.Tensor, affinity: torch.Tensor, direction: str) -> torch.Tensor:
    """Linear propagation with three-way connections along one direction.

    x: N×C×H×W values; affinity: N×3×H×W raw affinities (previous-row/column neighbours at
    offsets −1, 0, +1 across the scan), normalised here so Σ|p| ≤ 1 per pixel. Returns N×C×H×W.
    The first row/column keeps x; neighbours beyond the border repeat the edge.
    """
    p = torch.tanh(affinity)
    p = p / p.abs().sum(1, keepdim=True).clamp_min(1.0)
    return scan_in_direction(_Propagation.apply, direction, x, p)


class _Propagation(torch.autograd.Function):
    """The three-way scan along the first axis of x (S×N×C×K) with affinities p (S×N×3×K), and
    its exact gradient (a scan run backwards); both loops in numba on the CPU."""

    @staticmethod
    def forward(ctx, x, p):
        h = _propagate(x.detach().float().numpy(), p.detach().float().numpy())
        out = torch.from_numpy(h)
        ctx.save_for_backward(x, p, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, p, h = ctx.saved_tensors
        grad_x, grad_p = _propagate_backward(x.detach().float().numpy(), p.detach().float().numpy(),
                                             h.numpy(), grad.detach().float().contiguous().numpy())
        return torch.from_numpy(grad_x), torch.from_numpy(grad_p)


@numba.njit(cache=True, fastmath=True)
def _propagate(x, p):
    steps, n, c, k = x.shape
    h = np.empty_like(x)
    h[0] = x[0]
    for i in range(1, steps):
        for b in range(n):
            for ch in range(c):
                for j in range(k):
                    before = h[i - 1, b, ch, max(j - 1, 0)]
                    after = h[i - 1, b, ch, min(j + 1, k - 1)]
                    p0, p1, p2 = p[i, b, 0, j], p[i, b, 1, j], p[i, b, 2, j]
                    h[i, b, ch, j] = ((1 - p0 - p1 - p2) * x[i, b, ch, j] + p0 * before
                                      + p1 * h[i - 1, b, ch, j] + p2 * after)
    return h


@numba.njit(cache=True, fastmath=True)
def _propagate_backward(x, p, h, grad):
    steps, n, c, k = x.shape
    grad_x = np.zeros_like(x)
    grad_p = np.zeros_like(p)
    lam = grad[steps - 1].copy()  # ∂L/∂h[i] including what flows back from later steps
    for i in range(steps - 1, 0, -1):
        carry = grad[i - 1].copy()
        for b in range(n):
            for ch in range(c):
                for j in range(k):
                    g = lam[b, ch, j]
                    jb, ja = max(j - 1, 0), min(j + 1, k - 1)
                    p0, p1, p2 = p[i, b, 0, j], p[i, b, 1, j], p[i, b, 2, j]
                    xv = x[i, b, ch, j]
                    grad_x[i, b, ch, j] = g * (1 - p0 - p1 - p2)
                    grad_p[i, b, 0, j] += g * (h[i - 1, b, ch, jb] - xv)
                    grad_p[i, b, 1, j] += g * (h[i - 1, b, ch, j] - xv)
                    grad_p[i, b, 2, j] += g * (h[i - 1, b, ch, ja] - xv)
                    carry[b, ch, jb] += g * p0
                    carry[b, ch, j] += g * p1
                    carry[b, ch, ja] += g * p2
        lam = carry
    grad_x[0] = lam
    return grad_x, grad_p


class SpatialPropagationNet(nn.Module):
    """Refines (segmentation, disparity) under learned affinities.

    width: guidance CNN base width. guide_stride: its resolution divisor (affinities are
    upsampled bilinearly to full resolution). merge: how the four directions' results combine,
    "softmax" (learned per-pixel mix) or "max" (the paper's, after Liu et al. 2017).
    """

    PER_TASK = len(DIRECTIONS) * 3 + len(DIRECTIONS)
    MERGES = ("softmax", "max")

    def __init__(self, width: int = 12, guide_stride: int = 2, merge: str = "softmax"):
        super().__init__()
        if merge not in self.MERGES:
            raise ValueError(f"SPN merge must be one of {', '.join(self.MERGES)}, got {merge!r}")
        self.config = {"width": width, "guide_stride": guide_stride, "merge": merge}
        self.merge = merge
        self.guide_stride = guide_stride
        self.guidance = GuidanceNet(5, self.PER_TASK * len(TASKS), width)

    def forward(self, encoded: torch.Tensor, segmentation: torch.Tensor,
                disparity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Refined (segmentation logits v, disparity z), each N×1×H×W.

        encoded: sRGB image N×3×H×W in [0, 1]; segmentation: coarse mask in [0, 1];
        disparity: coarse disparity in [0, 1] (1 = nearest).
        """
        height, width = encoded.shape[-2:]
        x = torch.cat([encoded, segmentation, disparity], 1)
        if self.guide_stride > 1:
            x = F.avg_pool2d(pad_to_multiple(x, self.guide_stride), self.guide_stride)
        small_h, small_w = -(-height // self.guide_stride), -(-width // self.guide_stride)
        guide, _ = self.guidance(pad_to_multiple(x, 4))
        guide = guide[..., :small_h, :small_w]
        if self.guide_stride > 1:
            guide = F.interpolate(guide, scale_factor=self.guide_stride, mode="bilinear", align_corners=False)
        guide = guide[..., :height, :width]

        logits = LOGIT_SCALE * (2 * segmentation - 1)
        refined = []
        for task, values in enumerate((logits, disparity)):
            block = guide[:, task * self.PER_TASK:(task + 1) * self.PER_TASK]
            scans = [three_way_propagation(values, block[:, 3 * d:3 * d + 3], direction)
                     for d, direction in enumerate(DIRECTIONS)]
            if self.merge == "max":
                refined.append(torch.stack(scans).amax(0))
                continue
            mix = torch.softmax(block[:, 3 * len(DIRECTIONS):], 1)
            refined.append(sum(mix[:, d:d + 1] * scan for d, scan in enumerate(scans)))
        return refined[0], refined[1]


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Pixel-wise cross-entropy of Eq. 1, averaged over pixels instead of summed.

    logits: v (N×1×H×W); target: ground-truth mask in [0, 1] (a soft alpha weighs each pixel's
    foreground and background terms by its coverage).
    """
    return F.binary_cross_entropy_with_logits(logits, target)


def ranking_loss(depth_i: torch.Tensor, depth_j: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """Ranking loss of Eq. 2 on point pairs, averaged.

    depth_i, depth_j: predicted depths z at the two points (larger = farther); gamma: +1 where i
    is farther than j, −1 where it is nearer. The loss is log(1 + exp(−γ·(z_i − z_j))): it tends
    to 0 for correctly ordered pairs with a wide margin and grows linearly when they are reversed.
    """
    return F.softplus(-gamma * (depth_i - depth_j)).mean()


def body_consistency_loss(depth_i: torch.Tensor, depth_j: torch.Tensor, margin: float) -> torch.Tensor:
    """Hinge of Eq. 3 on pairs of points on the body: max(0, (z_i − z_j)² − δ), averaged.

    margin: δ, the squared depth difference allowed between two body points.
    """
    return F.relu((depth_i - depth_j) ** 2 - margin).mean()


def sample_pairs(generator: torch.Generator, mask: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices (into H·W) of ``count`` random point pairs per image inside ``mask``.

    mask: N×H×W bool; images with an empty mask get pairs anywhere. Returns two N×count tensors.
    """
    n, height, width = mask.shape
    weights = mask.reshape(n, -1).float()
    weights = torch.where(weights.sum(1, keepdim=True) > 0, weights, torch.ones_like(weights))
    first = torch.multinomial(weights, count, replacement=True, generator=generator)
    second = torch.multinomial(weights, count, replacement=True, generator=generator)
    return first, second
