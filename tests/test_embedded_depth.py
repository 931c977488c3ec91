"""Phone-embedded depth: GDepth / Extended XMP, Dynamic Depth, Apple MPF and HEIC.

Small files of every format are built here (a Pillow JPEG with APP1/APP2 segments spliced in and
images appended), so the readers are tested without the real samples; the samples are read too
when ../shared/samples is present.
"""

import base64
import hashlib
import io
import random
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from lensblur.errors import InputError
from lensblur.io.embedded import EmbeddedDepth, find_embedded_depth, list_embedded
from lensblur.io.mpf import mpf_images
from lensblur.io.xmp import (EXTENDED_SIGNATURE, STANDARD_SIGNATURE, apple_aux_type, extract_xmp,
                             jpeg_segments, parse_packets, read_dynamic_depth, read_gdepth)

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"


def sample(relative: str) -> Path:
    path = SAMPLES / relative
    if not path.exists():
        pytest.skip(f"sample {relative} not available")
    return path


# --- builders -------------------------------------------------------------------------------

def jpeg_bytes(values: np.ndarray, quality: int = 95) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def png_bytes(values: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, "PNG")
    return buffer.getvalue()


def photo(height=12, width=16) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 15, y * 20, (x + y) * 8], axis=-1).astype(np.uint8)


def ramp(height=12, width=16) -> np.ndarray:
    """8-bit grey levels 0…255 increasing left to right."""
    x = np.linspace(0, 255, width)
    return np.repeat(x[None, :], height, axis=0).round().astype(np.uint8)


def segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def splice(jpeg: bytes, *segments: bytes) -> bytes:
    """Insert marker segments right after the SOI of a JPEG."""
    return jpeg[:2] + b"".join(segments) + jpeg[2:]


def xmp_segment(xml: str) -> bytes:
    return segment(0xE1, STANDARD_SIGNATURE + xml.encode())


def extended_segments(xml: str, chunk=200, guid=None, total=None, offsets=None) -> list[bytes]:
    data = xml.encode()
    guid = guid or hashlib.md5(data).hexdigest().upper()
    starts = list(range(0, len(data), chunk))
    out = []
    for i, start in enumerate(starts):
        offset = start if offsets is None else offsets[i]
        header = guid.encode() + struct.pack(">II", len(data) if total is None else total, offset)
        out.append(segment(0xE1, EXTENDED_SIGNATURE + header + data[start:start + chunk]))
    return out


