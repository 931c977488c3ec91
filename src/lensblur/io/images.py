"""Reading and writing photos as linear-light float32 arrays, keeping what the file held.

Pixels are decoded through the file's own ICC tone curves (sRGB when it has none) into linear
light in the file's own RGB primaries; no gamut conversion happens, so writing back with the
same profile reproduces the colours exactly. EXIF orientation is applied on read and reset to 1
on write; the ICC profile is written back byte for byte; 16-bit PNG and TIFF stay 16-bit.
See docs/io.md.
"""

from __future__ import annotations

import io
import os
import struct
import sys
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from lensblur.color import luminance
from lensblur.errors import InputError, LensblurError, OutputError
from lensblur.io import bmff, icc
from lensblur.io.atomic import atomic_output, check_output
from lensblur.io.limits import DEFAULT_MAX_PIXELS, check_pixels, pil_strict

FORMATS = ("JPEG", "PNG", "TIFF", "WEBP", "BMP", "HEIF")
EXTENSIONS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF",
              ".webp": "WEBP", ".bmp": "BMP", ".heic": "HEIF", ".heif": "HEIF"}
_ALPHA_FORMATS = ("PNG", "TIFF", "WEBP")
_GREY_FORMATS = ("JPEG", "PNG", "TIFF", "BMP")
_DEEP_FORMATS = ("PNG", "TIFF")
_ORIENTATION = 0x0112


