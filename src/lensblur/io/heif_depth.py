"""Depth and portrait matte of Apple HEIC photos, through pillow-heif.

pillow-heif (1.8) exposes the depth auxiliary image of the primary image as
``HeifImage.info["depth_images"]``, each with ``info["metadata"]`` holding libheif's depth
representation: ``representation_type`` (0 uniform inverse Z, 1 uniform disparity, 2 uniform Z,
3 non-uniform disparity) and, when the file gives them, ``d_min``/``d_max`` (disparity range) and
``z_near``/``z_far`` (depth range). Other auxiliary images (portrait effects matte, semantic
mattes, HDR gain map) are listed in ``info["aux"]`` by their URN and read with
``get_aux_image``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from lensblur.errors import InputError
from lensblur.io import bmff
from lensblur.io.depth import normalize_depth
from lensblur.io.limits import DEFAULT_MAX_PIXELS, check_pixels, map_limit

PORTRAIT_MATTE = "urn:com:apple:photo:2018:aux:portraiteffectsmatte"
_REPRESENTATIONS = {0: "uniform inverse Z", 1: "uniform disparity", 2: "uniform Z",
                    3: "non-uniform disparity"}


@dataclass
class HeifDepth:
    """What a HEIC file holds: disparity (float32 H×W, [0, 1], 1 = nearest) or None, the metric
    range when known, the portrait matte (float32 H×W, [0, 1]) or None, and notes."""

    disparity: np.ndarray | None = None
    near: float | None = None
    far: float | None = None
    matte: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)


def read_heif_depth(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> HeifDepth:
    """Read the depth image and portrait matte of the primary image of a HEIF/HEIC file.

    Raises InputError when pillow-heif cannot open the file at all, LimitError when the depth
    image or matte is over the map limit (lensblur.io.limits.map_limit of the photo's pixels and
    ``max_pixels``, checked before decoding); missing or undecodable auxiliary images only leave
    the fields None with a note.
    """
    image = _primary(path)
    limit = map_limit(image.size[0] * image.size[1], max_pixels)
    result = HeifDepth()
    depth_images = image.info.get("depth_images") or []
    if not depth_images:
        result.notes.append("no depth image in the HEIF file")
    else:
        check_pixels(*depth_images[0].size, limit, "the HEIF depth image inside")
        try:
            _read_depth(depth_images[0], result)
        except Exception as exc:  # noqa: BLE001 — libheif errors on a damaged auxiliary image
            result.disparity = None
            result.notes.append(f"HEIF depth image unreadable ({type(exc).__name__}); ignored")
    matte_ids = (image.info.get("aux") or {}).get(PORTRAIT_MATTE) or []
    if matte_ids:
        matte = image.get_aux_image(matte_ids[0])  # lazy: the size is known, nothing decoded yet
        check_pixels(*matte.size, limit, "the HEIF portrait matte inside")
        try:
            result.matte = _unit(np.asarray(matte))
        except Exception as exc:  # noqa: BLE001
            result.notes.append(f"HEIF portrait matte unreadable ({type(exc).__name__}); ignored")
    return result


def describe_heif(path: str | os.PathLike) -> list[str]:
    """Human-readable lines for the depth images and auxiliary images of a HEIF file.

    Raises InputError when the file cannot be opened.
    """
    image = _primary(path)
    lines = []
    for depth in image.info.get("depth_images") or []:
        meta = (depth.info or {}).get("metadata") or {}
        kind = _REPRESENTATIONS.get(meta.get("representation_type"), "unknown representation")
        ranges = ", ".join(f"{key} {meta[key]:.4g}" for key in ("d_min", "d_max", "z_near", "z_far")
                           if isinstance(meta.get(key), (int, float)))
        width, height = depth.size
        lines.append(f"Apple HEIC depth image {width}×{height} ({kind}{', ' + ranges if ranges else ''})")
    for urn, ids in (image.info.get("aux") or {}).items():
        for aux_id in ids:
            try:
                width, height = image.get_aux_image(aux_id).size
                size = f" {width}×{height}"
            except Exception:  # noqa: BLE001
                size = " (unreadable)"
            name = "portrait matte" if urn == PORTRAIT_MATTE else "auxiliary image"
            lines.append(f"Apple HEIC {name}{size} ({urn})")
    return lines


def _primary(path):
    try:
        import pillow_heif

        bmff.check_complete(path)
        heif = pillow_heif.open_heif(os.fspath(path))
        return heif[heif.primary_index]
    except Exception as exc:  # noqa: BLE001 — libheif reports damage with several types
        raise InputError(f"cannot read HEIF file {path}: {exc}") from None


def _read_depth(depth, result: HeifDepth) -> None:
    meta = (depth.info or {}).get("metadata") or {}
    values = _unit(np.asarray(depth))
    kind = meta.get("representation_type")
    d_min, d_max = _positive(meta.get("d_min")), _positive(meta.get("d_max"))
    z_near, z_far = _positive(meta.get("z_near")), _positive(meta.get("z_far"))
    if kind in (0, 1, 3, None):
        # inverse depth / disparity stored linearly, biggest = nearest: already our D
        result.disparity = values
        if kind == 0 and z_near and z_far and z_near < z_far:
            result.near, result.far = z_near, z_far
        elif d_min and d_max and d_min < d_max:
            # Apple writes disparity in 1/m
            result.near, result.far = 1.0 / d_max, 1.0 / d_min
        if kind == 3:
            result.notes.append("non-uniform disparity: the non-linear model is not applied")
        if kind is None:
            result.notes.append("HEIF depth image without a depth representation; read as disparity")
    elif kind == 2:
        if z_near and z_far and z_near < z_far:
            depth_m = z_near + values.astype(np.float64) * (z_far - z_near)
            result.disparity = normalize_depth(depth_m, "depth", z_near, z_far)
            result.near, result.far = z_near, z_far
        else:
            result.disparity = (1.0 - values).astype(np.float32)
            result.notes.append("uniform-Z depth without z_near/z_far; inverted linearly")
    else:
        result.notes.append(f"unknown HEIF depth representation {kind}; ignored")


def _unit(values: np.ndarray) -> np.ndarray:
    """Integer grey levels → float32 in [0, 1] by the type's full scale (first channel if colour)."""
    if values.ndim == 3:
        values = values[..., 0]
    if values.dtype == np.uint8:
        return values.astype(np.float32) / 255.0
    if values.dtype == np.uint16:
        return values.astype(np.float32) / 65535.0
    return np.clip(values.astype(np.float32), 0.0, 1.0)


def _positive(value) -> float | None:
    if isinstance(value, (int, float)) and np.isfinite(value) and value > 0:
        return float(value)
    return None
