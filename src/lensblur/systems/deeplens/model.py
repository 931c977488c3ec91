"""DeepLens rendering network (Wang et al. 2018): lens blur in a learned feature space, then
recurrent ×2 guided upsampling to any output size.

All tensors are N×C×H×W float32 on the CPU; images are sRGB in [0, 1] as in the paper. The
focus and aperture reach the network only through the *normalised signed blur*
``s = clip(c / r_max, -1, 1)``, where ``c = K·(D − d_f)`` is the signed circle of confusion in
pixels of the resolution the module runs at and ``r_max`` the largest radius it was trained for
(the paper's scaling of the signed depth ``D − d_f`` by ``r*/r_max``, section 3.2.2).

Pieces:
  :class:`FeatureExtractor`  four 5×5 convolutions with ReLU, run on each colour channel alone,
                             their outputs concatenated into a ``c``-channel feature map (F_i).
  :class:`KernelPredictor`   image + normalised signed blur → ``c`` per-pixel 1×1 kernels (K).
  :func:`apply_kernels`      Eq. 2: L_i(x, y) = Σ_j K(x, y, j)·F_i(x, y, j).
  :class:`GuidedUpsampler`   Eq. 3: H = M_A ⊙ A + M_L ⊙ bilinear(L), one ×2 step.
  :class:`DeepLensRenderer`  the three together, with :meth:`~DeepLensRenderer.upsample_to`
                             applying the upsampler recurrently up to an arbitrary size.
  :func:`normalised_loss`    Eq. 5 with α = 1.5.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

DEFAULT_CONFIG = {
    "features": 32,          # c, the learned feature space (the paper's choice)
    "kernel_width": 32,      # channels of the kernel prediction network
    "upsampler_width": 16,   # channels of the guided upsampling network
    "r_max": 6.0,            # largest |c| in pixels at the lens-blur resolution seen in training
}


def _conv(in_channels: int, out_channels: int, size: int = 3, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, size, padding=dilation * (size // 2), dilation=dilation,
                     padding_mode="replicate")


class FeatureExtractor(nn.Module):
    """Four conv layers with ReLU on one colour channel; the concatenation of their outputs is
    the ``features``-channel map F_i of that channel (the same weights for R, G and B).

    Dilations 1, 1, 2, 2 give a 25-pixel receptive field, so a feature can hold a blur of up
    to radius 12 at the lens-blur resolution (twice r_max).
    """

    def __init__(self, features: int = 32):
        super().__init__()
        if features % 4:
            raise ValueError("the feature count must be a multiple of 4")
        width = features // 4
        self.layers = nn.ModuleList([_conv(1, width, 5, 1), _conv(width, width, 5, 1),
                                     _conv(width, width, 5, 2), _conv(width, width, 5, 2)])

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """image N×3×h×w → features N×3×c×h×w."""
        batch, channels, height, width = image.shape
        x = image.reshape(batch * channels, 1, height, width)
        outputs = []
        for layer in self.layers:
            x = F.relu(layer(x))
            outputs.append(x)
        return torch.cat(outputs, 1).reshape(batch, channels, -1, height, width)


class KernelPredictor(nn.Module):
    """Image (3) + normalised signed blur (1) → ``features`` per-pixel kernel weights."""

    def __init__(self, features: int = 32, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(_conv(4, width, 3, 1), nn.ReLU(), _conv(width, width, 3, 2), nn.ReLU(),
                                  _conv(width, width, 3, 4), nn.ReLU(), _conv(width, width, 3, 1), nn.ReLU(),
                                  nn.Conv2d(width, features, 1))

    def forward(self, image: torch.Tensor, signed_blur: torch.Tensor) -> torch.Tensor:
        """image N×3×h×w, signed_blur N×1×h×w in [-1, 1] → kernels N×c×h×w."""
        return self.body(torch.cat([image, signed_blur], 1))


def apply_kernels(features: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Eq. 2: features N×3×c×h×w weighted by kernels N×c×h×w, summed over c → N×3×h×w."""
    return (features * kernels.unsqueeze(1)).sum(2)


