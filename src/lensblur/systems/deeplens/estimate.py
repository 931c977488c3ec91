"""Depth estimator ``deeplens``: DeepLens' depth prediction module (Wang et al. 2018, section 3.1)
run from the photo alone, so ``--renderer deeplens`` works without a depth map.

The shipped checkpoint ``weights/deeplens-depth.pt`` (or ``checkpoint=PATH``, a ``lensblur train
deeplens --module depth`` file) predicts a normalised disparity (1 = nearest) and a foreground
segmentation at its training size; both are resized back to the photo. The suggested focus point
is the nearest pixel of the segmented subject (the paper focuses on the segmented subject), or
of the central third of the frame when nothing is segmented; the segmentation is not returned as
a matte, since the renderer does not use one.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from lensblur.color import linear_to_srgb
from lensblur.depth import DepthEstimate, register
from lensblur.errors import InputError

SHIPPED = "deeplens-depth"


@lru_cache(maxsize=2)
def _load(path: str, stamp: int):  # noqa: ARG001 - the stamp invalidates the cache when the file changes
    from lensblur.systems.deeplens.depth import DepthPredictor
    from lensblur.training.checkpoint import load_checkpoint

    payload = load_checkpoint(path, system="deeplens")
    config = payload.get("config")
    if not isinstance(config, dict) or config.get("module") != "depth":
        raise InputError(f"checkpoint {path}: not a DeepLens depth checkpoint (train it with --module depth)")
    try:
        model = DepthPredictor(config.get("backbone", "small"))
        model.load_state_dict({k: v.float() for k, v in payload["model"].items()})
    except (RuntimeError, KeyError, TypeError, ValueError) as error:
        reason = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        raise InputError(f"checkpoint {path}: does not fit the DeepLens depth network ({reason})") from None
    model.eval()
    return model, tuple(int(v) for v in config.get("size", (128, 192)))


def load_depth_module(checkpoint: str | os.PathLike | None = None):
    """(DepthPredictor in eval mode, its input size (H, W)) of ``checkpoint`` (default: the
    shipped deeplens-depth.pt); one-line InputError for a missing or foreign file."""
    from lensblur.models import require_torch
    from lensblur.training.checkpoint import shipped_checkpoint

    require_torch()
    path = Path(checkpoint) if checkpoint is not None else shipped_checkpoint(SHIPPED)
    stamp = path.stat().st_mtime_ns if path.is_file() else 0
    return _load(str(path), stamp)


def predict(image: np.ndarray, checkpoint: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(disparity, segmentation), float32 H×W in [0, 1] at the size of ``image`` (linear RGB
    float32 H×W×3), from the depth module at its training size (landscape; a portrait photo runs
    at the transposed size)."""
    import torch

    model, (rows, cols) = load_depth_module(checkpoint)
    height, width = image.shape[:2]
    if height > width:
        rows, cols = max(rows, cols), min(rows, cols)
    srgb = np.clip(linear_to_srgb(np.asarray(image, np.float32)), 0, 1)
    small = cv2.resize(srgb, (cols, rows), interpolation=cv2.INTER_AREA)
    with torch.inference_mode():
        disparity, segmentation = model(torch.from_numpy(small.transpose(2, 0, 1).copy())[None])
    maps = [cv2.resize(m[0, 0].numpy(), (width, height), interpolation=cv2.INTER_LINEAR)
            for m in (disparity, segmentation)]
    return tuple(np.clip(m, 0, 1).astype(np.float32) for m in maps)


@register("deeplens")
def estimate_deeplens(image: np.ndarray, checkpoint: str | os.PathLike | None = None) -> DepthEstimate:
    """Disparity of a linear RGB float32 H×W×3 photo from the DeepLens depth module, and a focus
    point on the segmented subject (see the module doc)."""
    image = np.asarray(image, np.float32)
    if image.ndim != 3 or image.shape[2] != 3 or not np.isfinite(image).all():
        raise InputError(f"the deeplens depth module needs a finite H×W×3 image, got shape {image.shape}")
    disparity, segmentation = predict(image, checkpoint)
    notes = ["disparity and subject from the DeepLens depth module (trained on the project's synthetic scenes)"]
    subject = segmentation > 0.5
    if subject.any():
        score = np.where(subject, disparity, -1.0)
        y, x = np.unravel_index(int(np.argmax(cv2.blur(score, (9, 9)))), score.shape)
        notes.append(f"subject covers {subject.mean():.0%} of the image")
    else:
        # the nearest point of the central third: the frame's bottom edge is often nearest but
        # rarely the subject
        height, width = disparity.shape
        centre = np.full_like(disparity, -1.0)
        centre[height // 3:2 * height // 3, width // 3:2 * width // 3] = \
            disparity[height // 3:2 * height // 3, width // 3:2 * width // 3]
        y, x = np.unravel_index(int(np.argmax(cv2.blur(centre, (9, 9)))), disparity.shape)
        notes.append("no subject segmented: focusing on the nearest point of the central third")
    return DepthEstimate(disparity, None, (float(x), float(y)), notes)