XMP_OPEN = ('<x:xmpmeta xmlns:x="adobe:ns:meta/">'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">')


def packet(attrs: str, body: str = "") -> str:
    return (XMP_OPEN +
            '<rdf:Description rdf:about="" xmlns:GDepth="http://ns.google.com/photos/1.0/depthmap/" '
            'xmlns:GImage="http://ns.google.com/photos/1.0/image/" '
            'xmlns:GFocus="http://ns.google.com/photos/1.0/focus/" '
            'xmlns:xmpNote="http://ns.adobe.com/xmp/note/" '
            f'{attrs}>{body}</rdf:Description></rdf:RDF></x:xmpmeta>')


def gdepth_file(fmt="RangeInverse", near="1.0", far="4.0", depth_data=None, extended=True, image=True,
                ext_kwargs=None, drop_chunk=None) -> bytes:
    """A JPEG with GDepth in (Extended) XMP: 8-bit PNG ramp depth and a GImage sharp photo."""
    depth_b64 = base64.b64encode(png_bytes(ramp())).decode() if depth_data is None else depth_data
    image_b64 = base64.b64encode(jpeg_bytes(photo())).decode()
    data_attrs = f'GDepth:Data="{depth_b64}"' + (f' GImage:Data="{image_b64}"' if image else "")
    props = (f'GDepth:Format="{fmt}" GDepth:Near="{near}" GDepth:Far="{far}" GDepth:Mime="image/png" '
             'GImage:Mime="image/jpeg" GFocus:FocalDistance="2.0" GFocus:FocalPointX="0.25" '
             'GFocus:FocalPointY="0.5" GFocus:BlurAtInfinity="0.01"')
    primary = jpeg_bytes(photo())
    if not extended:
        return splice(primary, xmp_segment(packet(props + " " + data_attrs)))
    ext_xml = packet(data_attrs)
    guid = hashlib.md5(ext_xml.encode()).hexdigest().upper()
    chunks = extended_segments(ext_xml, **(ext_kwargs or {}))
    if drop_chunk is not None:
        del chunks[drop_chunk]
    return splice(primary, xmp_segment(packet(props + f' xmpNote:HasExtendedXMP="{guid}"')), *chunks)


def apple_xmp(kind: str, low=0.5, high=2.0) -> str:
    if kind == "matte":
        props = ('<portraitEffectsMatte:PortraitEffectsMatteVersion>65536'
                 '</portraitEffectsMatte:PortraitEffectsMatteVersion>'
                 '<apdi:AuxiliaryImageType>depth</apdi:AuxiliaryImageType>'
                 '<apdi:AuxiliaryImageSubType>portraiteffectsmatte</apdi:AuxiliaryImageSubType>')
    else:
        props = (f'<apdi:FloatMaxValue>{high}</apdi:FloatMaxValue>'
                 f'<apdi:FloatMinValue>{low}</apdi:FloatMinValue>'
                 f'<apdi:AuxiliaryImageType>{kind}</apdi:AuxiliaryImageType>')
    return (XMP_OPEN +
            '<rdf:Description rdf:about="" xmlns:apdi="http://ns.apple.com/pixeldatainfo/1.0/" '
            'xmlns:portraitEffectsMatte="http://ns.apple.com/portraitEffectsMatte/1.0/">'
            f'{props}</rdf:Description></rdf:RDF></x:xmpmeta>')


def mpf_file(extras: list[bytes], offset_shift=0, little_endian=False) -> bytes:
    """A JPEG whose APP2 MPF index lists the primary and the appended ``extras``."""
    order = "<" if little_endian else ">"
    n = len(extras) + 1
    entries_at = 8 + 2 + 3 * 12 + 4  # TIFF header, IFD count, 3 entries, next-IFD pointer

    def index(primary_size: int, offsets: list[int]) -> bytes:
        tiff = (b"II*\x00" if little_endian else b"MM\x00*") + struct.pack(order + "I", 8)
        tiff += struct.pack(order + "H", 3)
        tiff += struct.pack(order + "HHI", 0xB000, 7, 4) + b"0100"
        tiff += struct.pack(order + "HHII", 0xB001, 4, 1, n)
        tiff += struct.pack(order + "HHII", 0xB002, 7, 16 * n, entries_at)
        tiff += struct.pack(order + "I", 0)
        tiff += struct.pack(order + "IIIHH", 0x030000, primary_size, 0, 0, 0)
        for blob, offset in zip(extras, offsets):
            tiff += struct.pack(order + "IIIHH", 0, len(blob), offset, 0, 0)
        return segment(0xE2, b"MPF\x00" + tiff)

    primary = jpeg_bytes(photo(24, 32))
    size = len(primary) + len(index(0, [0] * len(extras)))
    base = 2 + 4 + 4  # SOI, APP2 marker + length, "MPF\0": offsets count from the TIFF header
    offsets, pos = [], size
    for blob in extras:
        offsets.append(pos - base + offset_shift)
        pos += len(blob)
    return splice(primary, index(size, offsets)) + b"".join(extras)


def apple_extra(kind: str, values: np.ndarray, with_xmp=True) -> bytes:
    blob = jpeg_bytes(values, quality=100)
    return splice(blob, xmp_segment(apple_xmp(kind))) if with_xmp else blob


DD_NS = ('xmlns:Container="http://ns.google.com/photos/dd/1.0/container/" '
         'xmlns:Item="http://ns.google.com/photos/dd/1.0/item/" '
         'xmlns:Device="http://ns.google.com/photos/dd/1.0/device/" '
         'xmlns:Camera="http://ns.google.com/photos/dd/1.0/camera/" '
         'xmlns:Image="http://ns.google.com/photos/dd/1.0/image/" '
         'xmlns:DepthMap="http://ns.google.com/photos/dd/1.0/depthmap/"')


def dd_xmp(items: list[tuple[str, int, int, str]], fmt="RangeLinear", near="0.5", far="5.0") -> str:
    lis = "".join(f'<rdf:li><Container:Item Item:Mime="{m}" Item:Length="{n}" Item:Padding="{p}" '
                  f'Item:DataURI="{u}"/></rdf:li>' for m, n, p, u in items)
    return (XMP_OPEN +
            f'<rdf:Description rdf:about="" {DD_NS}>'
            f'<Device:Container rdf:parseType="Resource"><Container:Directory><rdf:Seq>{lis}'
            '</rdf:Seq></Container:Directory></Device:Container>'
            '<Device:Cameras><rdf:Seq><rdf:li><Device:Camera>'
            '<Camera:Image Image:ItemSemantic="Original" Image:ItemURI="original"/>'
            f'<Camera:DepthMap DepthMap:Format="{fmt}" DepthMap:Near="{near}" DepthMap:Far="{far}" '
            'DepthMap:Units="Meters" DepthMap:DepthURI="depth"/>'
            '</Device:Camera></rdf:li></rdf:Seq></Device:Cameras>'
            '</rdf:Description></rdf:RDF></x:xmpmeta>')


def dd_file(padding=0, length_error=0, padding_outside=False, **kwargs) -> bytes:
    """Primary JPEG + Dynamic Depth XMP + appended depth PNG and original JPEG (+ padding)."""
    depth = png_bytes(ramp()) + b"\x00" * padding
    original = jpeg_bytes(photo())
    if padding_outside:  # Length excludes the padding
        items = [("image/jpeg", 0, 0, "primary_image"),
                 ("image/png", len(depth) - padding + length_error, padding, "depth"),
                 ("image/jpeg", len(original), 0, "original")]
    else:
        items = [("image/jpeg", 0, 0, "primary_image"),
                 ("image/png", len(depth) + length_error, padding, "depth"),
                 ("image/jpeg", len(original), 0, "original")]
    primary = splice(jpeg_bytes(photo()), xmp_segment(dd_xmp(items, **kwargs)))
    return primary + depth + original


def write(tmp_path: Path, data: bytes, name="photo.jpg") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def expected_linear(v: np.ndarray, near: float, far: float) -> np.ndarray:
    z = v * (far - near) + near
    return (1 / z - 1 / far) / (1 / near - 1 / far)


# --- GDepth ---------------------------------------------------------------------------------

def test_gdepth_range_inverse_from_extended_xmp(tmp_path):
    result = find_embedded_depth(write(tmp_path, gdepth_file()))
    assert isinstance(result, EmbeddedDepth)
    assert result.source == "GDepth (RangeInverse)"
    assert result.disparity.dtype == np.float32 and result.disparity.shape == (12, 16)
    # RangeInverse: stored 0 is Near, so D = 1 − v exactly
    np.testing.assert_allclose(result.disparity, 1 - ramp() / 255.0, atol=1e-5)
    assert (result.near, result.far) == (1.0, 4.0)
    assert result.sharp_image.dtype == np.uint8 and result.sharp_image.shape == (12, 16, 3)
    assert result.focus["FocalDistance"] == 2.0 and result.focus["FocalPointX"] == 0.25
    assert result.notes == []


def test_gdepth_range_linear_in_standard_xmp(tmp_path):
    result = find_embedded_depth(write(tmp_path, gdepth_file(fmt="RangeLinear", extended=False)))
    assert result.source == "GDepth (RangeLinear)"
    np.testing.assert_allclose(result.disparity, expected_linear(ramp() / 255.0, 1.0, 4.0), atol=1e-5)
    assert result.disparity.max() == pytest.approx(1.0) and result.disparity.min() == pytest.approx(0.0)


def test_gdepth_as_child_elements(tmp_path):
    depth_b64 = base64.b64encode(png_bytes(ramp())).decode()
    body = ("<GDepth:Format>RangeLinear</GDepth:Format><GDepth:Near>1</GDepth:Near>"
            f"<GDepth:Far>2</GDepth:Far><GDepth:Data>{depth_b64}</GDepth:Data>")
    data = splice(jpeg_bytes(photo()), xmp_segment(packet("", body)))
    result = find_embedded_depth(write(tmp_path, data))
    assert result is not None and result.sharp_image is None and (result.near, result.far) == (1.0, 2.0)


def test_extended_xmp_reassembled_out_of_order(tmp_path):
    data = gdepth_file()
    segments = jpeg_segments(data)
    app1 = [s for s in segments if s.marker == 0xE1]
    ext = [segment(0xE1, s.payload) for s in app1[1:]]
    random.Random(1).shuffle(ext)
    shuffled = splice(jpeg_bytes(photo()), segment(0xE1, app1[0].payload), *ext)
    packets = extract_xmp(shuffled)
    assert packets.notes == [] and "GDepth:Data" in packets.extended
    assert find_embedded_depth(write(tmp_path, shuffled)) is not None


def test_list_embedded_gdepth(tmp_path):
    lines = list_embedded(write(tmp_path, gdepth_file()))
    assert any(line.startswith("GDepth depth map 16×12") for line in lines)
    assert any(line.startswith("GImage sharp original 16×12") for line in lines)


@pytest.mark.parametrize("variant", [
    dict(depth_data="iVBORw0KGgoAAAANSUhEUgAAA"),                      # truncated base64
    dict(depth_data=base64.b64encode(png_bytes(ramp())[:50]).decode()),  # valid base64, cut PNG
    dict(drop_chunk=1),                                                 # Extended XMP chunk missing
    dict(drop_chunk=0),
    dict(ext_kwargs=dict(total=10)),                                     # wrong full length
    dict(ext_kwargs=dict(total=10 ** 6)),
    dict(ext_kwargs=dict(offsets=[0] + [10 ** 6] * 200)),                # offsets past the end
    dict(ext_kwargs=dict(guid="0" * 32)),                                # GUID not the announced one
    dict(near="4.0", far="1.0"),                                         # Near >= Far
    dict(near="2.0", far="2.0"),
    dict(near="-1.0", far="4.0"),                                        # negative
    dict(near="nan", far="4.0"),                                         # NaN
    dict(near="1", far="inf"),
    dict(near="abc", far="4.0"),
    dict(fmt="RangeSquare"),                                             # unknown format
])
def test_malformed_gdepth_gives_none(tmp_path, variant):
    result = find_embedded_depth(write(tmp_path, gdepth_file(**variant)))
    assert result is None


def test_malformed_gdepth_reasons_are_noted():
    notes = []
    packets = extract_xmp(gdepth_file(drop_chunk=1))
    assert packets.extended is None and any("chunk missing" in n for n in packets.notes)
    info = read_gdepth(parse_packets(packets.standard), notes)
    assert info.depth_data is None and any("GDepth:Data" in n for n in notes)
    notes = []
    read_gdepth(parse_packets(extract_xmp(gdepth_file(depth_data="abc")).extended), notes)
    assert any("base64" in n for n in notes)


# --- Dynamic Depth --------------------------------------------------------------------------

def test_dynamic_depth_sample_xmp_parses():
    text = sample("google/dynamic_depth_portrait_xmp.xml").read_text()
    notes = []
    info = read_dynamic_depth(parse_packets(text), notes)
    assert [item.uri for item in info.items] == ["primary_image", "android/original_image",
                                                  "android/depthmap", "android/confidencemap"]
    assert [item.length for item in info.items] == [0, 2420326, 135047, 96395]
    assert info.format == "RangeLinear" and (info.near, info.far) == (0.3, 8.0)
    assert info.depth_uri == "android/depthmap" and info.confidence_uri == "android/confidencemap"
    assert info.original_uri == "android/original_image" and notes == []


def test_dynamic_depth_sample_xmp_in_a_file(tmp_path):
    """The real Pixel XMP (standard + Extended packets) over items of exactly the listed lengths."""
    text = sample("google/dynamic_depth_portrait_xmp.xml").read_text()
    first, second = parse_blocks(text)
    guid = "979057752e0037ac7836c599dc5e004a"
    primary = splice(jpeg_bytes(photo()), xmp_segment(first),
                     *extended_segments(second, chunk=1000, guid=guid))

    def padded(blob: bytes, length: int) -> bytes:
        return blob + b"\x00" * (length - len(blob))
    depth = padded(jpeg_bytes(ramp(), quality=100), 135047)
    data = (primary + padded(jpeg_bytes(photo()), 2420326) + depth
            + padded(jpeg_bytes(np.full((12, 16), 200, np.uint8)), 96395))
    result = find_embedded_depth(write(tmp_path, data))
    assert result.source == "Dynamic Depth (RangeLinear)" and (result.near, result.far) == (0.3, 8.0)
    assert result.disparity.shape == (12, 16) and result.sharp_image.shape == (12, 16, 3)
    np.testing.assert_allclose(result.disparity, expected_linear(ramp() / 255.0, 0.3, 8.0), atol=0.03)
    assert any("GUID" in note for note in result.notes)  # the GUID is not the MD5 of our copy
    lines = list_embedded(tmp_path / "photo.jpg")
    assert any("depth map 16×12 [android/depthmap]" in line for line in lines)
    assert any("confidence map" in line for line in lines)


def parse_blocks(text: str) -> list[str]:
    end = "</x:xmpmeta>"
    return [part.strip() + end for part in text.split(end) if "<x:xmpmeta" in part]


@pytest.mark.parametrize("padding, outside", [(0, False), (7, False), (7, True)])
def test_dynamic_depth_container(tmp_path, padding, outside):
    result = find_embedded_depth(write(tmp_path, dd_file(padding=padding, padding_outside=outside)))
    assert result.source == "Dynamic Depth (RangeLinear)"
    np.testing.assert_allclose(result.disparity, expected_linear(ramp() / 255.0, 0.5, 5.0), atol=1e-5)
    assert result.sharp_image.shape == (12, 16, 3)


def test_dynamic_depth_range_inverse(tmp_path):
    result = find_embedded_depth(write(tmp_path, dd_file(fmt="RangeInverse")))
    np.testing.assert_allclose(result.disparity, 1 - ramp() / 255.0, atol=1e-5)


@pytest.mark.parametrize("variant", [
    dict(length_error=5), dict(length_error=-5), dict(length_error=10 ** 7),
    dict(near="5", far="0.5"), dict(near="nan"), dict(fmt="Bogus"),
])
def test_malformed_dynamic_depth_gives_none(tmp_path, variant):
    assert find_embedded_depth(write(tmp_path, dd_file(**variant))) is None


def test_dynamic_depth_bad_lengths_noted():
    notes = []
    data = dd_file(length_error=5)
    from lensblur.io.embedded import _container_payloads
    info = read_dynamic_depth(parse_packets(extract_xmp(data).standard), notes)
    assert _container_payloads(data, info, notes) is None
    assert any("do not match" in n for n in notes)


# --- Apple MPF ------------------------------------------------------------------------------

def test_apple_mpf_disparity_and_matte(tmp_path):
    disparity = ramp(24, 32)
    matte = np.zeros((48, 64), np.uint8)
    matte[10:40, 20:50] = 255
    data = mpf_file([apple_extra("disparity", disparity), apple_extra("matte", matte)])
    result = find_embedded_depth(write(tmp_path, data))
    assert result.source == "Apple MPF disparity"
    assert result.disparity.shape == (24, 32) and result.matte.shape == (48, 64)
    np.testing.assert_allclose(result.disparity, disparity / 255.0, atol=0.03)
    assert result.near == pytest.approx(0.5) and result.far == pytest.approx(2.0)  # 1/FloatMax, 1/FloatMin
    assert result.matte[25, 35] > 0.9 and result.matte[2, 2] < 0.1
    lines = list_embedded(tmp_path / "photo.jpg")
    assert lines == ["Apple MPF disparity 32×24", "Apple MPF portrait matte 64×48"]


def test_apple_mpf_little_endian_and_order_by_xmp(tmp_path):
    matte = np.full((8, 8), 255, np.uint8)
    data = mpf_file([apple_extra("matte", matte), apple_extra("disparity", ramp(24, 32))],
                    little_endian=True)
    result = find_embedded_depth(write(tmp_path, data))
    assert result.disparity.shape == (24, 32) and result.matte.shape == (8, 8)


def test_apple_mpf_depth_kind(tmp_path):
    result = find_embedded_depth(write(tmp_path, mpf_file([apple_extra("depth", ramp(24, 32))])))
    # depth (m) stored linearly in [0.5, 2]: the far end (255) is disparity 0
    assert result.disparity[:, 0].mean() > 0.97 and result.disparity[:, -1].mean() < 0.03


def test_mpf_without_xmp_taken_by_position(tmp_path):
    data = mpf_file([apple_extra("disparity", ramp(24, 32), with_xmp=False)])
    result = find_embedded_depth(write(tmp_path, data))
    assert result is not None and any("by position" in n for n in result.notes)


def test_mpf_colour_second_image_is_not_depth(tmp_path):
    # a stereo / other MPO whose second image is a colour photo holds no disparity
    assert find_embedded_depth(write(tmp_path, mpf_file([jpeg_bytes(photo(24, 32))]))) is None


@pytest.mark.parametrize("shift", [10 ** 6, 2 ** 31, -5, 3])
def test_mpf_offsets_past_end_give_none(tmp_path, shift):
    data = mpf_file([apple_extra("disparity", ramp(24, 32))], offset_shift=shift)
    assert find_embedded_depth(write(tmp_path, data)) is None
    notes = []
    assert len(mpf_images(data, notes)) == 1 and notes


def test_mpf_truncated_file_gives_none(tmp_path):
    data = mpf_file([apple_extra("disparity", ramp(24, 32))])
    assert find_embedded_depth(write(tmp_path, data[:-100])) is None


# --- files and errors ------------------------------------------------------------------------

def test_unreadable_files_raise_input_error(tmp_path):
    with pytest.raises(InputError):
        find_embedded_depth(tmp_path / "missing.jpg")
    with pytest.raises(InputError):
        find_embedded_depth(tmp_path)
    with pytest.raises(InputError):
        find_embedded_depth(write(tmp_path, b""))
    with pytest.raises(InputError):
        list_embedded(tmp_path / "missing.jpg")
    with pytest.raises(InputError):
        find_embedded_depth(write(tmp_path, b"\x00\x00\x00\x18ftypheic" + b"\x00" * 40, "bad.heic"))


def test_files_without_depth(tmp_path):
    plain = write(tmp_path, jpeg_bytes(photo()))
    assert find_embedded_depth(plain) is None and list_embedded(plain) == []
    png = write(tmp_path, png_bytes(photo()), "photo.png")
    assert find_embedded_depth(png) is None
    assert find_embedded_depth(write(tmp_path, b"\xff\xd8\xff", "stub.jpg")) is None


def test_exif_orientation_applied_to_maps(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    Image.fromarray(photo()).save(buffer, "JPEG", exif=exif.tobytes())
    data = gdepth_file(extended=False)
    app1 = [s for s in jpeg_segments(data) if s.marker == 0xE1][0]
    rotated = splice(buffer.getvalue(), segment(0xE1, app1.payload))
    result = find_embedded_depth(write(tmp_path, rotated))
    assert result.disparity.shape == (16, 12) and result.sharp_image.shape == (16, 12, 3)
    np.testing.assert_allclose(result.disparity, np.rot90(1 - ramp() / 255.0, -1), atol=1e-5)


# --- fuzzing --------------------------------------------------------------------------------

VALID = [gdepth_file(), dd_file(padding=3),
         mpf_file([apple_extra("disparity", ramp(24, 32)), apple_extra("matte", ramp(8, 8))])]


def mutate(data: bytes, rng: random.Random, edits: int) -> bytes:
    buffer = bytearray(data)
    for _ in range(edits):
        action = rng.random()
        pos = rng.randrange(len(buffer))
        if action < 0.6:
            buffer[pos] = rng.randrange(256)
        elif action < 0.8:
            del buffer[pos:pos + rng.randrange(1, 64)]
        else:
            buffer[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
    return bytes(buffer)


def parse_everything(data: bytes) -> None:
    notes = []
    segments = jpeg_segments(data)
    packets = extract_xmp(data, segments)
    roots = parse_packets(packets.standard) + parse_packets(packets.extended)
    read_gdepth(roots, notes)
    read_dynamic_depth(roots, notes)
    apple_aux_type(roots)
    mpf_images(data, notes, segments)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048))
def test_fuzz_parsers_random_bytes(data):
    parse_everything(data)
    parse_everything(b"\xff\xd8" + data)
    parse_packets(data)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([0xE1, 0xE2]), st.binary(max_size=512),
       st.sampled_from([STANDARD_SIGNATURE, EXTENDED_SIGNATURE, b"MPF\x00", b"MPF\x00MM\x00*",
                        b"MPF\x00II*\x00"]))
