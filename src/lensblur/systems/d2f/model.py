"""D2F's networks and its weighted layered soft-disk renderer (torch).

Pipeline (notes §1), for an sRGB image I in [0, 1] of H×W:

1. I_s = bilinear resize of I to the working size (about half, sides multiples of 32; §1 step 1).
2. D = DefocusNet(I_s): unsigned defocus, 0 = sharp, i/N selects blur layer i (§2.2).
3. W = RadianceMLP(I_s), replaced by 3·I_c^5 per channel where any channel ≥ 0.99 (§4).
4. B_s = L_D(W·I_s) / (L_D(W) + 1e-10), L_D the layered soft-disk renderer (§3, §4.4).
5. B = bilinear upsample of B_s to H×W; D_up likewise (§1 "Upsampling", §5).
6. M0 = [D_up < t] with the adaptive threshold t (§5.1); S = RefineCNN(1 − D_up, Y(I)) (§5.2).
7. Out = clamp(M·I + (1 − M)·B, 0, 1) with M = clamp(S, 0, 1) (§5.3).

Kernel radii: the authors' list (radii 1…34 pixels at the working size of a 1024×1536 EBB!
photo, i.e. a 768-pixel-wide working image) scaled by working width / 768, so a level is the
same fraction of the frame at every size; at 1024×1536 they are exactly the authors' kernels.

Tensors are N×C×H×W float32.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

AUTHOR_RADII = (0, 1, 2, 3, 5, 7, 9, 11, 13, 16, 19, 22, 26, 30, 34)
"""Radius r = K // 2 of layer i (0 = identity), kernel sizes 3, 5, 7, 11, …, 69 (notes §3.2)."""

REFERENCE_WIDTH = 768
"""Working width (pixels) at which :data:`AUTHOR_RADII` apply: half of EBB!'s 1536."""

WINDOW_SHARPNESS = 100.0
"""a in the layer window m_i = ½ + ½·tanh(a·(Δ − |D − ℓ_i|)) (notes §3.3)."""

SATURATION = 0.99
"""A working-size pixel with any channel ≥ this gets the fixed highlight weight (notes §4.2)."""

HIGHLIGHT_GAIN = 3.0
HIGHLIGHT_EXPONENT = 5.0
"""Fixed highlight weight W_c = 3·I_c^5 (notes §4.2)."""

THRESHOLD_TAU = 1.0 / 8.0
"""τ of the adaptive initial-mask threshold (notes §5.1)."""

EPSILON = 1e-10
"""The renderer's normalisation epsilon (notes §3.4, §4.4)."""

FFT_FROM = 31
"""Kernel size from which ``disk_blur(method="auto")`` convolves through the FFT."""

SIZE_MULTIPLE = 32
"""Working sides are multiples of this (the defocus encoder's stride)."""


# ---------------------------------------------------------------------------------- geometry

def working_size(height: int, width: int) -> tuple[int, int]:
    """Working (height, width) for an H×W input: each side halved and snapped to the nearest
    multiple of 32 (at least 32), as the authors snap to 64 for their stride-32 encoder
    (notes §1 step 1). 1024×1536 → 512×768."""
    def snap(side: int) -> int:
        return max(SIZE_MULTIPLE, int(round(side / 2 / SIZE_MULTIPLE)) * SIZE_MULTIPLE)

    return snap(height), snap(width)


def layer_radii(work_width: int) -> list[float]:
    """Radius in working pixels of each layer (index 0 = identity, 0): the authors' list
    scaled by work_width / 768."""
    return [r * work_width / REFERENCE_WIDTH for r in AUTHOR_RADII]


def layer_levels(layers: int = len(AUTHOR_RADII)) -> list[float]:
    """Defocus level ℓ_i = i·Δ of each layer, Δ = 1/N with N = layers − 1 (notes §3.2)."""
    return [i / (layers - 1) for i in range(layers)]


# ---------------------------------------------------------------------------------- renderer

