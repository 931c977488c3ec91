"""BGGAN (Qian et al., "BGGAN: Bokeh-Glass Generative Adversarial Network for Rendering Realistic
Bokeh", ECCV 2020 workshops; AIM 2020 bokeh challenge): Glass-Net, the multi-receptive-field
PatchGAN critic, the VGG19 relu5_4 feature stack and the phone-friendly instance norm.

All tensors are N×C×H×W float32. Images enter and leave Glass-Net in [-1, 1] (``2·sRGB − 1``;
the output layer is a tanh). The network sees the image only (no depth, no focus), as in the
paper; H and W must be multiples of :data:`SIZE_MULTIPLE` (three stride-2 convolutions).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

STAGE_CHANNELS = ((16, 128), (32, 256))
"""(base, maximum) channels of Glass-Net's stage one and stage two (section 2.1)."""

RESIDUAL_BLOCKS = 9
"""Residual blocks between encoder and decoder of each stage (section 2.1)."""

DOWNSAMPLINGS = 3
"""Stride-2 convolutions of each encoder (and stride-2 transposed convolutions of each decoder)."""

SIZE_MULTIPLE = 2 ** DOWNSAMPLINGS

NORMS = ("instance", "none", "batch")
"""Normalisation in the residual blocks: the paper's instance norm (computed with average pooling,
section 2.3) and the two ablations of section 3.5.1."""

PATCH_DEPTHS = (2, 3, 4)
"""Strided layers of the combined PatchGAN critics: receptive fields 34, 70 (pix2pix's 70×70)
and 142 pixels (section 2.2, "smaller and larger receptive fields")."""

EPSILON = 1e-5


class PooledInstanceNorm(nn.Module):
    """Instance normalisation (Eq. 4–6) with the mean and variance computed by average pooling
    over the whole feature map, so the exported graph holds AveragePool, Sub, Mul, Add, Sqrt and
    Div only: no InstanceNormalization and no axis reduction, which phone GPU delegates lack
    (section 2.3). No learned scale or shift (as ``nn.InstanceNorm2d(affine=False)``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        window = (int(x.shape[-2]), int(x.shape[-1]))
        mean = F.avg_pool2d(x, window)                       # Eq. 5: N×C×1×1
        centred = x - mean
        variance = F.avg_pool2d(centred * centred, window)   # Eq. 6
        return centred / torch.sqrt(variance + EPSILON)      # Eq. 4


def make_norm(kind: str, channels: int) -> nn.Module:
    """The normalisation layer of a residual block: ``instance`` (pooled), ``none`` or ``batch``."""
    if kind == "instance":
        return PooledInstanceNorm()
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {kind!r}")


class ResidualBlock(nn.Module):
    """conv / ReLU / norm / conv / ReLU with an identity connection around it (section 2.1)."""

    def __init__(self, channels: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
                                  make_norm(norm, channels),
                                  nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class GlassStage(nn.Module):
    """One stage of Glass-Net: a stride-1 input convolution to ``base`` channels, three stride-2
    convolutions doubling up to ``maximum`` channels, nine residual blocks, three stride-2
    transposed convolutions back, each concatenated with its mirrored encoder feature map, and a
    stride-1 output convolution with tanh. All convolutions are ReLU-activated (section 2.1)."""

    def __init__(self, base: int, maximum: int, norm: str = "instance", in_channels: int = 3,
                 blocks: int = RESIDUAL_BLOCKS):
        super().__init__()
        if maximum != base * 2 ** DOWNSAMPLINGS:
            raise ValueError(f"maximum channels must be base·{2 ** DOWNSAMPLINGS}, got {base}/{maximum}")
        widths = [base * 2 ** i for i in range(DOWNSAMPLINGS + 1)]   # e.g. 16, 32, 64, 128
        self.widths = widths
        self.input = nn.Sequential(nn.Conv2d(in_channels, base, 7, padding=3), nn.ReLU())
        self.down = nn.ModuleList(nn.Sequential(nn.Conv2d(widths[i], widths[i + 1], 3, stride=2, padding=1), nn.ReLU())
                                  for i in range(DOWNSAMPLINGS))
        self.blocks = nn.Sequential(*(ResidualBlock(maximum, norm) for _ in range(blocks)))
        ups = []
        for i in range(DOWNSAMPLINGS, 0, -1):
            incoming = widths[i] if i == DOWNSAMPLINGS else 2 * widths[i]   # concat skip doubles it
            ups.append(nn.Sequential(nn.ConvTranspose2d(incoming, widths[i - 1], 4, stride=2, padding=1), nn.ReLU()))
        self.up = nn.ModuleList(ups)
        self.output = nn.Conv2d(2 * base, 3, 7, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.input(x)]
        for layer in self.down:
            skips.append(layer(skips[-1]))
        y = self.blocks(skips.pop())
        for layer in self.up:
            y = torch.cat([layer(y), skips.pop()], dim=1)
        return torch.tanh(self.output(y))


class GlassNet(nn.Module):
    """Glass-Net (section 2.1, Fig. 1). Stage one predicts the residual R = I − O and forms the
    rough result I − R; stage two refines it into the bokeh image. ``forward`` returns the final
    image, :meth:`stages` both the rough and the final one (all in [-1, 1]).

    width: multiplier of the paper's channel counts (1 = 16/128 and 32/256; the shipped CPU
    checkpoint is narrower, docs/bggan.md). norm: one of :data:`NORMS`."""

    def __init__(self, width: float = 1.0, norm: str = "instance", blocks: int = RESIDUAL_BLOCKS):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
        self.config = {"width": float(width), "norm": norm, "blocks": int(blocks)}
        channels = [(max(1, round(base * width)), max(1, round(base * width)) * 2 ** DOWNSAMPLINGS)
                    for base, _ in STAGE_CHANNELS]
        self.stage1 = GlassStage(*channels[0], norm=norm, blocks=blocks)
        self.stage2 = GlassStage(*channels[1], norm=norm, blocks=blocks)

    def stages(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(rough I − R, refined output), both N×3×H×W in [-1, 1] for an input in [-1, 1]."""
        residual = self.stage1(image)
        rough = image - residual
        return rough, self.stage2(rough)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.stages(image)[1]


