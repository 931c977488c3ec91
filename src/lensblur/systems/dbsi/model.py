"""DBSI: depth-aware blending of smoothed images (Dutta et al., "Depth-aware blending of smoothed
images for bokeh effect generation", J. Vis. Commun. Image Represent. 2021).

The bokeh image is a per-pixel blend of the input and Gaussian-blurred copies of it (Eq. 1–2):

    out = W0·I + Σ_i Wi·B(I, k_i),     Σ_i Wi = 1 at every pixel,

with the weights predicted by the MegaDepth hourglass whose last layer is replaced by a 3×3 conv
with 1 + n outputs and a softmax over them at every pixel. The hourglass is the project's
:class:`lensblur.models.megadepth.MegaDepthHourglass` (shared, with its ``width`` option for a
narrow network that trains on a CPU).

Kernel sizes (``kernels``, e.g. 25, 45, 75) are k×k OpenCV Gaussian kernels, σ = 0.3·((k − 1)/2 − 1)
+ 0.8, measured in pixels of an image ``kernel_width`` pixels wide (1024: the width the paper
trains its final phases at). At any other working width W every σ is multiplied by
W / kernel_width, so the look is the same fraction of the frame at every resolution, which is
also what the paper's resize-to-training-size inference amounts to.

Variants: ``depth_input=False`` is the paper's network (sRGB only). ``depth_input=True`` also
takes two channels derived from the disparity D and the lens: D itself and the signed circle of
confusion c = K·(D − d_f), expressed in pixels at ``kernel_width`` and divided by
:data:`COC_UNIT`, so that one network serves every focus and blur strength.

Tensors: images N×3×H×W sRGB in [0, 1]; H, W multiples of 16 inside the network.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lensblur.errors import InputError
from lensblur.models import load_tensors
from lensblur.models.megadepth import SIZE_MULTIPLE, MegaDepthHourglass, check_state_dict, remap_state_dict
from lensblur.systems.dbsi.renderer import gaussian_sigma

PAPER_KERNELS = (25, 45, 75)
"""The paper's kernel sizes (section 3)."""

KERNEL_WIDTH = 1024
"""Image width (pixels) at which kernel sizes are measured by default (the paper's 768×1024)."""

COC_UNIT = 32.0
"""The signed-CoC input channel is c (pixels at ``kernel_width``) divided by this."""

DEFAULT_WIDTH = 0.125
"""Hourglass width multiplier of the project's trained DBSI (see docs/dbsi.md)."""