def soft_disk_kernel(radius: float) -> torch.Tensor:
    """Normalised soft-disk kernel (notes §3.1): k(x, y) = ½ + ½·tanh(¼·(r² − x² − y²) + ½) on
    the integer grid |x|, |y| ≤ ⌈r⌉ (at least 1), divided by its sum. radius r in pixels (> 0);
    for an integer r this is exactly the authors' K = 2r + 1 kernel. Returns float32 K×K."""
    half = max(1, math.ceil(radius - 1e-6))
    taps = torch.arange(-half, half + 1, dtype=torch.float64)
    squared = taps[:, None] ** 2 + taps[None, :] ** 2
    kernel = 0.5 + 0.5 * torch.tanh(0.25 * (radius ** 2 - squared) + 0.5)
    return (kernel / kernel.sum()).float()


def layer_masks(defocus: torch.Tensor, layers: int = len(AUTHOR_RADII),
                sharpness: float = WINDOW_SHARPNESS) -> list[torch.Tensor]:
    """Soft window of each layer (notes §3.3): m_i = ½ + ½·tanh(a·(Δ − |D − ℓ_i|)), a = 100,
    Δ = 1/(layers − 1). defocus: N×1×h×w. A value between two levels is ≈ 1 in both.
    sharpness: a; only training lowers it for a while (see training.py)."""
    delta = 1.0 / (layers - 1)
    return [0.5 + 0.5 * torch.tanh(sharpness * (delta - (defocus - level).abs()))
            for level in layer_levels(layers)]


def disk_blur(x: torch.Tensor, kernel: torch.Tensor, method: str = "direct") -> torch.Tensor:
    """Per-channel convolution of N×C×h×w ``x`` with a K×K kernel, reflection padding of K // 2
    (notes §3.1). method: "direct" (depthwise conv2d; what training and ONNX use), "fft" (the
    same result through torch.fft) or "auto" (fft for kernels of 31 pixels and more, where it
    is faster on a CPU)."""
    half = kernel.shape[-1] // 2
    padded = F.pad(x, (half, half, half, half), mode="reflect")
    if method == "direct" or (method == "auto" and kernel.shape[-1] < FFT_FROM):
        weight = kernel.to(x.dtype)[None, None].expand(x.shape[1], 1, -1, -1)
        return F.conv2d(padded, weight, groups=x.shape[1])
    size = padded.shape[-2:]
    spectrum = torch.fft.rfft2(padded) * torch.fft.rfft2(kernel.to(x.dtype), s=size)
    full = torch.fft.irfft2(spectrum, s=size)
    # circular convolution of the padded image: the valid part starts K − 1 pixels in
    return full[..., 2 * half:2 * half + x.shape[-2], 2 * half:2 * half + x.shape[-1]]


def layered_render(x: torch.Tensor, defocus: torch.Tensor, radii: list[float], method: str = "direct",
                   sharpness: float = WINDOW_SHARPNESS) -> torch.Tensor:
    """The layered renderer L_D(X) (notes §3.4): from the largest blur to the smallest,
    c_i = K_i * (m_i·X), α_i = K_i * m_i, C ← C·(1 − α_i) + c_i, A ← A·(1 − α_i) + α_i (smaller
    defocus composited in front); returns C / (A + 1e-10). Layer 0 is the identity.

    x: N×C×h×w; defocus: N×1×h×w on the level scale [0, 1]; radii: per layer, working pixels;
    sharpness: a of :func:`layer_masks`.
    """
    masks = layer_masks(defocus, len(radii), sharpness)
    colour = torch.zeros_like(x)
    alpha = torch.zeros_like(defocus)
    for index in range(len(radii) - 1, -1, -1):
        stacked = torch.cat([masks[index] * x, masks[index]], dim=1)
        if index > 0:
            stacked = disk_blur(stacked, soft_disk_kernel(radii[index]), method)
        layer_colour, layer_alpha = stacked[:, :-1], stacked[:, -1:]
        colour = colour * (1 - layer_alpha) + layer_colour
        alpha = alpha * (1 - layer_alpha) + layer_alpha
    return colour / (alpha + EPSILON)


