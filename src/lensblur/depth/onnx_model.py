"""Depth from an ONNX model run through onnxruntime; lensblur downloads nothing.

``estimate_onnx(image, model_path, preset)`` encodes the linear photo to sRGB, resizes it to the
model's input (keep-aspect rounding for dynamic inputs, letterbox padding for fixed ones),
normalises it as the preset says, runs the model, maps the output back to the photo's size and
converts it to disparity D in [0, 1] (1 = nearest) with :func:`lensblur.io.depth.normalize_depth`.
With ``tile`` it also runs overlapping crops at the model's resolution and aligns each to the
whole-image prediction by least squares. See docs/depth-onnx.md. Registered as ``"onnx"``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from lensblur.color import linear_to_srgb
from lensblur.depth import DepthEstimate, register
from lensblur.errors import InputError
from lensblur.io.depth import fill_invalid, normalize_depth

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WHERE_WEIGHTS_COME_FROM = ("export the model (e.g. Depth Anything V2, MiDaS) to ONNX yourself or download an "
                           "ONNX export from its authors; lensblur downloads nothing")
TILE_OVERLAP = 0.25  # fraction of the tile side shared with each neighbour
TILE_MIN_RATIO = 1.5  # auto tiling only when the photo's short side exceeds 1.5 × the model side


@dataclass(frozen=True)
class OnnxPreset:
    """How to feed a family of depth networks and read their output.

    side: the model's working size in pixels (518, 384, 256).
    resize: "lower-bound" (short side ≥ side, keep aspect) or "upper-bound" (long side ≤ side,
        keep aspect); used when the model's input height/width are dynamic. Fixed dims win.
    multiple: dynamic input height and width are rounded to a multiple of this (14 for ViT-14).
    mean, std: per-channel normalisation x' = (x − mean) / std of sRGB-encoded values in [0, 1].
    channels: "RGB" or "BGR" order of the input planes.
    output: "disparity" (inverse depth, bigger = nearer) or "depth" (distance, bigger = farther).
    metric: True when the output is in metres (depth) and may be mapped with near/far.
    """

    name: str
    side: int
    resize: str
    multiple: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    channels: str = "RGB"
    output: str = "disparity"
    metric: bool = False
    description: str = ""


PRESETS: dict[str, OnnxPreset] = {preset.name: preset for preset in (
    OnnxPreset("depth-anything-v2", 518, "lower-bound", 14, IMAGENET_MEAN, IMAGENET_STD,
               description="Depth Anything V2 (S/B/L), relative inverse depth"),
    OnnxPreset("midas", 384, "lower-bound", 32, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5),
               description="MiDaS v3 / DPT (dpt_hybrid_384, dpt_large_384), relative inverse depth"),
    OnnxPreset("midas-small", 256, "upper-bound", 32, IMAGENET_MEAN, IMAGENET_STD,
               description="MiDaS v2.1 small 256, relative inverse depth"),
    OnnxPreset("metric-depth", 518, "lower-bound", 14, IMAGENET_MEAN, IMAGENET_STD, output="depth", metric=True,
               description="metric depth in metres (e.g. Depth Anything V2 Metric)"),
)}


@register("onnx")
def estimate_onnx(image: np.ndarray, model_path: str | os.PathLike | None = None,
                  preset: str | OnnxPreset = "depth-anything-v2", tile: bool | int | None = None, *,
                  near: float | None = None, far: float | None = None,
                  providers: list[str] | None = None) -> DepthEstimate:
    """Estimate disparity with an ONNX depth network.

    image: linear RGB float32 H×W×3, values in [0, 1] (encoded to sRGB before the model).
    model_path: the ``.onnx`` file; its first input must be NCHW (or NHWC) with 3 channels, fixed
        or dynamic height/width; its first output a depth or disparity map (any leading 1-dims).
    preset: a name from :data:`PRESETS` or an :class:`OnnxPreset`.
    tile: None/False = one pass at the model size; True = overlapping tiles when the photo's short
        side exceeds 1.5 × the model side (chosen automatically); an int = tile side in photo pixels.
    near, far: for metric presets, the distances in metres that map to D = 1 and D = 0
        (default: the prediction's own minimum and maximum). Ignored for relative presets.
    providers: onnxruntime execution providers (default: all available, best first).
    Returns a :class:`DepthEstimate` whose disparity is float32 H×W in [0, 1], 1 = nearest.
    Raises InputError for a missing or invalid model, an unsupported input, or a missing onnxruntime.
    """
    spec = _preset(preset)
    pixels = _check_image(image)
    session = _open(model_path, providers)
    feed = _input_spec(session, Path(model_path))
    height, width = pixels.shape[:2]
    encoded = linear_to_srgb(pixels)
    raw, size = _predict(session, feed, spec, encoded)
    notes = [f"ONNX depth: {Path(model_path).name}, preset {spec.name}, model input {size[1]}×{size[0]} "
             f"({'fixed' if feed.fixed else 'dynamic'} size), output {'metric' if spec.metric else 'relative'} "
             f"{spec.output}"]
    tile_side = _tile_side(tile, height, width, spec, feed)
    if tile_side is not None:
        raw, tile_notes = _tiled(session, feed, spec, encoded, raw, tile_side)
        notes += tile_notes
    elif tile:
        notes.append("tiling skipped: the photo is not much larger than the model input")
    if spec.output == "depth":
        disparity = normalize_depth(raw, "depth", near if spec.metric else None, far if spec.metric else None)
        if spec.metric:
            low, high = float(np.min(raw)), float(np.max(raw))
            notes.append(f"metric depth {low:.3g}–{high:.3g} m mapped with near={near if near else low:.3g} m, "
                         f"far={far if far else high:.3g} m")
    else:
        disparity = normalize_depth(raw, "disparity", normalize=True)
    return DepthEstimate(disparity=disparity.astype(np.float32), notes=notes)


@dataclass(frozen=True)
class _Feed:
    name: str
    dtype: type
    layout: str  # "NCHW" or "NHWC"
    fixed: tuple[int, int] | None  # (height, width) when both are fixed
    fixed_height: int | None
    fixed_width: int | None


def _preset(preset: str | OnnxPreset) -> OnnxPreset:
    if isinstance(preset, OnnxPreset):
        return preset
    if preset not in PRESETS:
        raise InputError(f"unknown ONNX depth preset {preset!r}: choose from {', '.join(PRESETS)}")
    return PRESETS[preset]


def _check_image(image: np.ndarray) -> np.ndarray:
    pixels = np.asarray(image, dtype=np.float32)
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.shape[0] < 1 or pixels.shape[1] < 1:
        raise InputError(f"ONNX depth needs an H×W×3 RGB image, got shape {pixels.shape}")
    return np.nan_to_num(pixels, nan=0.0, posinf=1.0, neginf=0.0)


def _open(model_path, providers):
    """An onnxruntime session for ``model_path``; every failure is one InputError line."""
    if model_path is None:
        raise InputError(f"ONNX depth needs a model file (--depth-model PATH.onnx): {WHERE_WEIGHTS_COME_FROM}")
    path = Path(model_path)
    if not path.exists():
        raise InputError(f"ONNX model {path}: no such file; {WHERE_WEIGHTS_COME_FROM}")
    if path.is_dir():
        raise InputError(f"ONNX model {path}: it is a folder, give the .onnx file; {WHERE_WEIGHTS_COME_FROM}")
    try:
        import onnxruntime  # noqa: F401 - imported here so lensblur runs without it
    except ImportError:
        raise InputError("ONNX depth needs onnxruntime: pip install onnxruntime (the model itself you bring: "
                         f"{WHERE_WEIGHTS_COME_FROM})") from None
    stat = path.stat()
    key = tuple(providers) if providers else None
    try:
        return _session(str(path.resolve()), stat.st_mtime_ns, stat.st_size, key)
    except InputError:
        raise
    except Exception as error:  # noqa: BLE001 - onnxruntime raises its own pybind types; one line for the user
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise InputError(f"ONNX model {path}: not a usable ONNX file ({reason}); {WHERE_WEIGHTS_COME_FROM}") from None


@lru_cache(maxsize=2)
def _session(path: str, mtime_ns: int, size: int, providers: tuple[str, ...] | None):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    chosen = list(providers) if providers else onnxruntime.get_available_providers()
    return onnxruntime.InferenceSession(path, sess_options=options, providers=chosen)


_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


def _input_spec(session, path: Path) -> _Feed:
    """Read the first input's name, element type and NCHW/NHWC shape (fixed or dynamic dims)."""
    first = session.get_inputs()[0]
    shape = list(first.shape)
    if len(shape) != 4:
        raise InputError(f"ONNX model {path}: input {first.name!r} has rank {len(shape)} (shape {shape}); "
                         "a depth model takes one NCHW image tensor of rank 4")
    if first.type not in _DTYPES:
        raise InputError(f"ONNX model {path}: input {first.name!r} is {first.type}; expected a float tensor")
    dims = [d if isinstance(d, int) and d > 0 else None for d in shape]
    if dims[0] not in (None, 1):
        raise InputError(f"ONNX model {path}: input batch size is fixed at {dims[0]}; expected 1 or dynamic")
    if dims[1] in (3, None) and dims[3] != 3:
        layout, h, w = "NCHW", dims[2], dims[3]
    elif dims[3] == 3:
        layout, h, w = "NHWC", dims[1], dims[2]
    else:
        raise InputError(f"ONNX model {path}: input shape {shape} has no 3-channel axis; expected N×3×H×W")
    return _Feed(first.name, _DTYPES[first.type], layout, (h, w) if h and w else None, h, w)


def _model_size(feed: _Feed, spec: OnnxPreset, height: int, width: int) -> tuple[int, int]:
    """The (height, width) the model runs at for an image of height × width pixels."""
    if feed.fixed:
        return feed.fixed
    if spec.resize == "upper-bound":
        scale, round_to = spec.side / max(height, width), math.floor
    else:
        scale, round_to = spec.side / min(height, width), math.ceil
    m = spec.multiple

    def snap(length: int) -> int:
        return max(m, int(round_to(round(length * scale, 6) / m)) * m)

    h = feed.fixed_height or snap(height)
    w = feed.fixed_width or snap(width)
    if feed.fixed_height and not feed.fixed_width:
        w = max(m, int(round(width * feed.fixed_height / height / m)) * m)
    if feed.fixed_width and not feed.fixed_height:
        h = max(m, int(round(height * feed.fixed_width / width / m)) * m)
    return h, w


def _resize(values: np.ndarray, height: int, width: int) -> np.ndarray:
    """Area-average when shrinking, bilinear when enlarging; unchanged when the size matches."""
    if values.shape[:2] == (height, width):
        return values
    shrinking = height * width < values.shape[0] * values.shape[1]
    return cv2.resize(np.ascontiguousarray(values), (width, height),
                      interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def _predict(session, feed: _Feed, spec: OnnxPreset, encoded: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """Run the model once on sRGB ``encoded`` (h×w×3); the raw output at h×w, invalid values filled."""
    height, width = encoded.shape[:2]
    model_h, model_w = _model_size(feed, spec, height, width)
    if feed.fixed:  # letterbox: keep the aspect, reflect-pad to the fixed size
        scale = min(model_h / height, model_w / width)
        inner_h, inner_w = max(1, round(height * scale)), max(1, round(width * scale))
    else:  # keep-aspect rounding already chose the size
        inner_h, inner_w = model_h, model_w
    resized = _resize(encoded, inner_h, inner_w)
    top, left = (model_h - inner_h) // 2, (model_w - inner_w) // 2
    bottom, right = model_h - inner_h - top, model_w - inner_w - left
    if top or bottom or left or right:
        border = cv2.BORDER_REFLECT_101 if max(top, bottom) < inner_h and max(left, right) < inner_w \
            else cv2.BORDER_REPLICATE
        resized = cv2.copyMakeBorder(resized, top, bottom, left, right, border)
    planes = resized[..., ::-1] if spec.channels == "BGR" else resized
    normalised = (planes - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    tensor = normalised[None] if feed.layout == "NHWC" else normalised.transpose(2, 0, 1)[None]
    tensor = np.ascontiguousarray(tensor, dtype=feed.dtype)
    try:
        output = session.run(None, {feed.name: tensor})[0]
    except Exception as error:  # noqa: BLE001 - onnxruntime's pybind errors; one line for the user
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise InputError(f"ONNX depth model failed on a {model_w}×{model_h} input ({reason}); "
                         "check the preset and the model's input size") from None
    output = np.asarray(output, dtype=np.float32)
    while output.ndim > 2 and output.shape[0] == 1:  # N×1×H×W, N×H×W → H×W
        output = output[0]
    if output.ndim == 3 and output.shape[2] == 1:  # H×W×1 (NHWC models)
        output = output[..., 0]
    if output.ndim != 2:
        raise InputError(f"ONNX depth model output has shape {output.shape}; expected one H×W map")
    output = _fill_invalid(output, spec.output)
    # Crop the letterbox padding in output coordinates (the output may be smaller than the input).
    sy, sx = output.shape[0] / model_h, output.shape[1] / model_w
    y0, x0 = int(round(top * sy)), int(round(left * sx))
    y1 = max(y0 + 1, int(round((top + inner_h) * sy)))
    x1 = max(x0 + 1, int(round((left + inner_w) * sx)))
    crop = output[y0:y1, x0:x1]
    if spec.output == "depth":  # interpolate inverse depth so near edges stay sharp and positive
        return 1.0 / _resize(1.0 / crop, height, width), (model_h, model_w)
    return _resize(crop, height, width), (model_h, model_w)


def _fill_invalid(values: np.ndarray, kind: str) -> np.ndarray:
    """Replace NaN/inf (and depth ≤ 0) by the nearest valid value; refuse when half or more are invalid."""
    invalid = ~np.isfinite(values)
    if kind == "depth":
        invalid |= ~(values > 0)
    return fill_invalid(values, invalid, "the ONNX depth model's output is invalid (wrong model or preset?)")


def _tile_side(tile, height: int, width: int, spec: OnnxPreset, feed: _Feed) -> int | None:
    """Tile side in photo pixels, or None for a single pass."""
    if tile is None or tile is False:
        return None
    short = min(height, width)
    model_side = min(feed.fixed) if feed.fixed else spec.side
    if tile is True:
        if short <= TILE_MIN_RATIO * model_side:
            return None
        return int(max(model_side, round(short / 3)))
    side = int(tile)
    if side < 8:
        raise InputError(f"tile side must be at least 8 pixels, got {tile}")
    return None if side >= max(height, width) else side


def _starts(length: int, side: int, overlap: int) -> list[int]:
    if length <= side:
        return [0]
    count = math.ceil((length - overlap) / (side - overlap))
    return [round(i * (length - side) / (count - 1)) for i in range(count)]


def _ramp(length: int, overlap: int, before: bool, after: bool) -> np.ndarray:
    position = np.arange(length, dtype=np.float32) + 0.5
    weight = np.ones(length, np.float32)
    if before:
        weight = np.minimum(weight, position / overlap)
    if after:
        weight = np.minimum(weight, (length - position) / overlap)
    return np.maximum(weight, 1e-3)


def _tiled(session, feed: _Feed, spec: OnnxPreset, encoded: np.ndarray, global_raw: np.ndarray,
           side: int) -> tuple[np.ndarray, list[str]]:
    """Blend overlapping tile predictions, each aligned to ``global_raw`` by least squares.

    Alignment works on disparity-like values (the output, or 1/depth): scale and shift for
    relative outputs, scale only for metric depth (a crop changes the field of view, not the origin).
    """
    height, width = encoded.shape[:2]
    side_h, side_w = min(side, height), min(side, width)
    overlap = max(2, int(round(TILE_OVERLAP * min(side_h, side_w))))
    reference = 1.0 / global_raw if spec.output == "depth" else global_raw
    total = np.zeros((height, width), np.float64)
    weights = np.zeros((height, width), np.float64)
    rejected = 0
    ys, xs = _starts(height, side_h, overlap), _starts(width, side_w, overlap)
    for y in ys:
        for x in xs:
            crop = np.ascontiguousarray(encoded[y:y + side_h, x:x + side_w])
            raw, _ = _predict(session, feed, spec, crop)
            values = (1.0 / raw if spec.output == "depth" else raw).astype(np.float64).ravel()
            target = reference[y:y + side_h, x:x + side_w].astype(np.float64).ravel()
            scale, shift = _align(values, target, shift=not spec.metric)
            if scale <= 0:  # the tile disagrees with the whole-image view: keep the latter there
                rejected += 1
                aligned = target
            else:
                aligned = scale * values + shift
            weight = np.outer(_ramp(side_h, overlap, y > 0, y + side_h < height),
                              _ramp(side_w, overlap, x > 0, x + side_w < width))
            total[y:y + side_h, x:x + side_w] += weight * aligned.reshape(side_h, side_w)
            weights[y:y + side_h, x:x + side_w] += weight
    blended = (total / weights).astype(np.float32)
    if spec.output == "depth":
        blended = 1.0 / np.maximum(blended, 1e-12)
    notes = [f"tiled: {len(ys) * len(xs)} tiles of {side_w}×{side_h} px, {overlap} px overlap, each aligned "
             "to the whole-image prediction by least squares"]
    if rejected:
        notes.append(f"{rejected} tile(s) disagreed with the whole-image prediction and were not used")
    return blended, notes


def _align(values: np.ndarray, target: np.ndarray, shift: bool) -> tuple[float, float]:
    """Least-squares (scale, shift) with scale·values + shift ≈ target (shift = 0 when not asked)."""
    if not shift:
        denominator = float(values @ values)
        return (float(values @ target) / denominator if denominator > 0 else 0.0), 0.0
    mean_v, mean_t = float(values.mean()), float(target.mean())
    centred = values - mean_v
    variance = float(centred @ centred)
    if variance <= 1e-12 * max(1.0, mean_v * mean_v) * values.size:
        return 1.0, mean_t - mean_v  # a flat tile: only its level can be matched
    scale = float(centred @ (target - mean_t)) / variance
    return scale, mean_t - scale * mean_v