CONFIGS = {"paper": 1.0, "small": DEFAULT_WIDTH}
"""Named network configurations → hourglass width. ``paper``: the MegaDepth hourglass as
published (section 3.1; 64 feature channels, 128-channel stem, the released checkpoint's
shapes); ``small``: 1/8 of every channel count (about 87 k parameters), which trains on a CPU."""


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of N×C×H×W ``images`` with standard deviation ``sigma`` pixels
    (kernel radius ⌈3σ⌉, edge pixels replicated); σ < 0.05 returns the input."""
    if sigma < 0.05:
        return images
    radius = max(1, int(math.ceil(3 * sigma)))
    taps = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = images.shape[1]
    horizontal = kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    vertical = kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)
    out = F.pad(images, (radius, radius, 0, 0), mode="replicate")
    out = F.conv2d(out, horizontal, groups=channels)
    out = F.pad(out, (0, 0, radius, radius), mode="replicate")
    return F.conv2d(out, vertical, groups=channels)


def blend(images: torch.Tensor, weights: torch.Tensor, sigmas: list[float]) -> torch.Tensor:
    """Eq. 1: W0·I + Σ Wi·B(I, σi). images N×3×H×W; weights N×(1+n)×H×W; sigmas: n values in
    pixels of these images."""
    out = weights[:, :1] * images
    for index, sigma in enumerate(sigmas, start=1):
        out = out + weights[:, index:index + 1] * gaussian_blur(images, sigma)
    return out


def blend_array(image: np.ndarray, weights: np.ndarray, sigmas: list[float]) -> np.ndarray:
    """Eq. 1 on numpy arrays with OpenCV's blur (the same kernel as :func:`gaussian_blur`, several
    times faster on large images). image H×W×3 float32; weights H×W×(1+n); sigmas: n values in
    pixels; returns H×W×3 float32."""
    out = weights[..., :1] * image
    for index, sigma in enumerate(sigmas, start=1):
        blurred = image
        if sigma >= 0.05:
            radius = max(1, int(math.ceil(3 * sigma)))
            blurred = cv2.GaussianBlur(image, (2 * radius + 1, 2 * radius + 1), sigma, sigmaY=sigma,
                                       borderType=cv2.BORDER_REPLICATE)
        out += weights[..., index:index + 1] * blurred
    return out.astype(np.float32)


def depth_channels(disparity: torch.Tensor, focus_disparity: torch.Tensor, blur: torch.Tensor,
                   width_px: int, kernel_width: int = KERNEL_WIDTH) -> torch.Tensor:
    """The depth-conditioned variant's extra input: N×2×H×W (D, c / COC_UNIT).

    disparity: N×1×H×W in [0, 1]; focus_disparity, blur: N values (d_f in [0, 1]; K in pixels of
    an image ``width_px`` wide); c = K·(D − d_f) rescaled to pixels at ``kernel_width``.
    """
    scale = (blur * kernel_width / width_px / COC_UNIT).view(-1, 1, 1, 1)
    signed = (disparity - focus_disparity.view(-1, 1, 1, 1)) * scale
    return torch.cat([disparity, signed], dim=1)


class DBSI(nn.Module):
    """The DBSI network: hourglass → 3×3 conv (1 + n channels) → softmax → blend (Eq. 1–2).

    kernels: Gaussian kernel sizes (odd, pixels at ``kernel_width``); width: hourglass width
    multiplier; depth_input: also take disparity and signed CoC (see :func:`depth_channels`).
    """

    def __init__(self, kernels=PAPER_KERNELS, width: float = DEFAULT_WIDTH, depth_input: bool = False,
                 kernel_width: int = KERNEL_WIDTH) -> None:
        super().__init__()
        kernels = [int(k) for k in kernels]
        if not kernels or any(k < 1 or k % 2 == 0 for k in kernels):
            raise InputError(f"DBSI kernel sizes must be odd positive integers, got {kernels}")
        self.kernels = kernels
        self.depth_input = bool(depth_input)
        self.kernel_width = int(kernel_width)
        self.backbone = MegaDepthHourglass(width, in_channels=5 if depth_input else 3)
        # "modifying the last layer": the log-depth conv becomes the blend-weight conv
        self.backbone[4] = nn.Conv2d(self.backbone.feature_channels, 1 + len(kernels), 3, padding=1)

    def config(self) -> dict:
        """Plain values that rebuild this model (stored in checkpoints)."""
        return {"kernels": list(self.kernels), "width": self.backbone.width, "depth_input": self.depth_input,
                "kernel_width": self.kernel_width}

    def sigmas(self, width_px: int) -> list[float]:
        """Gaussian σ in pixels of an image ``width_px`` wide, one per kernel."""
        return [gaussian_sigma(k) * width_px / self.kernel_width for k in self.kernels]

    def weights(self, images: torch.Tensor, conditioning: torch.Tensor | None = None) -> torch.Tensor:
        """Blend weights N×(1+n)×H×W, each pixel's summing to 1 (softmax over the 1+n maps).

        images: N×3×H×W sRGB in [0, 1]; conditioning: N×2×H×W from :func:`depth_channels`,
        required exactly when the model is depth-conditioned.
        """
        if self.depth_input != (conditioning is not None):
            raise InputError("this DBSI model " + ("needs" if self.depth_input else "takes no")
                             + " disparity input")
        x = images if conditioning is None else torch.cat([images, conditioning], dim=1)
        return torch.softmax(self.backbone(x), dim=1)

    def forward(self, images: torch.Tensor, conditioning: torch.Tensor | None = None) -> torch.Tensor:
        """The bokeh image N×3×H×W (sRGB, same size) of N×3×H×W sRGB input in [0, 1]."""
        return blend(images, self.weights(images, conditioning), self.sigmas(images.shape[-1]))


def build(config: dict) -> DBSI:
    """A DBSI model from a checkpoint's config dict (missing keys take the defaults)."""
    return DBSI(kernels=config.get("kernels", PAPER_KERNELS), width=float(config.get("width", DEFAULT_WIDTH)),
                depth_input=bool(config.get("depth_input", False)),
                kernel_width=int(config.get("kernel_width", KERNEL_WIDTH)))