def build(config: dict | None = None) -> GlassNet:
    """Glass-Net from a checkpoint's plain config ``{"width", "norm", "blocks"}`` (missing keys:
    the paper's values)."""
    config = dict(config or {})
    return GlassNet(float(config.get("width", 1.0)), str(config.get("norm", "instance")),
                    int(config.get("blocks", RESIDUAL_BLOCKS)))


class PatchCritic(nn.Module):
    """A PatchGAN critic (Isola et al.) with ``depth`` stride-2 4×4 convolutions, one stride-1
    4×4 convolution and a 1-channel stride-1 output: each output value scores one patch (70×70
    for depth 3). No normalisation and no sigmoid, as WGAN-GP's critic needs."""

    def __init__(self, depth: int, channels: int = 64):
        super().__init__()
        layers, width = [], 3
        for i in range(depth):
            out = channels * min(2 ** i, 8)
            layers += [nn.Conv2d(width, out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            width = out
        out = channels * min(2 ** depth, 8)
        layers += [nn.Conv2d(width, out, 4, stride=1, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(out, 1, 4, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def receptive_field(depth: int) -> int:
    """Receptive field in pixels of a :class:`PatchCritic` of this depth (70 for depth 3)."""
    field = 4                               # output conv, stride 1
    field += 3                              # stride-1 conv before it
    for _ in range(depth):
        field = 2 * field + 2               # each stride-2 4×4 conv
    return field


class MultiReceptiveFieldCritic(nn.Module):
    """Several PatchGAN critics of different depths on the same image (section 2.2, Fig. 2);
    the score is the mean over critics of each one's mean patch score."""

    def __init__(self, depths=PATCH_DEPTHS, channels: int = 64):
        super().__init__()
        self.critics = nn.ModuleList(PatchCritic(d, channels) for d in depths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """N scores (one per image)."""
        return torch.stack([critic(x).mean(dim=(1, 2, 3)) for critic in self.critics]).mean(dim=0)


# ------------------------------------------------------------------------------------------ VGG19

VGG19_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512)
"""torchvision's ``vgg19().features`` up to relu5_4 (index 35; conv5_4 is index 34, the paper's
"34-th layer"): numbers are 3×3 convolutions (each followed by a ReLU), "M" 2×2 max pools."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG19Features(nn.Module):
    """torchvision's VGG19 feature stack up to relu5_4, with torchvision's parameter names
    (``features.N.weight``), so a torchvision ImageNet state dict loads into it directly.
    width: channel multiplier (1 = VGG19; the tests build a narrow one of the same layout)."""

    def __init__(self, width: float = 1.0):
        super().__init__()
        layers, channels = [], 3
        for item in VGG19_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                out = max(1, round(item * width))
                layers += [nn.Conv2d(channels, out, 3, padding=1), nn.ReLU()]
                channels = out
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """relu5_4 features of N×3×H×W images in [-1, 1] (ImageNet-normalised inside)."""
        return self.features(((image + 1) / 2 - self.mean) / self.std)


def load_vgg19(state: dict, width: float = 1.0) -> VGG19Features:
    """VGG19Features holding a torchvision-layout state dict (``features.N.weight/bias``; the
    classifier and later layers are ignored). ValueError naming the first mismatch."""
    model = VGG19Features(width)
    wanted = model.state_dict()
    missing = [key for key in wanted if key not in state]
    if missing:
        raise ValueError(f"not a torchvision VGG19 state dict: no {missing[0]}")
    for key, value in wanted.items():
        if tuple(state[key].shape) != tuple(value.shape):
            raise ValueError(f"{key} is {tuple(state[key].shape)}, VGG19 needs {tuple(value.shape)}")
    model.load_state_dict({key: state[key].float() for key in wanted})
    return model.requires_grad_(False).eval()


def random_vgg19(seed: int = 0) -> VGG19Features:
    """A VGG19 feature stack with random He-initialised convolutions (fixed seed): the stand-in
    for L_VGG when no ImageNet weights are given to the ablation (docs/bggan.md)."""
    generator = torch.Generator().manual_seed(seed)
    model = VGG19Features()
    with torch.no_grad():
        for layer in model.features:
            if isinstance(layer, nn.Conv2d):
                fan_in = layer.in_channels * 9
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
                layer.bias.zero_()
    return model


def count_parameters(module: nn.Module) -> int:
    """Number of parameters of a module."""
    return sum(p.numel() for p in module.parameters())
