"""The Python API: the few functions a user imports from ``lensblur``."""

from __future__ import annotations

import numpy as np

from lensblur.aperture import Aperture
from lensblur.color import linear_to_srgb, srgb_to_linear
from lensblur.errors import InputError
from lensblur.io.depth import GUIDED, fit_to_image, normalize_depth, read_depth
from lensblur.io.images import Photo, read_image, write_image
from lensblur.lens import Highlights, Lens, check_blur_radius, focus_disparity_at
from lensblur.renderers import DEFAULT_RENDERER, render_with

__all__ = ["render", "read_image", "write_image", "read_depth", "make_lens", "estimate_depth"]


def make_lens(disparity: np.ndarray, *, blur: float = 20.0, focus: tuple[float, float] | None = None,
              focus_disparity: float | None = None, focus_range: float = 0.0,
              aperture: Aperture | str = "disk", highlights: Highlights | bool | None = True,
              grain: str | float | None = None, rim: float = 0.0, cat_eye: float = 0.0,
              edge_matte: bool = False) -> Lens:
    """Build a :class:`Lens` from user-level settings.

    focus: (x, y) pixel to focus on; focus_disparity: a disparity in [0, 1] instead (default:
    the point's disparity, else the median disparity of the central ninth of the image).
    aperture: an :class:`Aperture` or its text form (``disk``, ``blades:6:15``).
    highlights: True for the default recovery, False/None for none, or a :class:`Highlights`.
    grain: None, "auto" or a deviation in encoded units; rim, cat_eye: see :class:`Lens`.
    edge_matte: matte strong depth steps and render their sharp near side as its own layer
        (lensblur.renderers.edge_matte; the scatter renderer without a matte; off by default: it
        takes two to three times the rest of the render on a phone photo).
    """
    if focus is not None and focus_disparity is not None:
        raise InputError("give either a focus point or a focus disparity, not both")
    if focus is not None:
        focus_disparity = focus_disparity_at(disparity, *focus)
    elif focus_disparity is None:
        height, width = disparity.shape
        focus_disparity = float(np.median(disparity[height // 3:2 * height // 3, width // 3:2 * width // 3]))
    if isinstance(aperture, str):
        aperture = Aperture.parse(aperture)
    if highlights is True:
        highlights = Highlights()
    elif highlights is False:
        highlights = None
    return Lens(blur=float(blur), focus_disparity=float(focus_disparity), focus_range=float(focus_range),
                aperture=aperture, highlights=highlights, grain=grain, rim=rim, cat_eye=cat_eye,
                edge_matte=bool(edge_matte))


def render(image: np.ndarray | Photo, disparity: np.ndarray | None = None, *, lens: Lens | None = None,
           renderer: str = DEFAULT_RENDERER, matte: np.ndarray | None = None, renderer_options: dict | None = None,
           normalize: bool = False, depth_upsample: str = GUIDED, **lens_settings) -> np.ndarray:
    """Render lens blur.

    image: a :class:`Photo`, a linear float32 H×W×3 array (values in [0, 1]), or a uint8/uint16
        array taken as sRGB-encoded (the result then has the same dtype and encoding).
    disparity: H×W (or any size of the same aspect ratio), 1 = nearest, read by the same rule as a
        file (lensblur.io.depth): an integer array is divided by its type's maximum, a float array
        in [0, 1] is used as given, one outside [0, 1] is stretched to its min..max; a smaller one
        is enlarged to the image as ``depth_upsample`` says. None only with ``renderer="deeplens"``:
        DeepLens' shipped depth module then predicts it from the image (the paper's single-image
        path), and without a focus setting the lens focuses on the subject it finds.
    normalize: stretch every disparity array to its own min..max (``--normalize``).
    depth_upsample: "guided" (default): a disparity smaller than the image is enlarged with its
        edges put on the image's edges (lensblur.io.depth.fit_to_image), so in-focus edges do not
        glow; "bilinear": plain bilinear interpolation (``--depth-upsample``).
    lens: full settings; otherwise keyword settings as in :func:`make_lens` (blur in pixels,
        focus=(x, y), focus_disparity, focus_range, aperture, highlights, grain, edge_matte).
    renderer: a registered renderer name (``lensblur.renderers.available_renderers()``).
    matte: optional subject alpha H×W in [0, 1] that the renderer keeps sharp.
    renderer_options: extra keyword options of the renderer, e.g. ``{"checkpoint": "my.pt"}`` for
        a learned one.
    The largest blur radius may be at most a tenth of the image diagonal (at least 64 px;
    lensblur.lens.radius_limit), else LimitError.
    Returns linear float32 H×W×3 (or the input's integer dtype, sRGB-encoded).
    """
    pixels = image.pixels if isinstance(image, Photo) else np.asarray(image)
    integer_dtype = pixels.dtype if pixels.dtype in (np.uint8, np.uint16) else None
    if integer_dtype is not None:
        pixels = srgb_to_linear(pixels.astype(np.float32) / np.iinfo(integer_dtype).max)
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise InputError(f"image must be H×W×3, got shape {pixels.shape}")
    pixels = np.ascontiguousarray(pixels, dtype=np.float32)
    if not np.isfinite(pixels).all():
        raise InputError("image holds NaN or infinite values")
    height, width = pixels.shape[:2]
    if disparity is None:
        disparity, lens_settings = _predicted_disparity(pixels, renderer, lens, lens_settings)
    disparity = fit_to_image(normalize_depth(disparity, "disparity", normalize=normalize), height, width, pixels,
                             depth_upsample)
    if matte is not None:
        matte = np.asarray(matte, dtype=np.float32)
        if not np.isfinite(matte).all():
            raise InputError("matte holds NaN or infinite values")
        matte = np.clip(fit_to_image(matte, height, width), 0, 1)
    if lens is None:
        lens = make_lens(disparity, **lens_settings)
    elif lens_settings:
        raise InputError("give either lens= or keyword lens settings, not both")
    check_blur_radius(disparity, lens)
    result = render_with(renderer, pixels, disparity, lens, matte=matte, **(renderer_options or {}))
    if integer_dtype is not None:
        scale = np.iinfo(integer_dtype).max
        return np.round(linear_to_srgb(result) * scale).astype(integer_dtype)
    return result


def _predicted_disparity(pixels: np.ndarray, renderer: str, lens: Lens | None, lens_settings: dict):
    """(disparity, lens settings) when ``render`` got no disparity: only DeepLens predicts its own."""
    if renderer != "deeplens":
        raise InputError(f"renderer {renderer!r} needs a disparity map (only deeplens predicts its own)")
    from lensblur.depth import get_estimator

    estimate = get_estimator("deeplens")(pixels)
    if lens is None and "focus" not in lens_settings and "focus_disparity" not in lens_settings:
        lens_settings = {**lens_settings, "focus": estimate.focus_point}
    return estimate.disparity, lens_settings


def estimate_depth(image: np.ndarray | Photo, model: str | None = None, preset: str | None = None):
    """Estimate disparity for a photo that holds none.

    image: a :class:`Photo` or linear float32 H×W×3; model: None for the built-in automatic
    estimate (people segmentation, faces, saliency, layout), ``PATH.onnx`` for an ONNX depth model
    (with ``preset``, e.g. ``depth-anything-v2``) or ``megadepth:PATH``. Returns a
    :class:`lensblur.depth.DepthEstimate` (disparity in [0, 1] at the image's size, matte,
    suggested focus point, notes).
    """
    from lensblur.depth import DepthEstimate
    from lensblur.depth_source import estimate_depth as choose_estimate

    pixels = image.pixels if isinstance(image, Photo) else np.asarray(image, dtype=np.float32)
    choice = choose_estimate(pixels, model, preset)
    return DepthEstimate(choice.disparity, choice.matte, choice.focus_point, choice.notes)
