"""Multi-Picture Format (CIPA DC-007): the APP2 "MPF" index of a JPEG → byte ranges of its images.

iPhone portrait JPEGs keep the disparity map and the portrait matte as extra JPEGs after the
primary image, listed in this index. Nothing here raises on malformed input: bad entries are
dropped with a note.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from lensblur.io.xmp import Segment, jpeg_segments

SIGNATURE = b"MPF\x00"
_TAG_NUMBER_OF_IMAGES = 0xB001
_TAG_MP_ENTRY = 0xB002
_ENTRY_SIZE = 16
_MAX_IMAGES = 64


@dataclass(frozen=True)
class MPImage:
    """One image of the MP index: its number (0 = primary), absolute byte offset and size in the
    file, and the MP attribute word (type code in the low 24 bits)."""

    index: int
    offset: int
    size: int
    attribute: int


def mpf_images(data: bytes, notes: list[str], segments: list[Segment] | None = None) -> list[MPImage]:
    """The images listed in the first APP2 MPF index of a JPEG file, primary first.

    data: the whole file. Offsets in the index are relative to the TIFF header that follows
    "MPF\\0"; they are returned as absolute file offsets. Entries whose range falls outside the
    file, or that do not start with a JPEG SOI marker, are dropped with a note. [] when there is
    no (usable) index.
    """
    if segments is None:
        segments = jpeg_segments(data)
    for seg in segments:
        if seg.marker == 0xE2 and seg.payload.startswith(SIGNATURE):
            return _parse(data, seg.payload[len(SIGNATURE):], seg.offset + len(SIGNATURE), notes)
    return []


def _parse(data: bytes, tiff: bytes, base: int, notes: list[str]) -> list[MPImage]:
    if len(tiff) < 8 or tiff[:4] not in (b"MM\x00*", b"II*\x00"):
        notes.append("MPF index has no valid TIFF header; ignored")
        return []
    order = ">" if tiff[:2] == b"MM" else "<"
    (ifd,) = struct.unpack(order + "I", tiff[4:8])
    if ifd + 2 > len(tiff):
        notes.append("MPF index IFD offset is past the segment; ignored")
        return []
    (count,) = struct.unpack(order + "H", tiff[ifd:ifd + 2])
    entries_at = entries_len = None
    number = None
    for k in range(count):
        start = ifd + 2 + 12 * k
        if start + 12 > len(tiff):
            notes.append("MPF index IFD is truncated")
            break
        tag, _type, n, value = struct.unpack(order + "HHII", tiff[start:start + 12])
        if tag == _TAG_NUMBER_OF_IMAGES:
            number = value
        elif tag == _TAG_MP_ENTRY:
            entries_at, entries_len = value, n
    if entries_at is None:
        notes.append("MPF index without MP entries; ignored")
        return []
    n_entries = entries_len // _ENTRY_SIZE
    if number is not None and number != n_entries:
        notes.append(f"MPF index says {number} images but lists {n_entries}")
    images = []
    for i in range(min(n_entries, _MAX_IMAGES)):
        start = entries_at + _ENTRY_SIZE * i
        if start + _ENTRY_SIZE > len(tiff):
            notes.append("MPF entry list runs past the segment; later entries ignored")
            break
        attribute, size, offset, _, _ = struct.unpack(order + "IIIHH", tiff[start:start + _ENTRY_SIZE])
        if i == 0:
            # the primary image starts at the file's SOI; its size is not needed here
            images.append(MPImage(i, 0, size, attribute))
            continue
        if offset == 0:
            notes.append(f"MPF image {i} has offset 0 (only the primary may); ignored")
            continue
        absolute = base + offset
        if size == 0 or absolute + size > len(data):
            notes.append(f"MPF image {i} lies past the end of the file; ignored")
            continue
        if data[absolute:absolute + 2] != b"\xff\xd8":
            notes.append(f"MPF image {i} does not start with a JPEG marker; ignored")
            continue
        images.append(MPImage(i, absolute, size, attribute))
    return images
