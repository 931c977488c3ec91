"""Completeness of ISO base media files (HEIC, HEIF, AVIF) before they are decoded.

libheif decodes the tiles whose bytes it finds and paints the missing ones green, so a cut file
would render without an error. :func:`check_complete` refuses a file whose top-level boxes run
past its end, or whose item-location box (``iloc``, ISO/IEC 14496-12 §8.11.3) points at bytes
the file does not hold.
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

from lensblur.errors import InputError

_MAX_META_BYTES = 64 * 1024 * 1024


class Truncated(InputError):
    """The file ends before data it declares."""


def is_bmff(head: bytes) -> bool:
    """True for data starting with an ISO BMFF ``ftyp`` box (HEIC, HEIF, AVIF, MP4…)."""
    return len(head) >= 12 and head[4:8] == b"ftyp"


def check_complete(path: str | os.PathLike) -> None:
    """Raise :class:`Truncated` (an InputError, message without the file name) unless every
    top-level box and every file extent listed in ``iloc`` lies inside the file."""
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        meta = _top_level(handle, size)
        if meta is not None:
            _check_iloc(meta, size)


def _top_level(handle: BinaryIO, size: int) -> bytes | None:
    """Walk the top-level boxes; the payload of ``meta`` (None when absent)."""
    pos, meta = 0, None
    while pos < size:
        handle.seek(pos)
        header = handle.read(16)
        if len(header) < 8:
            raise Truncated(f"the file is truncated (a box header at byte {pos} is cut)")
        box_size, kind = struct.unpack(">I4s", header[:8])
        header_size = 8
        if box_size == 1:
            if len(header) < 16:
                raise Truncated(f"the file is truncated (a box header at byte {pos} is cut)")
            (box_size,) = struct.unpack(">Q", header[8:16])
            header_size = 16
        elif box_size == 0:
            box_size = size - pos  # the last box runs to the end of the file
        if box_size < header_size:
            raise Truncated(f"the file is damaged (box {kind!r} at byte {pos} has size {box_size})")
        if pos + box_size > size:
            raise Truncated(f"the file is truncated ({kind.decode('latin-1')} box needs "
                            f"{pos + box_size} bytes, the file has {size})")
        if kind == b"meta" and meta is None and box_size <= _MAX_META_BYTES:
            handle.seek(pos + header_size)
            meta = handle.read(box_size - header_size)
        pos += box_size
    return meta


def _children(data: bytes, start: int) -> dict[bytes, bytes]:
    """First payload of each child box type in ``data[start:]``."""
    boxes, pos = {}, start
    while pos + 8 <= len(data):
        box_size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        header_size = 8
        if box_size == 1 and pos + 16 <= len(data):
            (box_size,) = struct.unpack(">Q", data[pos + 8:pos + 16])
            header_size = 16
        elif box_size == 0:
            box_size = len(data) - pos
        if box_size < header_size or pos + box_size > len(data):
            raise Truncated(f"the file is damaged (box {kind!r} inside meta runs past it)")
        boxes.setdefault(kind, data[pos + header_size:pos + box_size])
        pos += box_size
    return boxes


def _check_iloc(meta: bytes, size: int) -> None:
    children = _children(meta, 4)  # meta is a full box: version and flags first
    iloc = children.get(b"iloc")
    if iloc is None:
        return
    idat_size = len(children.get(b"idat", b""))
    try:
        for method, start, length in _extents(iloc):
            end = start + length
            if method == 0 and end > size:
                raise Truncated(f"the file is truncated (image data runs to byte {end}, the file has {size})")
            if method == 1 and end > idat_size:
                raise Truncated("the file is damaged (image data runs past its idat box)")
    except struct.error:
        raise Truncated("the file is damaged (its item-location box is cut)") from None


def _extents(iloc: bytes):
    """(construction method, absolute start, length) of every extent with a known length."""
    version = iloc[0]
    offset_size, length_size = iloc[4] >> 4, iloc[4] & 15
    base_size, index_size = iloc[5] >> 4, (iloc[5] & 15 if version in (1, 2) else 0)
    if any(width not in (0, 4, 8) for width in (offset_size, length_size, base_size, index_size)):
        raise Truncated("the file is damaged (its item-location box has invalid field sizes)")
    pos = 6

    def number(width: int) -> int:
        nonlocal pos
        if pos + width > len(iloc):
            raise struct.error("iloc cut")
        value = int.from_bytes(iloc[pos:pos + width], "big")
        pos += width
        return value

    wide = 2 if version < 2 else 4
    for _ in range(number(wide)):
        number(wide)  # item id
        method = number(2) & 15 if version in (1, 2) else 0
        number(2)  # data reference index
        base = number(base_size)
        for _ in range(number(2)):
            number(index_size)
            offset, length = number(offset_size), number(length_size)
            if length:
                yield method, base + offset, length
