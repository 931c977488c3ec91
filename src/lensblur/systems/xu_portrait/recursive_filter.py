"""Spatially-variant recursive filter that learns a DoF renderer (Xu et al. 2018, section 3.4, Fig. 5).

A guidance CNN (small encoder-decoder with concatenation skips) looks at the image, the refined
disparity and segmentation and the signed circle of confusion c = K·(D − d_f), and predicts the
weights of first-order recursive filters run in four directions (left→right, right→left,
top→bottom, bottom→top), h[i] = (1 − w[i])·x[i] + w[i]·h[i−1]. Two groups of these four passes
are cascaded (the paper's two RNN groups).

Differences from the paper, and why:
- The weights are tied to the lens: w = exp(−1 / (ρ·(0.5 + |c|))) with ρ > 0 predicted per pixel
  and channel, so a filter trained on small images blurs proportionally more where |c| is larger
  (at any resolution and blur strength), and ρ ≈ 0 keeps a pixel sharp.
- The filter runs on premultiplied streams with a coverage channel, [s·I, s] and [(1 − s)·I,
  1 − s] for the segmentation s, each normalised by its filtered coverage afterwards. This is the
  segmentation-guided kernel of Eq. 6 in recursive form: the person does not bleed into the
  blurred background.
- The output is the input (skip connection) plus learned blends: out = I + a·(fg − I) + b·(bg − I)
  of the filtered person (fg) and background (bg) streams, with per-pixel a, b from a
  full-resolution 1×1 head over the segmentation, |c| and the
  upsampled guidance features; the residual map of Fig. 5 is ``out − I``.
- The guidance CNN runs at half resolution (``guide_stride``) and its outputs are upsampled
  bilinearly, which keeps 1024×1536 affordable on a CPU.

The filter acts on linear RGB (the image after highlight recovery, so out-of-focus lights spread
their energy as the renderer it learns does); the guidance sees the sRGB-encoded image.
Everything is differentiable. Input tensors are N×C×H×W float32.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

DIRECTIONS = ("left_right", "right_left", "top_bottom", "bottom_top")
COC_SCALE = 16.0  # |c| in pixels is fed to the networks divided by this


def linear_recursion(x: torch.Tensor, w: torch.Tensor, direction: str) -> torch.Tensor:
    """First-order recursive filter along one direction: h[i] = (1 − w[i])·x[i] + w[i]·h[i−1].

    x, w: N×C×H×W tensors (w in [0, 1) per pixel and channel); direction: one of DIRECTIONS.
    h starts from x at the first pixel of each row/column. Differentiable in x and w (the
    gradient is itself a recursion run backwards, see :class:`_Recursion`).
    """
    return scan_in_direction(_Recursion.apply, direction, x, w)


def scan_in_direction(scan, direction: str, *tensors: torch.Tensor) -> torch.Tensor:
    """Run ``scan`` (a function of tensors whose first axis is the scanned one, returning one
    such tensor) over N×C×H×W ``tensors`` along ``direction`` (one of DIRECTIONS); returns
    N×C×H×W. Shared by the recursive filter and the spatial propagation network."""
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}")
    horizontal = direction in ("left_right", "right_left")
    reverse = direction in ("right_left", "bottom_top")
    # Put the scanned axis first so every step reads one contiguous slice.
    order = (3, 0, 1, 2) if horizontal else (2, 0, 1, 3)
    moved = [tensor.permute(*order) for tensor in tensors]
    if reverse:
        moved = [tensor.flip(0) for tensor in moved]
    result = scan(*[tensor.contiguous() for tensor in moved])
    if reverse:
        result = result.flip(0)
    inverse = (1, 2, 3, 0) if horizontal else (1, 2, 0, 3)
    return result.permute(*inverse)


class _Recursion(torch.autograd.Function):
    """h[i] = (1 − w[i])·x[i] + w[i]·h[i−1] along the first axis, h[0] = x[0], with the exact
    gradient: λ[i] = g[i] + w[i+1]·λ[i+1], ∂x[i] = (1 − w[i])·λ[i] (λ[0] at i = 0),
    ∂w[i] = (h[i−1] − x[i])·λ[i] (0 at i = 0). Both loops run in numba on the CPU."""

    @staticmethod
    def forward(ctx, x, w):
        x32, w32 = x.detach().float().cpu().numpy(), w.detach().float().cpu().numpy()
        h = _scan_forward(x32.reshape(x32.shape[0], -1), w32.reshape(w32.shape[0], -1)).reshape(x32.shape)
        out = torch.from_numpy(h).to(x.dtype)
        ctx.save_for_backward(x, w, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, w, h = ctx.saved_tensors
        w32 = w.detach().float().numpy()
        g32 = grad.detach().float().contiguous().numpy()
        lam = torch.from_numpy(_scan_backward(g32.reshape(g32.shape[0], -1),
                                              w32.reshape(w32.shape[0], -1)).reshape(g32.shape))
        grad_x = lam * (1 - w)
        grad_x[0] = lam[0]
        grad_w = torch.zeros_like(w)
        grad_w[1:] = (h[:-1] - x[1:]) * lam[1:]
        return grad_x, grad_w


@numba.njit(cache=True, fastmath=True)
def _scan_forward(x, w):
    h = np.empty_like(x)
    steps, width = x.shape
    for j in range(width):
        h[0, j] = x[0, j]
    for i in range(1, steps):
        for j in range(width):
            h[i, j] = x[i, j] + w[i, j] * (h[i - 1, j] - x[i, j])
    return h


@numba.njit(cache=True, fastmath=True)
def _scan_backward(g, w):
    lam = np.empty_like(g)
    steps, width = g.shape
    for j in range(width):
        lam[steps - 1, j] = g[steps - 1, j]
    for i in range(steps - 2, -1, -1):
        for j in range(width):
            lam[i, j] = g[i, j] + w[i + 1, j] * lam[i + 1, j]
    return lam


def conv_block(cin: int, cout: int) -> nn.Sequential:
    """Two 3×3 convolutions with ReLU."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True))