@dataclass
class Photo:
    """A decoded photo and what is needed to write it back like the original.

    pixels: H×W×3 float32 linear light in the file's own RGB primaries, [0, 1] (grey sources
        have three equal channels).
    alpha: H×W float32 straight (not premultiplied) coverage in [0, 1], or None.
    icc_profile: the file's ICC profile byte for byte (None means sRGB).
    exif: the raw EXIF block ("Exif\\0\\0" + TIFF data) or None; orientation is already applied
        to ``pixels`` and is reset to 1 when written.
    bit_depth: 8 or 16, bits per channel of the source.
    format: "JPEG", "PNG", "TIFF", "WEBP", "BMP" or "HEIF".
    source: the path read from, or None.
    grey: the source was single-channel; it is written back as grey where the format allows.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    icc_profile: bytes | None = None
    exif: bytes | None = None
    bit_depth: int = 8
    format: str = "PNG"
    source: str | None = None
    grey: bool = False


def read_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> Photo:
    """Read a JPEG, PNG, TIFF, WebP, BMP or HEIC/HEIF photo into a :class:`Photo`.

    max_pixels: refuse images with more than this many pixels (width × height, checked from the
        header before decoding; default 200 million).
    EXIF orientation is applied. Every failure raises InputError with one line naming the file.
    """
    path = Path(path)
    _check_readable(path)
    try:
        return _read(path, max_pixels)
    except LensblurError:
        raise
    except Image.DecompressionBombError:
        raise InputError(f"cannot read image {path}: over the pixel limit (--max-pixels)") from None
    except Image.UnidentifiedImageError:
        raise InputError(f"cannot read image {path}: not an image or an unsupported format") from None
    except MemoryError:
        raise InputError(f"cannot read image {path}: not enough memory to decode it") from None
    except Exception as error:  # noqa: BLE001 - decoders raise many types; the user needs one line
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        if "truncated" in reason.lower() or isinstance(error, EOFError):
            reason = "the file is truncated or damaged"
        raise InputError(f"cannot read image {path}: {reason}") from None


def write_image(path: str | os.PathLike, pixels_or_photo: np.ndarray | Photo, like: Photo | None = None,
                *, quality: int = 95, overwrite: bool = False) -> None:
    """Write linear-light pixels to ``path``, encoded like ``like`` (or like the Photo given).

    pixels_or_photo: a :class:`Photo`, or H×W×3 (or H×W grey) linear float32 values; values are
        clipped to [0, 1]. The format comes from the extension (.jpg .jpeg .png .tif .tiff .webp
        .bmp .heic .heif).
    like: the photo whose ICC profile (tone curves and bytes), EXIF (orientation reset to 1),
        bit depth (16-bit kept for PNG/TIFF), grey-ness and alpha (for an array of its size) are
        used; without it the output is 8-bit sRGB with no metadata.
    quality: JPEG/WebP/HEIF quality, 1 to 100 (WebP 100 is lossless).
    overwrite: replace an existing file; the photo's own source file is never replaced.
    The file is written atomically; errors raise OutputError (InputError for bad pixels).
    """
    path = Path(path)
    if isinstance(pixels_or_photo, Photo):
        pixels, alpha = pixels_or_photo.pixels, pixels_or_photo.alpha
        meta = like or pixels_or_photo
        sources = [pixels_or_photo.source, like.source if like else None]
    else:
        pixels = pixels_or_photo
        meta = like
        alpha = like.alpha if like is not None else None
        sources = [like.source if like else None]
    pixels = _checked_pixels(pixels)
    if alpha is not None and alpha.shape != pixels.shape[:2]:
        alpha = None
    fmt = check_image_output(path, overwrite, sources)
    if not 1 <= quality <= 100:
        raise OutputError(f"quality must be in 1..100, got {quality}")

    grey = bool(meta and meta.grey) and fmt in _GREY_FORMATS
    profile = meta.icc_profile if meta else None
    if profile and icc.colour_space(profile) != ("GRAY" if grey else "RGB"):
        profile = None  # a grey profile cannot describe RGB pixels (or the reverse)
    deep = bool(meta and meta.bit_depth == 16) and fmt in _DEEP_FORMATS
    exif = reset_orientation(meta.exif) if meta and meta.exif and fmt != "BMP" else None
    if fmt not in _ALPHA_FORMATS:
        alpha = None

    scale = 65535 if deep else 255
    if grey:
        values = np.round(icc.tone_curves(profile)[0].encode(luminance(np.nan_to_num(
            pixels, nan=0.0, posinf=1.0, neginf=0.0))) * scale).astype(np.uint16 if deep else np.uint8)[..., None]
    else:
        values = icc.encode_levels(pixels, profile, scale)  # one pass: tone curve, NaN → 0, rounding
    if alpha is not None:
        a = np.clip(np.nan_to_num(alpha.astype(np.float32)), 0.0, 1.0)
        values = np.concatenate([values, np.round(a * scale).astype(values.dtype)[..., None]], axis=2)
    if values.shape[2] == 1:
        values = values[..., 0]

    with atomic_output(path, overwrite) as temp:
        try:
            _save(temp, values, fmt, deep, profile, exif, quality)
        except (OSError, LensblurError):
            raise
        except Exception as error:  # noqa: BLE001 - encoders raise many types
            raise OutputError(f"cannot write {path}: {error}") from None


def check_image_output(path: str | os.PathLike, overwrite: bool = False, inputs=()) -> str:
    """The format ("JPEG", "PNG"…) ``path`` will be written in; OutputError for an unknown
    extension, a missing or unwritable folder, an existing file without ``overwrite``, or one of
    ``inputs`` (never replaced). Call it before any work to fail fast."""
    path = Path(path)
    fmt = EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise OutputError(f"cannot write {path}: unknown extension {path.suffix or '(none)'!r} "
                          f"(use one of {', '.join(sorted(EXTENSIONS))})")
    check_output(path, overwrite, inputs)
    return fmt


def reset_orientation(exif: bytes) -> bytes:
    """The EXIF block with its IFD0 orientation tag set to 1 (top-left), every other byte kept.

    Patched in place rather than re-serialised so maker notes and offsets survive untouched.
    """
    start = 6 if exif.startswith(b"Exif\x00\x00") else 0
    tiff = exif[start:]
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None:
        return exif
    try:
        (ifd,) = struct.unpack_from(order + "I", tiff, 4)
        (count,) = struct.unpack_from(order + "H", tiff, ifd)
        for index in range(count):
            entry = ifd + 2 + 12 * index
            tag, kind = struct.unpack_from(order + "HH", tiff, entry)
            if tag == _ORIENTATION and kind == 3:  # SHORT, value stored in the entry itself
                patched = bytearray(exif)
                struct.pack_into(order + "H", patched, start + entry + 8, 1)
                return bytes(patched)
    except struct.error:
        pass
    return exif


# ---------------------------------------------------------------- reading


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise InputError(f"cannot read image {path}: no such file")
    if path.is_dir():
        raise InputError(f"cannot read image {path}: it is a folder")
    if not os.access(path, os.R_OK):
        raise InputError(f"cannot read image {path}: permission denied")
    if path.stat().st_size == 0:
        raise InputError(f"cannot read image {path}: the file is empty")


def heif_support() -> None:
    """Let Pillow open and save HEIC/HEIF files (pillow_heif's plugin). Registered on first need,
    not on import: loading pillow_heif takes about 10 ms of every command's start-up. Call it before
    ``Image.open`` on a file that may be HEIF (:func:`read_image` does)."""
    global _heif_registered
    if not _heif_registered:
        import pillow_heif

        pillow_heif.register_heif_opener()
        _heif_registered = True


_heif_registered = False


def _read(path: Path, max_pixels: int) -> Photo:
    with open(path, "rb") as handle:
        if bmff.is_bmff(handle.read(12)):
            heif_support()
            try:
                bmff.check_complete(path)
            except bmff.Truncated as error:
                raise InputError(f"cannot read image {path}: {error}") from None
    with pil_strict(), Image.open(path) as image:
        return _decode(path, image, max_pixels)


def _decode(path: Path, image: Image.Image, max_pixels: int) -> Photo:
    check_pixels(*image.size, max_pixels, f"{path}: image")
    fmt = "JPEG" if image.format == "MPO" else image.format
    if fmt not in FORMATS:
        raise InputError(f"cannot read image {path}: unsupported format {image.format}")
    profile = image.info.get("icc_profile") or None
    png = _opencv_png(path, image, fmt)
    exif_data = Image.Image.getexif(image) if png is not None else image.getexif()  # see _opencv_png
    orientation = exif_data.get(_ORIENTATION, 1)
    exif = _raw_exif(image, fmt, exif_data)

    deep_colour = _deep_colour(path, image, fmt) if png is None else None
    jpeg = _opencv_jpeg(path, image, fmt) if deep_colour is None and png is None else None
    if png is not None:
        colour, alpha = png
        grey, bit_depth, scale = image.mode == "L", 8, 255.0
    elif deep_colour is not None:
        values, grey = deep_colour
        image.load()  # still decode through PIL so a damaged file is reported
        bit_depth, scale = 16, 65535.0
        channels = values.shape[2]
        colour = values[..., :1] if grey else values[..., :3]
        alpha = values[..., -1] if channels in (2, 4) else None
    elif jpeg is not None:
        colour, alpha, grey, bit_depth, scale = jpeg, None, False, 8, 255.0
    else:
        image.load()
        image, profile = _normalise_mode(image, profile)
        grey = image.mode in ("L", "LA", "I;16", "I;16B", "I;16L", "I;16N", "I", "F")
        bit_depth = 16 if image.mode.startswith("I") or image.mode == "F" else 8
        scale = 65535.0 if bit_depth == 16 else 255.0
        if image.mode == "F":
            scale = 1.0
        values = np.asarray(image)
        alpha = None
        if image.mode in ("LA", "RGBA"):
            values, alpha = values[..., :-1], values[..., -1]
        colour = values[..., None] if values.ndim == 2 else values

    # orient the encoded values, not the (four times larger) linear floats made from them
    colour = _orient(colour, orientation)
    alpha = None if alpha is None else np.ascontiguousarray(_orient(alpha, orientation))
    if colour.dtype in (np.uint8, np.uint16) and scale == np.iinfo(colour.dtype).max:
        linear = icc.decode_integers(colour, profile)
        pixels = np.repeat(linear, 3, axis=2) if grey else linear
    else:
        encoded = np.clip(colour.astype(np.float32) / np.float32(scale), 0.0, 1.0)
        if grey:
            linear = icc.tone_curves(profile)[0].decode(encoded[..., 0])
            pixels = np.repeat(linear[..., None], 3, axis=2)
        else:
            pixels = icc.decode(encoded, profile)
    if alpha is not None:
        alpha = alpha.astype(np.float32) / np.float32(scale)
    pixels = np.ascontiguousarray(pixels)
    return Photo(pixels=pixels, alpha=alpha, icc_profile=profile, exif=exif, bit_depth=bit_depth,
                 format=fmt, source=str(path), grey=grey)


def _opencv_jpeg(path: Path, image: Image.Image, fmt: str) -> np.ndarray | None:
    """An 8-bit colour JPEG decoded by OpenCV straight into an H×W×3 uint8 RGB array (orientation
    not applied), or None to let Pillow decode it (other modes, or any failure: Pillow then reports
    a damaged file in its words). Both bundle libjpeg-turbo with the same default (accurate)
    decoding, so the pixels are identical (tests/test_whole_command.py); Pillow's copy of its
    decoded image into numpy costs about as much as the decode itself."""
    if fmt != "JPEG" or image.mode != "RGB":
        return None
    try:
        values = cv2.imdecode(np.fromfile(path, dtype=np.uint8),
                              cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error:
        return None
    if values is None or values.dtype != np.uint8 or values.shape != (image.height, image.width, 3):
        return None
    return values


SILENT_THREAD = "lensblur-silent"  # the name of threads that never write to stderr (see _without_libpng_prints)

# Chunks that OpenCV's PNG decoder and Pillow's read alike and that hold no metadata lensblur keeps
# (ICC, EXIF, text) or applies (transparency); a PNG with any other chunk is decoded by Pillow.
_QUIET_PNG_CHUNKS = (b"IHDR", b"IDAT", b"IEND", b"pHYs", b"tIME")


def _opencv_png(path: Path, image: Image.Image, fmt: str) -> tuple[np.ndarray, np.ndarray | None] | None:
    """A plain 8-bit grey, RGB or RGBA PNG decoded by OpenCV: (H×W×C uint8 colour, H×W alpha or
    None), orientation not applied; None to let Pillow decode it. The same values as Pillow's
    (tests/test_fast_read.py) in about a quarter less time, without the copy out of Pillow's
    four-byte pixels. Only for files of :data:`_QUIET_PNG_CHUNKS` that are complete with correct
    CRCs up to IEND (a truncated or damaged file goes to Pillow, which reports it in one line), and
    only where libpng's own prints can be kept off stderr (:func:`_without_libpng_prints`). Such a
    file has no EXIF, so Pillow's ``getexif`` (which decodes a PNG to look for EXIF after the
    pixels) is not needed either."""
    colour_type = {"L": 0, "RGB": 2, "RGBA": 6}.get(image.mode)
    if fmt != "PNG" or colour_type is None:
        return None
    data = np.fromfile(path, dtype=np.uint8)
    # 8 bits per sample (Pillow reads 16-bit colour as RGB too: _deep_colour keeps it deep)
    if bytes(data[12:16]) != b"IHDR" or data[24:26].tolist() != [8, colour_type]:
        return None
    if not _quiet_png(memoryview(data)):
        return None
    flags = {"L": cv2.IMREAD_GRAYSCALE, "RGB": cv2.IMREAD_COLOR_RGB, "RGBA": cv2.IMREAD_UNCHANGED}[image.mode]
    values = _without_libpng_prints(cv2.imdecode, data, flags)
    if values is None or values.dtype != np.uint8 or values.shape[:2] != (image.height, image.width):
        return None
    values = values.reshape(image.height, image.width, -1)
    if values.shape[2] != len(image.mode):
        return None
    if image.mode == "RGBA":
        return values[..., 2::-1], values[..., 3]  # BGRA → RGB and alpha
    return values, None


def opencv_grey_png(path: Path, image: Image.Image) -> np.ndarray | None:
    """A plain 8- or 16-bit grey PNG (Pillow modes L and I;16; a depth map) decoded by OpenCV:
    H×W uint8 or uint16 with the values Pillow gives, in about half the time (Pillow copies a
    16-bit image out through ``tobytes``); None to let Pillow decode it. The conditions of
    :func:`_opencv_png` apply: only chunks of :data:`_QUIET_PNG_CHUNKS`, complete with correct
    CRCs, and only where libpng's prints can be kept off stderr. ``image``: the file opened by
    Pillow (its header read, under ``pil_strict``)."""
    bits = {"L": 8, "I;16": 16}.get(image.mode)
    if image.format != "PNG" or bits is None:
        return None
    data = np.fromfile(path, dtype=np.uint8)
    if bytes(data[12:16]) != b"IHDR" or data[24:26].tolist() != [bits, 0] or not _quiet_png(memoryview(data)):
        return None
    values = _without_libpng_prints(cv2.imdecode, data, cv2.IMREAD_UNCHANGED)
    if values is None or values.dtype != (np.uint8 if bits == 8 else np.uint16) or values.shape != (image.height,
                                                                                                      image.width):
        return None
    return values


def _without_libpng_prints(decode, *args):
    """``decode(*args)`` with the process's stderr (file descriptor 2) pointed at /dev/null for the
    call, or None: libpng prints "libpng error: …" there before OpenCV returns None for pixel data
    that is damaged inside chunks whose CRCs are right (a crafted file), and Pillow's one line must
    be the only one. Only when this is the process's only Python thread (the command line reading
    its photo), so no other thread's output can be lost; with others running, None (Pillow decodes).
    Threads named :data:`SILENT_THREAD` write nothing there and do not count: the command line's
    import of its renderer during the photo's decode (lensblur.renderers.import_in_background)
    and its clipped-highlight analysis during the depth map's."""
    silent = sum(thread.name == SILENT_THREAD for thread in threading.enumerate())
    if threading.active_count() - silent > 1:
        return None
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            try:
                return decode(*args)
            except cv2.error:
                return None
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def _quiet_png(data: memoryview) -> bool:
    """True when a PNG holds only :data:`_QUIET_PNG_CHUNKS`, each complete with a correct CRC, up to
    IEND after at least one IDAT."""
    position, pixels = 8, False
    while position + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        end = position + 12 + length
        if end > len(data) or kind not in _QUIET_PNG_CHUNKS:
            return False
        if zlib.crc32(data[position + 4:end - 4]) != int.from_bytes(data[end - 4:end], "big"):
            return False
        if kind == b"IEND":
            return pixels
        pixels = pixels or kind == b"IDAT"
        position = end
    return False


