"""Photo reading and writing: formats, bit depth, grey, orientation, ICC, alpha, limits, atomicity."""

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

import lensblur
from lensblur.color import srgb_to_linear
from lensblur.errors import InputError, OutputError
from lensblur.io import icc
from lensblur.io.images import Photo, heif_support, read_image, reset_orientation, write_image

SAMPLES = Path(__file__).parents[2] / "shared" / "samples"


def gradient(height=12, width=16, seed=0) -> np.ndarray:
    """A smooth uint8 RGB test image with a little noise (so every channel differs)."""
    y, x = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(seed)
    rgb = np.stack([x * 255 / (width - 1), y * 255 / (height - 1), (x + y) * 255 / (height + width - 2)], -1)
    return np.clip(rgb + rng.normal(0, 3, rgb.shape), 0, 255).astype(np.uint8)


def icc_profile(curve: bytes, space: bytes = b"RGB ") -> bytes:
    """A minimal ICC v2 display profile whose r/g/b (or k) TRC tags all share ``curve``."""
    sigs = [b"rTRC", b"gTRC", b"bTRC"] if space == b"RGB " else [b"kTRC"]
    curve = curve + b"\0" * (-len(curve) % 4)
    table_end = 128 + 4 + 12 * len(sigs)
    header = bytearray(128)
    header[8:12] = bytes([2, 0x10, 0, 0])
    header[12:16], header[16:20], header[20:24], header[36:40] = b"mntr", space, b"XYZ ", b"acsp"
    table = struct.pack(">I", len(sigs)) + b"".join(struct.pack(">4sII", s, table_end, len(curve)) for s in sigs)
    profile = bytes(header) + table + curve
    return struct.pack(">I", len(profile)) + profile[4:]


def curv(*entries: int) -> bytes:
    return b"curv" + b"\0" * 4 + struct.pack(f">I{len(entries)}H", len(entries), *entries)


def para(function: int, *params: float) -> bytes:
    return b"para" + b"\0" * 4 + struct.pack(">HH", function, 0) + b"".join(
        struct.pack(">i", round(p * 65536)) for p in params)


GAMMA_22 = icc_profile(curv(563))  # u8Fixed8 563/256 = 2.19921875, the Adobe RGB (1998) gamma
P3_LIKE = icc_profile(para(3, 2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045))


def save(path, array, **options) -> Path:
    heif_support()  # Pillow's HEIC writer (lensblur registers it on first need, not on import)
    Image.fromarray(array).save(path, **options)
    return Path(path)


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("ext,tolerance", [("png", 0), ("bmp", 0), ("tif", 0), ("jpg", 0.03),
                                           ("webp", 0.03), ("heic", 0.04)])
def test_8bit_round_trip_every_format(tmp_path, ext, tolerance):
    source = save(tmp_path / f"in.{ext}", gradient())
    photo = read_image(source)
    assert photo.bit_depth == 8 and photo.pixels.shape == (12, 16, 3) and photo.pixels.dtype == np.float32
    assert photo.format == {"jpg": "JPEG", "tif": "TIFF", "heic": "HEIF"}.get(ext, ext.upper())
    write_image(tmp_path / f"out.{ext}", photo.pixels, like=photo)
    again = read_image(tmp_path / f"out.{ext}")
    encoded = icc.encode(photo.pixels, None)
    assert np.abs(icc.encode(again.pixels, None) - encoded).mean() <= tolerance + 1e-6
    if tolerance == 0:
        original = np.asarray(Image.open(source).convert("RGB"))
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / f"out.{ext}").convert("RGB")), original)


def test_decode_is_srgb_to_linear_without_profile(tmp_path):
    array = gradient()
    photo = read_image(save(tmp_path / "in.png", array))
    np.testing.assert_allclose(photo.pixels, srgb_to_linear(array / 255.0), atol=1e-6)