class GuidanceNet(nn.Module):
    """Encoder-decoder CNN with concatenation skip connections (the guidance network of sections
    3.1 and 3.4, far smaller than the paper's VGG-16 so it trains on a CPU).

    in_channels → ``out_channels`` maps at the input resolution plus ``features`` channels of
    its last decoder layer (for full-resolution heads). Input sides must be divisible by 4.
    """

    def __init__(self, in_channels: int, out_channels: int, width: int = 16):
        super().__init__()
        self.enc1 = conv_block(in_channels, width)
        self.enc2 = conv_block(width, width * 2)
        self.enc3 = conv_block(width * 2, width * 4)
        self.dec2 = conv_block(width * 4 + width * 2, width * 2)
        self.dec1 = conv_block(width * 2 + width, width)
        self.out = nn.Conv2d(width, out_channels, 3, padding=1)
        self.features = width

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        e3 = self.enc3(F.max_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([F.interpolate(e3, size=e2.shape[-2:], mode="bilinear", align_corners=False), e2], 1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, size=e1.shape[-2:], mode="bilinear", align_corners=False), e1], 1))
        return self.out(d1), d1


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Replicate-pad the bottom/right of N×C×H×W so both sides are multiples of ``multiple``."""
    height, width = x.shape[-2:]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else x


class RecursiveFilterNet(nn.Module):
    """Guidance CNN + two cascaded groups of four-direction recursive filters + skip connection.

    width: guidance CNN base width. groups: cascaded groups of the four directions (paper: 2).
    guide_stride: the guidance CNN's resolution divisor (1, 2 or 4).
    """

    STREAMS = 2  # foreground [s·I, s] and background [(1 − s)·I, 1 − s]

    def __init__(self, width: int = 16, groups: int = 2, guide_stride: int = 2):
        super().__init__()
        self.config = {"width": width, "groups": groups, "guide_stride": guide_stride}
        self.groups = groups
        self.guide_stride = guide_stride
        self.n_weights = groups * len(DIRECTIONS) * self.STREAMS
        self.guidance = GuidanceNet(6, self.n_weights, width)
        # Start near a uniform blur: a radius-r disc has variance r²/2 (per axis); 2·groups
        # passes of w = exp(−1/ℓ) add ≈ 2ℓ² each, so ℓ ≈ r / (2·sqrt(groups)).
        rho = 1.0 / (2.0 * math.sqrt(groups))
        nn.init.zeros_(self.guidance.out.weight)
        nn.init.constant_(self.guidance.out.bias, math.log(math.expm1(rho)))
        self.head = nn.Sequential(nn.Conv2d(width + 2, 16, 1), nn.ReLU(inplace=True), nn.Conv2d(16, 2, 1))
        nn.init.zeros_(self.head[2].weight)
        nn.init.zeros_(self.head[2].bias)

    def forward(self, image: torch.Tensor, encoded: torch.Tensor, disparity: torch.Tensor,
                segmentation: torch.Tensor, coc: torch.Tensor, guide_stride: int | None = None) -> torch.Tensor:
        """Filtered linear RGB, N×3×H×W.

        image: linear RGB to filter (N×3×H×W, ≥ 0); encoded: its sRGB encoding for the guidance;
        disparity, segmentation: N×1×H×W in [0, 1]; coc: signed circle of confusion in pixels.
        guide_stride: overrides the guidance CNN's resolution divisor (large images at inference).
        """
        height, width = image.shape[-2:]
        weights, features = self.guide(encoded, disparity, segmentation, coc, guide_stride or self.guide_stride)
        radius = coc.abs()
        rho = F.softplus(weights)
        w = torch.exp(-1.0 / (rho * (0.5 + radius) + 1e-4))
        w = w.view(w.shape[0], self.groups, len(DIRECTIONS), self.STREAMS, height, width)

        streams = []
        for index, share in enumerate((segmentation, 1 - segmentation)):
            x = torch.cat([image * share, share], 1)
            for group in range(self.groups):
                for d, direction in enumerate(DIRECTIONS):
                    weight = w[:, group, d, index:index + 1].expand(-1, 4, -1, -1)
                    x = linear_recursion(x, weight, direction)
            streams.append(x[:, :3] / x[:, 3:].clamp_min(1e-3))
        blend = self.head(torch.cat([features, segmentation, radius / COC_SCALE], 1))
        # At initialisation: the person stays sharp (a ≈ 0), the rest takes the background stream.
        a = torch.sigmoid(blend[:, :1] - 4.0)
        b = torch.sigmoid(blend[:, 1:] + 8.0 * (0.5 - segmentation))
        return image + a * (streams[0] - image) + b * (streams[1] - image)

    def guide(self, encoded, disparity, segmentation, coc, stride: int):
        """Recursion weights (n_weights maps) and guidance features, both at full resolution."""
        height, width = encoded.shape[-2:]
        x = torch.cat([encoded, disparity, segmentation, coc / COC_SCALE], 1)
        if stride > 1:
            x = F.avg_pool2d(pad_to_multiple(x, stride), stride)
        x = pad_to_multiple(x, 4)
        small_h, small_w = -(-height // stride), -(-width // stride)
        weights, features = self.guidance(x)
        weights, features = weights[..., :small_h, :small_w], features[..., :small_h, :small_w]
        if stride > 1:
            size = (small_h * stride, small_w * stride)
            weights = F.interpolate(weights, size=size, mode="bilinear", align_corners=False)
            features = F.interpolate(features, size=size, mode="bilinear", align_corners=False)
        return weights[..., :height, :width], features[..., :height, :width]