def test_fuzz_parsers_random_segments(marker, payload, signature):
    parse_everything(splice(jpeg_bytes(photo(4, 4)), segment(marker, signature + payload)))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(range(len(VALID))), st.integers(0, 2 ** 32 - 1), st.integers(1, 20))
def test_fuzz_mutated_valid_files(which, seed, edits):
    data = mutate(VALID[which], random.Random(seed), edits)
    parse_everything(data)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.jpg"
        path.write_bytes(data)
        result = find_embedded_depth(path)
        list_embedded(path)
    if result is not None:
        assert result.disparity.dtype == np.float32 and result.disparity.ndim == 2
        assert np.isfinite(result.disparity).all()
        assert result.disparity.min() >= 0 and result.disparity.max() <= 1


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2 ** 32 - 1), st.integers(0, 2 ** 32 - 1), st.integers(0, 2 ** 32 - 1))
def test_fuzz_mpf_entry_values(size, offset, attribute):
    order = ">"
    tiff = b"MM\x00*" + struct.pack(order + "I", 8) + struct.pack(order + "H", 1)
    tiff += struct.pack(order + "HHII", 0xB002, 7, 32, 26) + struct.pack(order + "I", 0)
    tiff += struct.pack(order + "IIIHH", 0x030000, 100, 0, 0, 0)
    tiff += struct.pack(order + "IIIHH", attribute, size, offset, 0, 0)
    data = splice(jpeg_bytes(photo(4, 4)), segment(0xE2, b"MPF\x00" + tiff))
    images = mpf_images(data, [])
    assert all(0 <= image.offset and image.offset + image.size <= len(data) for image in images[1:])


