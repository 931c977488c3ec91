"""``dbsi``, ``dbsi-paper`` and ``saliency-baseline``: blends of the photo and Gaussian-blurred copies of it
(Dutta et al., "Depth-aware blending of smoothed images for bokeh effect generation").

``dbsi`` runs a trained DBSI network (:mod:`lensblur.systems.dbsi.model`; needs torch): the shipped
depth-conditioned checkpoint ``weights/dbsi-depth.pt`` unless ``checkpoint`` names another
file or the shipped paper variant ``"image"`` (``weights/dbsi-image.pt``). ``dbsi-paper`` is the paper's
system as published: the image-only network run at its training size with the output resized back
(section 5.1); it ignores depth and lens settings. ``saliency-baseline`` is the
paper's section 5.3 baseline: a soft subject map keeps the subject, the rest is replaced by a
75×75 Gaussian blur, blended by Eq. 1 (no torch).

All take and return linear float32 H×W×3. The paper's networks and the saliency baseline blend
Gaussian blurs in sRGB (as the paper does); the shipped depth-conditioned checkpoint blends round
discs in linear light with an analytic prior (docs/dbsi.md, "the disc-stack model"). Kernel sizes
are measured at an image width of 1024 pixels and scaled to the input's width. None renders
highlights, bokeh shapes or grain: ``lens.aperture``, ``lens.highlights``, ``lens.grain``,
``lens.rim`` and ``lens.cat_eye`` are ignored.
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np

from lensblur.color import linear_to_srgb, srgb_to_linear
from lensblur.errors import InputError
from lensblur.renderers import register

SHIPPED = {"depth": "dbsi-depth", "image": "dbsi-image"}
"""Shipped checkpoints (in lensblur/systems/dbsi/weights/): the depth-conditioned variant and the
paper's image-only network."""

DEFAULT_VARIANT = "depth"
"""What ``--renderer dbsi`` uses without ``checkpoint`` (measured choice, docs/dbsi.md)."""

BASELINE_KERNEL = 75
"""Kernel size of the saliency baseline's background blur (pixels at 1024 width)."""


def gaussian_sigma(kernel_size: int) -> float:
    """σ in pixels of OpenCV's k×k Gaussian kernel when no σ is given (k odd, ≥ 1)."""
    return 0.3 * ((kernel_size - 1) * 0.5 - 1) + 0.8


def _srgb(image: np.ndarray) -> np.ndarray:
    return linear_to_srgb(np.clip(np.asarray(image, np.float32), 0.0, 1.0)).astype(np.float32)


@functools.lru_cache(maxsize=16)
def _load(path: str, modified: float):
    from lensblur.systems.dbsi.model import build
    from lensblur.training.checkpoint import load_checkpoint

    import torch

    payload = load_checkpoint(path, "dbsi")
    config = payload.get("config", {})
    try:
        model = build(config.get("model", {}))
        state = {k: (v.float() if torch.is_floating_point(v) else v) for k, v in payload["model"].items()}
        model.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError, TypeError, ValueError) as error:
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise InputError(f"checkpoint {path}: does not match the DBSI model it describes ({first})") from None
    train_size = tuple(int(v) for v in config.get("train_size", (192, 256)))
    return model.eval(), train_size


def load_dbsi(checkpoint: str | Path | None = None):
    """(model, training size (H, W)) of a DBSI checkpoint: a path, a shipped variant's name
    (``"depth"`` or ``"image"``), or None for the default variant. Cached per path and
    modification time; one-line InputError on any problem."""
    from lensblur.training.checkpoint import shipped_checkpoint

    if checkpoint is None or str(checkpoint) in SHIPPED:
        path = shipped_checkpoint(SHIPPED[str(checkpoint or DEFAULT_VARIANT)])
    else:
        path = Path(checkpoint)
    if not path.is_file():
        raise InputError(f"checkpoint {path}: no such file")
    return _load(str(path.resolve()), path.stat().st_mtime)