def radiance_weights(image: torch.Tensor, learned: torch.Tensor) -> torch.Tensor:
    """Radiance weight W (notes §4.1–4.2): the learned one-channel weight in (0, 1), replaced per
    channel by 3·I_c^5 at pixels where any channel is ≥ 0.99. image: N×3×h×w in [0, 1];
    learned: N×1×h×w. Returns N×3×h×w."""
    saturated = image.amax(dim=1, keepdim=True) >= SATURATION
    boost = HIGHLIGHT_GAIN * image.clamp(min=0) ** HIGHLIGHT_EXPONENT
    return torch.where(saturated, boost, learned.expand_as(image))


def weighted_render(image: torch.Tensor, weights: torch.Tensor, defocus: torch.Tensor, radii: list[float],
                    method: str = "direct", sharpness: float = WINDOW_SHARPNESS) -> torch.Tensor:
    """B = L_D(W·I) / (L_D(W) + 1e-10) (notes §4.4): a normalised convolution in which each
    source pixel counts in proportion to its weight. Both renders share the masks and alphas, so
    they run as one pass over 6 channels. image, weights: N×3×h×w; defocus N×1×h×w."""
    both = layered_render(torch.cat([weights * image, weights], dim=1), defocus, radii, method, sharpness)
    return both[:, :3] / (both[:, 3:] + EPSILON)


# ---------------------------------------------------------------------------------- fusion

def adaptive_threshold(defocus_up: torch.Tensor, tau: float = THRESHOLD_TAU) -> torch.Tensor:
    """Per-image threshold t (notes §5.1): with β = min D and α = max D over the image,
    t = β + τ·(α − β) when β ≥ τ, else t = τ. defocus_up: N×1×H×W; returns N×1×1×1."""
    low = defocus_up.amin(dim=(1, 2, 3), keepdim=True)
    high = defocus_up.amax(dim=(1, 2, 3), keepdim=True)
    return torch.where(low >= tau, low + tau * (high - low), torch.full_like(low, tau))


def initial_mask(defocus_up: torch.Tensor, tau: float = THRESHOLD_TAU) -> torch.Tensor:
    """Binary initial fusion mask M0 = [D_up < t] (1 = in focus; notes §5.1), float N×1×H×W."""
    return (defocus_up < adaptive_threshold(defocus_up, tau)).to(defocus_up.dtype)


def luminance(image: torch.Tensor) -> torch.Tensor:
    """Y = 0.299 R + 0.587 G + 0.114 B of N×3×H×W (notes §5.2); N×1×H×W."""
    return 0.299 * image[:, :1] + 0.587 * image[:, 1:2] + 0.114 * image[:, 2:3]


def fuse(image: torch.Tensor, bokeh: torch.Tensor, soft_mask: torch.Tensor) -> torch.Tensor:
    """Out = clamp(M·I + (1 − M)·B, 0, 1), M = clamp(S, 0, 1) (notes §5.3); M = 1 keeps the
    sharp pixel. image, bokeh: N×3×H×W; soft_mask S: N×1×H×W."""
    mask = soft_mask.clamp(0, 1)
    return (mask * image + (1 - mask) * bokeh).clamp(0, 1)


# ---------------------------------------------------------------------------------- networks

class ResidualConvUnit(nn.Module):
    """x + conv3×3(relu(conv3×3(relu(x)))) with biases (notes §2.1, MiDaS/RefineNet style)."""

    def __init__(self, features: int):
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x):
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class FusionBlock(nn.Module):
    """Decoder step (notes §2.1): path (+ RCU(skip)), a second RCU, bilinear ×2 upsampling."""

    def __init__(self, features: int):
        super().__init__()
        self.skip_unit = ResidualConvUnit(features)
        self.unit = ResidualConvUnit(features)

    def forward(self, path, skip=None):
        if skip is not None:
            path = path + self.skip_unit(skip)
        return F.interpolate(self.unit(path), scale_factor=2, mode="bilinear", align_corners=True)