@pytest.mark.parametrize("ext", ["png", "tif"])
def test_16bit_colour_stays_16bit(tmp_path, ext):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 65536, (9, 11, 3), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / f"in.{ext}"), rgb[..., ::-1])  # OpenCV writes BGR
    photo = read_image(tmp_path / f"in.{ext}")
    assert photo.bit_depth == 16 and not photo.grey
    np.testing.assert_allclose(photo.pixels, srgb_to_linear(rgb / 65535.0), atol=2e-6)
    write_image(tmp_path / f"out.{ext}", photo.pixels, like=photo)
    written = cv2.imread(str(tmp_path / f"out.{ext}"), cv2.IMREAD_UNCHANGED)
    assert written.dtype == np.uint16
    assert np.abs(written[..., ::-1].astype(int) - rgb).max() <= 1


def test_16bit_rgba_png_keeps_alpha(tmp_path):
    rng = np.random.default_rng(2)
    rgba = rng.integers(0, 65536, (6, 7, 4), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "in.png"), rgba[..., [2, 1, 0, 3]])
    photo = read_image(tmp_path / "in.png")
    np.testing.assert_allclose(photo.alpha, rgba[..., 3] / 65535.0, atol=1e-6)
    write_image(tmp_path / "out.png", photo)
    written = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)[..., [2, 1, 0, 3]]
    assert np.abs(written.astype(int) - rgba).max() <= 1


@pytest.mark.parametrize("ext,deep", [("png", False), ("png", True), ("tif", True), ("jpg", False)])
def test_grey_stays_grey(tmp_path, ext, deep):
    grey = gradient()[..., 0].astype(np.uint16) * 257 if deep else gradient()[..., 0]
    photo = read_image(save(tmp_path / f"in.{ext}", grey))
    assert photo.grey and photo.pixels.shape == (12, 16, 3)
    assert photo.bit_depth == (16 if deep else 8)
    np.testing.assert_array_equal(photo.pixels[..., 0], photo.pixels[..., 2])
    write_image(tmp_path / f"out.{ext}", photo.pixels, like=photo)
    written = Image.open(tmp_path / f"out.{ext}")
    assert written.mode in (("I;16", "I") if deep else ("L",))
    if ext != "jpg":
        np.testing.assert_array_equal(np.asarray(written), grey)


# ---------------------------------------------------------------- EXIF orientation


def exif_block(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "TestMaker"
    exif.get_ifd(0x8769)[0x829D] = 2.8  # FNumber
    return exif.tobytes()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_applied_like_exif_transpose(tmp_path, orientation):
    array = gradient(6, 10)
    path = save(tmp_path / "in.png", array, exif=exif_block(orientation))
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    photo = read_image(path)
    np.testing.assert_allclose(photo.pixels, srgb_to_linear(expected / 255.0), atol=1e-6)


@pytest.mark.parametrize("orientation", [6, 8])
def test_orientation_reset_on_write_other_tags_kept(tmp_path, orientation):
    path = save(tmp_path / "in.jpg", gradient(6, 10), exif=exif_block(orientation), quality=95)
    photo = read_image(path)
    assert photo.pixels.shape[:2] == (10, 6)
    write_image(tmp_path / "out.jpg", photo.pixels, like=photo)
    out = Image.open(tmp_path / "out.jpg")
    assert out.size == (6, 10)
    exif = out.getexif()
    assert exif[0x0112] == 1
    assert exif[0x010F] == "TestMaker"
    assert float(exif.get_ifd(0x8769)[0x829D]) == pytest.approx(2.8)


def test_reset_orientation_patches_only_that_value():
    block = exif_block(6)
    patched = reset_orientation(block)
    assert len(patched) == len(block)
    assert sum(a != b for a, b in zip(block, patched)) == 1
    assert reset_orientation(b"garbage") == b"garbage"


@pytest.mark.parametrize("ext", ["png", "tif", "webp", "heic"])
def test_exif_written_by_every_format_that_has_it(tmp_path, ext):
    photo = read_image(save(tmp_path / "in.jpg", gradient(), exif=exif_block(3)))
    write_image(tmp_path / f"out.{ext}", photo)
    exif = Image.open(tmp_path / f"out.{ext}").getexif()
    assert exif.get(0x0112) == 1 and exif.get(0x010F) == "TestMaker"


# ---------------------------------------------------------------- ICC


@pytest.mark.parametrize("ext", ["png", "jpg", "tif", "webp"])
def test_gamma_22_profile_decodes_and_is_kept_byte_for_byte(tmp_path, ext):
    array = gradient()
    photo = read_image(save(tmp_path / f"in.{ext}", array, icc_profile=GAMMA_22, quality=100))
    assert photo.icc_profile == GAMMA_22
    if ext in ("png", "tif"):
        np.testing.assert_allclose(photo.pixels, (array / 255.0) ** (563 / 256), atol=1e-6)
    write_image(tmp_path / f"out.{ext}", photo.pixels, like=photo)
    assert Image.open(tmp_path / f"out.{ext}").info["icc_profile"] == GAMMA_22
    again = read_image(tmp_path / f"out.{ext}")
    if ext in ("png", "tif"):
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / f"out.{ext}")), array)
        np.testing.assert_allclose(again.pixels, photo.pixels, atol=1e-7)