def _raw_exif(image: Image.Image, fmt: str, parsed: Image.Exif) -> bytes | None:
    raw = image.info.get("exif")
    if raw:
        return raw if raw.startswith(b"Exif\x00\x00") else b"Exif\x00\x00" + raw
    if fmt == "TIFF" and len(parsed):
        # A TIFF's EXIF lives among its own tags; keep the descriptive ones, not the layout ones.
        kept = Image.Exif()
        for tag in (270, 271, 272, 274, 305, 306, 315, 33432):
            if tag in parsed:
                kept[tag] = parsed[tag]
        for ifd in (0x8769, 0x8825):
            sub = parsed.get_ifd(ifd)
            if sub:
                kept.get_ifd(ifd).update(sub)
        return kept.tobytes() if len(kept) or kept.get_ifd(0x8769) else None
    return None


def _deep_colour(path: Path, image: Image.Image, fmt: str) -> tuple[np.ndarray, bool] | None:
    """16-bit colour PNG/TIFF, which PIL would reduce to 8 bits: uint16 H×W×C in RGB(A) order."""
    if image.mode.startswith("I") or image.mode == "F":
        return None  # 16-bit grey, which PIL reads fully
    if fmt == "PNG":
        with open(path, "rb") as file:
            header = file.read(26)
        if header[12:16] != b"IHDR" or header[24] != 16:
            return None
        grey = header[25] in (0, 4)
    elif fmt == "TIFF":
        bits = image.tag_v2.get(258, (8,))
        if max(bits if isinstance(bits, tuple) else (bits,)) < 16:
            return None
        grey = image.mode in ("L", "LA")
    else:
        return None
    values = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if values is None or values.dtype != np.uint16:
        raise InputError(f"cannot read image {path}: unsupported 16-bit layout")
    if values.ndim == 2:
        values = values[..., None]
    if values.shape[2] == 3:
        values = values[..., ::-1]
    elif values.shape[2] == 4:
        values = values[..., [2, 1, 0, 3]]
    return values, grey


