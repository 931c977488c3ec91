"""Choosing where a photo's disparity comes from: a file, depth the phone embedded, or an estimate.

``--depth auto`` (the default) uses depth embedded in the photo, else an estimate; ``--depth
embedded`` insists on embedded depth; ``--depth estimate`` always estimates; anything else is a
depth-map file. The estimate is the offline automatic one (lensblur.depth.auto) unless a model is
given: ``--depth-model PATH.onnx`` (with ``--depth-preset``), ``--depth-model megadepth:PATH`` or
``--depth-model deeplens`` (DeepLens' shipped depth module; the default of ``--renderer deeplens``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lensblur.color import srgb_to_linear
from lensblur.errors import InputError
from lensblur.io.depth import fit_to_image, read_depth
from lensblur.io.embedded import find_embedded_depth
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
    focus_point: (x, y) in pixels where the phone focused (Google GFocus), or None.
    blur_at_infinity: the phone's blur radius at infinity as a fraction of the image width
        (GFocus:BlurAtInfinity), or None.
    """

    disparity: np.ndarray
    pixels: np.ndarray
    matte: np.ndarray | None
    source: str
    notes: list[str] = field(default_factory=list)
    focus_point: tuple[float, float] | None = None
    blur_at_infinity: float | None = None


def choose_depth(photo_path: str, pixels: np.ndarray, spec: str = AUTO, kind: str = "disparity",
                 near: float | None = None, far: float | None = None, model: str | None = None,
                 preset: str | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> DepthChoice:
    """Resolve ``spec`` (auto, embedded, estimate or a file path) for the photo at ``photo_path``.

    pixels: the photo's linear H×W×3 pixels (as read_image returns them); kind/near/far describe a
    depth-map file (see lensblur.io.depth.read_depth); model/preset choose the estimator (see the
    module docstring). max_pixels: the photo's pixel limit; a depth file or embedded map may have
    at most lensblur.io.limits.map_limit(photo pixels, max_pixels) pixels (LimitError, checked
    before decoding). Raises InputError when no depth can be had.
    """
    height, width = pixels.shape[:2]
    if spec not in (AUTO, EMBEDDED, ESTIMATE):
        limit = map_limit(height * width, max_pixels)
        disparity = fit_to_image(read_depth(spec, kind=kind, near=near, far=far, max_pixels=limit), height, width)
        return DepthChoice(disparity, pixels, None, f"file {spec}")
    found = None if spec == ESTIMATE else find_embedded_depth(photo_path, max_pixels)
    if found is None and spec == EMBEDDED:
        raise InputError(f"{photo_path} holds no depth map that lensblur can read: use --depth auto or FILE")
    if found is None:
        return estimate_depth(pixels, model, preset)
    disparity = fit_to_image(found.disparity, height, width)
    matte = None if found.matte is None else np.clip(fit_to_image(found.matte, height, width), 0, 1)
    if found.sharp_image is not None and found.sharp_image.shape[:2] == (height, width):
        pixels = srgb_to_linear(found.sharp_image.astype(np.float32) / 255.0)
        source = f"{found.source} embedded in the photo (rendering from the sharp original it stores)"
    else:
        source = f"{found.source} embedded in the photo"
    focus = found.focus or {}
    point = None
    if _fraction(focus.get("FocalPointX")) is not None and _fraction(focus.get("FocalPointY")) is not None:
        point = (_fraction(focus["FocalPointX"]) * (width - 1), _fraction(focus["FocalPointY"]) * (height - 1))
    blur = _fraction(focus.get("BlurAtInfinity"))
    return DepthChoice(disparity, pixels, matte, source, list(found.notes), point, blur if blur else None)


def estimate_depth(pixels: np.ndarray, model: str | None = None, preset: str | None = None) -> DepthChoice:
    """Estimate disparity for linear ``pixels`` with the automatic estimator or ``model``."""
    from lensblur.depth import get_estimator

    if model is None:
        name, options = "auto", {}
    elif model == "deeplens":
        name, options = "deeplens", {}
    elif model.startswith("megadepth:"):
        name, options = "megadepth", {"model_path": model.split(":", 1)[1]}
    else:
        name, options = "onnx", {"model_path": model}
        if preset:
            options["preset"] = preset
    estimate = get_estimator(name)(pixels, **options)
    height, width = pixels.shape[:2]
    disparity = fit_to_image(estimate.disparity, height, width)
    matte = None if estimate.matte is None else np.clip(fit_to_image(estimate.matte, height, width), 0, 1)
    source = "automatic estimate" if model is None else f"estimated with {model}"
    return DepthChoice(disparity, pixels, matte, source, list(estimate.notes), estimate.focus_point)


def _fraction(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if 0.0 <= number <= 1.0 else None