def _encoder_stage(channels_in: int, channels_out: int, downsample: int) -> nn.Sequential:
    layers = []
    for _ in range(int(math.log2(downsample))):
        layers += [nn.Conv2d(channels_in, channels_out, 3, stride=2, padding=1), nn.BatchNorm2d(channels_out),
                   nn.ReLU(inplace=True)]
        channels_in = channels_out
    layers += [nn.Conv2d(channels_out, channels_out, 3, padding=1), nn.BatchNorm2d(channels_out), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class DefocusNet(nn.Module):
    """Defocus hallucination network (notes §2.1): a four-stage encoder at strides 4, 8, 16, 32,
    a RefineNet/MiDaS decoder (3×3 no-bias convs to ``features`` channels, fusion blocks from
    stride 32 up to 2) and the authors' head (conv3×3 F→F/2, bilinear ×2, conv3×3 → 32, ReLU,
    conv1×1 → 1, no output activation). The authors' encoder is an ImageNet ResNeXt-50 with
    F = 256; here a small convolutional encoder trained from scratch (``width`` scales it).
    Input N×3×h×w sRGB in [0, 1], h and w multiples of 32; output N×1×h×w, unbounded."""

    def __init__(self, width: int = 16, features: int = 32):
        super().__init__()
        channels = (width, 2 * width, 4 * width, 8 * width)
        self.stage1 = _encoder_stage(3, channels[0], 4)
        self.stage2 = _encoder_stage(channels[0], channels[1], 2)
        self.stage3 = _encoder_stage(channels[1], channels[2], 2)
        self.stage4 = _encoder_stage(channels[2], channels[3], 2)
        self.project = nn.ModuleList(nn.Conv2d(c, features, 3, padding=1, bias=False) for c in channels)
        self.fusion = nn.ModuleList(FusionBlock(features) for _ in channels)
        self.head = nn.Sequential(
            nn.Conv2d(features, features // 2, 3, padding=1),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
            nn.Conv2d(features // 2, 32, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(32, 1, 1))

    def forward(self, image):
        e1 = self.stage1(image)
        e2 = self.stage2(e1)
        e3 = self.stage3(e2)
        e4 = self.stage4(e3)
        p1, p2, p3, p4 = (project(e) for project, e in zip(self.project, (e1, e2, e3, e4)))
        path = self.fusion[3](p4)
        path = self.fusion[2](path, p3)
        path = self.fusion[1](path, p2)
        path = self.fusion[0](path, p1)
        return self.head(path)


class RadianceMLP(nn.Module):
    """Per-pixel radiance weight (notes §4.1): 1×1 convs 3→16, ReLU, 16→16, ReLU, 16→1,
    sigmoid; sees only the pixel's own colour. N×3×h×w → N×1×h×w in (0, 1)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 16, 1), nn.ReLU(inplace=True), nn.Conv2d(16, 16, 1),
                                 nn.ReLU(inplace=True), nn.Conv2d(16, 1, 1), nn.Sigmoid())

    def forward(self, image):
        return self.net(image)


class RefineCNN(nn.Module):
    """Fusion-mask refinement (notes §5.2): conv3×3 2→64, ReLU, 64→16, ReLU, 16→16, ReLU, 16→1
    (no activation). Input N×2×H×W = (1 − D_up, luminance); output the soft mask S, N×1×H×W."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(2, 64, 3, padding=1), nn.ReLU(inplace=True),
                                 nn.Conv2d(64, 16, 3, padding=1), nn.ReLU(inplace=True),
                                 nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(inplace=True),
                                 nn.Conv2d(16, 1, 3, padding=1))

    def forward(self, inputs):
        return self.net(inputs)


def resize(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear resize, align_corners=False, no anti-aliasing (notes §1)."""
    if tuple(x.shape[-2:]) == (height, width):
        return x
    return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)


class D2F(nn.Module):
    """The whole system: stage 1 (DefocusNet + RadianceMLP + weighted layered rendering at the
    working size) and stage 2 (RefineCNN + blend at full size).

    config: ``width`` and ``features`` of the DefocusNet. ``render_method`` ("direct", "fft" or
    "auto", see :func:`disk_blur`) and ``window_sharpness`` (a of :func:`layer_masks`, 100 except
    early in training) are settings, not parameters.
    """

    def __init__(self, width: int = 16, features: int = 32):
        super().__init__()
        self.defocus_net = DefocusNet(width, features)
        self.radiance = RadianceMLP()
        self.refine = RefineCNN()
        self.render_method = "direct"
        self.window_sharpness = WINDOW_SHARPNESS

    def defocus(self, small: torch.Tensor) -> torch.Tensor:
        """D on the level scale [0, 1], N×1×h×w: a sigmoid of the network's output. The release
        leaves D unbounded and an authors' variant clamps it to [0, 1] (notes §2.2); a clamp
        stops all learning at pixels pushed past 1 (seen in a trial run), so we squash instead."""
        return torch.sigmoid(self.defocus_net(small))

    def stage_one(self, small: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B_s, D) at the working size of ``small`` (N×3×h×w sRGB in [0, 1])."""
        defocus = self.defocus(small)
        weights = radiance_weights(small, self.radiance(small))
        bokeh = weighted_render(small, weights, defocus, layer_radii(int(small.shape[-1])), self.render_method,
                                self.window_sharpness)
        return bokeh, defocus

    def stage_two(self, image: torch.Tensor, bokeh_small: torch.Tensor, defocus: torch.Tensor):
        """(Out, S, M0) at the size of ``image`` from the stage-1 outputs (notes §5)."""
        height, width = int(image.shape[-2]), int(image.shape[-1])
        bokeh = resize(bokeh_small, height, width)
        defocus_up = resize(defocus, height, width)
        soft = self.refine(torch.cat([1 - defocus_up, luminance(image)], dim=1))
        return fuse(image, bokeh, soft), soft, initial_mask(defocus_up)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(Out N×3×H×W, D N×1×h×w) of an N×3×H×W sRGB image in [0, 1]."""
        small = resize(image, *working_size(int(image.shape[-2]), int(image.shape[-1])))
        bokeh_small, defocus = self.stage_one(small)
        out, _, _ = self.stage_two(image, bokeh_small, defocus)
        return out, defocus


# ---------------------------------------------------------------------------------- defocus scale

def defocus_radius(defocus, work_width: int):
    """Blur radius in working pixels that a defocus value renders with in a flat region: the
    radius of layer ⌊D·N⌋ (notes §3.4). Works on tensors and numpy arrays alike."""
    radii = torch.tensor(layer_radii(work_width), dtype=torch.float32)
    values = torch.as_tensor(defocus, dtype=torch.float32)
    index = (values.clamp(0, 1) * (len(radii) - 1)).floor().long().clamp(max=len(radii) - 1)
    result = radii[index]
    return result if isinstance(defocus, torch.Tensor) else result.numpy()


def radius_to_defocus(radius, work_width: int):
    """The defocus value whose layer radius is closest to ``radius`` (working pixels), placed
    midway between its level and the next (i + ½)/N; layer N maps to 1. Tensor or array in,
    same kind out. Used only by the direct-supervision ablation and the figures."""
    radii = torch.tensor(layer_radii(work_width), dtype=torch.float32)
    values = torch.as_tensor(radius, dtype=torch.float32)
    index = (values[..., None] - radii).abs().argmin(dim=-1).float()
    layers = len(radii) - 1
    result = torch.where(index >= layers, torch.ones_like(index), (index + 0.5) / layers)
    return result if isinstance(radius, torch.Tensor) else result.numpy()


def build(config: dict | None = None) -> D2F:
    """A D2F model from a checkpoint's ``config["model"]`` (keys ``width``, ``features``)."""
    config = dict(config or {})
    return D2F(int(config.get("width", 16)), int(config.get("features", 32)))
