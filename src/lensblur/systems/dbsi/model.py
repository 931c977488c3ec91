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

Disc-stack variant (not in the paper; the default of ``--renderer dbsi``, docs/dbsi.md): with
``kernel_shape="disc"`` a kernel size k is a uniform disc of radius (k − 1)/2 px at ``kernel_width``
(the shape of the thin-lens truth), ``linear=True`` blends the linearised image (light adds
linearly; the result is encoded back to sRGB), and ``prior=True`` (depth-conditioned only) adds to
the last layer's logits log(A + ε), A the analytic weights that interpolate linearly between the
two stack members bracketing each pixel's blur radius |c| (:func:`prior_weights`). The last conv
then starts at zero, so at step 0 Eq. 2's softmax returns A (within (1 + n)·ε) and training only
learns corrections (depth edges, occlusions).

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

DISC_KERNELS = (7, 13, 19, 27, 37, 51, 69, 93, 127)
"""Disc diameters (px at 1024 width) of the disc-stack variant: radii 3, 6, 9 … 63 px, ×1.35–1.5
apart above 6 px, i.e. 1.1 … 23.6 px at 384 px width, covering the engine scenes' CoC radii (up to
16 px at 256×384; 43 px at 1024) with room above."""

PRIOR_FLOOR = 1e-3
"""ε of the analytic prior's logits log(A + ε): keeps every stack member reachable by training."""

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


def blend_array(image: np.ndarray, weights: np.ndarray, sigmas: list[float], shape: str = "gaussian",
                linear: bool = False) -> np.ndarray:
    """Eq. 1 on numpy arrays with OpenCV's blur (the same kernel as :func:`gaussian_blur`, several
    times faster on large images). image H×W×3 float32 sRGB; weights H×W×(1+n); sigmas: n values
    in pixels (disc radii when ``shape="disc"``); linear: blend the linearised image and encode
    the result to sRGB. Returns H×W×3 float32."""
    if linear:
        from lensblur.color import linear_to_srgb, srgb_to_linear

        mixed = blend_array(srgb_to_linear(np.clip(image, 0, 1)).astype(np.float32), weights, sigmas, shape)
        return linear_to_srgb(np.clip(mixed, 0, 1)).astype(np.float32)
    out = weights[..., :1] * image
    for index, sigma in enumerate(sigmas, start=1):
        if shape == "disc":
            out += weights[..., index:index + 1] * disc_blur_array(image, sigma)
            continue
        blurred = image
        if sigma >= 0.05:
            radius = max(1, int(math.ceil(3 * sigma)))
            blurred = cv2.GaussianBlur(image, (2 * radius + 1, 2 * radius + 1), sigma, sigmaY=sigma,
                                       borderType=cv2.BORDER_REPLICATE)
        out += weights[..., index:index + 1] * blurred
    return out.astype(np.float32)


def srgb_decode(encoded: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] → linear (IEC 61966-2-1), differentiable."""
    encoded = encoded.clamp(0, 1)
    return torch.where(encoded <= 0.04045, encoded / 12.92, ((encoded + 0.055) / 1.055) ** 2.4)


def srgb_encode(linear: torch.Tensor) -> torch.Tensor:
    """Linear in [0, 1] → sRGB, differentiable (clamped; the power's gradient stays finite)."""
    linear = linear.clamp(0, 1)
    return torch.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear.clamp(min=1e-8) ** (1 / 2.4) - 0.055)


def disc_blur_array(image: np.ndarray, radius: float) -> np.ndarray:
    """H×W×C float32 ``image`` convolved with the area-sampled uniform disc of ``radius`` px (the
    naive renderer's circular aperture kernel; edges replicated); radius ≤ 0 returns a copy."""
    from lensblur.aperture import Aperture
    from lensblur.renderers.reference import blur_with_aperture

    return blur_with_aperture(np.ascontiguousarray(image, np.float32), float(radius), Aperture())