@pytest.mark.parametrize("profile", [P3_LIKE, GAMMA_22], ids=["display-p3-like", "adobe-rgb-like"])
def test_16bit_png_and_tiff_keep_profile(tmp_path, profile):
    rng = np.random.default_rng(3)
    photo = Photo(rng.random((5, 6, 3), dtype=np.float32), icc_profile=profile, bit_depth=16)
    for ext in ("png", "tif"):
        write_image(tmp_path / f"out.{ext}", photo)
        again = read_image(tmp_path / f"out.{ext}")
        assert again.icc_profile == profile and again.bit_depth == 16
        np.testing.assert_allclose(again.pixels, photo.pixels, atol=5e-5)


def test_lcms_srgb_profile_matches_builtin_srgb(tmp_path):
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    array = gradient()
    photo = read_image(save(tmp_path / "in.png", array, icc_profile=profile))
    np.testing.assert_allclose(photo.pixels, srgb_to_linear(array / 255.0), atol=2e-4)


@pytest.mark.parametrize("curve,function", [
    (curv(), lambda x: x),
    (curv(563), lambda x: x ** (563 / 256)),
    (para(0, 1.8), lambda x: x ** 1.8),
    (para(1, 2.2, 1.1, -0.1), lambda x: np.where(x >= 0.1 / 1.1, np.maximum(1.1 * x - 0.1, 0) ** 2.2, 0)),
    (para(2, 2.0, 1.0, 0.0, 0.05), lambda x: x ** 2.0 + 0.05),
    (para(3, 2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045), lambda x: srgb_to_linear(x)),
    (para(4, 2.0, 0.9, 0.1, 0.5, 0.1, 0.01, 0.02), lambda x: np.where(x >= 0.1, (0.9 * x + 0.1) ** 2 + 0.01,
                                                                      0.5 * x + 0.02)),
])
def test_icc_curve_types_decode_and_invert(curve, function):
    trc = icc.tone_curves(icc_profile(curve))[0]
    x = np.linspace(0, 1, 257)
    np.testing.assert_allclose(trc.decode(x), np.clip(function(x), 0, 1), atol=2e-4)
    y = np.linspace(0.1, 0.9, 50)
    np.testing.assert_allclose(trc.decode(trc.encode(y)), y, atol=1e-4)


def test_icc_table_curve_and_grey_profile():
    table = [round(65535 * (i / 15) ** 3) for i in range(16)]
    (red, green, blue) = icc.tone_curves(icc_profile(curv(*table)))
    assert red.decode(np.array([1 / 3]))[0] == pytest.approx((1 / 3) ** 3, abs=0.01)
    assert red.encode(red.decode(np.array([0.4])))[0] == pytest.approx(0.4, abs=1e-5)
    grey = icc.tone_curves(icc_profile(curv(256 * 2), b"GRAY"))
    assert grey[0].decode(np.array([0.5]))[0] == pytest.approx(0.25, abs=1e-6)