def _normalise_mode(image: Image.Image, profile: bytes | None) -> tuple[Image.Image, bytes | None]:
    """Convert unusual modes to L, LA, I;16, I, F, RGB or RGBA; CMYK becomes sRGB."""
    mode = image.mode
    if mode == "1":
        return image.convert("L"), profile
    if mode in ("P", "PA"):
        transparent = mode == "PA" or "transparency" in image.info
        return image.convert("RGBA" if transparent else "RGB"), profile
    if mode == "La":
        return image.convert("LA"), profile
    if mode == "RGBa":
        return image.convert("RGBA"), profile
    if mode == "CMYK":
        if profile and icc.colour_space(profile) == "CMYK":
            from PIL import ImageCms

            try:
                source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
                srgb = ImageCms.createProfile("sRGB")
                return ImageCms.profileToProfile(image, source, srgb, outputMode="RGB"), None
            except (ImageCms.PyCMSError, OSError):
                pass  # a broken CMYK profile: fall back to Pillow's plain conversion
        return image.convert("RGB"), None
    if mode in ("RGBX", "YCbCr"):
        return image.convert("RGB"), profile
    if mode in ("L", "LA", "I;16", "I;16B", "I;16L", "I;16N", "I", "F", "RGB", "RGBA"):
        return image, profile
    raise InputError(f"unsupported pixel mode {mode}")