def disc_blur(images: torch.Tensor, radius: float) -> torch.Tensor:
    """:func:`disc_blur_array` of every N×C×H×W image (no gradient: the stack is an input of the
    blend, never a learned quantity)."""
    array = images.detach().permute(0, 2, 3, 1).numpy()
    out = np.stack([disc_blur_array(one, radius).reshape(one.shape) for one in array])
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def prior_weights(radius: torch.Tensor, levels: list[float]) -> torch.Tensor:
    """Analytic blend weights N×L×H×W for per-pixel blur radii ``radius`` (N×1×H×W, ≥ 0) over a
    stack whose member j has radius ``levels[j]`` (increasing, levels[0] = 0 the sharp image):
    the two members bracketing r share it linearly (the naive renderer's interpolation), r beyond
    the last level takes the last member. Every pixel's weights sum to 1."""
    r = radius.clamp(min=0, max=float(levels[-1]))
    hats = []
    for j in range(len(levels)):
        rise = (r - levels[j - 1]) / (levels[j] - levels[j - 1]) if j > 0 else None
        fall = (levels[j + 1] - r) / (levels[j + 1] - levels[j]) if j + 1 < len(levels) else None
        if rise is None:
            hat = fall
        elif fall is None:
            hat = rise
        else:
            hat = torch.minimum(rise, fall)
        hats.append(hat.clamp(0, 1))
    return torch.cat(hats, dim=1)


OCCLUSION_SHARE = 0.1
"""Share of a disc's square that sharper pixels may cover before the prior refuses that disc
(:func:`occlusion_cap`), and that a blurred foreground must cover before it spreads onto a pixel
(:func:`foreground_floor`). With the cap alone, 0.05 / 0.1 / 0.25 scored 35.5 / 35.4 / 34.7 dB
on the mixed benchmark set and 29.3 / 29.4 / 29.7 on the layered one at step 0."""


def box_mean(x: torch.Tensor, reach: int) -> torch.Tensor:
    """Mean of N×1×H×W ``x`` over the (2·reach + 1)² square around each pixel, clipped at the
    borders (only pixels inside the image count); OpenCV's box filter, so any reach costs the same.
    No gradient (the prior's masks are not learned)."""
    size = (2 * reach + 1, 2 * reach + 1)
    ones = np.ones(x.shape[-2:], np.float32)
    counts = cv2.boxFilter(ones, -1, size, normalize=False, borderType=cv2.BORDER_CONSTANT)
    sums = [cv2.boxFilter(np.ascontiguousarray(one[0], np.float32), -1, size, normalize=False,
                          borderType=cv2.BORDER_CONSTANT) for one in x.detach().numpy()]
    return torch.from_numpy(np.stack(sums)[:, None] / counts).to(x.dtype)


def occlusion_cap(signed: torch.Tensor, levels: list[float], scale: float) -> torch.Tensor:
    """The largest stack radius each pixel behind the focus may gather over (N×1×H×W, same unit
    as ``levels``, inf where unlimited). Level j ≥ 2 is refused at a pixel p behind the focus plane
    (c_p < 0) when more than :data:`OCCLUSION_SHARE` of the square of its radius around p holds
    pixels sharper than the level below (|c_q| < levels[j − 1], hence in front of p, which needs
    more blur than that): gathering there would smear the in-focus subject into the blurred
    background (the naive blend's halo), so the cap is the level below. Thin sharp things (wires,
    hair tips) cover little of a disc and leave the background's blur alone.

    signed: N×1×H×W signed CoC c, in the unit of ``levels`` (px at the kernel width); scale: image
    pixels per unit."""
    cap = torch.full_like(signed, float("inf"))
    behind = signed < 0
    for j in range(2, len(levels)):
        reach = int(math.ceil(levels[j] * scale - 0.5))
        if reach < 1:
            continue
        sharper = (signed.abs() < levels[j - 1]).to(signed.dtype)
        refused = behind & (box_mean(sharper, reach) > OCCLUSION_SHARE) & torch.isinf(cap) \
            & (signed.abs() > levels[j - 1])
        cap = torch.where(refused, torch.full_like(cap, levels[j - 1]), cap)
    return cap


