"""Pixel limits, checked from a file's header before anything is decoded.

A photo may hold at most ``--max-pixels`` pixels (default 200 million). A depth map, matte or
other image stored beside or inside it may hold at most as many, and at most four times the
photo's own pixel count (never less than 4 MP): a map is resized to the photo anyway, so a larger
one can only be a decompression bomb. See docs/security.md.
"""

from __future__ import annotations

import contextlib
import threading
import warnings

from PIL import Image, ImageFile

from lensblur.errors import InputError

DEFAULT_MAX_PIXELS = 200_000_000
MAP_PIXELS_PER_PHOTO_PIXEL = 4
MIN_MAP_LIMIT = 4_000_000

# PIL's decompression-bomb limit and truncated-image switch are process-wide; lensblur applies its
# own pixel limit and must see truncation, so both are set only while this lock is held.
PIL_LOCK = threading.RLock()


class LimitError(InputError):
    """An input is over a size limit (pixels, bytes, blur radius)."""


def check_pixels(width: int, height: int, max_pixels: int, what: str) -> None:
    """Raise LimitError naming ``what`` when width × height exceeds ``max_pixels``."""
    count = int(width) * int(height)
    if count > max_pixels:
        raise LimitError(f"{what} is {width}×{height} = {count / 1e6:.1f} MP, over the "
                         f"{max_pixels / 1e6:g} MP limit (--max-pixels)")


def map_limit(photo_pixels: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> int:
    """Most pixels a depth map or matte of a photo with ``photo_pixels`` pixels may have."""
    return int(min(max_pixels, max(MAP_PIXELS_PER_PHOTO_PIXEL * photo_pixels, MIN_MAP_LIMIT)))


@contextlib.contextmanager
def pil_strict():
    """Hold PIL_LOCK with PIL's own pixel limit off (lensblur checks its own) and truncated
    images refused; PIL's decompression-bomb warnings are not shown."""
    with PIL_LOCK:
        saved = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
        Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = None, False
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                yield
        finally:
            Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = saved


def header_size(source) -> tuple[int, int] | None:
    """(width, height) of an image file or file object from its header (nothing is decoded), or
    None when PIL does not recognise it."""
    try:
        with pil_strict(), Image.open(source) as image:
            return image.size
    except Exception:  # noqa: BLE001 - any failure means "size unknown here"; the decoder reports it
        return None
