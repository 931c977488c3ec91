"""Depth estimator "megadepth": the MegaDepth hourglass run on the user's own weights file.

The network (lensblur.models.megadepth) predicts log-depth; disparity = 1/depth = exp(−log-depth),
normalised to [0, 1] (1 = nearest) and resized back to the photo. lensblur downloads nothing:
the user gives the authors' released ``best_generalization_net_G.pth`` (docs/depth-megadepth.md).
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
from lensblur.io.depth import normalize_depth

SIZE_MULTIPLE = 16  # = lensblur.models.megadepth.SIZE_MULTIPLE, repeated so that sizes check without torch
DEFAULT_INPUT_SIZE = (384, 512)
"""Network input (height, width) for a landscape photo, as in the authors' demo; swapped for portrait."""


def network_size(height: int, width: int, input_size: tuple[int, int] = DEFAULT_INPUT_SIZE) -> tuple[int, int]:
    """The (height, width) the network runs at for a height × width photo.

    input_size: (rows, cols) for a landscape photo, both positive multiples of 16; a portrait
    photo (height > width) runs at the transposed size, as the authors' demo does (512×384).
    """
    rows, cols = (int(v) for v in input_size)
    if rows <= 0 or cols <= 0 or rows % SIZE_MULTIPLE or cols % SIZE_MULTIPLE:
        raise InputError(f"MegaDepth input size must be positive multiples of {SIZE_MULTIPLE}, "
                         f"got {cols}×{rows}")
    if height > width:
        rows, cols = max(rows, cols), min(rows, cols)
    else:
        rows, cols = min(rows, cols), max(rows, cols)
    return rows, cols


def _network_module():
    try:
        from lensblur.models import megadepth  # torch is imported only here
    except ImportError as error:
        raise InputError(f"the megadepth estimator needs PyTorch ({error}): pip install 'lensblur[torch]'") from None
    return megadepth


@lru_cache(maxsize=2)
def _cached_model(path: str, mtime_ns: int, size: int):  # noqa: ARG001 - key parts invalidate the cache
    return _network_module().load_megadepth(path)


def _model(model_path: str | os.PathLike):
    path = Path(model_path).expanduser()
    if not path.is_file():
        raise InputError(f"MegaDepth weights {path}: no such file (download the authors' "
                         "best_generalization_net_G.pth yourself; lensblur downloads nothing)")
    stat = path.stat()
    return _cached_model(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


def log_depth_to_disparity(log_depth: np.ndarray) -> np.ndarray:
    """Disparity in [0, 1] (1 = nearest) from natural-log depth: D ∝ 1/exp(log_depth), min–max normalised.

    The shift by the minimum keeps exp in range; it cancels in the normalisation.
    """
    log_depth = np.asarray(log_depth, dtype=np.float64)
    finite = np.isfinite(log_depth)
    low = float(log_depth[finite].min()) if finite.any() else 0.0
    inverse = np.exp(-(log_depth - low))  # in (0, 1]; NaN/inf are filled by normalize_depth
    return normalize_depth(inverse.astype(np.float32), kind="disparity", normalize=True)


@register("megadepth")
def estimate_megadepth(image: np.ndarray, model_path: str | os.PathLike | None = None,
                       input_size: tuple[int, int] = DEFAULT_INPUT_SIZE, **_options) -> DepthEstimate:
    """Disparity of a photo from the MegaDepth hourglass (Li & Snavely 2018).

    image: linear RGB float32 H×W×3 in [0, 1]; it is sRGB-encoded (what the network saw in
        training), resized to the network size (area when shrinking, bilinear when enlarging).
    model_path: the weights file (the authors' best_generalization_net_G.pth or the same layout).
    input_size: network (rows, cols) for a landscape photo, multiples of 16; default 384×512,
        transposed for portrait photos. Time grows with rows·cols (CPU: about 14 s at 384×512
        measured on 2 busy cores; a few seconds on a desktop CPU).
    Returns DepthEstimate with float32 H×W disparity in [0, 1], 1 = nearest. Failures (no or bad
    weights file, bad image) raise one-line InputError.
    """
    if model_path is None:
        raise InputError("the megadepth estimator needs a weights file: --depth-model megadepth:PATH")
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] < 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise InputError(f"image must be H×W×3, got shape {image.shape}")
    height, width = image.shape[:2]
    rows, cols = network_size(height, width, input_size)
    model = _model(model_path)

    srgb = linear_to_srgb(np.nan_to_num(image[..., :3].astype(np.float32), nan=0.0))
    shrinking = rows * cols < height * width
    small = cv2.resize(srgb, (cols, rows), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    disparity = log_depth_to_disparity(_network_module().predict_log_depth(model, small))
    disparity = cv2.resize(disparity, (width, height), interpolation=cv2.INTER_LINEAR)
    disparity = np.clip(disparity, 0.0, 1.0).astype(np.float32)
    note = f"MegaDepth hourglass ({Path(model_path).name}) at {cols}×{rows}, resized to {width}×{height}"
    return DepthEstimate(disparity=disparity, notes=[note])