def foreground_floor(signed: torch.Tensor, levels: list[float], scale: float) -> torch.Tensor:
    """The smallest stack radius each pixel should gather over because a blurred foreground
    spreads onto it (N×1×H×W, same unit as ``levels``, 0 where none): when more than
    :data:`OCCLUSION_SHARE` of the square of radius levels[j] around p is covered by pixels in
    front of the focus blurred by more than levels[j] (c_q > levels[j], so their light reaches p),
    p gathers at least over levels[j] — the out-of-focus foreground then overlaps what lies behind
    its edge instead of ending at a hard silhouette. signed, scale: as :func:`occlusion_cap`."""
    floor = torch.zeros_like(signed)
    for j in range(1, len(levels)):
        reach = int(math.ceil(levels[j] * scale - 0.5))
        if reach < 1:
            continue
        front = (signed > levels[j]).to(signed.dtype)
        spread = box_mean(front, reach) > OCCLUSION_SHARE
        floor = torch.where(spread, torch.full_like(floor, levels[j]), floor)
    return floor


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

    kernels: kernel sizes (odd, pixels at ``kernel_width``); width: hourglass width multiplier;
    depth_input: also take disparity and signed CoC (see :func:`depth_channels`); kernel_shape:
    ``"gaussian"`` (the paper) or ``"disc"`` (diameter k); linear: blend in linear light; prior:
    add the analytic bracketing prior to the logits (depth-conditioned models only; the last conv
    then starts at zero).
    """

    def __init__(self, kernels=PAPER_KERNELS, width: float = DEFAULT_WIDTH, depth_input: bool = False,
                 kernel_width: int = KERNEL_WIDTH, kernel_shape: str = "gaussian", linear: bool = False,
                 prior: bool = False, occlusion: bool = False) -> None:
        super().__init__()
        kernels = [int(k) for k in kernels]
        if not kernels or any(k < 1 or k % 2 == 0 for k in kernels):
            raise InputError(f"DBSI kernel sizes must be odd positive integers, got {kernels}")
        if kernel_shape not in ("gaussian", "disc"):
            raise InputError(f"DBSI kernel shape must be 'gaussian' or 'disc', got {kernel_shape!r}")
        if prior and not (depth_input and kernel_shape == "disc" and kernels == sorted(set(kernels))):
            raise InputError("the DBSI analytic prior needs a depth-conditioned model with increasing disc kernels")
        if occlusion and not prior:
            raise InputError("the DBSI occlusion handling is part of the analytic prior (add --prior)")
        self.kernels = kernels
        self.depth_input = bool(depth_input)
        self.kernel_width = int(kernel_width)
        self.kernel_shape = kernel_shape
        self.linear = bool(linear)
        self.prior = bool(prior)
        self.occlusion = bool(occlusion)
        self.backbone = MegaDepthHourglass(width, in_channels=5 if depth_input else 3)
        # "modifying the last layer": the log-depth conv becomes the blend-weight conv
        self.backbone[4] = nn.Conv2d(self.backbone.feature_channels, 1 + len(kernels), 3, padding=1)
        if self.prior:  # step 0 = the analytic blend; training learns corrections
            nn.init.zeros_(self.backbone[4].weight)
            nn.init.zeros_(self.backbone[4].bias)

    def config(self) -> dict:
        """Plain values that rebuild this model (stored in checkpoints)."""
        return {"kernels": list(self.kernels), "width": self.backbone.width, "depth_input": self.depth_input,
                "kernel_width": self.kernel_width, "kernel_shape": self.kernel_shape, "linear": self.linear,
                "prior": self.prior, "occlusion": self.occlusion}

    def sigmas(self, width_px: int) -> list[float]:
        """Per kernel, in pixels of an image ``width_px`` wide: the Gaussian σ, or the disc radius
        (k − 1)/2 for ``kernel_shape="disc"``."""
        if self.kernel_shape == "disc":
            return [(k - 1) / 2 * width_px / self.kernel_width for k in self.kernels]
        return [gaussian_sigma(k) * width_px / self.kernel_width for k in self.kernels]

    def prior_logits(self, conditioning: torch.Tensor) -> torch.Tensor:
        """log(A + ε) of :func:`prior_weights` for the |c| in ``conditioning`` (from
        :func:`depth_channels`; radii compared at ``kernel_width``)."""
        levels = [0.0] + [(k - 1) / 2 for k in self.kernels]
        signed = conditioning[:, 1:2] * COC_UNIT
        radius = signed.abs()
        if self.occlusion:
            scale = conditioning.shape[-1] / self.kernel_width
            radius = torch.minimum(radius, occlusion_cap(signed, levels, scale))
            radius = torch.maximum(radius, foreground_floor(signed, levels, scale))
        return torch.log(prior_weights(radius, levels) + PRIOR_FLOOR)

    def blend(self, images: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Eq. 1 with this model's kernels, in linear light when ``linear`` (sRGB in and out)."""
        sigmas = self.sigmas(images.shape[-1])
        if self.kernel_shape == "gaussian" and not self.linear:
            return blend(images, weights, sigmas)
        source = srgb_decode(images) if self.linear else images
        blur = disc_blur if self.kernel_shape == "disc" else gaussian_blur
        out = weights[:, :1] * source
        for index, sigma in enumerate(sigmas, start=1):
            out = out + weights[:, index:index + 1] * blur(source, sigma)
        return srgb_encode(out) if self.linear else out

    def weights(self, images: torch.Tensor, conditioning: torch.Tensor | None = None) -> torch.Tensor:
        """Blend weights N×(1+n)×H×W, each pixel's summing to 1 (softmax over the 1+n maps).

        images: N×3×H×W sRGB in [0, 1]; conditioning: N×2×H×W from :func:`depth_channels`,
        required exactly when the model is depth-conditioned.
        """
        if self.depth_input != (conditioning is not None):
            raise InputError("this DBSI model " + ("needs" if self.depth_input else "takes no")
                             + " disparity input")
        x = images if conditioning is None else torch.cat([images, conditioning], dim=1)
        logits = self.backbone(x)
        if self.prior:
            logits = logits + self.prior_logits(conditioning)
        return torch.softmax(logits, dim=1)

    def forward(self, images: torch.Tensor, conditioning: torch.Tensor | None = None) -> torch.Tensor:
        """The bokeh image N×3×H×W (sRGB, same size) of N×3×H×W sRGB input in [0, 1]."""
        return self.blend(images, self.weights(images, conditioning))


