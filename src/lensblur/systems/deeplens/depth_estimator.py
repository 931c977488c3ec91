"""Depth estimator "deeplens": the DeepLens depth prediction module (section 3.1), registered as
``"deeplens"``: the shipped checkpoint ``weights/deeplens-depth.pt`` (``--depth-model deeplens``,
and the default of ``--renderer deeplens`` when the photo carries no depth: the paper's
single-image path) or a checkpoint written by ``lensblur train deeplens --module depth``
(``deeplens:PATH``).

The photo is sRGB-encoded, resized (area when shrinking) to about the checkpoint's training size
with the photo's aspect (sides multiples of 8, the encoder's stride), run through
:class:`lensblur.systems.deeplens.depth.DepthPredictor`, and its disparity head (1 = nearest) is
resized back and stretched to [0, 1]. The suggested focus point is the nearest pixel of the
subject its segmentation head marks (the paper focuses on the segmented subject), else of the
central third of the frame. See docs/depth-models.md.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from lensblur.color import linear_to_srgb
from lensblur.depth import DepthEstimate, register
from lensblur.errors import InputError
from lensblur.io.depth import normalize_depth

SYSTEM = "deeplens"
STRIDE = 8  # the encoder's output stride: input sides are multiples of it
SHIPPED = "deeplens-depth"


def load_depth_module(path: str | os.PathLike | None = None):
    """The DepthPredictor of a DeepLens depth checkpoint (None: the shipped deeplens-depth.pt) and
    its training size (height, width).

    One-line InputError for a missing file, a foreign or rendering checkpoint, or weights that do
    not fit the network. Cached per (path, modification time).
    """
    if path is None:
        from lensblur.training.checkpoint import shipped_checkpoint

        path = shipped_checkpoint(SHIPPED)
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"DeepLens depth checkpoint {path}: no such file")
    stat = path.stat()
    return _cached(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=2)
def _cached(path: str, mtime_ns: int, size: int):  # noqa: ARG001 - key parts invalidate the cache
    from lensblur.models import require_torch

    require_torch()
    from lensblur.systems.deeplens.depth import BACKBONES, DepthPredictor
    from lensblur.training.checkpoint import load_checkpoint

    payload = load_checkpoint(path, system=SYSTEM)
    config = payload.get("config")
    if not isinstance(config, dict) or config.get("module") != "depth":
        raise InputError(f"checkpoint {path}: a DeepLens rendering checkpoint, not a depth one "
                         "(train one with 'lensblur train deeplens --module depth')")
    if config.get("backbone") not in BACKBONES:
        raise InputError(f"checkpoint {path}: unknown DeepLens depth backbone {config.get('backbone')!r}")
    try:
        height, width = (int(v) for v in config.get("size", (256, 256)))
        model = DepthPredictor(config["backbone"])
        model.load_state_dict(payload["model"])
    except (RuntimeError, KeyError, TypeError, ValueError) as error:
        reason = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        raise InputError(f"checkpoint {path}: does not fit the DeepLens depth network ({reason})") from None
    model.float().eval()
    return model, (max(STRIDE, height), max(STRIDE, width))


def network_size(height: int, width: int, trained: tuple[int, int]) -> tuple[int, int]:
    """(rows, cols) with about the trained area, the photo's aspect, both multiples of 8."""
    area = trained[0] * trained[1]
    scale = math.sqrt(area / (height * width))
    rows = max(STRIDE, int(round(height * scale / STRIDE)) * STRIDE)
    cols = max(STRIDE, int(round(width * scale / STRIDE)) * STRIDE)
    return rows, cols


def predict(image: np.ndarray, model_path: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(disparity, segmentation), float32 H×W in [0, 1] at the size of ``image`` (linear RGB
    float32 H×W×3), as the depth module's two heads give them (disparity not yet stretched).
    model_path: a depth checkpoint, None for the shipped one."""
    pixels = np.asarray(image, dtype=np.float32)
    if pixels.ndim != 3 or pixels.shape[2] < 3 or pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise InputError(f"image must be H×W×3, got shape {pixels.shape}")
    model, trained = load_depth_module(model_path)
    import torch  # loaded (and checked) by load_depth_module

    height, width = pixels.shape[:2]
    rows, cols = network_size(height, width, trained)
    srgb = linear_to_srgb(np.nan_to_num(pixels[..., :3], nan=0.0, posinf=1.0, neginf=0.0))
    shrinking = rows * cols < height * width
    small = cv2.resize(np.ascontiguousarray(srgb), (cols, rows),
                       interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    with torch.inference_mode():
        heads = model(torch.from_numpy(small.transpose(2, 0, 1).copy())[None])
    maps = [cv2.resize(head[0, 0].numpy(), (width, height), interpolation=cv2.INTER_LINEAR) for head in heads]
    return tuple(np.clip(m, 0, 1).astype(np.float32) for m in maps)


@register("deeplens")
def estimate_deeplens(image: np.ndarray, model_path: str | os.PathLike | None = None, **_options) -> DepthEstimate:
    """Disparity of a photo from a trained DeepLens depth module, and a focus point on its subject.

    image: linear RGB float32 H×W×3 in [0, 1]. model_path: the checkpoint (.pt) written by
    ``lensblur train deeplens --module depth``; None: the shipped deeplens-depth.pt.
    Returns DepthEstimate with float32 H×W disparity in [0, 1] (stretched), 1 = nearest, at the
    image's size, and the suggested focus point (x, y) in pixels.
    """
    disparity, segmentation = predict(image, model_path)
    disparity = normalize_depth(disparity, "disparity", normalize=True)
    height, width = disparity.shape
    name = Path(model_path).name if model_path is not None else f"{SHIPPED}.pt, shipped"
    notes = [f"DeepLens depth module ({name}), resized to {width}×{height}"]
    subject = segmentation > 0.5
    if subject.any():
        score = np.where(subject, disparity, -1.0)
        notes.append(f"subject segmented by the depth module covers {subject.mean():.0%} of the image")
    else:
        # the nearest point of the central third: the frame's bottom edge is often nearest but
        # rarely the subject
        score = np.full_like(disparity, -1.0)
        centre = (slice(height // 3, 2 * height // 3), slice(width // 3, 2 * width // 3))
        score[centre] = disparity[centre]
        notes.append("no subject segmented: focusing on the nearest point of the central third")
    y, x = np.unravel_index(int(np.argmax(cv2.blur(score.astype(np.float32), (9, 9)))), score.shape)
    return DepthEstimate(disparity=disparity.astype(np.float32), focus_point=(float(x), float(y)), notes=notes)