def test_icc_without_curves_or_broken_falls_back_to_srgb():
    assert icc.tone_curves(None)[0] is icc.SRGB
    assert icc.tone_curves(b"not a profile at all")[0] is icc.SRGB
    truncated = GAMMA_22[:-4]
    assert icc.tone_curves(truncated)[0] is icc.SRGB


# ---------------------------------------------------------------- alpha, palette, CMYK


def test_rgba_png_keeps_straight_alpha(tmp_path):
    rgba = np.dstack([gradient(), np.linspace(0, 255, 16 * 12).reshape(12, 16).astype(np.uint8)])
    photo = read_image(save(tmp_path / "in.png", rgba))
    np.testing.assert_allclose(photo.alpha, rgba[..., 3] / 255.0, atol=1e-7)
    np.testing.assert_allclose(photo.pixels, srgb_to_linear(rgba[..., :3] / 255.0), atol=1e-6)  # not premultiplied
    write_image(tmp_path / "out.png", photo.pixels, like=photo)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out.png")), rgba)
    write_image(tmp_path / "out.jpg", photo.pixels, like=photo)  # JPEG has no alpha: dropped
    assert Image.open(tmp_path / "out.jpg").mode == "RGB"


def test_palette_with_transparency_gives_alpha(tmp_path):
    image = Image.fromarray(gradient()).quantize(8)
    image.info["transparency"] = 0
    image.save(tmp_path / "in.png", transparency=0)
    photo = read_image(tmp_path / "in.png")
    indices = np.asarray(Image.open(tmp_path / "in.png"))
    assert photo.alpha is not None
    np.testing.assert_array_equal(photo.alpha == 0, indices == 0)
    palette = read_image(save(tmp_path / "plain.png", np.asarray(Image.fromarray(gradient()).quantize(8))))
    assert palette.alpha is None


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    Image.fromarray(gradient()).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    photo = read_image(tmp_path / "cmyk.jpg")
    assert photo.pixels.shape == (12, 16, 3) and photo.icc_profile is None
    expected = srgb_to_linear(gradient() / 255.0)
    assert np.abs(photo.pixels - expected).mean() < 0.03


# ---------------------------------------------------------------- failures


def png_header_only(path: Path, width: int, height: int) -> Path:
    def chunk(kind, data):
        import zlib
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", b"") + chunk(b"IEND", b""))
    return path


def test_pixel_limit_raises_before_decoding(tmp_path, monkeypatch):
    path = save(tmp_path / "in.png", gradient(40, 50))
    loads = []
    monkeypatch.setattr(Image.Image, "load", lambda self: loads.append(1))
    with pytest.raises(InputError, match=r"50×40 = 0\.0 MP, over the 0\.001 MP limit"):
        read_image(path, max_pixels=1000)
    assert not loads


def test_huge_header_reports_limit_not_pil_bomb(tmp_path):
    path = png_header_only(tmp_path / "huge.png", 20000, 15000)
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(InputError, match=r"20000×15000 = 300\.0 MP, over the 200 MP limit"):
        read_image(path)
    assert Image.MAX_IMAGE_PIXELS == before  # PIL's own setting is restored


def test_header_within_raised_limit_still_fails_as_input_error(tmp_path):
    path = png_header_only(tmp_path / "huge.png", 20000, 15000)
    with pytest.raises(InputError, match="huge.png"):
        read_image(path, max_pixels=400_000_000)


@pytest.mark.parametrize("make,message", [
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.write_text("hello, this is not a JPEG\n"), "not an image"),
    (lambda p: p.write_bytes((Path(p).parent / "good.jpg").read_bytes()[:300]), "truncated|damaged|broken"),
    (lambda p: None, "no such file"),
    (lambda p: p.mkdir(), "folder"),
])
def test_bad_inputs_raise_one_line_input_error(tmp_path, make, message):
    save(tmp_path / "good.jpg", gradient(64, 64), quality=90)
    path = tmp_path / "bad.jpg"
    make(path)
    with pytest.raises(InputError, match=message) as caught:
        read_image(path)
    assert "bad.jpg" in str(caught.value) and "\n" not in str(caught.value)