class GuidedUpsampler(nn.Module):
    """One guided ×2 (or any factor) step, Eq. 3: H = M_A ⊙ A + M_L ⊙ L̂.

    Low-resolution branch: the shallow-DoF image L, the all-in-focus image and the signed blur
    at the low resolution; high-resolution branch: the all-in-focus guide A and the signed blur
    at the high resolution; the fusion (two 3×3 convolutions) sees both. The guide's share is
    focus-independent and can be cached (:meth:`guide_features`). The two weight
    maps come from a softmax, so M_A + M_L = 1 at every pixel.
    """

    def __init__(self, width: int = 16):
        super().__init__()
        self.low = nn.Sequential(_conv(7, width), nn.ReLU(), _conv(width, width), nn.ReLU())
        self.guide = _conv(3, width)
        self.fuse = nn.Sequential(_conv(2 * width + 1, width), nn.ReLU(), _conv(width, 2))

    def guide_features(self, guide: torch.Tensor) -> torch.Tensor:
        """The focus-independent part of the fusion's first convolution at the high resolution:
        guide N×3×H×W → N×width×H×W. The fusion input is a concatenation and a convolution is
        linear, so its guide share (with the bias) can be computed once and cached."""
        first = self.fuse[0]
        width = self.guide.out_channels
        features = F.relu(self.guide(guide))
        low_width = first.in_channels - width - 1
        return self._partial(features, first.weight[:, low_width:low_width + width], first.bias)

    @staticmethod
    def _partial(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), weight, bias)

    def forward(self, shallow_low: torch.Tensor, image_low: torch.Tensor, blur_low: torch.Tensor,
                guide: torch.Tensor, blur_high: torch.Tensor, guide_features: torch.Tensor | None = None
                ) -> torch.Tensor:
        """shallow_low, image_low: N×3×h×w; blur_low: N×1×h×w; guide: N×3×H×W; blur_high:
        N×1×H×W (signed blur in [-1, 1] at each resolution) → shallow-DoF image N×3×H×W.
        guide_features: :meth:`guide_features` of ``guide``, when cached."""
        size = guide.shape[-2:]
        low = self.low(torch.cat([shallow_low, image_low, blur_low], 1))
        low = F.interpolate(low, size=size, mode="bilinear", align_corners=False)
        upsampled = F.interpolate(shallow_low, size=size, mode="bilinear", align_corners=False)
        if guide_features is None:
            guide_features = self.guide_features(guide)
        first = self.fuse[0]
        low_width = low.shape[1]
        hidden = (guide_features + self._partial(low, first.weight[:, :low_width], None)
                  + self._partial(blur_high, first.weight[:, -1:], None))
        weights = torch.softmax(self.fuse[2](F.relu(hidden)), 1)
        return weights[:, :1] * guide + weights[:, 1:] * upsampled


def halving_sizes(height: int, width: int, levels: int) -> list[tuple[int, int]]:
    """Sizes of a pyramid from (height, width) down ``levels`` ×2 steps (rounding up), full size
    first; the lens blur runs at the last one."""
    sizes = [(height, width)]
    for _ in range(levels):
        h, w = sizes[-1]
        sizes.append((max(1, math.ceil(h / 2)), max(1, math.ceil(w / 2))))
    return sizes