def _orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) the way PIL.ImageOps.exif_transpose does."""
    if orientation == 2:
        return array[:, ::-1]
    if orientation == 3:
        return array[::-1, ::-1]
    if orientation == 4:
        return array[::-1]
    if orientation == 5:
        return array.swapaxes(0, 1)
    if orientation == 6:
        return np.rot90(array, k=-1)
    if orientation == 7:
        return array[::-1, ::-1].swapaxes(0, 1)
    if orientation == 8:
        return np.rot90(array, k=1)
    return array


# ---------------------------------------------------------------- writing


def _checked_pixels(pixels) -> np.ndarray:
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.size == 0:
        raise InputError(f"image to write must be H×W×3 linear values, got shape {pixels.shape}")
    return pixels.astype(np.float32, copy=False)  # NaN → 0 and ±inf → 1/0 happen in the encoder


def _save(temp: Path, values: np.ndarray, fmt: str, deep: bool, profile: bytes | None,
          exif: bytes | None, quality: int) -> None:
    channels = 1 if values.ndim == 2 else values.shape[2]
    if deep and channels == 2 and fmt == "PNG":  # no 16-bit grey + alpha PNG writer: use RGBA
        values = values[..., [0, 0, 0, 1]]
        channels = 4
    if fmt == "TIFF":
        temp.write_bytes(_tiff(values, profile, exif))
        return
    if deep and channels > 1:
        temp.write_bytes(_png16(values, profile, exif))
        return
    if fmt == "JPEG":
        temp.write_bytes(jpeg_bytes(values, profile, exif, quality))
        return
    image = Image.fromarray(values)
    options = {}
    if profile:
        options["icc_profile"] = profile
    if exif:
        options["exif"] = exif
    if fmt == "WEBP":
        options.update(quality=quality, lossless=quality >= 100, exact=True)
    elif fmt == "HEIF":
        heif_support()
        options.update(quality=quality)
    image.save(temp, format=fmt, **options)


_JPEG_SEGMENT = 65519  # the largest ICC profile or EXIF block one APP segment holds here


def jpeg_bytes(values: np.ndarray, profile: bytes | None = None, exif: bytes | None = None,
               quality: int = 95) -> bytes:
    """A JPEG file of 8-bit encoded values: H×W×3 RGB or H×W grey uint8, with the ICC profile
    and EXIF block ("Exif\\0\\0" + TIFF data) given. quality 1-100; chroma is kept at full
    resolution (4:4:4) from quality 90, halved both ways (4:2:0) below; Huffman tables are the
    standard ones. Colour images are encoded by OpenCV (:func:`_opencv_jpeg_bytes`), the rest,
    and metadata too large for it, by Pillow with the same settings."""
    if values.ndim == 3 and values.shape[2] == 3:
        encoded = _opencv_jpeg_bytes(values, profile, exif, quality)
        if encoded is not None:
            return encoded
    options = {"quality": quality, "subsampling": 0 if quality >= 90 else 2}
    if profile:
        options["icc_profile"] = profile
    if exif:
        options["exif"] = exif
    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, format="JPEG", **options)
    return buffer.getvalue()


def _opencv_jpeg_bytes(values: np.ndarray, profile: bytes | None, exif: bytes | None, quality: int) -> bytes | None:
    """An RGB uint8 H×W×3 image as a baseline JPEG encoded by OpenCV, with the ICC profile (APP2)
    and EXIF block (APP1) after the JFIF header; None (let Pillow write it) for metadata too large
    for one segment. The settings are Pillow's: quality, 4:4:4 chroma from quality 90 (4:2:0
    below), standard Huffman tables (an optimised pass would make files 4–10 % smaller for
    twice the encoding time); the file is the one Pillow writes, byte for byte
    (tests/test_whole_command.py), without Pillow's copy of the array into its own layout."""
    tiff = exif[6:] if exif and exif.startswith(b"Exif\x00\x00") else exif
    if (profile and len(profile) > _JPEG_SEGMENT) or (tiff and len(tiff) > _JPEG_SEGMENT):
        return None
    kinds, blocks = [], []
    for kind, block in ((cv2.IMAGE_METADATA_EXIF, tiff), (cv2.IMAGE_METADATA_ICCP, profile)):
        if block:
            kinds.append(kind)
            blocks.append(np.frombuffer(block, dtype=np.uint8))
    sampling = cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444 if quality >= 90 else cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420
    params = [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, sampling]
    bgr = cv2.cvtColor(values, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencodeWithMetadata(".jpg", bgr, kinds, blocks, params)
    return data.tobytes() if ok else None


def _png16(values: np.ndarray, profile: bytes | None, exif: bytes | None) -> bytes:
    """16-bit RGB(A) PNG via OpenCV, with iCCP and eXIf chunks added after IHDR."""
    bgr = values[..., [2, 1, 0, 3]] if values.shape[2] == 4 else values[..., ::-1]
    ok, data = cv2.imencode(".png", np.ascontiguousarray(bgr))
    if not ok:
        raise OutputError("OpenCV could not encode the 16-bit PNG")
    data = data.tobytes()
    extra = b""
    if profile:
        extra += _png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(profile))
    if exif:
        extra += _png_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif)
    end_of_ihdr = 8 + 8 + 13 + 4  # signature, length + type, IHDR data, CRC
    return data[:end_of_ihdr] + extra + data[end_of_ihdr:]


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


