"""Depth-map files: reading them as disparity, fitting them to the photo, writing them.

Disparity D is H×W float32 in [0, 1], 1 = nearest (docs/conventions.md). One rule for files and
arrays alike: integer maps are divided by their type's maximum (a 16-bit PNG by 65535), float maps
inside [0, 1] are used as given, and only a map outside [0, 1] (or any map with ``normalize=True``,
``--normalize``) is stretched to its own min..max. A metric or relative depth Z with range
[Zn, Zf] becomes D = (1/Z − 1/Zf) / (1/Zn − 1/Zf). See docs/io.md.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from lensblur.errors import InputError, OutputError
from lensblur.io import bmff
from lensblur.io.atomic import atomic_output, check_output
from lensblur.io.images import heif_support, opencv_grey_png
from lensblur.io.limits import DEFAULT_MAX_PIXELS, check_pixels, pil_strict

KINDS = ("disparity", "depth")
MAX_INVALID_FRACTION = 0.5
ASPECT_TOLERANCE = 0.02
GUIDED, BILINEAR = "guided", "bilinear"
UPSAMPLE_METHODS = (GUIDED, BILINEAR)  # how a map smaller than the photo is enlarged (--depth-upsample)

_PFM_HEADER = re.compile(rb"(PF|Pf)\s+(\d+)\s+(\d+)\s+(\S+)\s")


def read_depth(path: str | os.PathLike, kind: str = "disparity", near: float | None = None,
               far: float | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
               normalize: bool = False, colormap: str | None = None) -> np.ndarray:
    """Read a depth or disparity map and return disparity, float32 H×W in [0, 1], 1 = nearest.

    path: PNG (8/16-bit grey, or grey stored as RGB), TIFF (integer or float32), JPEG, .npy (2-D
        array) or .pfm (grey "Pf" or colour "PF", first channel). A colour image (channels that
        differ) is refused, naming the colormap it looks drawn with, unless ``colormap`` names it
        (it is then read back as the position on that colormap, in [0, 1]).
    kind: "disparity" (bigger = nearer; integers ÷ their type's maximum, floats in [0, 1] as
        given, anything else stretched to its min..max) or "depth" (distance Z, bigger = farther,
        any unit).
    normalize: for disparity, stretch every map to its own min..max (``--normalize``).
    near, far: for kind="depth", the distances Zn < Zf (same unit as the map) that map to
        disparity 1 and 0; by default the map's own minimum and maximum. Ignored for disparity
        (the command line also uses them for the camera's blur scale).
    max_pixels: refuse maps with more pixels than this, checked from the file's header before
        decoding (lensblur.io.limits).
    colormap: the colormap a colour-mapped depth picture was drawn with (lensblur.io.colormaps.NAMES,
        e.g. "Spectral_r", "magma"); each pixel becomes the position of its nearest colormap colour.
    NaN, inf and (for depth) values <= 0 are filled from the nearest valid pixel; more than half
    invalid raises InputError. Every failure raises InputError naming the file.
    """
    return read_depth_explained(path, kind, near, far, max_pixels, normalize, colormap)[0]


def read_depth_explained(path: str | os.PathLike, kind: str = "disparity", near: float | None = None,
                         far: float | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
                         normalize: bool = False, colormap: str | None = None) -> tuple[np.ndarray, str]:
    """:func:`read_depth` and one line saying how the values became disparity, e.g. "16-bit PNG,
    scaled by 65535" or "float TIFF stretched from 0.2..0.65 (--normalize)"."""
    path = Path(path)
    values = _load(path, max_pixels, colormap)
    suffix = path.suffix.lower().lstrip(".")
    what = {"tif": "TIFF", "jpg": "JPEG"}.get(suffix, suffix.upper() or "file")
    return _normalize(values, kind, near, far, f"depth map {path}", normalize, what)


def normalize_depth(values: np.ndarray, kind: str = "disparity", near: float | None = None,
                    far: float | None = None, normalize: bool = False) -> np.ndarray:
    """Convert an H×W depth or disparity array to disparity in [0, 1] exactly as :func:`read_depth`
    (the same array saved as a file and read back gives the same disparity).

    A constant map that has to be stretched (max − min < 1e-6) holds no depth: it is returned as
    all 1.0 (everything at one distance, sharp when focused on).
    """
    return _normalize(np.asarray(values), kind, near, far, "depth map", normalize, "array")[0]


def fit_to_image(disparity: np.ndarray, height: int, width: int, photo: np.ndarray | None = None,
                 upsample: str = GUIDED) -> np.ndarray:
    """Bring an h×w map to the photo's height × width pixels, float32: the one place every depth map
    (embedded, ``--depth FILE``, an array given to the API, an estimate) is fitted to its photo.

    photo: the photo's linear H×W×3 pixels. A map smaller than the photo is enlarged by edge-aware
    guided upsampling (upsample="guided", the default; lensblur.depth.refine.upsample_where_explained), so
    its depth edges land on the photo's edges instead of a ramp as wide as one map pixel that
    makes in-focus edges glow; upsample="bilinear", or no photo, enlarges it bilinearly
    (cv2.INTER_LINEAR). A map at the photo's size is returned unchanged (copied); a larger one is
    shrunk bilinearly. The aspect ratios must agree within 2 %; a map that matches only when turned
    by 90° (a phone photo whose orientation was applied to the image but not to the depth) is
    refused rather than rotated silently.
    """
    if upsample not in UPSAMPLE_METHODS:
        raise InputError(f"depth upsampling must be one of {', '.join(UPSAMPLE_METHODS)}, got {upsample!r}")
    values = np.asarray(disparity, dtype=np.float32)
    if values.ndim == 3 and values.shape[2] == 1:
        values = values[..., 0]
    if values.ndim != 2 or values.size == 0:
        raise InputError(f"depth map must be a 2-D array, got shape {values.shape}")
    rows, cols = values.shape
    if (rows, cols) == (height, width):
        return values.copy()
    image_aspect = width / height
    if abs((cols / rows) / image_aspect - 1) > ASPECT_TOLERANCE:
        if abs((rows / cols) / image_aspect - 1) <= ASPECT_TOLERANCE:
            raise InputError(f"depth map is {cols}×{rows} but the image is {width}×{height}: it looks "
                             "turned by 90° (phone orientation); rotate the depth map to match")
        raise InputError(f"depth map is {cols}×{rows} but the image is {width}×{height}: "
                         "aspect ratios differ")
    if upsample == GUIDED and photo is not None and rows <= height and cols <= width:
        from lensblur.depth.refine import photo_guide, upsample_where_explained

        return upsample_where_explained(photo_guide(photo), values, overwrite_guide=True)  # the guide is ours
    return cv2.resize(np.ascontiguousarray(values), (width, height), interpolation=cv2.INTER_LINEAR)


def upsampling_note(shape: tuple[int, int], height: int, width: int, upsample: str = GUIDED) -> str:
    """One line for -v and ``lensblur info``: how :func:`fit_to_image` brought a map of ``shape``
    (rows, cols) to height × width with a photo as guide."""
    rows, cols = shape[:2]
    if (rows, cols) == (height, width):
        return f"{cols}×{rows}, the photo's size: used as it is"
    if rows > height or cols > width:
        return f"{cols}×{rows} shrunk to {width}×{height} (bilinear)"
    how = ("guided by the photo's edges" if upsample == GUIDED else "bilinear")
    return f"{cols}×{rows} upsampled to {width}×{height}, {how} (--depth-upsample {upsample})"


def write_disparity_png(path: str | os.PathLike, disparity: np.ndarray, overwrite: bool = False) -> None:
    """Write disparity in [0, 1] (clipped; NaN → 0) as a 16-bit grey PNG (0 → 0, 1 → 65535), atomically."""
    path = _png_path(path)
    values = np.round(_unit(disparity) * 65535).astype(np.uint16)
    with atomic_output(path, overwrite) as temp:
        Image.fromarray(values).save(temp, format="PNG")


def write_disparity_preview(path: str | os.PathLike, disparity: np.ndarray, overwrite: bool = False) -> None:
    """Write disparity in [0, 1] as an 8-bit colour PNG (magma colormap: near = bright), atomically."""
    path = _png_path(path)
    grey = np.round(_unit(disparity) * 255).astype(np.uint8)
    ok, data = cv2.imencode(".png", cv2.applyColorMap(grey, cv2.COLORMAP_MAGMA))
    if not ok:
        raise OutputError(f"cannot write {path}: PNG encoding failed")
    with atomic_output(path, overwrite) as temp:
        temp.write_bytes(data.tobytes())


def read_pfm(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read a Portable Float Map: float32 H×W ("Pf") or H×W×3 ("PF"), top row first.

    The scale line must be a finite non-zero number (its sign gives the byte order)."""
    path = Path(path)
    data = path.read_bytes()
    match = _PFM_HEADER.match(data)
    if match is None:
        raise InputError(f"depth map {path}: not a valid PFM file (bad header)")
    channels = 3 if match.group(1) == b"PF" else 1
    width, height = int(match.group(2)), int(match.group(3))
    check_pixels(width, height, max_pixels, f"depth map {path}")
    try:
        scale = float(match.group(4))
    except ValueError:
        scale = float("nan")
    if not np.isfinite(scale) or scale == 0:
        raise InputError(f"depth map {path}: PFM scale must be a finite non-zero number, got "
                         f"{match.group(4).decode(errors='replace')!r}")
    count = width * height * channels
    body = data[match.end():]
    if width == 0 or height == 0 or len(body) < 4 * count:
        raise InputError(f"depth map {path}: PFM file is truncated")
    # A negative scale means little-endian samples; rows are stored bottom to top.
    values = np.frombuffer(body, dtype="<f4" if scale < 0 else ">f4", count=count)
    values = values.reshape(height, width, channels)[::-1].astype(np.float32)
    return values[..., 0] if channels == 1 else values


def _load(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS, colormap: str | None = None) -> np.ndarray:
    if not path.exists():
        raise InputError(f"depth map {path}: no such file")
    if path.is_dir():
        raise InputError(f"depth map {path}: it is a folder")
    if path.stat().st_size == 0:
        raise InputError(f"depth map {path}: the file is empty")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            values = np.load(path, mmap_mode="r", allow_pickle=False)  # header only, until checked
            if values.ndim >= 2:
                check_pixels(values.shape[1], values.shape[0], max_pixels, f"depth map {path}")
            values = np.array(values)
        elif suffix == ".pfm":
            values = read_pfm(path, max_pixels)
        else:
            values = _grey(_load_image(path, max_pixels), path, colormap)
    except InputError:
        raise
    except Exception as error:  # noqa: BLE001 - numpy/cv2/PIL raise many types; one line for the user
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InputError(f"depth map {path}: cannot read it ({reason})") from None
    values = np.asarray(values)
    if values.ndim == 3:
        values = values[..., 0]
    if values.ndim != 2 or values.size == 0:
        raise InputError(f"depth map {path}: expected a 2-D map, got shape {values.shape}")
    if not (np.issubdtype(values.dtype, np.number) and not np.iscomplexobj(values)):
        raise InputError(f"depth map {path}: values are not real numbers ({values.dtype})")
    return values  # integer maps keep their type: it says what full scale is


_GREY_MODES = ("L", "I", "I;16", "I;16B", "I;16L", "F")


def _load_image(path: Path, max_pixels: int) -> np.ndarray:
    """The samples of an image file: H×W for grey, H×W×3 RGB (alpha dropped) for colour. PIL
    checks the size from the header and decodes (a damaged file raises here, not as libpng noise
    on stderr), except a plain grey PNG, which OpenCV decodes when it can do so quietly
    (lensblur.io.images.opencv_grey_png); colour files are then read again by OpenCV, which
    keeps 16-bit colour PNG and TIFF channels at full depth."""
    if _is_bmff(path):
        heif_support()
    try:
        with pil_strict(), Image.open(path) as image:
            check_pixels(*image.size, max_pixels, f"depth map {path}")
            if (values := opencv_grey_png(path, image)) is not None:
                return values
            image.load()
            if image.mode in _GREY_MODES:
                return np.asarray(image)
            fallback = np.asarray(image.convert("RGB"))
    except Image.UnidentifiedImageError:
        raise InputError(f"depth map {path}: cannot read it (not a PNG, TIFF, JPEG, NPY or PFM file)") from None
    values = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if values is None or values.ndim != 3 or values.shape[:2] != fallback.shape[:2] or values.shape[2] < 3:
        return fallback
    return values[..., 2::-1]  # BGR(A) → RGB


def _is_bmff(path: Path) -> bool:
    with open(path, "rb") as handle:
        return bmff.is_bmff(handle.read(12))


def _grey(values: np.ndarray, path: Path, colormap: str | None) -> np.ndarray:
    """One channel from an image's samples: grey as it is, grey stored as RGB from its first
    channel, a colour-mapped picture through ``colormap``; any other colour picture is refused
    in one line, naming the colormap it looks drawn with."""
    if values.ndim != 3:
        return values
    from lensblur.io import colormaps  # colour pictures only (≈8 ms to import)

    rgb8 = colormaps.to_rgb8(values)
    if colormap is not None:
        if colormaps.is_colour(rgb8):
            return colormaps.invert_colormap(rgb8, colormap, f"depth map {path}")
        colormaps.check_name(colormap)
        return values[..., 0]
    if not colormaps.is_colour(rgb8):
        return values[..., 0]
    guess = colormaps.guess_colormap(rgb8)
    if guess:
        raise InputError(f"depth map {path} is a colour picture drawn with a colormap (it looks like {guess}): "
                         f"give --depth-colormap {guess} to read it back, or a grey depth map")
    raise InputError(f"depth map {path} is a colour image, not a depth map (its colour channels differ): "
                     "give a grey depth or disparity map, or --depth-colormap NAME for a colour-mapped one")


def _normalize(values: np.ndarray, kind: str, near: float | None, far: float | None, label: str,
               normalize: bool = False, what: str = "array") -> tuple[np.ndarray, str]:
    """Disparity in [0, 1] and a note on how it was made (see the module docstring for the rule)."""
    if kind not in KINDS:
        raise InputError(f"depth kind must be one of {', '.join(KINDS)}, got {kind!r}")
    values = np.asarray(values)
    if values.ndim != 2 or values.size == 0:
        raise InputError(f"{label}: expected a 2-D map, got shape {values.shape}")
    if values.dtype == bool or not np.issubdtype(values.dtype, np.number) or np.iscomplexobj(values):
        raise InputError(f"{label}: values are not real numbers ({values.dtype})")
    full_scale = np.iinfo(values.dtype).max if np.issubdtype(values.dtype, np.integer) else None
    bits = values.dtype.itemsize * 8
    values = values.astype(np.float32) if full_scale is None else values
    invalid = ~np.isfinite(values) if full_scale is None else np.zeros(values.shape, bool)
    if kind == "depth":
        invalid |= ~(values > 0)  # a distance of zero or less is a sensor's "no data"
    values = fill_invalid(values, invalid, label)

    if kind == "disparity":
        low, high = float(values.min()), float(values.max())
        if not normalize and full_scale is not None and low >= 0:
            return _scaled(values, full_scale), f"{bits}-bit {what}, scaled by {full_scale}"
        if not normalize and full_scale is None and 0.0 <= low and high <= 1.0:
            return values.astype(np.float32), f"float {what} in [0, 1], used as given"
        reason = "--normalize" if normalize else "outside [0, 1]"
        note = f"{what} stretched from {low:.4g}..{high:.4g} ({reason})"
        if high - low < 1e-6:
            return np.ones(values.shape, np.float32), f"{what} constant at {low:.4g}: all at the focus ({reason})"
        # float64: the range of a float32 map spanning ±3e38 overflows float32
        return ((values.astype(np.float64) - low) / (high - low)).astype(np.float32), note

    z_near = float(values.min()) if near is None else float(near)
    z_far = float(values.max()) if far is None else float(far)
    if not (np.isfinite(z_near) and np.isfinite(z_far) and 0 < z_near <= z_far):
        raise InputError(f"near and far must satisfy 0 < near < far, got near={z_near:g}, far={z_far:g}")
    note = (f"depth {what}, 1/Z between near {z_near:.4g} and far {z_far:.4g}"
            f"{' (the map’s own min and max)' if near is None and far is None else ''}")
    if z_far - z_near < 1e-6 * z_far:
        return np.ones(values.shape, np.float32), note
    inverse = 1.0 / values.astype(np.float64)
    disparity = (inverse - 1.0 / z_far) / (1.0 / z_near - 1.0 / z_far)
    return np.clip(disparity, 0.0, 1.0).astype(np.float32), note


def _scaled(values: np.ndarray, full_scale: int) -> np.ndarray:
    """Integer levels / full_scale as float32, each the float64 quotient rounded to float32. Up to
    16 bits every level and the divisor are exact in float32 and the float32 quotient is already
    that number (rounding a float64 quotient to float32 rounds the same way: 53 ≥ 2·24 + 2 bits),
    without a float64 copy of the map."""
    if values.dtype.itemsize <= 2:
        return values.astype(np.float32) / np.float32(full_scale)
    return (values.astype(np.float64) / full_scale).astype(np.float32)


def fill_invalid(values: np.ndarray, invalid: np.ndarray, label: str) -> np.ndarray:
    """Replace invalid pixels (bool mask) by their nearest valid neighbour's value; InputError
    naming ``label`` when at least half are invalid."""
    if not invalid.any():
        return values
    fraction = float(invalid.mean())
    if fraction >= MAX_INVALID_FRACTION:
        raise InputError(f"{label}: {fraction:.0%} of its pixels hold no valid depth "
                         "(NaN, inf or <= 0); at most half may")
    from scipy import ndimage  # only maps with holes pay for importing scipy (≈0.4 s)

    _, (rows, cols) = ndimage.distance_transform_edt(invalid, return_indices=True)
    return values[rows, cols]


def _unit(disparity: np.ndarray) -> np.ndarray:
    values = np.asarray(disparity, dtype=np.float32)
    if values.ndim == 3 and values.shape[2] == 1:
        values = values[..., 0]
    if values.ndim != 2 or values.size == 0:
        raise InputError(f"disparity must be a 2-D array, got shape {values.shape}")
    return np.clip(np.nan_to_num(values, nan=0.0), 0.0, 1.0)


def check_png_output(path: str | os.PathLike, overwrite: bool = False, inputs=()) -> Path:
    """OutputError unless ``path`` is a .png that can be written (lensblur.io.atomic.check_output;
    ``inputs`` are never replaced); call it before any work."""
    return check_output(_png_path(path), overwrite, inputs)


def _png_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise OutputError(f"cannot write {path}: disparity maps are written as PNG (use a .png name)")
    return path
