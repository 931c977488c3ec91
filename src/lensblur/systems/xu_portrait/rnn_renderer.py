"""``portrait-rnn``: the learned portrait renderer of Xu et al. (2018), sections 3.1, 3.2 and 3.4.

1. A coarse subject segmentation: the caller's matte; else MediaPipe's person segmentation (soft,
   when its models are installed and it finds an in-focus person covering ≥ 1 % of the frame);
   else the in-focus region of the disparity (|c| ≤ 1 px, softened).
2. With ``refine=True``, the spatial propagation network refines the segmentation and the
   disparity (off by default: the shipped SPN measured no gain, docs/portrait-rnn.md).
3. The spatially-variant recursive filter, guided by them and by the signed circle of
   confusion, renders the blur; it was trained to reproduce the ``portrait`` renderer (graph-cut
   layers, KNN matting) at a fraction of its cost.

Weights: the shipped ``lensblur/systems/xu_portrait/weights/portrait_rnn.pt`` or ``checkpoint=PATH`` (from
``lensblur train portrait-rnn``). See docs/portrait-rnn.md.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from lensblur.color import linear_to_srgb
from lensblur.errors import InputError
from lensblur.lens import Lens, signed_coc
from lensblur.renderers import register

CHECKPOINT_NAME = "portrait_rnn"
IN_FOCUS_RADIUS = 1.0   # |c| in pixels up to which the disparity fallback counts a pixel as subject
MIN_PERSON = 0.01       # share of the frame a segmented person must cover to count
PERSON_FOCUS = 0.5      # a person blurred more than this share of the rest's mean blur is not the subject


@register("portrait-rnn")
def render_portrait_rnn(image: np.ndarray, disparity: np.ndarray, lens: Lens, matte: np.ndarray | None = None,
                        checkpoint: str | None = None, refine: bool = False) -> np.ndarray:
    """Render with the learned SPN + recursive filter (see the module docstring).

    image: linear float32 H×W×3 in [0, 1]; disparity: float32 H×W in [0, 1] (1 = nearest);
    lens: blur K, focus disparity and range and highlight recovery are honoured (the aperture
    shape, rim, cat's eye and grain are not modelled); matte: optional subject alpha H×W in [0, 1].
    checkpoint: a checkpoint path instead of the shipped one. refine: run the SPN on the
    segmentation and disparity first (default False: on the held-out benchmark the shipped SPN
    does not improve the result, see benchmarks/results/portrait_rnn.md).
    Returns linear float32 H×W×3 in [0, 1].
    """
    image, disparity, matte = _checked(image, disparity, matte)
    from lensblur.models import require_torch

    torch = require_torch()
    from lensblur.systems.xu_portrait import rnn_model as model_module

    coc = signed_coc(disparity, lens.blur, lens.focus_disparity, lens.focus_range)
    if not (np.abs(coc) >= 0.5).any():
        return image.copy()
    model = load_model(str(checkpoint) if checkpoint is not None else None)
    segmentation = matte if matte is not None else coarse_segmentation(image, coc)
    with torch.inference_mode():
        return model_module.render(model, image, disparity, segmentation, focus_disparity=lens.focus_disparity,
                                   blur=lens.blur, focus_range=lens.focus_range, highlights=lens.highlights,
                                   refine=refine)


@functools.lru_cache(maxsize=4)
def load_model(checkpoint: str | None = None):
    """The :class:`lensblur.systems.xu_portrait.rnn_model.PortraitRNN` of a checkpoint (default: shipped),
    cached; InputError for a missing or foreign file."""
    from lensblur.systems.xu_portrait.rnn_model import SYSTEM, PortraitRNN
    from lensblur.training.checkpoint import load_checkpoint, shipped_checkpoint

    path = checkpoint if checkpoint is not None else shipped_checkpoint(CHECKPOINT_NAME)
    payload = load_checkpoint(path, SYSTEM)
    try:
        return PortraitRNN.from_checkpoint(payload)
    except (KeyError, RuntimeError, TypeError) as error:
        reason = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
        raise InputError(f"checkpoint {path}: does not fit the portrait-rnn model ({reason})") from None


def coarse_segmentation(image: np.ndarray, coc: np.ndarray) -> np.ndarray:
    """A coarse subject mask (float32 H×W in [0, 1]) for the SPN to refine: MediaPipe's soft
    person segmentation when available and the person is in focus, else the in-focus region."""
    from lensblur.depth import people

    blur = np.abs(coc)
    if people.models_available():
        person = people.segment_person(linear_to_srgb(np.clip(image, 0, 1))).astype(np.float32)
        hard = person > 0.5
        if MIN_PERSON <= hard.mean() < 1.0 and blur[hard].mean() <= PERSON_FOCUS * blur[~hard].mean():
            return person
    in_focus = (blur <= IN_FOCUS_RADIUS).astype(np.float32)
    return cv2.GaussianBlur(in_focus, (0, 0), 1.0)


def _checked(image, disparity, matte):
    """Validated float32 arrays; InputError on bad shapes or non-finite values."""
    image = np.asarray(image)
    disparity = np.asarray(disparity)
    if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 2:
        raise InputError(f"image must be H×W×3 (at least 2×2), got shape {image.shape}")
    if disparity.shape != image.shape[:2]:
        raise InputError(f"disparity shape {disparity.shape} does not match the image's {image.shape[:2]}")
    if not np.isfinite(image).all() or not np.isfinite(disparity).all():
        raise InputError("image and disparity must be finite (no NaN or infinity)")
    image = np.ascontiguousarray(image, dtype=np.float32)
    disparity = np.clip(np.ascontiguousarray(disparity, dtype=np.float32), 0.0, 1.0)
    if matte is not None:
        matte = np.asarray(matte, dtype=np.float32)
        if matte.shape != image.shape[:2] or not np.isfinite(matte).all():
            raise InputError(f"matte must be a finite H×W map matching the image, got shape {matte.shape}")
        matte = np.clip(matte, 0.0, 1.0)
    return image, disparity, matte
