"""Interactive DeepLens rendering: load a checkpoint, cache what does not depend on the lens.

    session = DeepLensSession(image, disparity)            # linear RGB H×W×3, disparity H×W
    out = session.render(focus_disparity=0.7, blur=30)     # linear RGB H×W×3
    out = session.render(focus_disparity=0.3, blur=12)     # only lens blur + upsampling re-run

The session keeps, per working resolution, the sRGB image and disparity pyramids, the learned
feature map F of the lens blur module and the guide features of the upsampler; a new focus or
aperture re-runs only the kernel prediction (Eq. 2) and the guided upsampling (Eq. 3).

Resolution: with K the blur of the full image (pixels per unit disparity, docs/conventions.md)
the largest radius is c_max = K·max|D − d_f|. The lens blur runs ``levels`` ×2 halvings below
full size, the fewest (at least 1) that bring c_max down to r_max (the largest radius the
checkpoint was trained for, at its lens-blur resolution) and the long side to at most
``MAX_LENS_BLUR_SIDE``; the upsampler then climbs back ×2 per level to the exact input size.
Radii beyond r_max·2^levels (only when the image is too small to halve further) are clipped.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from lensblur.color import linear_to_srgb, srgb_to_linear
from lensblur.errors import InputError
from lensblur.lens import signed_coc
from lensblur.systems.deeplens.compose import compose, network_share
from lensblur.systems.deeplens.model import DeepLensRenderer, build_renderer, downsample, halving_sizes
from lensblur.training.checkpoint import load_checkpoint, shipped_checkpoint

SYSTEM = "deeplens"
MAX_LENS_BLUR_SIDE = 512   # pixels: keeps the lens blur module cheap at 2K and beyond
MIN_LENS_BLUR_SIDE = 8     # pixels: no halving below this


def load_renderer(checkpoint: str | os.PathLike | None = None) -> DeepLensRenderer:
    """The DeepLens rendering network of ``checkpoint`` (default: the shipped deeplens.pt);
    one-line InputError for a missing, foreign or mismatched checkpoint."""
    path = Path(checkpoint) if checkpoint is not None else shipped_checkpoint(SYSTEM)
    path = path.resolve() if path.exists() else path
    stamp = path.stat().st_mtime_ns if path.is_file() else 0
    return _load_cached(str(path), stamp)


@lru_cache(maxsize=4)
def _load_cached(path: str, stamp: int) -> DeepLensRenderer:
    payload = load_checkpoint(path, system=SYSTEM)
    config = payload.get("config")
    if not isinstance(config, dict) or config.get("module", "render") != "render":
        raise InputError(f"checkpoint {path}: not a DeepLens rendering checkpoint (trained with --module depth?)")
    try:
        return build_renderer(config, payload["model"])
    except (RuntimeError, KeyError, TypeError, ValueError) as error:
        reason = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        raise InputError(f"checkpoint {path}: does not fit the DeepLens network ({reason})") from None


def halvings_for_blur(max_coc: float, r_max: float) -> int:
    """The fewest ×2 halvings (0 or more) that bring a radius of ``max_coc`` pixels down to
    ``r_max`` pixels."""
    return math.ceil(math.log2(max_coc / r_max)) if max_coc > r_max else 0


def choose_levels(height: int, width: int, max_coc: float, r_max: float) -> int:
    """Number of ×2 halvings before the lens blur (see the module docstring); 0 only for images
    too small to halve."""
    possible = 0
    while min(height, width) / 2 ** (possible + 1) >= MIN_LENS_BLUR_SIDE:
        possible += 1
    if possible == 0:
        return 0
    for_blur = halvings_for_blur(max_coc, r_max)
    for_speed = math.ceil(math.log2(max(height, width) / MAX_LENS_BLUR_SIDE)) if max(height, width) > MAX_LENS_BLUR_SIDE else 1
    return int(min(max(1, for_blur, for_speed), possible))


class DeepLensSession:
    """One image and its disparity, ready to be rendered with any focus and aperture.

    image: linear RGB float32 H×W×3 (values above 1 are clipped: the network works on sRGB);
    disparity: float32 H×W in [0, 1], 1 = nearest; checkpoint: path, default the shipped one;
    keep_in_focus: pixels the thin lens leaves sharp are the input's (lensblur.systems.deeplens.compose,
    not in the paper); False gives the network's output everywhere, as in the paper.
    """

    def __init__(self, image: np.ndarray, disparity: np.ndarray, checkpoint=None, keep_in_focus: bool = True):
        image = np.asarray(image, dtype=np.float32)
        disparity = np.asarray(disparity, dtype=np.float32)
        if image.ndim != 3 or image.shape[2] != 3:
            raise InputError(f"deeplens needs an H×W×3 image, got shape {image.shape}")
        if disparity.shape != image.shape[:2]:
            raise InputError(f"disparity {disparity.shape} does not match the image {image.shape[:2]}")
        self.model = load_renderer(checkpoint)
        self.height, self.width = image.shape[:2]
        self.disparity = np.clip(np.nan_to_num(disparity), 0.0, 1.0)
        self._srgb = linear_to_srgb(image)
        self._image = torch.from_numpy(self._srgb.transpose(2, 0, 1).copy()).unsqueeze(0)
        self.keep_in_focus = keep_in_focus
        self._cache: dict[int, dict] = {}

    def _prepared(self, levels: int) -> dict:
        """Pyramids, features F at the lens-blur level and guide features, for ``levels``."""
        if levels not in self._cache:
            sizes = halving_sizes(self.height, self.width, levels)
            with torch.inference_mode():
                images = [downsample(self._image, size) for size in sizes]
                disparity = torch.from_numpy(self.disparity)[None, None]
                disparities = [downsample(disparity, size) for size in sizes]
                self._cache[levels] = {
                    "scales": [size[1] / self.width for size in sizes],
                    "images": images,
                    "disparities": [d[0, 0].numpy() for d in disparities],
                    "features": self.model.features(images[-1]),
                    "guides": [self.model.upsampler.guide_features(im) for im in images[:-1]],
                }
        return self._cache[levels]

    def render(self, focus_disparity: float, blur: float, focus_range: float = 0.0) -> np.ndarray:
        """The shallow-DoF image, linear RGB float32 H×W×3.

        focus_disparity: d_f in [0, 1]; blur: K in pixels of this image per unit disparity
        (the aperture: c = K·(D − d_f)); focus_range: half-width of a band kept sharp.
        """
        if not 0.0 <= focus_disparity <= 1.0 or not np.isfinite(blur) or blur < 0:
            raise InputError(f"need focus disparity in [0, 1] and blur >= 0, got {focus_disparity} and {blur}")
        extent = max(abs(float(self.disparity.max()) - focus_disparity), abs(float(self.disparity.min()) - focus_disparity))
        max_coc = float(blur) * max(extent - focus_range, 0.0)
        levels = choose_levels(self.height, self.width, max_coc, self.model.r_max)
        cache = self._prepared(levels)
        model = self.model
        with torch.inference_mode():
            cocs = [torch.from_numpy(signed_coc(d, blur, focus_disparity, focus_range))[None, None]
                    for d in cache["disparities"]]
            scales = cache["scales"]
            shallow = model.lens_blur(cache["images"][-1], model.signed_blur(cocs[-1], scales[-1]),
                                      cache["features"])
            blurs = [model.upsampler_blur(c, s) for c, s in zip(cocs, scales)]
            output = model.upsample_to(shallow, cache["images"], blurs, cache["guides"])
        srgb = output[0].clamp(0.0, 1.0).numpy().transpose(1, 2, 0)
        if self.keep_in_focus:
            srgb = compose(self._srgb, srgb, network_share(cocs[0][0, 0].numpy()))
        return srgb_to_linear(srgb)