@register("dbsi")
def render_dbsi(image: np.ndarray, disparity: np.ndarray, lens, matte: np.ndarray | None = None, *,
                checkpoint: str | Path | None = None, upsample: str = "weights") -> np.ndarray:
    """DBSI bokeh of a linear H×W×3 float32 image; returns linear float32 H×W×3.

    checkpoint: a checkpoint path, ``"image"`` (the shipped paper network) or ``"depth"`` / None
    (the shipped depth-conditioned one). The network runs at the size it was trained at (stored
    in the checkpoint). A depth-conditioned checkpoint uses ``disparity`` (H×W in [0, 1]),
    ``lens.focus_disparity`` and ``lens.blur`` (K in pixels of this image); the paper's image-only
    model ignores them and renders the one look it learned. upsample: ``"weights"`` (default:
    blend at full resolution with upsampled weight maps) or ``"output"`` (the paper: blend at the
    training size, resize the result). ``matte`` is not used.
    """
    from lensblur.models import require_torch

    require_torch()
    from lensblur.systems.dbsi.model import predict

    model, train_size = load_dbsi(checkpoint)
    out = predict(model, _srgb(image), np.asarray(disparity, np.float32), float(lens.focus_disparity),
                  float(lens.blur), train_size, upsample)
    return srgb_to_linear(out).astype(np.float32)


@register("dbsi-paper")
def render_dbsi_paper(image: np.ndarray, disparity: np.ndarray, lens, matte: np.ndarray | None = None, *,
                      checkpoint: str | Path | None = None, upsample: str = "output") -> np.ndarray:
    """The paper's DBSI: the image-only network (the shipped ``weights/dbsi-image.pt`` unless
    ``checkpoint`` names another image-only checkpoint), blended at its training size and the
    output resized back bilinearly (section 5.1; ``upsample="weights"`` blends at full resolution
    instead). disparity, lens and matte are not used: the network sees the photo only.
    Linear float32 H×W×3 in and out; InputError for a depth-conditioned checkpoint."""
    from lensblur.models import require_torch

    require_torch()
    model, _ = load_dbsi(checkpoint or "image")
    if model.depth_input:
        raise InputError(f"dbsi-paper runs the paper's image-only network; {checkpoint} is depth-conditioned "
                         f"(use --renderer dbsi for it)")
    return render_dbsi(image, disparity, lens, checkpoint=checkpoint or "image", upsample=upsample)


def soft_subject_map(srgb: np.ndarray) -> np.ndarray:
    """Soft subject map (float32 H×W in [0, 1], 1 = subject) of an sRGB image in [0, 1]: the
    project's salient-subject mask feathered by a Gaussian of 1 % of the long side, or the raw
    saliency map when no single subject stands out."""
    from lensblur.depth.auto import saliency_map, salient_subject

    mask = salient_subject(srgb)
    if not mask.any():
        return saliency_map(srgb)
    sigma = max(1.0, 0.01 * max(srgb.shape[:2]))
    return np.clip(cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigma), 0.0, 1.0)


@register("saliency-baseline")
def render_saliency_baseline(image: np.ndarray, disparity: np.ndarray, lens, matte: np.ndarray | None = None, *,
                             kernel: int = BASELINE_KERNEL) -> np.ndarray:
    """DBSI's saliency baseline: S·I + (1 − S)·B(I, 75×75) with S the soft subject map (or
    ``matte`` when one is given); disparity and lens are not used. kernel: Gaussian kernel size
    in pixels at 1024 width (scaled to this width). Linear float32 in and out."""
    srgb = _srgb(image)
    height, width = srgb.shape[:2]
    subject = np.clip(np.asarray(matte, np.float32), 0, 1) if matte is not None else soft_subject_map(srgb)
    if subject.shape != (height, width):
        raise InputError(f"matte is {subject.shape[1]}×{subject.shape[0]}, the image {width}×{height}")
    sigma = gaussian_sigma(kernel) * width / 1024
    radius = int(np.ceil(3 * sigma))
    blurred = cv2.GaussianBlur(srgb, (2 * radius + 1, 2 * radius + 1), sigma, borderType=cv2.BORDER_REPLICATE)
    out = subject[..., None] * srgb + (1 - subject[..., None]) * blurred
    return srgb_to_linear(np.clip(out, 0, 1)).astype(np.float32)
