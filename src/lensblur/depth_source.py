"""Choosing where a photo's disparity comes from: a file, depth the phone embedded, or an estimate.

``--depth auto`` (the default) uses depth embedded in the photo, else an estimate; ``--depth
embedded`` insists on embedded depth; ``--depth estimate`` always estimates; anything else is a
depth-map file. The estimate comes from a depth model when one is given or set (``--depth-model``,
``LENSBLUR_DEPTH_MODEL``, ``lensblur config set depth-model``; lensblur.depth.model_choice; ``--depth-model
deeplens`` is DeepLens' shipped depth module, the default of ``--renderer deeplens``), else from the
weight-free automatic estimate (lensblur.depth.auto).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from lensblur.color import srgb_to_linear
from lensblur.errors import InputError
from lensblur.io.depth import GUIDED, fit_to_image, read_depth_explained, upsampling_note
from lensblur.io.limits import DEFAULT_MAX_PIXELS, map_limit

AUTO, EMBEDDED, ESTIMATE = "auto", "embedded", "estimate"


@dataclass
class DepthChoice:
    """The disparity to render with and what came with it.

    disparity: float32 H×W in [0, 1] (1 = nearest), fitted to the photo's size.
    pixels: linear H×W×3 image to render from: the photo, or the sharp original a phone stored
        next to its own blurred result (Google Lens Blur).
    matte: float32 H×W subject alpha from the file (Apple portrait matte), or None.
    source: one line saying where the depth came from.
    notes: warnings worth showing with --verbose.
    focus_point: (x, y) in pixels where the phone focused (Google GFocus), else inside the subject
        of the portrait matte it stored (Apple), else what the estimate suggests, or None.
    blur_at_infinity: the phone's blur radius at infinity as a fraction of the image width
        (GFocus:BlurAtInfinity), or None.
    scaling: how the stored values became disparity in [0, 1] ("16-bit PNG, scaled by 65535",
        "PNG stretched from 0.2..0.65 (--normalize)", …), shown by -v and ``lensblur info``.
    upsampling: how the map was brought to the photo's size (lensblur.io.depth.upsampling_note).
    """

    disparity: np.ndarray
    pixels: np.ndarray
    matte: np.ndarray | None
    source: str
    notes: list[str] = field(default_factory=list)
    focus_point: tuple[float, float] | None = None
    blur_at_infinity: float | None = None
    scaling: str = ""
    upsampling: str = ""


def choose_depth(photo_path: str, pixels: np.ndarray, spec: str = AUTO, kind: str = "disparity",
                 near: float | None = None, far: float | None = None, model: str | None = None,
                 preset: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
                 normalize: bool = False, colormap: str | None = None,
                 fallback_model: str | None = None, upsample: str = GUIDED) -> DepthChoice:
    """Resolve ``spec`` (auto, embedded, estimate or a file path) for the photo at ``photo_path``.

    pixels: the photo's linear H×W×3 pixels (as read_image returns them); kind/near/far describe a
    depth-map file (see lensblur.io.depth.read_depth); model/preset choose the estimator (see the
    module docstring). colormap: the colormap of a colour-mapped depth-map file (read_depth).
    max_pixels: the photo's pixel limit; a depth file or embedded map may have
    at most lensblur.io.limits.map_limit(photo pixels, max_pixels) pixels (LimitError, checked
    before decoding). normalize: stretch a disparity file to its own min..max (``--normalize``);
    embedded maps follow their format's own convention and estimates their model's.
    fallback_model: the model to estimate with when none is given or set (``--renderer deeplens``
    passes its own depth module); None: the weight-free estimate. upsample: how a map smaller
    than the photo is enlarged, "guided" by the photo's edges (default) or "bilinear"
    (lensblur.io.depth.fit_to_image; ``--depth-upsample``). Raises InputError when no depth
    can be had.
    """
    height, width = pixels.shape[:2]
    if spec not in (AUTO, EMBEDDED, ESTIMATE):
        limit = map_limit(height * width, max_pixels)
        disparity, scaling = read_depth_explained(spec, kind, near, far, limit, normalize, colormap)
        source = f"file {spec}" + (f" (colour-mapped with {colormap}, read back)" if colormap else "")
        return DepthChoice(fit_to_image(disparity, height, width, pixels, upsample), pixels, None, source,
                           scaling=scaling, upsampling=upsampling_note(disparity.shape, height, width, upsample))
    from lensblur.io.embedded import find_embedded_depth  # not needed (nor imported) for a depth file

    found = None if spec == ESTIMATE else find_embedded_depth(photo_path, max_pixels)
    if found is None and spec == EMBEDDED:
        raise InputError(f"{photo_path} holds no depth map that lensblur can read: use --depth auto or FILE")
    if found is None:
        return estimate_depth(pixels, model, preset, fallback_model, upsample)
    if found.sharp_image is not None and found.sharp_image.shape[:2] == (height, width):
        pixels = srgb_to_linear(found.sharp_image.astype(np.float32) / 255.0)
        source = f"{found.source} embedded in the photo (rendering from the sharp original it stores)"
    else:
        source = f"{found.source} embedded in the photo"
    disparity = fit_to_image(found.disparity, height, width, pixels, upsample)
    matte = None if found.matte is None else np.clip(fit_to_image(found.matte, height, width), 0, 1)
    focus = found.focus or {}
    point, notes = None, list(found.notes)
    if _fraction(focus.get("FocalPointX")) is not None and _fraction(focus.get("FocalPointY")) is not None:
        point = (_fraction(focus["FocalPointX"]) * (width - 1), _fraction(focus["FocalPointY"]) * (height - 1))
    elif matte is not None and (point := subject_point(matte, disparity)) is not None:
        notes.append(f"focus on the subject of the portrait matte the phone stored, at ({point[0]:.0f}, "
                     f"{point[1]:.0f}): the phone kept that subject sharp")
    blur = _fraction(focus.get("BlurAtInfinity"))
    return DepthChoice(disparity, pixels, matte, source, notes, point, blur if blur else None,
                       f"{found.source} as the file defines it (levels ÷ their type's maximum, or through "
                       "its own near/far)", upsampling_note(found.disparity.shape, height, width, upsample))


def subject_point(matte: np.ndarray, disparity: np.ndarray | None = None,
                  step: int = 4) -> tuple[float, float] | None:
    """(x, y) in pixels of a subject pixel (matte > 0.5) to focus on, or None when the subject
    covers under 1 % of the frame.

    With ``disparity`` (H×W in [0, 1], the matte's size) the point is one whose neighbourhood (the
    focus window of lensblur.lens.focus_disparity_at, 2 % of the diagonal, inside the subject where
    the subject is wide enough) has the subject's median disparity within 0.01, so the focus lands
    on the subject's typical depth, not on a hand held out; of those, the one nearest the
    subject's centroid. step: sampling stride in pixels.
    """
    inside = np.asarray(matte)[::step, ::step] > 0.5
    if inside.mean() < 0.01:
        return None
    if disparity is not None:
        sampled = np.ascontiguousarray(np.asarray(disparity, np.float32)[::step, ::step])
        side = 2 * max(1, int(0.02 * np.hypot(*np.asarray(matte).shape) / step)) + 1
        typical = np.abs(cv2.blur(sampled, (side, side)) - np.median(sampled[inside])) <= 0.01
        core = cv2.erode(inside.astype(np.uint8), np.ones((side, side), np.uint8)).astype(bool)
        for candidates in (core & typical, inside & typical):
            if candidates.any():
                inside = candidates
                break
    ys, xs = np.nonzero(inside)
    nearest = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
    return float(xs[nearest] * step), float(ys[nearest] * step)


def estimate_depth(pixels: np.ndarray, model: str | None = None, preset: str | None = None,
                   fallback_model: str | None = None, upsample: str = GUIDED) -> DepthChoice:
    """Estimate disparity for linear ``pixels``.

    model: a model (PATH.onnx, deeplens[:PATH], megadepth:PATH), ``"none"`` for the weight-free
    automatic estimate, or None for the default: LENSBLUR_DEPTH_MODEL, else the settings file's
    depth-model, else ``fallback_model`` when given, else the automatic estimate
    (lensblur.depth.model_choice). preset: the ONNX preset. upsample: as in :func:`choose_depth`,
    for an estimate smaller than the photo.
    """
    from lensblur.depth import get_estimator
    from lensblur.depth.model_choice import resolve_model, run_model

    chosen = resolve_model(model, preset, fallback_model)
    if chosen is None:
        estimate, source = get_estimator("auto")(pixels), "automatic estimate"
    else:
        estimate, source = run_model(chosen, pixels), chosen.describe()
    height, width = pixels.shape[:2]
    disparity = fit_to_image(estimate.disparity, height, width, pixels, upsample)
    matte = None if estimate.matte is None else np.clip(fit_to_image(estimate.matte, height, width), 0, 1)
    return DepthChoice(disparity, pixels, matte, source, list(estimate.notes), estimate.focus_point,
                       scaling="relative, on the estimator's own scale",
                       upsampling=upsampling_note(estimate.disparity.shape, height, width, upsample))


def _fraction(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if 0.0 <= number <= 1.0 else None