def downsample(tensor: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Area-average resampling of N×C×H×W to ``size`` (no-op when already that size)."""
    if tuple(tensor.shape[-2:]) == tuple(size):
        return tensor
    return F.interpolate(tensor, size=size, mode="area")


class DeepLensRenderer(nn.Module):
    """Lens blur module + guided upsampling module. ``config`` keys: see DEFAULT_CONFIG."""

    def __init__(self, config: dict | None = None):
        super().__init__()
        self.config = {**DEFAULT_CONFIG, **(config or {})}
        features = int(self.config["features"])
        self.features = FeatureExtractor(features)
        self.kernels = KernelPredictor(features, int(self.config["kernel_width"]))
        self.upsampler = GuidedUpsampler(int(self.config["upsampler_width"]))

    @property
    def r_max(self) -> float:
        return float(self.config["r_max"])

    def signed_blur(self, coc: torch.Tensor, scale: float) -> torch.Tensor:
        """Normalised signed blur in [-1, 1] at a resolution ``scale`` times the full one, from
        the full-resolution signed CoC ``coc`` (pixels, already resampled to that resolution)."""
        return torch.clamp(coc * scale / self.r_max, -1.0, 1.0)

    def lens_blur(self, image_low: torch.Tensor, blur_low: torch.Tensor,
                  features: torch.Tensor | None = None) -> torch.Tensor:
        """Eq. 2 at the low resolution: image N×3×h×w, normalised signed blur N×1×h×w →
        shallow-DoF image L N×3×h×w. ``features`` may be passed in from a cache."""
        if features is None:
            features = self.features(image_low)
        return apply_kernels(features, self.kernels(image_low, blur_low))

    def upsample_to(self, shallow: torch.Tensor, image_pyramid: list[torch.Tensor],
                    blur_pyramid: list[torch.Tensor], guide_features: list | None = None) -> torch.Tensor:
        """Apply the guided upsampler recurrently: ``shallow`` is at the size of the last level
        of ``image_pyramid`` (full size first, N×3×·×· each) and is brought level by level up to
        the first. ``blur_pyramid``: normalised signed blur per level, N×1×·×·, computed for
        the upsampler's scale (see :meth:`upsampler_blur`)."""
        for level in range(len(image_pyramid) - 2, -1, -1):
            cached = guide_features[level] if guide_features is not None else None
            shallow = self.upsampler(shallow, image_pyramid[level + 1], blur_pyramid[level + 1],
                                     image_pyramid[level], blur_pyramid[level], cached)
        return shallow

    def guided_upsample(self, shallow: torch.Tensor, image: torch.Tensor, coc: torch.Tensor) -> torch.Tensor:
        """Bring a shallow-DoF image N×3×h×w of any size up to the size of the all-in-focus guide
        ``image`` N×3×H×W by recurrent ×2 guided steps (the last step takes whatever factor is
        left). coc: N×1×H×W signed CoC in pixels at full size."""
        height, width = image.shape[-2:]
        sizes = [(height, width)]
        while sizes[-1][0] > 2 * shallow.shape[-2] or sizes[-1][1] > 2 * shallow.shape[-1]:
            sizes.append((math.ceil(sizes[-1][0] / 2), math.ceil(sizes[-1][1] / 2)))
        sizes.append(tuple(shallow.shape[-2:]))
        images = [downsample(image, size) for size in sizes]
        blurs = [self.upsampler_blur(downsample(coc, size), size[1] / width) for size in sizes]
        return self.upsample_to(shallow, images, blurs)

    def upsampler_blur(self, coc: torch.Tensor, scale: float) -> torch.Tensor:
        """The signed blur fed to the upsampler: c at that resolution over 2·r_max (the largest
        radius at the resolution the upsampler was trained to produce), clipped to [-1, 1]."""
        return torch.clamp(coc * scale / (2 * self.r_max), -1.0, 1.0)

    def forward(self, image: torch.Tensor, coc: torch.Tensor, levels: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """The training path. image: N×3×H×W sRGB in [0, 1]; coc: N×1×H×W signed CoC in pixels
        of the full resolution. Returns (L at the lens-blur resolution, H at full size)."""
        height, width = image.shape[-2:]
        sizes = halving_sizes(height, width, levels)
        images = [downsample(image, size) for size in sizes]
        cocs = [downsample(coc, size) for size in sizes]
        scales = [size[1] / width for size in sizes]
        shallow = self.lens_blur(images[-1], self.signed_blur(cocs[-1], scales[-1]))
        blurs = [self.upsampler_blur(c, s) for c, s in zip(cocs, scales)]
        return shallow, self.upsample_to(shallow, images, blurs)


def normalised_loss(prediction: torch.Tensor, target: torch.Tensor, alpha: float = 1.5,
                    epsilon: float = 1e-8) -> torch.Tensor:
    """Eq. 5: Σ|X − Y|^(α+1) / Σ|X − Y|^α, an L1 loss weighted by the local error^α so that the
    few boundary pixels with large errors dominate."""
    error = (prediction - target).abs()
    weighted = error.pow(alpha)
    return (weighted * error).sum() / (weighted.sum() + epsilon)


def build_renderer(config: dict, state: dict | None = None) -> DeepLensRenderer:
    """A renderer from a checkpoint's config and (optional) state dict, in eval mode."""
    model = DeepLensRenderer(config)
    if state is not None:
        model.load_state_dict({key: value.float() for key, value in state.items()})
    return model.eval()