def build(config: dict) -> DBSI:
    """A DBSI model from a checkpoint's config dict (missing keys take the defaults)."""
    return DBSI(kernels=config.get("kernels", PAPER_KERNELS), width=float(config.get("width", DEFAULT_WIDTH)),
                depth_input=bool(config.get("depth_input", False)),
                kernel_width=int(config.get("kernel_width", KERNEL_WIDTH)),
                kernel_shape=str(config.get("kernel_shape", "gaussian")), linear=bool(config.get("linear", False)),
                prior=bool(config.get("prior", False)), occlusion=bool(config.get("occlusion", False)))


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
        if upsample == "output":
            out = _resize(model.blend(small, model.weights(small, conditioning)), height, width)
            return out[0].permute(1, 2, 0).clamp(0, 1).numpy().astype(np.float32)
        if model.prior:  # the learned correction upsampled, the prior at full resolution (sharp depth edges)
            full = depth_channels(_to_tensor(disparity), torch.tensor([float(focus_disparity)]),
                                  torch.tensor([float(blur)]), width, model.kernel_width)
            weights = torch.softmax(_resize(model.backbone(torch.cat([small, conditioning], dim=1)), height, width)
                                    + model.prior_logits(full), dim=1)
        else:
            weights = _resize(model.weights(small, conditioning), height, width)
        weights = weights[0].permute(1, 2, 0).numpy()
    out = blend_array(np.asarray(srgb, np.float32), weights / weights.sum(axis=2, keepdims=True), model.sigmas(width),
                      model.kernel_shape, model.linear)
    return np.clip(out, 0, 1)
