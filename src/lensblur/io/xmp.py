"""XMP in JPEG files: segments, standard + Extended XMP packets, and the depth schemas in them.

Reads the XMP that phones use to carry depth (docs/embedded-depth.md):
- Google GDepth / GImage / GFocus (Lens Blur photos), whose base64 payloads usually sit in the
  Extended XMP (APP1 "http://ns.adobe.com/xmp/extension/" chunks joined by offset);
- Google Dynamic Depth 1.0 (Container:Directory items and Camera:DepthMap / Camera:Image).

Nothing here raises on malformed input: functions return None or empty results and append a
human-readable reason to a ``notes`` list.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

STANDARD_SIGNATURE = b"http://ns.adobe.com/xap/1.0/\x00"
EXTENDED_SIGNATURE = b"http://ns.adobe.com/xmp/extension/\x00"

NS_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
NS_XMP_NOTE = "http://ns.adobe.com/xmp/note/"
NS_GDEPTH = "http://ns.google.com/photos/1.0/depthmap/"
NS_GIMAGE = "http://ns.google.com/photos/1.0/image/"
NS_GFOCUS = "http://ns.google.com/photos/1.0/focus/"
NS_DD_CONTAINER = "http://ns.google.com/photos/dd/1.0/container/"
NS_DD_ITEM = "http://ns.google.com/photos/dd/1.0/item/"
NS_DD_CAMERA = "http://ns.google.com/photos/dd/1.0/camera/"
NS_DD_DEPTHMAP = "http://ns.google.com/photos/dd/1.0/depthmap/"
NS_DD_IMAGE = "http://ns.google.com/photos/dd/1.0/image/"
NS_APDI = "http://ns.apple.com/pixeldatainfo/1.0/"
NS_APPLE_MATTE = "http://ns.apple.com/portraitEffectsMatte/1.0/"

RANGE_FORMATS = ("RangeInverse", "RangeLinear")

_PACKET = re.compile(rb"<x:xmpmeta\b.*?</x:xmpmeta\s*>", re.DOTALL)
_EXT_HEADER = 32 + 4 + 4  # GUID (32 hex chars), full length, chunk offset


@dataclass(frozen=True)
class Segment:
    """One JPEG marker segment before the scan: marker byte (0xE1 = APP1…), payload offset in
    the file (bytes) and the payload (without marker and length)."""

    marker: int
    offset: int
    payload: bytes


@dataclass
class XmpPackets:
    """The XMP of a JPEG: the standard packet and the reassembled Extended XMP (text or None)."""

    standard: str | None = None
    extended: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class GDepthInfo:
    """Google GDepth / GImage / GFocus properties.

    format: "RangeInverse" or "RangeLinear" (None if absent); near, far: the range (scene units,
    typically metres; None when absent or unparsable); depth_mime / depth_data: the depth image
    (bytes, or None when missing or undecodable base64); image_mime / image_data: the GImage
    (sharp original); focus: GFocus values as floats where they parse.
    """

    format: str | None = None
    near: float | None = None
    far: float | None = None
    depth_mime: str | None = None
    depth_data: bytes | None = None
    image_mime: str | None = None
    image_data: bytes | None = None
    focus: dict | None = None


@dataclass(frozen=True)
class ContainerItem:
    """One Dynamic Depth Container:Item: mime type, length and trailing padding in bytes, URI."""

    mime: str
    length: int
    padding: int
    uri: str


@dataclass
class DynamicDepthInfo:
    """Google Dynamic Depth 1.0 metadata.

    items: the Container:Directory in file order (item 0 is the primary image);
    format / near / far / units: the Camera:DepthMap range description; depth_uri and
    confidence_uri: the items holding the depth and confidence images; original_uri: the item of a
    Camera:Image whose ItemSemantic is "Original" (the sharp photo), if any.
    """

    items: list[ContainerItem]
    format: str | None = None
    near: float | None = None
    far: float | None = None
    units: str | None = None
    depth_uri: str | None = None
    confidence_uri: str | None = None
    original_uri: str | None = None


def jpeg_segments(data: bytes) -> list[Segment]:
    """The marker segments of a JPEG up to its first scan (SOS), in file order.

    data: the whole file. A file that does not start with SOI gives []; a segment whose length
    runs past the end stops the walk (segments read so far are returned).
    """
    segments: list[Segment] = []
    if len(data) < 4 or data[:2] != b"\xff\xd8":
        return segments
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # stand-alone markers
            pos += 2
            continue
        if marker in (0xDA, 0xD9):
            break
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        if length < 2 or pos + 2 + length > len(data):
            break
        segments.append(Segment(marker, pos + 4, data[pos + 4:pos + 2 + length]))
        pos += 2 + length
    return segments


def extract_xmp(data: bytes, segments: list[Segment] | None = None) -> XmpPackets:
    """Standard XMP and reassembled Extended XMP of a JPEG file's APP1 segments.

    The Extended XMP chunks are joined by their offsets; only the GUID named by
    ``xmpNote:HasExtendedXMP`` is used (or the single GUID present, with a note). Missing
    chunks, overlaps that disagree or lengths that do not add up drop the Extended XMP with a note.
    """
    packets = XmpPackets()
    if segments is None:
        segments = jpeg_segments(data)
    chunks: dict[bytes, list[tuple[int, int, bytes]]] = {}
    for seg in segments:
        if seg.marker != 0xE1:
            continue
        if seg.payload.startswith(STANDARD_SIGNATURE) and packets.standard is None:
            packets.standard = seg.payload[len(STANDARD_SIGNATURE):].decode("utf-8", "replace")
        elif seg.payload.startswith(EXTENDED_SIGNATURE):
            body = seg.payload[len(EXTENDED_SIGNATURE):]
            if len(body) < _EXT_HEADER:
                packets.notes.append("Extended XMP chunk too short; ignored")
                continue
            guid = body[:32].upper()
            total, offset = struct.unpack(">II", body[32:40])
            chunks.setdefault(guid, []).append((total, offset, body[40:]))
    if not chunks:
        return packets
    wanted = _extended_guid(packets.standard)
    if wanted is None:
        if len(chunks) != 1:
            packets.notes.append("several Extended XMP GUIDs and none named by HasExtendedXMP; ignored")
            return packets
        wanted = next(iter(chunks))
        packets.notes.append("Extended XMP present but not named by xmpNote:HasExtendedXMP; used anyway")
    if wanted not in chunks:
        packets.notes.append("Extended XMP chunk missing (no chunk with the GUID of HasExtendedXMP); ignored")
        return packets
    joined = _join_chunks(chunks[wanted], packets.notes)
    if joined is None:
        return packets
    if hashlib.md5(joined).hexdigest().upper().encode() != wanted:
        packets.notes.append("Extended XMP does not match its GUID (MD5); used anyway")
    packets.extended = joined.decode("utf-8", "replace")
    return packets


def parse_packets(text: str | bytes | None) -> list[ET.Element]:
    """Parse every ``<x:xmpmeta>`` packet in ``text`` (or the whole text when there is none).

    Packets that are not well-formed XML, or that declare a DOCTYPE/ENTITY (never used by XMP,
    refused to avoid entity expansion), are skipped. Returns the root elements.
    """
    if not text:
        return []
    raw = text.encode("utf-8", "replace") if isinstance(text, str) else bytes(text)
    blocks = _PACKET.findall(raw) or [raw]
    roots = []
    for block in blocks:
        if b"<!DOCTYPE" in block or b"<!ENTITY" in block:
            continue
        try:
            roots.append(ET.fromstring(block))
        except (ET.ParseError, ValueError, UnicodeError):
            continue
    return roots


def properties(roots: list[ET.Element], namespace: str) -> dict[str, str]:
    """Simple properties of one namespace in the rdf:Description elements of ``roots``.

    Returns local name → text for both forms XMP allows: attributes of rdf:Description and child
    elements holding plain text. The first occurrence wins.
    """
    found: dict[str, str] = {}
    prefix = "{" + namespace + "}"
    for root in roots:
        for desc in root.iter(f"{{{NS_RDF}}}Description"):
            for key, value in desc.attrib.items():
                if key.startswith(prefix):
                    found.setdefault(key[len(prefix):], value)
            for child in desc:
                if isinstance(child.tag, str) and child.tag.startswith(prefix) and len(child) == 0:
                    found.setdefault(child.tag[len(prefix):], (child.text or "").strip())
    return found


def read_gdepth(roots: list[ET.Element], notes: list[str]) -> GDepthInfo | None:
    """GDepth / GImage / GFocus properties of the parsed packets, or None when no GDepth:Data.

    Base64 payloads that do not decode are reported in ``notes`` and left as None.
    """
    depth = properties(roots, NS_GDEPTH)
    image = properties(roots, NS_GIMAGE)
    focus = properties(roots, NS_GFOCUS)
    if not depth and not image:
        return None
    info = GDepthInfo(format=depth.get("Format"), near=_float(depth.get("Near")),
                      far=_float(depth.get("Far")), depth_mime=depth.get("Mime"),
                      image_mime=image.get("Mime"))
    if "Data" in depth:
        info.depth_data = _b64(depth["Data"], "GDepth:Data", notes)
    elif depth:
        notes.append("GDepth metadata without GDepth:Data (Extended XMP missing?)")
    if "Data" in image:
        info.image_data = _b64(image["Data"], "GImage:Data", notes)
    if focus:
        info.focus = {key: value if (number := _float(value)) is None else number
                      for key, value in focus.items()}
    return info


def read_dynamic_depth(roots: list[ET.Element], notes: list[str]) -> DynamicDepthInfo | None:
    """Dynamic Depth 1.0 container directory and depth-map description, or None when absent."""
    items = []
    for root in roots:
        for element in root.iter(f"{{{NS_DD_CONTAINER}}}Item"):
            attrs = _local_attrs(element, NS_DD_ITEM)
            length = _int(attrs.get("Length", "0"))
            padding = _int(attrs.get("Padding", "0"))
            if length is None or padding is None or length < 0 or padding < 0:
                notes.append("Dynamic Depth item with an invalid Length or Padding; container ignored")
                return None
            items.append(ContainerItem(attrs.get("Mime", ""), length, padding, attrs.get("DataURI", "")))
        if items:
            break
    if not items:
        return None
    info = DynamicDepthInfo(items=items)
    for root in roots:
        for element in root.iter(f"{{{NS_DD_CAMERA}}}DepthMap"):
            attrs = _local_attrs(element, NS_DD_DEPTHMAP)
            info.format = attrs.get("Format")
            info.near, info.far = _float(attrs.get("Near")), _float(attrs.get("Far"))
            info.units = attrs.get("Units")
            # the 1.0 spec names the link DepthURI; some writers use ItemURI
            info.depth_uri = attrs.get("DepthURI") or attrs.get("ItemURI")
            info.confidence_uri = attrs.get("ConfidenceURI")
            break
        for element in root.iter(f"{{{NS_DD_CAMERA}}}Image"):
            attrs = _local_attrs(element, NS_DD_IMAGE)
            if attrs.get("ItemSemantic") == "Original" and info.original_uri is None:
                info.original_uri = attrs.get("ItemURI")
        if info.depth_uri:
            break
    return info


def apple_aux_type(roots: list[ET.Element]) -> dict[str, str]:
    """Apple auxiliary-image description of an MPF sub-image's XMP (apdi: properties).

    Returns the apdi properties (AuxiliaryImageType "disparity"/"depth", AuxiliaryImageSubType,
    FloatMinValue, FloatMaxValue…) plus "Matte" = "1" when a portraitEffectsMatte schema is
    present.
    """
    found = properties(roots, NS_APDI)
    if properties(roots, NS_APPLE_MATTE) or "portraiteffectsmatte" in found.get(
            "AuxiliaryImageSubType", "").lower():
        found["Matte"] = "1"
    return found


def _extended_guid(standard: str | None) -> bytes | None:
    if not standard:
        return None
    guid = properties(parse_packets(standard), NS_XMP_NOTE).get("HasExtendedXMP")
    if guid is None:
        match = re.search(r"HasExtendedXMP\s*=\s*[\"']([0-9A-Fa-f]{32})", standard)
        guid = match.group(1) if match else None
    if guid is None or len(guid) != 32:
        return None
    try:
        return guid.upper().encode("ascii")
    except UnicodeError:
        return None


def _join_chunks(chunks: list[tuple[int, int, bytes]], notes: list[str]) -> bytes | None:
    totals = {total for total, _, _ in chunks}
    if len(totals) != 1:
        notes.append("Extended XMP chunks disagree on the full length; ignored")
        return None
    total = totals.pop()
    if total == 0 or total > 1 << 28:
        notes.append(f"Extended XMP full length {total} is implausible; ignored")
        return None
    joined = bytearray(total)
    covered = 0
    for _, offset, chunk in sorted(chunks, key=lambda c: c[1]):
        if offset + len(chunk) > total:
            notes.append("Extended XMP chunk runs past the full length; ignored")
            return None
        if offset > covered:
            notes.append("Extended XMP chunk missing (gap in the offsets); ignored")
            return None
        joined[offset:offset + len(chunk)] = chunk
        covered = max(covered, offset + len(chunk))
    if covered != total:
        notes.append("Extended XMP chunk missing (data ends early); ignored")
        return None
    return bytes(joined)


def _local_attrs(element: ET.Element, namespace: str) -> dict[str, str]:
    prefix = "{" + namespace + "}"
    return {key[len(prefix):]: value for key, value in element.attrib.items() if key.startswith(prefix)}


def _b64(text: str, name: str, notes: list[str]) -> bytes | None:
    compact = re.sub(r"\s+", "", text)
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        notes.append(f"{name} is not valid base64 (truncated?); ignored")
        return None


def _float(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _int(text: str | None) -> int | None:
    try:
        return int(str(text).strip())
    except (TypeError, ValueError):
        return None