def test_truncated_jpeg_refused_even_if_pil_is_told_to_allow_it(tmp_path, monkeypatch):
    from PIL import ImageFile

    save(tmp_path / "good.jpg", gradient(64, 64), quality=90)
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "good.jpg").read_bytes()[:-400])
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(InputError, match="cut.jpg"):
        read_image(tmp_path / "cut.jpg")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True


def test_unsupported_format(tmp_path):
    Image.fromarray(gradient()).save(tmp_path / "in.gif")
    with pytest.raises(InputError, match="unsupported format GIF"):
        read_image(tmp_path / "in.gif")


# ---------------------------------------------------------------- atomic writes


@pytest.mark.parametrize("name", ["out.png", "out.jpg"])
def test_failed_encode_leaves_nothing(tmp_path, monkeypatch, name):
    photo = read_image(save(tmp_path / "in.png", gradient()))
    out_dir = tmp_path / "out"
    out_dir.mkdir()

    def broken_save(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"partial")
        raise ValueError("encoder exploded")

    def broken_encode(*args, **kwargs):  # colour JPEGs are encoded by OpenCV
        raise ValueError("encoder exploded")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    monkeypatch.setattr(cv2, "imencodeWithMetadata", broken_encode)
    with pytest.raises(OutputError, match="encoder exploded"):
        write_image(out_dir / name, photo)
    assert list(out_dir.iterdir()) == []


def test_existing_output_refused_unless_overwrite(tmp_path):
    photo = read_image(save(tmp_path / "in.png", gradient()))
    (tmp_path / "out.png").write_bytes(b"keep me")
    with pytest.raises(OutputError, match="already exists"):
        write_image(tmp_path / "out.png", photo)
    assert (tmp_path / "out.png").read_bytes() == b"keep me"
    write_image(tmp_path / "out.png", photo, overwrite=True)
    assert read_image(tmp_path / "out.png").pixels.shape == (12, 16, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "out.png"]


def test_input_path_refused_even_with_overwrite(tmp_path):
    photo = read_image(save(tmp_path / "in.png", gradient()))
    with pytest.raises(OutputError, match="refusing to overwrite the input"):
        write_image(tmp_path / "in.png", photo.pixels, like=photo, overwrite=True)
    with pytest.raises(OutputError, match="refusing to overwrite the input"):
        write_image(tmp_path / "sub" / ".." / "in.png", photo, overwrite=True)


@pytest.mark.parametrize("name,message", [("out.xyz", "unknown extension"), ("missing/out.png", "does not exist")])
def test_bad_output_paths(tmp_path, name, message):
    with pytest.raises(OutputError, match=message):
        write_image(tmp_path / name, np.zeros((4, 4, 3), np.float32))


def test_plain_array_is_written_as_srgb(tmp_path):
    linear = srgb_to_linear(gradient() / 255.0)
    write_image(tmp_path / "out.png", linear)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out.png")), gradient())
    with pytest.raises(InputError, match="H×W×3"):
        write_image(tmp_path / "bad.png", np.zeros((4, 4, 5), np.float32))


def test_top_level_names():
    assert lensblur.read_image is read_image and lensblur.write_image is write_image


# ---------------------------------------------------------------- real phone files


@pytest.mark.parametrize("name", ["apple/pug.heic", "apple/image-with-depth.jpg", "google/depthy_hut-image.jpg",
                                  "google/lens_blur_dahlias.jpg"])
def test_real_phone_files(name):
    path = SAMPLES / name
    if not path.exists():
        pytest.skip(f"{path} not available")
    photo = read_image(path)
    assert photo.format == ("HEIF" if name.endswith("heic") else "JPEG")
    assert photo.pixels.ndim == 3 and photo.pixels.shape[2] == 3
    assert 0.0 <= photo.pixels.min() and photo.pixels.max() <= 1.0 and photo.pixels.std() > 0.01


# ---------------------------------------------------------------- the tone-curve tables


@pytest.mark.parametrize("profile", [None, GAMMA_22, P3_LIKE, icc_profile(curv(*np.round(
    np.linspace(0, 1, 256) ** 1.8 * 65535).astype(int)))], ids=["srgb", "gamma-2.2", "display-p3-like", "table"])
