"""Depth maps that phones embed in their photos: Google GDepth and Dynamic Depth, Apple MPF and HEIC.

``find_embedded_depth(path)`` returns the depth as our disparity (float32 H×W in [0, 1],
1 = nearest) with the matte, sharp original and focus settings the file holds;
``list_embedded(path)`` describes what is there. Malformed metadata never raises: the reader
returns None (reasons logged on this module's logger) or a result whose ``notes`` say what was
skipped. Maps keep their own size; the primary's EXIF orientation is applied to them so they line
up with the photo as :func:`lensblur.io.images.read_image` returns it. See docs/embedded-depth.md.
"""

from __future__ import annotations

import io
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from lensblur.errors import InputError
from lensblur.io import heif_depth
from lensblur.io.depth import normalize_depth
from lensblur.io.limits import DEFAULT_MAX_PIXELS, LimitError, check_pixels, header_size, map_limit, pil_strict

if TYPE_CHECKING:
    from lensblur.io.xmp import ContainerItem, DynamicDepthInfo, Segment

# lensblur.io.xmp and lensblur.io.mpf (XML, hashlib, many dataclasses: ~20 ms) are imported by the
# JPEG readers below, when a JPEG is looked into, not by every command that imports this module.

logger = logging.getLogger(__name__)

_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"mif2"}
_MAGIC = {"image/jpeg": b"\xff\xd8", "image/png": b"\x89PNG\r\n\x1a\n"}
_EXIF_ORIENTATION = 0x0112