# Tags describing a TIFF's pixel layout (and pointers), never copied from an EXIF block.
_TIFF_LAYOUT_TAGS = frozenset({254, 255, 256, 257, 258, 259, 262, 266, 273, 274, 277, 278, 279, 284, 317,
                               320, 322, 323, 324, 325, 338, 339, 513, 514, 530, 531, 532, 0x8769, 0x8825,
                               0xA005, 34675})


def _tiff(values: np.ndarray, profile: bytes | None, exif: bytes | None) -> bytes:
    """Little-endian 8- or 16-bit grey/RGB(A) TIFF, one deflate strip, with ICC and EXIF tags.

    Written by hand because PIL has no 16-bit RGB mode and its libtiff path cannot store the
    EXIF sub-directory.
    """
    values = values[..., None] if values.ndim == 2 else values
    height, width, channels = values.shape
    bits = 8 * values.dtype.itemsize
    from PIL import TiffImagePlugin, TiffTags  # only TIFF output needs them (≈8 ms to import)

    strip = zlib.compress(np.ascontiguousarray(values, dtype=f"<u{values.dtype.itemsize}").tobytes(), 6)
    ifd = TiffImagePlugin.ImageFileDirectory_v2(prefix=b"II")
    if exif:
        parsed = Image.Exif()
        parsed.load(exif)
        for tag, value in parsed.items():
            if tag not in _TIFF_LAYOUT_TAGS:
                ifd[tag] = value  # descriptive IFD0 tags only; layout tags are set below
        for sub in (0x8769, 0x8825):
            tags = {tag: value for tag, value in parsed.get_ifd(sub).items() if tag != 0xA005}
            if tags:
                ifd[sub] = tags
    ifd[256], ifd[257] = width, height
    ifd[258] = (bits,) * channels
    ifd[259] = 8  # Adobe deflate
    ifd[262] = 1 if channels <= 2 else 2  # grey (black is zero) or RGB
    ifd[273] = 0  # PIL's tobytes adds the directory's end, so the strip follows it
    ifd[274] = 1
    ifd[277] = channels
    ifd[278] = height
    ifd[279] = len(strip)
    ifd[284] = 1
    if channels in (2, 4):
        ifd[338] = (2,)  # unassociated (straight) alpha
    if profile:
        ifd[34675] = profile
        ifd.tagtype[34675] = TiffTags.UNDEFINED
    return b"II*\x00" + struct.pack("<I", 8) + ifd.tobytes(8) + strip