def test_table_encoder_matches_the_exact_curve(profile):
    rng = np.random.default_rng(5)
    linear = np.concatenate([rng.random(50_000) ** 4, np.linspace(0, 1, 20_001)]).astype(np.float32)
    curve = icc.tone_curves(profile)[0]
    error = np.abs(curve.encode(linear) - curve.encode_exact(linear))
    assert error[linear > 1e-4].max() < 1 / 65535  # under a 16-bit level
    # at the very bottom a sampled table with flat first entries has no single inverse: one 8-bit level
    assert error.max() <= 1 / 255 + 1e-6
    levels = np.arange(256) / 255.0
    np.testing.assert_array_equal(np.round(curve.encode(curve.decode(levels)) * 255), np.arange(256))
    odd = np.array([np.nan, -1.0, 2.0, np.inf], np.float32)
    assert np.isfinite(curve.encode(odd)).all()


@pytest.mark.parametrize("levels", [255, 15])
@pytest.mark.parametrize("profile", [None, GAMMA_22, P3_LIKE, icc_profile(curv(*np.round(
    np.linspace(0, 1, 256) ** 1.8 * 65535).astype(int))), icc_profile(para(2, 2.0, 1.0, 0.0, 0.05))],
    ids=["srgb", "gamma-2.2", "display-p3-like", "table", "raised-black"])
def test_level_thresholds_give_the_interpolated_tables_levels(profile, levels):
    """The 8-bit encode (quantize_steps: thresholds and buckets) gives exactly the integers of
    rounding the interpolated table (quantize_channels): on random values, on every float32
    within 40 steps of each threshold and of each bucket start, and on NaN, ±inf, 0, 1, negatives
    and subnormals."""
    from lensblur.io.tone_lookup import BUCKETS, quantize_channels

    curves = icc.tone_curves(profile)
    rng = np.random.default_rng(11)
    pieces = [rng.random(60_000, dtype=np.float32) ** 3, rng.random(20_000, dtype=np.float32),
              np.array([np.nan, -np.inf, np.inf, -1.0, -0.0, 0.0, 1e-45, 1e-38, 1.0, 1.0000001, 2.0], np.float32)]
    near = np.arange(-40, 41, dtype=np.int32)
    for curve in curves[:1] if len(set(curves)) == 1 else curves:
        thresholds, start, low = icc._level_steps(curve, levels)
        for edge in np.concatenate([thresholds[np.isfinite(thresholds)],
                                    np.arange(0, BUCKETS + 1, 97, dtype=np.float32) / BUCKETS]):
            bits = np.float32(edge).view(np.int32) + near
            pieces.append(bits[bits >= 0].view(np.float32))
    values = np.concatenate(pieces)
    linear = np.stack([values, np.roll(values, 1), np.roll(values, 2)], axis=-1)
    want = np.empty(linear.shape, np.uint8)
    tables = np.stack([icc._encode_table(curve) for curve in curves])
    quantize_channels(linear, tables, levels, want, 0, linear.shape[0])
    got = icc.encode_levels(linear, profile, levels)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, want)
    assert len(np.unique(want)) > levels // 2  # the values cross many levels


def test_iphone_display_p3_photo_round_trips_to_the_same_numbers(tmp_path):
    path = SAMPLES / "apple" / "image-with-depth.jpg"
    if not path.exists():
        pytest.skip(f"{path} not available")
    photo = read_image(path)
    assert b"Display P3" in photo.icc_profile
    crop = photo.pixels[1000:1400, 1000:1500]
    write_image(tmp_path / "out.png", crop, like=photo)
    written = np.asarray(Image.open(tmp_path / "out.png")).astype(int)
    original = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))[1000:1400, 1000:1500].astype(int)
    assert np.abs(written - original).max() <= 1
    exact = np.stack([c.encode_exact(crop[..., i]) for i, c in enumerate(icc.tone_curves(photo.icc_profile))], -1)
    assert np.abs(written - np.round(exact * 255)).max() <= 1  # the same numbers as the float64 curves