@dataclass
class EmbeddedDepth:
    """Depth found inside a photo file.

    disparity: float32 H×W in [0, 1], 1 = nearest, converted from the format's own convention;
        at the depth map's own resolution (often smaller than the photo).
    source: where it came from: "GDepth (RangeInverse)", "Dynamic Depth (RangeLinear)",
        "Apple MPF disparity", "Apple HEIC disparity"…
    near, far: the metric range [Zn, Zf] of the disparity when the file gives one (the file's
        units: metres for Apple and usually for Dynamic Depth, arbitrary for Lens Blur).
    sharp_image: uint8 H×W×3 RGB original without blur (GImage:Data of Google Lens Blur photos,
        the "Original" item of Dynamic Depth); render from it rather than from the primary.
    focus: GFocus values (FocalDistance, FocalPointX/Y in [0, 1], BlurAtInfinity…) or None.
    matte: float32 H×W in [0, 1] portrait-effects matte (1 = subject) or None.
    notes: human-readable warnings about what was skipped or assumed.
    """

    disparity: np.ndarray
    source: str
    near: float | None = None
    far: float | None = None
    sharp_image: np.ndarray | None = None
    focus: dict | None = None
    matte: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the depth map in pixels."""
        return int(self.disparity.shape[1]), int(self.disparity.shape[0])


def find_embedded_depth(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> EmbeddedDepth | None:
    """The depth map embedded in a JPEG or HEIC photo, or None when it holds no usable one.

    Tried in order: GDepth (XMP), Dynamic Depth (XMP container), Apple MPF auxiliary images
    (JPEG); the depth auxiliary image and portrait matte (HEIC). Raises InputError only when the
    file cannot be read (missing, unreadable, empty, or a HEIF that libheif refuses), and
    LimitError when an embedded image is over the map limit (lensblur.io.limits.map_limit of the
    photo's pixels and ``max_pixels``), checked from its header before it is decoded.
    """
    path = Path(path)
    data = _read_bytes(path)
    notes: list[str] = []
    try:
        if _is_heif(data):
            result = _from_heif(path, notes, max_pixels)
        elif data[:2] == b"\xff\xd8":
            size = header_size(path)
            limit = map_limit(size[0] * size[1] if size else 0, max_pixels)
            result = _from_jpeg(data, notes, limit)
        else:
            notes.append("neither JPEG nor HEIF: no embedded depth looked for")
            result = None
    except LimitError as error:
        raise LimitError(f"{path}: {error}") from None
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 — malformed metadata must never escape as a crash
        logger.warning("%s: embedded depth unreadable (%s: %s)", path, type(exc).__name__, exc)
        return None
    for note in notes:
        logger.info("%s: %s", path, note)
    if result is None:
        return None
    result.notes = notes
    return result


def list_embedded(path: str | os.PathLike) -> list[str]:
    """Human-readable lines naming the depth maps, mattes and images embedded in a photo.

    Sizes are width×height in pixels. [] when there is nothing; problems found on the way are
    listed as lines starting with "note:". Raises InputError only when the file cannot be read.
    """
    path = Path(path)
    data = _read_bytes(path)
    notes: list[str] = []
    try:
        if _is_heif(data):
            lines = heif_depth.describe_heif(path)
        elif data[:2] == b"\xff\xd8":
            lines = _describe_jpeg(data, notes)
        else:
            lines = []
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001
        return [f"note: embedded metadata unreadable ({type(exc).__name__})"]
    return lines + [f"note: {note}" for note in notes]


# --- JPEG -----------------------------------------------------------------------------------

@dataclass
class _Jpeg:
    data: bytes
    segments: list[Segment]
    roots: list
    limit: int = DEFAULT_MAX_PIXELS  # most pixels an embedded image may have


def _parse_jpeg(data: bytes, notes: list[str], limit: int = DEFAULT_MAX_PIXELS) -> _Jpeg:
    from lensblur.io.xmp import extract_xmp, jpeg_segments, parse_packets

    segments = jpeg_segments(data)
    packets = extract_xmp(data, segments)
    notes.extend(packets.notes)
    return _Jpeg(data, segments, parse_packets(packets.standard) + parse_packets(packets.extended), limit)


def _from_jpeg(data: bytes, notes: list[str], limit: int = DEFAULT_MAX_PIXELS) -> EmbeddedDepth | None:
    jpeg = _parse_jpeg(data, notes, limit)
    for reader in (_gdepth, _dynamic_depth, _apple_mpf):
        result = reader(jpeg, notes)
        if result is not None:
            orientation = _orientation(jpeg.segments)
            if orientation != 1:
                _orient_result(result, orientation)
                notes.append(f"maps turned by the photo's EXIF orientation {orientation}")
            return result
    return None


def _gdepth(jpeg: _Jpeg, notes: list[str]) -> EmbeddedDepth | None:
    from lensblur.io.xmp import read_gdepth

    info = read_gdepth(jpeg.roots, notes)
    if info is None or info.depth_data is None:
        return None
    values = _decode_grey(info.depth_data, "GDepth:Data", notes, jpeg.limit)
    if values is None:
        return None
    disparity = _range_to_disparity(values, info.format, info.near, info.far, "GDepth", notes)
    if disparity is None:
        return None
    sharp = None
    if info.image_data is not None:
        sharp = _decode_rgb(info.image_data, "GImage:Data", notes, jpeg.limit)
    return EmbeddedDepth(disparity, f"GDepth ({info.format})", info.near, info.far, sharp, info.focus)


def _dynamic_depth(jpeg: _Jpeg, notes: list[str]) -> EmbeddedDepth | None:
    from lensblur.io.xmp import read_dynamic_depth

    info = read_dynamic_depth(jpeg.roots, notes)
    if info is None:
        return None
    if not info.depth_uri:
        notes.append("Dynamic Depth container without a Camera:DepthMap")
        return None
    payloads = _container_payloads(jpeg.data, info, notes)
    if payloads is None:
        return None
    if info.depth_uri not in payloads:
        notes.append(f"Dynamic Depth depth item {info.depth_uri!r} not in the container")
        return None
    values = _decode_grey(payloads[info.depth_uri], "Dynamic Depth depth map", notes, jpeg.limit)
    if values is None:
        return None
    disparity = _range_to_disparity(values, info.format, info.near, info.far, "Dynamic Depth", notes)
    if disparity is None:
        return None
    sharp = None
    if info.original_uri in payloads:
        sharp = _decode_rgb(payloads[info.original_uri], "Dynamic Depth original image", notes, jpeg.limit)
    return EmbeddedDepth(disparity, f"Dynamic Depth ({info.format})", info.near, info.far, sharp)


def _container_payloads(data: bytes, info: DynamicDepthInfo, notes: list[str]) -> dict[str, bytes] | None:
    """URI → bytes of the container items, found backwards from the end of the file.

    The spec counts an item's Padding inside its Length; writers that add it on top are accepted
    too. The layout whose image items start with their format's magic bytes wins.
    """
    items: list[ContainerItem] = info.items[1:]  # item 0 is the primary image: the file's start
    if not items:
        notes.append("Dynamic Depth container lists no items after the primary image")
        return None
    for padding_inside in (True, False):
        spans = [item.length if padding_inside else item.length + item.padding for item in items]
        start = len(data) - sum(spans)
        if start <= 2 or any(item.length <= 0 or item.padding > item.length and padding_inside
                             for item in items):
            continue
        payloads, pos = {}, start
        for item, span in zip(items, spans):
            payload = data[pos:pos + (item.length - item.padding if padding_inside else item.length)]
            magic = _MAGIC.get(item.mime.lower())
            if magic is not None and not payload.startswith(magic):
                break
            payloads[item.uri] = payload
            pos += span
        else:
            return payloads
    notes.append("Dynamic Depth container item lengths do not match the file; ignored")
    return None


def _apple_mpf(jpeg: _Jpeg, notes: list[str]) -> EmbeddedDepth | None:
    parts = _apple_parts(jpeg, notes)
    disparity = matte = None
    near = far = None
    for kind, blob, aux in parts:
        if kind in ("disparity", "depth") and disparity is None:
            values = _decode_grey(blob, f"Apple {kind} image", notes, jpeg.limit)
            if values is not None:
                disparity, near, far = _apple_disparity(values, kind, aux, notes)
                if disparity is None:
                    near = far = None
        elif kind == "matte" and matte is None:
            matte = _decode_grey(blob, "Apple portrait matte", notes, jpeg.limit)
    if disparity is None:
        if matte is not None:
            notes.append("Apple portrait matte found but no disparity map")
        return None
    return EmbeddedDepth(disparity, "Apple MPF disparity", near, far, matte=matte)


def _apple_parts(jpeg: _Jpeg, notes: list[str]) -> list[tuple[str, bytes, dict]]:
    """(kind, JPEG bytes, apdi properties) of the MPF images after the primary.

    kind is "disparity", "depth", "matte", or "other". Images without any XMP that are grey and
    untyped in the index are taken by position (1 = disparity, 2 = matte), as older iPhones write.
    """
    from lensblur.io.mpf import mpf_images
    from lensblur.io.xmp import apple_aux_type, extract_xmp, parse_packets

    parts = []
    for image in mpf_images(jpeg.data, notes, jpeg.segments)[1:]:
        blob = jpeg.data[image.offset:image.offset + image.size]
        packets = extract_xmp(blob)
        aux = apple_aux_type(parse_packets(packets.standard))
        aux_type = aux.get("AuxiliaryImageType", "").lower()
        if aux.get("Matte"):
            kind = "matte"
        elif aux_type in ("disparity", "depth"):
            kind = aux_type
        elif packets.standard is None and image.attribute & 0xFFFFFF == 0 and _is_grey(blob):
            kind = {1: "disparity", 2: "matte"}.get(image.index, "other")
            if kind != "other":
                notes.append(f"MPF image {image.index} has no XMP; taken as {kind} by position")
        else:
            kind = "other"
        parts.append((kind, blob, aux))
    return parts


def _apple_disparity(values: np.ndarray, kind: str, aux: dict, notes: list[str]):
    """Apple grey levels → (D, near, far). FloatMin/MaxValue give the stored range in 1/m
    (disparity) or m (depth); stored levels are linear in that quantity."""
    low, high = _float(aux.get("FloatMinValue")), _float(aux.get("FloatMaxValue"))
    valid = low is not None and high is not None and 0 < low < high
    if kind == "disparity":
        # linear in 1/Z with the biggest level nearest: the levels already are D
        return values, (1.0 / high if valid else None), (1.0 / low if valid else None)
    if valid:
        depth = low + values.astype(np.float64) * (high - low)
        return _depth_to_disparity(depth, low, high, notes), low, high
    notes.append("Apple depth image without a value range; inverted linearly")
    return (1.0 - values).astype(np.float32), None, None


def _describe_jpeg(data: bytes, notes: list[str]) -> list[str]:
    from lensblur.io.xmp import read_dynamic_depth, read_gdepth

    jpeg = _parse_jpeg(data, notes)
    lines = []
    gdepth = read_gdepth(jpeg.roots, notes)
    if gdepth is not None:
        if gdepth.depth_data is not None:
            lines.append(f"GDepth depth map {_size_text(gdepth.depth_data)} {gdepth.depth_mime or ''} "
                         f"({gdepth.format}, near {gdepth.near}, far {gdepth.far})".replace("  ", " "))
        if gdepth.image_data is not None:
            lines.append(f"GImage sharp original {_size_text(gdepth.image_data)} {gdepth.image_mime or ''}"
                         .rstrip())
        if gdepth.focus:
            lines.append("GFocus " + ", ".join(f"{k} {v}" for k, v in gdepth.focus.items()))
    info = read_dynamic_depth(jpeg.roots, notes)
    if info is not None:
        payloads = _container_payloads(jpeg.data, info, notes) or {}
        for uri, blob in payloads.items():
            role = ("depth map" if uri == info.depth_uri else "confidence map" if uri == info.confidence_uri
                    else "original image" if uri == info.original_uri else "item")
            extra = f" ({info.format}, near {info.near}, far {info.far})" if uri == info.depth_uri else ""
            lines.append(f"Dynamic Depth {role} {_size_text(blob)} [{uri}]{extra}")
    for kind, blob, _ in _apple_parts(jpeg, notes):
        name = {"matte": "portrait matte", "other": "other image"}.get(kind, kind)
        lines.append(f"Apple MPF {name} {_size_text(blob)}")
    return lines


# --- HEIF -----------------------------------------------------------------------------------

def _from_heif(path: Path, notes: list[str], max_pixels: int) -> EmbeddedDepth | None:
    found = heif_depth.read_heif_depth(path, max_pixels)
    notes.extend(found.notes)
    if found.disparity is None:
        return None
    return EmbeddedDepth(found.disparity, "Apple HEIC disparity", found.near, found.far,
                         matte=found.matte)


# --- shared helpers -------------------------------------------------------------------------

def _read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not data:
        raise InputError(f"{path} is empty")
    return data


def _is_heif(data: bytes) -> bool:
    return data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS


def _range_to_disparity(values: np.ndarray, fmt: str | None, near: float | None, far: float | None,
                        label: str, notes: list[str]) -> np.ndarray | None:
    """GDepth / Dynamic Depth normalised levels v ∈ [0, 1] → our disparity.

    RangeInverse: Z = Far·Near / (Far − v·(Far − Near)); RangeLinear: Z = v·(Far − Near) + Near;
    then D = (1/Z − 1/Far) / (1/Near − 1/Far) (for RangeInverse that is exactly 1 − v).
    """
    from lensblur.io.xmp import RANGE_FORMATS

    if fmt not in RANGE_FORMATS:
        notes.append(f"{label} format {fmt!r} is not RangeInverse or RangeLinear; ignored")
        return None
    if near is None or far is None or not (np.isfinite(near) and np.isfinite(far) and 0 < near < far):
        notes.append(f"{label} Near/Far ({near}, {far}) are not 0 < Near < Far; ignored")
        return None
    v = values.astype(np.float64)
    if fmt == "RangeInverse":
        depth = far * near / (far - v * (far - near))
    else:
        depth = v * (far - near) + near
    return _depth_to_disparity(depth, near, far, notes)


def _depth_to_disparity(depth: np.ndarray, near: float, far: float, notes: list[str]) -> np.ndarray | None:
    """D = (1/Z − 1/Zf) / (1/Zn − 1/Zf) through lensblur.io.depth; None (with a note) if refused."""
    try:
        return normalize_depth(depth, "depth", near, far)
    except InputError as exc:
        notes.append(f"depth conversion refused: {exc}")
        return None


def _open(blob: bytes, label: str, notes: list[str], limit: int) -> Image.Image | None:
    """The decoded image, None (with a note) when unreadable; LimitError over ``limit`` pixels."""
    try:
        with pil_strict(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(blob))
            check_pixels(*image.size, limit, f"the {label} image inside")
            image.load()
        return image
    except LimitError:
        raise
    except Exception as exc:  # noqa: BLE001 — Pillow reports damage with many exception types
        notes.append(f"{label} is not a readable image ({type(exc).__name__}); ignored")
        return None


def _decode_grey(blob: bytes, label: str, notes: list[str], limit: int) -> np.ndarray | None:
    """Decode an embedded grey image to float32 H×W in [0, 1] by its type's full scale."""
    image = _open(blob, label, notes, limit)
    if image is None:
        return None
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        values = np.asarray(image, dtype=np.uint16).astype(np.float32) / 65535.0
    elif image.mode == "I":
        values = np.asarray(image, dtype=np.float32)
        values /= 65535.0 if values.max() > 255 else 255.0
    elif image.mode == "F":
        values = np.asarray(image, dtype=np.float32)
    else:
        if image.mode not in ("L", "RGB", "RGBA", "LA"):
            image = image.convert("RGB")
        values = np.asarray(image, dtype=np.float32) / 255.0
    if values.ndim == 3:
        values = values[..., 0]
    if values.ndim != 2 or min(values.shape) < 1:
        notes.append(f"{label} has no pixels; ignored")
        return None
    if not np.isfinite(values).all():
        notes.append(f"{label} holds NaN or inf; ignored")
        return None
    values = np.clip(values, 0.0, 1.0)
    if float(values.max() - values.min()) < 1e-6:
        notes.append(f"{label} is constant: no depth information")
    return np.ascontiguousarray(values, dtype=np.float32)


def _decode_rgb(blob: bytes, label: str, notes: list[str], limit: int) -> np.ndarray | None:
    image = _open(blob, label, notes, limit)
    if image is None:
        return None
    try:
        return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
    except Exception as exc:  # noqa: BLE001
        notes.append(f"{label} cannot be converted to RGB ({type(exc).__name__}); ignored")
        return None


def _is_grey(blob: bytes) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Image.open(io.BytesIO(blob)).mode in ("L", "I;16", "I")
    except Exception:  # noqa: BLE001
        return False


def _size_text(blob: bytes) -> str:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            width, height = Image.open(io.BytesIO(blob)).size
        return f"{width}×{height}"
    except Exception:  # noqa: BLE001
        return f"(unreadable, {len(blob)} bytes)"


def _orientation(segments: list[Segment]) -> int:
    """EXIF orientation (1-8) of the primary image; 1 when absent or unreadable."""
    for seg in segments:
        if seg.marker == 0xE1 and seg.payload.startswith(b"Exif\x00\x00"):
            try:
                exif = Image.Exif()
                exif.load(seg.payload)
                value = int(exif.get(_EXIF_ORIENTATION, 1))
            except Exception:  # noqa: BLE001
                return 1
            return value if 1 <= value <= 8 else 1
    return 1


def _orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation to an H×W(×C) array as PIL.ImageOps.exif_transpose does."""
    ops = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: np.swapaxes(a, 0, 1), 6: lambda a: np.rot90(a, -1),
           7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1], 8: lambda a: np.rot90(a, 1)}
    if orientation not in ops:
        return array
    return np.ascontiguousarray(ops[orientation](array))


def _orient_result(result: EmbeddedDepth, orientation: int) -> None:
    result.disparity = _orient(result.disparity, orientation)
    if result.matte is not None:
        result.matte = _orient(result.matte, orientation)
    if result.sharp_image is not None:
        result.sharp_image = _orient(result.sharp_image, orientation)


def _float(text) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None