# --- real samples ---------------------------------------------------------------------------

def check_disparity(result: EmbeddedDepth) -> None:
    d = result.disparity
    assert d.dtype == np.float32 and d.ndim == 2 and min(d.shape) >= 64
    assert np.isfinite(d).all() and d.min() >= 0 and d.max() <= 1
    assert d.max() - d.min() > 0.3 and d.std() > 0.02


def test_sample_lens_blur_dahlias():
    result = find_embedded_depth(sample("google/lens_blur_dahlias.jpg"))
    assert result.source == "GDepth (RangeInverse)"
    check_disparity(result)
    assert result.disparity.shape == (2048, 1536)
    assert result.near == pytest.approx(18.8495388) and result.far == pytest.approx(633.3234863)
    with Image.open(SAMPLES / "google/lens_blur_dahlias.jpg") as primary:
        width, height = primary.size
    h, w, c = result.sharp_image.shape
    assert c == 3 and result.sharp_image.dtype == np.uint8 and abs(w / h - width / height) < 0.01
    assert result.focus["FocalDistance"] == pytest.approx(26.517597)
    # the focus point lies at the focal distance: D there matches D(FocalDistance)
    fx, fy = result.focus["FocalPointX"], result.focus["FocalPointY"]
    z = result.focus["FocalDistance"]
    expected = (1 / z - 1 / result.far) / (1 / result.near - 1 / result.far)
    assert result.disparity[int(fy * h), int(fx * w)] == pytest.approx(expected, abs=0.01)


