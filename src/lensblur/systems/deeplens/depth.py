"""DeepLens depth prediction module (Wang et al. 2018, section 3.1), in plain torch.

Encoder: ResNet-50 from conv1 to res4f (bottleneck stages of 3, 4 and 6 blocks), the res4 stage
atrous (dilation 2, no stride) so the features stay at 1/8 of the input. A four-level pyramid
pooling layer (bins 1, 2, 4, 8), then a decoder of three ×2 bilinear upsampling stages with a
skip connection at each level (res2 at 1/4, conv1 at 1/2, the image at full size), and two heads of three convolutions: normalised disparity (1 = nearest) and foreground segmentation,
both through a sigmoid. ``backbone="small"`` keeps the same structure with one block per stage
and a quarter of the widths, so it trains on a CPU.

No ImageNet weights are loaded (none are available offline here): the encoder starts random.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

BACKBONES = {
    # stem width, blocks per stage (res2, res3, res4), bottleneck widths
    "resnet50": {"stem": 64, "blocks": (3, 4, 6), "widths": (64, 128, 256)},
    "small": {"stem": 16, "blocks": (1, 1, 1), "widths": (16, 32, 64)},
}
EXPANSION = 4


def _conv_bn(in_channels: int, out_channels: int, size: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, size, stride, padding=dilation * (size // 2),
                                   dilation=dilation, bias=False), nn.BatchNorm2d(out_channels))


class Bottleneck(nn.Module):
    """ResNet bottleneck: 1×1 reduce, 3×3 (strided or dilated), 1×1 expand ×4, plus the
    identity (or a 1×1 projection when the shape changes), then ReLU."""

    def __init__(self, in_channels: int, width: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        out_channels = width * EXPANSION
        self.reduce = _conv_bn(in_channels, width, 1)
        self.spatial = _conv_bn(width, width, 3, stride, dilation)
        self.expand = _conv_bn(width, out_channels, 1)
        self.projection = (_conv_bn(in_channels, out_channels, 1, stride)
                           if stride != 1 or in_channels != out_channels else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.projection is None else self.projection(x)
        y = F.relu(self.reduce(x))
        y = F.relu(self.spatial(y))
        return F.relu(self.expand(y) + shortcut)


def _stage(in_channels: int, width: int, blocks: int, stride: int, dilation: int) -> nn.Sequential:
    layers = [Bottleneck(in_channels, width, stride, 1 if stride > 1 else dilation)]
    layers += [Bottleneck(width * EXPANSION, width, 1, dilation) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class ResNetEncoder(nn.Module):
    """conv1 (7×7, /2) + max pool (/4) → res2 (/4) → res3 (/8) → res4, atrous (/8).
    Returns the features of conv1 (/2), res2 (/4) and res4 (/8)."""

    def __init__(self, backbone: str = "resnet50"):
        super().__init__()
        spec = BACKBONES[backbone]
        stem, blocks, widths = spec["stem"], spec["blocks"], spec["widths"]
        self.conv1 = nn.Sequential(_conv_bn(3, stem, 7, 2), nn.ReLU())
        self.res2 = _stage(stem, widths[0], blocks[0], 1, 1)
        self.res3 = _stage(widths[0] * EXPANSION, widths[1], blocks[1], 2, 1)
        self.res4 = _stage(widths[1] * EXPANSION, widths[2], blocks[2], 1, 2)
        self.channels = (stem, widths[0] * EXPANSION, widths[2] * EXPANSION)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        half = self.conv1(image)
        quarter = self.res2(F.max_pool2d(half, 3, 2, 1))
        eighth = self.res4(self.res3(quarter))
        return half, quarter, eighth


class PyramidPooling(nn.Module):
    """Average pooling into 1×1, 2×2, 4×4 and 8×8 bins, a 1×1 conv each, upsampled and
    concatenated with the input, fused by a 3×3 conv."""

    def __init__(self, in_channels: int, out_channels: int, bins=(1, 2, 4, 8)):
        super().__init__()
        branch = max(in_channels // len(bins), 8)
        self.bins = bins
        self.branches = nn.ModuleList([nn.Sequential(nn.Conv2d(in_channels, branch, 1), nn.ReLU()) for _ in bins])
        self.fuse = nn.Sequential(nn.Conv2d(in_channels + branch * len(bins), out_channels, 3, padding=1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pooled = [F.interpolate(branch(F.adaptive_avg_pool2d(x, b)), size=size, mode="bilinear", align_corners=False)
                  for b, branch in zip(self.bins, self.branches)]
        return self.fuse(torch.cat([x] + pooled, 1))


class DecoderStage(nn.Module):
    """×2 bilinear upsampling, concatenation with a skip, two 3×3 convs."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(in_channels + skip_channels, out_channels, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(out_channels, out_channels, 3, padding=1), nn.ReLU())

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.body(torch.cat([x, skip], 1))


def _head(in_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, in_channels, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(in_channels, in_channels, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(in_channels, 1, 3, padding=1))


class DepthPredictor(nn.Module):
    """Image N×3×H×W (sRGB in [0, 1]) → (disparity, foreground) N×1×H×W, both in [0, 1].

    Decoder: 1/8 → 1/4 (skip res2) → 1/2 (skip conv1) → 1/1 (skip: the image itself).
    """

    def __init__(self, backbone: str = "resnet50"):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {backbone!r}")
        self.backbone = backbone
        self.encoder = ResNetEncoder(backbone)
        stem, quarter, eighth = self.encoder.channels
        width = BACKBONES[backbone]["widths"][0] * 2
        self.pyramid = PyramidPooling(eighth, width * 2)
        self.up_quarter = DecoderStage(width * 2, quarter, width)
        self.up_half = DecoderStage(width, stem, width // 2)
        self.up_full = DecoderStage(width // 2, 3, width // 2)
        self.depth_head = _head(width // 2)
        self.segmentation_head = _head(width // 2)
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        self.register_buffer("mean", mean, persistent=False)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        centred = image - self.mean
        half, quarter, eighth = self.encoder(centred)
        x = self.pyramid(eighth)
        x = self.up_quarter(x, quarter)
        x = self.up_half(x, half)
        x = self.up_full(x, centred)
        return torch.sigmoid(self.depth_head(x)), torch.sigmoid(self.segmentation_head(x))


def depth_loss(disparity: torch.Tensor, segmentation: torch.Tensor, disparity_gt: torch.Tensor,
               segmentation_gt: torch.Tensor, has_disparity: torch.Tensor, has_mask: torch.Tensor,
               gamma: float = 1.0) -> torch.Tensor:
    """Eq. 1: mean |D − D^g| + γ·mean |S − S^g|, each over the examples that have that ground
    truth (has_disparity, has_mask: N booleans; the paper mixes depth and segmentation sets)."""
    total = disparity.new_zeros(())
    if bool(has_disparity.any()):
        total = total + (disparity - disparity_gt).abs()[has_disparity].mean()
    if bool(has_mask.any()):
        total = total + gamma * (segmentation - segmentation_gt).abs()[has_mask].mean()
    return total