def init_from_megadepth(model: DBSI, path) -> DBSI:
    """Start ``model`` from MegaDepth's released weights (``best_generalization_net_G.pth``, keys
    ``module.0.weight`` … ``module.4.bias``; prefixes as :func:`remap_state_dict` strips them):
    section 3.2's "pretrained monocular depth estimation network" whose last layer is replaced.

    Every layer but the last conv is copied; the last (64 → 1 log-depth) is DBSI's 64 → 1 + n
    blend-weight conv and keeps its fresh initialisation. A depth-conditioned model's stem takes
    two more input channels: their stem weights start at zero, so at step 0 it computes exactly
    the pretrained image features. Needs the paper configuration (width 1); any other width, a
    missing, unexpected or mis-shaped key raises a one-line InputError naming it.
    """
    if model.backbone.width != 1.0:
        raise InputError(f"MegaDepth weights fit the paper configuration only (hourglass width 1, --config paper), "
                         f"not width {model.backbone.width:g}")
    try:
        state = remap_state_dict(load_tensors(path, "MegaDepth weights"))
        check_state_dict(MegaDepthHourglass(), state)
    except InputError as error:
        message = str(error)
        raise InputError(message if str(path) in message else f"MegaDepth weights {path}: {message}") from None
    own = model.backbone.state_dict()
    copied = {}
    for key, value in state.items():
        if key.startswith("4.") or key not in own:  # the replaced last layer; optional BN counters
            continue
        value = value.float()
        if key == "0.weight" and own[key].shape[1] != value.shape[1]:
            stem = torch.zeros_like(own[key])
            stem[:, :value.shape[1]] = value
            value = stem
        copied[key] = value
    missing = [key for key in own if key not in copied and not key.startswith("4.")
               and not key.endswith("num_batches_tracked")]
    if missing:
        raise InputError(f"MegaDepth weights {path}: missing {', '.join(missing[:3])}")
    model.backbone.load_state_dict(copied, strict=False)
    return model


def _to_tensor(array: np.ndarray) -> torch.Tensor:
    array = np.asarray(array, np.float32)
    if array.ndim == 2:
        array = array[..., None]
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))[None]


def _resize(tensor: torch.Tensor, height: int, width: int) -> torch.Tensor:
    if tuple(tensor.shape[-2:]) == (height, width):
        return tensor
    shrinking = height * width < tensor.shape[-2] * tensor.shape[-1]
    if shrinking:
        return F.interpolate(tensor, size=(height, width), mode="area")
    return F.interpolate(tensor, size=(height, width), mode="bilinear", align_corners=False)


def predict(model: DBSI, srgb: np.ndarray, disparity: np.ndarray | None = None, focus_disparity: float = 0.5,
            blur: float = 0.0, work_size: tuple[int, int] = (192, 256), upsample: str = "weights") -> np.ndarray:
    """Run DBSI on one H×W×3 sRGB image in [0, 1]; returns H×W×3 float32 sRGB.

    The network sees the image resized to ``work_size`` (height, width; multiples of 16), the
    size it was trained at (paper section 5.1). upsample: ``"output"`` blends there and resizes
    the result back bilinearly, as the paper does; ``"weights"`` resizes the weight maps back
    instead and blends the full-resolution image (σ scaled to its width), which keeps in-focus
    detail. disparity (H×W in [0, 1]), focus_disparity and blur (K in pixels of this image) are
    used by depth-conditioned models only.
    """
    height, width = srgb.shape[:2]
    work_h, work_w = work_size
    if work_h % SIZE_MULTIPLE or work_w % SIZE_MULTIPLE or work_h <= 0 or work_w <= 0:
        raise InputError(f"DBSI work size must be positive multiples of {SIZE_MULTIPLE}, got {work_w}×{work_h}")
    if upsample not in ("weights", "output"):
        raise InputError(f"DBSI upsample must be 'weights' or 'output', got {upsample!r}")
    model.eval()
    with torch.no_grad():
        small = _resize(_to_tensor(srgb), work_h, work_w)
        conditioning = None
        if model.depth_input:
            if disparity is None:
                raise InputError("this DBSI model needs a disparity map")
            small_disparity = _resize(_to_tensor(disparity), work_h, work_w)
            conditioning = depth_channels(small_disparity, torch.tensor([float(focus_disparity)]),
                                          torch.tensor([float(blur) * work_w / width]), work_w,
                                          model.kernel_width)
        weights = model.weights(small, conditioning)
        if upsample == "output":
            out = _resize(blend(small, weights, model.sigmas(work_w)), height, width)
            return out[0].permute(1, 2, 0).clamp(0, 1).numpy().astype(np.float32)
        weights = _resize(weights, height, width)[0].permute(1, 2, 0).numpy()
    out = blend_array(np.asarray(srgb, np.float32), weights / weights.sum(axis=2, keepdims=True), model.sigmas(width))
    return np.clip(out, 0, 1)