@pytest.mark.parametrize("name, has_matte", [("image-with-depth.jpg", False), ("image-with-matte.jpg", True)])
def test_sample_apple_mpf(name, has_matte):
    path = sample(f"apple/{name}")
    result = find_embedded_depth(path)
    assert result.source == "Apple MPF disparity"
    check_disparity(result)
    assert result.disparity.shape == (768, 576)  # portrait, like the 3024×4032 photo
    assert 0 < result.near < result.far
    assert (result.matte is not None) == has_matte
    if has_matte:
        assert result.matte.shape == (2016, 1512) and result.matte.max() > 0.9 and result.matte.min() < 0.1
    lines = list_embedded(path)
    assert "Apple MPF disparity 576×768" in lines
    assert ("Apple MPF portrait matte 1512×2016" in lines) == has_matte


def test_sample_pug_heic_matches_reference():
    result = find_embedded_depth(sample("apple/pug.heic"))
    reference = np.asarray(Image.open(sample("apple/pug_depth_reference.png")))
    assert result.source == "Apple HEIC disparity"
    check_disparity(result)
    assert result.disparity.shape == reference.shape == (576, 768)
    np.testing.assert_array_equal(np.round(result.disparity * 255).astype(np.uint8), reference)
    assert result.near == pytest.approx(1 / 4.3828125) and result.far == pytest.approx(1 / 1.498046875)
    assert result.matte is None
    lines = list_embedded(SAMPLES / "apple/pug.heic")
    assert lines[0].startswith("Apple HEIC depth image 768×576 (uniform disparity")


@pytest.mark.parametrize("name", ["google/depthy_flowers-image.jpg", "google/depthy_hut-image.jpg"])
def test_sample_depthy_has_nothing_embedded(name):
    assert find_embedded_depth(sample(name)) is None
