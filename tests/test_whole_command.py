"""The stages around the kernels of ``lensblur render IN -o OUT.jpg`` (issue 14): each faster path
gives what the path it replaced gave, and bad input still gets one line and exit 1."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms

import lensblur.io.images as images
from lensblur.cli import main
from lensblur.color import linear_to_srgb, srgb_to_linear
from lensblur.depth.refine import photo_guide
from lensblur.errors import InputError
from lensblur.highlights import FADE_START, _clipped, recover_highlights, sparse_recovery
from lensblur.io import icc
from lensblur.io.images import jpeg_bytes, read_image, write_image
from lensblur.lamps import night_weight
from lensblur.lens import Highlights, focus_disparity_at, median_value, signed_coc

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "samples" / "apple"
PHOTO = SAMPLES / "image-with-depth.jpg"


def picture(height=60, width=80, seed=0) -> np.ndarray:
    """A uint8 RGB picture with smooth areas, edges, noise and a few clipped spots."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x / width, y / height, ((x // 9 + y // 7) % 2) * 0.6], axis=-1) * 220
    values = base + rng.normal(0, 12, base.shape)
    values[5:9, 10:14] = 255
    values[40:43, 60:62] = 255
    return np.clip(values, 0, 255).astype(np.uint8)


def exif_with_orientation(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "lensblur test"
    return exif.tobytes()


def pillow_read(path) -> images.Photo:
    """read_image through the Pillow decoder the OpenCV one replaced."""
    saved = images._opencv_jpeg
    images._opencv_jpeg = lambda *args: None
    try:
        return read_image(path)
    finally:
        images._opencv_jpeg = saved


# ---------------------------------------------------------------- decode


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("quality,subsampling,progressive", [(95, 0, False), (75, 2, True), (60, 1, False)])
def test_opencv_jpeg_decode_equals_pillow(tmp_path, orientation, quality, subsampling, progressive):
    path = tmp_path / "in.jpg"
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(picture(37, 53)).save(path, quality=quality, subsampling=subsampling, progressive=progressive,
                                          exif=exif_with_orientation(orientation), icc_profile=profile)
    fast, plain = read_image(path), pillow_read(path)
    assert fast.pixels.shape == plain.pixels.shape
    assert fast.pixels.shape[:2] == ((37, 53) if orientation <= 4 else (53, 37))
    assert fast.pixels.flags.c_contiguous and fast.pixels.dtype == np.float32
    np.testing.assert_array_equal(fast.pixels, plain.pixels)
    assert (fast.icc_profile, fast.exif, fast.format, fast.bit_depth) == \
        (plain.icc_profile, plain.exif, plain.format, plain.bit_depth)


def test_opencv_decode_is_used_for_colour_jpeg_only(tmp_path, monkeypatch):
    calls = []
    real = cv2.imdecode
    monkeypatch.setattr(cv2, "imdecode", lambda *args: calls.append(1) or real(*args))
    Image.fromarray(picture()).save(tmp_path / "colour.jpg")
    Image.fromarray(picture()[..., 0]).save(tmp_path / "grey.jpg")
    read_image(tmp_path / "colour.jpg")
    assert len(calls) == 1
    grey = read_image(tmp_path / "grey.jpg")
    assert len(calls) == 1 and grey.grey  # (plain PNGs have their own OpenCV path: tests/test_fast_read.py)


@pytest.mark.skipif(not PHOTO.exists(), reason="../shared/samples is not present")
def test_opencv_decode_of_the_phone_photo_equals_pillow():
    fast, plain = read_image(PHOTO), pillow_read(PHOTO)
    np.testing.assert_array_equal(fast.pixels, plain.pixels)
    assert fast.exif == plain.exif and fast.icc_profile == plain.icc_profile


@pytest.mark.parametrize("keep", [0.2, 0.6, 0.97])
def test_truncated_jpeg_is_one_line_error(tmp_path, capfd, keep):
    path = tmp_path / "cut.jpg"
    buffer = io.BytesIO()
    Image.fromarray(picture(200, 300)).save(buffer, "JPEG", quality=95)
    data = buffer.getvalue()
    path.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(InputError, match="truncated or damaged|truncated"):
        read_image(path)
    code = main(["render", str(path), "--depth", str(write_flat_depth(tmp_path, 200, 300)),
                 "-o", str(tmp_path / "out.jpg")])
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith("lensblur: error: cannot read image")
    assert not (tmp_path / "out.jpg").exists()


def write_flat_depth(folder: Path, height: int, width: int) -> Path:
    path = folder / "depth.png"
    ramp = np.repeat(np.linspace(0, 65535, width).astype(np.uint16)[None], height, axis=0)
    Image.fromarray(ramp).save(path)
    return path


# ---------------------------------------------------------------- encode


@pytest.mark.parametrize("quality", [100, 95, 90, 89, 75, 10])
def test_opencv_jpeg_encode_is_pillows_file(quality):
    values = picture(41, 67, seed=quality)
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = b"Exif\x00\x00" + exif_with_orientation(1)
    for meta in [{}, {"icc_profile": profile}, {"exif": exif}, {"icc_profile": profile, "exif": exif}]:
        buffer = io.BytesIO()
        Image.fromarray(values).save(buffer, "JPEG", quality=quality, subsampling=0 if quality >= 90 else 2, **meta)
        assert jpeg_bytes(values, meta.get("icc_profile"), meta.get("exif"), quality) == buffer.getvalue()


def test_jpeg_metadata_too_large_for_one_segment_goes_through_pillow(monkeypatch):
    calls = []
    monkeypatch.setattr(cv2, "imencodeWithMetadata", lambda *a: calls.append(1) or (False, None))
    values = picture()
    big_profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes() + bytes(70_000)
    data = jpeg_bytes(values, big_profile, None, 95)
    assert not calls
    assert Image.open(io.BytesIO(data)).info["icc_profile"] == big_profile
    grey = jpeg_bytes(values[..., 1], None, None, 95)
    assert not calls and Image.open(io.BytesIO(grey)).mode == "L"


def test_written_jpeg_keeps_profile_exif_and_pixels(tmp_path):
    source = tmp_path / "in.jpg"
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(picture()).save(source, quality=95, exif=exif_with_orientation(6), icc_profile=profile)
    photo = read_image(source)
    write_image(tmp_path / "out.jpg", photo.pixels, like=photo, quality=95)
    with Image.open(tmp_path / "out.jpg") as out:
        assert out.info["icc_profile"] == profile
        assert out.getexif()[0x0112] == 1 and out.getexif()[0x010F] == "lensblur test"
        assert out.size == (60, 80)  # turned by the orientation, which is reset to 1
        levels = icc.encode_levels(photo.pixels, profile, 255)
        buffer = io.BytesIO()
        Image.fromarray(levels).save(buffer, "JPEG", quality=95, subsampling=0)
        np.testing.assert_array_equal(np.asarray(out), np.asarray(Image.open(buffer)))


# ---------------------------------------------------------------- lens, highlights, guide


def test_signed_coc_is_k_times_offset_in_float32():
    rng = np.random.default_rng(3)
    disparity = rng.uniform(0, 1, (33, 47)).astype(np.float32)
    before = disparity.copy()
    for focus_range in (0.0, 0.1):
        coc = signed_coc(disparity, 37.5, 0.4, focus_range)
        offset = disparity - np.float32(0.4)
        if focus_range:
            offset = np.sign(offset) * np.maximum(np.abs(offset) - np.float32(focus_range), 0)
        assert coc.dtype == np.float32
        np.testing.assert_array_equal(coc, (np.float32(37.5) * offset).astype(np.float32))
    np.testing.assert_array_equal(disparity, before)
    coc64 = signed_coc(disparity.astype(np.float64), 10.0, 0.5)
    assert coc64.dtype == np.float32


def clipped_scene(seed=0):
    rng = np.random.default_rng(seed)
    linear = rng.uniform(0, 0.6, (64, 96, 3)).astype(np.float32)
    linear[10:13, 20:23] = 1.0       # a small spot
    linear[40:60, 50:90] = 1.0       # a large clipped area
    linear[30, 5] = [1.0, 0.2, 0.1]  # clipped in one channel
    coc = np.repeat(np.linspace(-12, 12, 96, dtype=np.float32)[None], 64, axis=0)
    return linear, coc


def _old_clipped(linear, settings):
    """The peak and clipped mask as computed before the clipped_mask kernel (two np.maximum passes)."""
    peak = np.maximum(np.maximum(linear[..., 0], linear[..., 1]), linear[..., 2])
    return peak, peak >= srgb_to_linear(np.float32(settings.threshold))


def test_clipped_mask_and_bright_pixels_as_before():
    """The clipped_mask kernel marks exactly the pixels the two np.maximum passes did: values at,
    just below and just above the threshold in each channel, NaN and ±inf included."""
    linear, coc = clipped_scene()
    settings = Highlights()
    level = srgb_to_linear(np.float32(settings.threshold))
    edge = np.array([np.nextafter(level, np.float32(0)), level, np.nextafter(level, np.float32(2))], np.float32)
    rng = np.random.default_rng(4)
    odd = rng.choice(np.concatenate([edge, [np.nan, np.inf, -np.inf, 0.0, 1.0]]).astype(np.float32), (40, 50, 3))
    for picture in (linear, odd):
        np.testing.assert_array_equal(_clipped(picture, settings), _old_clipped(picture, settings)[1])
    assert _clipped(odd, settings).any() and not _clipped(odd, settings).all()
    candidate = _clipped(linear, settings)
    bright, gain, cleaned = sparse_recovery(linear, coc, settings)
    old = np.nonzero(candidate & (np.abs(coc) > FADE_START))
    np.testing.assert_array_equal(bright[0], old[0])
    np.testing.assert_array_equal(bright[1], old[1])
    assert gain.shape == bright[0].shape and (gain >= 1).all() and cleaned is None


def test_recover_highlights_copies_and_boosts_only_bright_pixels():
    linear, coc = clipped_scene(1)
    before = linear.copy()
    result = recover_highlights(linear, coc, Highlights())
    np.testing.assert_array_equal(linear, before)  # the input is never touched
    bright, gain, _ = sparse_recovery(linear, coc, Highlights())
    expected = linear.copy()
    expected[bright] *= gain[:, None]
    np.testing.assert_array_equal(result, expected)
    assert result.dtype == np.float32 and (result > 1).any()


def test_night_share_counted_as_the_mean_it_replaced():
    from lensblur.lamps import DARK_LEVEL
    from lensblur.color import luminance, srgb_to_linear

    for seed in range(4):
        linear, _ = clipped_scene(seed)
        linear *= np.float32(0.05 + 0.2 * seed)
        linear[10:13, 20:23] = 1.0
        clipped = _clipped(linear, Highlights())
        dark = luminance(linear) < srgb_to_linear(np.float32(DARK_LEVEL))
        share = (np.count_nonzero(dark) - np.count_nonzero(dark & clipped)) / (clipped.size - np.count_nonzero(clipped))
        assert float(night_weight(share)) == float(night_weight(dark[~clipped].mean()))


def test_photo_guide_equals_the_formula_it_evaluates():
    rng = np.random.default_rng(5)
    pixels = rng.uniform(-0.05, 1.05, (45, 61, 3)).astype(np.float32)
    pixels[:5] = rng.uniform(0, 0.004, (5, 61, 3))  # the darkest codes, where the toe was replaced
    grey = np.clip(cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY), 0, 1)
    old = cv2.addWeighted(cv2.pow(grey, 1 / 2.4), 1.055, grey, 0.0, -0.055)  # the old code's three passes
    old = np.maximum(old, 0.0)
    np.testing.assert_array_equal(photo_guide(pixels), old)
    above_toe = grey > 0.0031308  # sRGB's own curve there; below it the power law clipped at 0
    assert np.abs(photo_guide(pixels) - linear_to_srgb(grey))[above_toe].max() < 1e-5


def test_median_without_numpy_ma_equals_np_median():
    rng = np.random.default_rng(9)
    for size in list(range(1, 30)) + [256, 257]:
        for dtype in (np.float32, np.float64):
            values = (np.round(rng.uniform(0, 1, size) * 5) / 5).astype(dtype)
            assert median_value(values) == float(np.median(values))
    disparity = rng.uniform(0, 1, (50, 70)).astype(np.float32)
    assert 0 <= focus_disparity_at(disparity, 35, 25) <= 1


def test_render_command_does_not_import_numpy_ma(tmp_path):
    photo = tmp_path / "in.jpg"
    Image.fromarray(picture()).save(photo)
    depth = write_flat_depth(tmp_path, 60, 80)
    code = ("import sys\nfrom lensblur.cli import main\n"
            f"assert main(['render', {str(photo)!r}, '--depth', {str(depth)!r}, '-o', {str(tmp_path / 'o.jpg')!r},"
            " '-q']) == 0\nprint('numpy.ma' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert done.stdout.strip().splitlines()[-1] == "False"


# ---------------------------------------------------------------- the whole command


def test_cli_render_equals_the_pillow_paths(tmp_path):
    """The whole command with the OpenCV decode and encode writes the file the Pillow paths wrote."""
    source = tmp_path / "in.jpg"
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(picture(90, 120)).save(source, quality=92, exif=exif_with_orientation(8), icc_profile=profile)
    depth = write_flat_depth(tmp_path, 120, 90)  # the photo is turned by its orientation
    args = ["render", str(source), "--depth", str(depth), "--focus-disparity", "0.5", "--blur", "8", "-q"]
    assert main(args + ["-o", str(tmp_path / "fast.jpg")]) == 0
    saved_decode, saved_encode = images._opencv_jpeg, images._opencv_jpeg_bytes
    images._opencv_jpeg = lambda *a: None
    images._opencv_jpeg_bytes = lambda *a: None
    try:
        assert main(args + ["-o", str(tmp_path / "plain.jpg")]) == 0
    finally:
        images._opencv_jpeg, images._opencv_jpeg_bytes = saved_decode, saved_encode
    assert (tmp_path / "fast.jpg").read_bytes() == (tmp_path / "plain.jpg").read_bytes()


def lights_photo_command(folder: Path, seed: int) -> tuple[np.ndarray, list[str]]:
    """A 120×90 PNG with clipped lights in its defocused part and a flat depth file, written to
    ``folder``: (its uint8 pixels, the render command's arguments without ``-o``)."""
    source = folder / "in.png"
    values = picture(90, 120, seed=seed)
    values[20:24, 30:34] = 255  # lights in the defocused part
    values[70:72, 100:103] = 255
    Image.fromarray(values).save(source)
    depth = write_flat_depth(folder, 90, 120)
    return values, ["render", str(source), "--depth", str(depth), "--focus-disparity", "0.2", "--blur", "12", "-q"]


def test_background_highlight_analysis_gives_the_same_file(tmp_path, monkeypatch):
    """The clipped-highlight analysis found in a second thread during the depth stage is the one
    the renderer would find itself: the same file."""
    import lensblur.commands.render as render_command

    values, args = lights_photo_command(tmp_path, seed=4)
    analyses = []
    real = render_command._ClippedInBackground

    class Recorded(real):
        def result(self):
            analyses.append(super().result())
            return analyses[-1]

    monkeypatch.setattr(render_command, "_ClippedInBackground", Recorded)
    assert main(args + ["-o", str(tmp_path / "background.png")]) == 0
    assert analyses and analyses[0] is not None and analyses[0].candidate.any()

    class Nothing(real):
        def __init__(self, pixels, settings):
            super().__init__(pixels, None)

    monkeypatch.setattr(render_command, "_ClippedInBackground", Nothing)
    assert main(args + ["-o", str(tmp_path / "inline.png")]) == 0
    a = np.asarray(Image.open(tmp_path / "background.png"))
    b = np.asarray(Image.open(tmp_path / "inline.png"))
    np.testing.assert_array_equal(a, b)
    assert (a != values).any()  # it did blur


def test_background_highlight_analysis_error_is_raised_in_the_caller(monkeypatch):
    import lensblur.commands.render as render_command
    import lensblur.highlights as highlights

    def broken(*args):
        raise InputError("analysis failed")

    monkeypatch.setattr(highlights, "analyse_clipped", broken)
    background = render_command._ClippedInBackground(np.zeros((4, 4, 3), np.float32), Highlights())
    with pytest.raises(InputError, match="analysis failed"):
        background.result()
    assert render_command._ClippedInBackground(np.zeros((4, 4, 3), np.float32), None).result() is None


def test_web_preview_jpeg_is_encoded_as_a_saved_file():
    """The preview's 8-bit values come from the saved file's one-pass encoder; against the exact
    curve they used before, they differ by at most one level, only where the exact value lies
    within 1/500 level of a rounding boundary."""
    from lensblur.web.app import encode_jpeg

    rng = np.random.default_rng(11)
    linear = rng.uniform(-0.1, 1.3, (48, 64, 3)).astype(np.float32)
    levels = icc.encode_levels(linear, None, 255)
    assert encode_jpeg(linear, None) == jpeg_bytes(levels, None, quality=88)
    exact = linear_to_srgb(np.clip(linear, 0, 1)) * 255
    before = np.round(exact).astype(int)
    differ = levels.astype(int) != before
    assert np.abs(levels.astype(int) - before).max() <= 1
    assert (np.abs(exact[differ] - np.floor(exact[differ]) - 0.5) < 0.01).all()
    grey_profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()  # not RGB: sRGB, no profile
    assert encode_jpeg(linear, grey_profile) == jpeg_bytes(levels, None, quality=88)


def test_analysis_of_a_photo_without_clipped_pixels_is_what_the_full_steps_give():
    import lensblur.highlights as highlights

    rng = np.random.default_rng(2)
    linear = rng.uniform(0, 0.5, (70, 90, 3)).astype(np.float32)
    linear[:35] *= 0.02  # dark enough for the night test to run
    settings = Highlights()
    candidate = _clipped(linear, settings)
    assert not candidate.any()
    short = highlights._analysis(linear, settings, candidate)
    spots, centroids = highlights._spots(candidate)
    crowd, factor = highlights._crowd_grid(centroids, candidate)
    np.testing.assert_array_equal(short.spots, spots)
    np.testing.assert_array_equal(short.crowd, crowd)
    np.testing.assert_array_equal(crowd, np.ones_like(crowd))
    # nothing clipped: every cell keeps the full share; one clipped pixel already lowers some
    some = np.zeros_like(candidate)
    some[3, 3] = True
    grid, _ = highlights._crowd_grid(np.empty((0, 2)), some)
    assert grid.shape == crowd.shape and grid.min() < 1
    assert short.factor == factor and short.lights is None
    assert highlights.find_lights(linear, candidate) is None


def reference_recovery(linear, coc, settings, clean):
    """sparse_recovery as it was before the per-pixel terms moved into the analysis."""
    import lensblur.highlights as h

    peak, candidate = _old_clipped(linear, settings)
    bright = np.nonzero(candidate & (np.abs(coc) > FADE_START))
    if bright[0].size == 0:
        return None
    spots, centroids = h._spots(candidate)
    crowd, factor = h._crowd_grid(centroids, candidate)
    lights = h.find_lights(linear, candidate) if settings.lamps else None
    share = np.where(spots[bright], crowd[bright[0] // factor, bright[1] // factor], np.float32(h.AREA_SHARE))
    t = np.clip((linear_to_srgb(peak[bright]) - settings.threshold) / max(1.0 - settings.threshold, 1e-6), 0, 1)
    boost = np.float32(settings.strength) * share * (t * t * (3 - 2 * t))
    cleaned = None
    if lights is not None:
        lamp = lights.weight[bright]
        lamp_boost = (lights.radiance[bright] - 1.0) * np.float32(settings.strength / h.DEFAULT_STRENGTH)
        boost = (1 - lamp) * boost + lamp * np.maximum(lamp_boost, boost)
        if clean:
            cleaned = linear + h._fade(coc)[..., None] * (lights.cleaned - linear)
    return bright, (1.0 + boost * h._fade(coc[bright])).astype(np.float32), cleaned


def night_photo(seed):
    from lensblur.color import srgb_to_linear
    from lensblur.synth.night import make_night_scene, random_glare, small_aperture_photo
    from lensblur.synth.thinlens import visible_disparity

    rng = np.random.default_rng([19, seed])
    scene, _ = make_night_scene(rng, 160, 240, lamps=6)
    photo = small_aperture_photo(scene, random_glare(rng, 160 / 384))
    return (srgb_to_linear(photo.astype(np.float32) / 255),
            signed_coc(visible_disparity(scene), scene.blur, scene.focus_disparity))


@pytest.mark.parametrize("scene", ["day", "night"])
@pytest.mark.parametrize("settings", [Highlights(), Highlights(strength=3.0, threshold=0.9), Highlights(lamps=False)])
def test_sparse_recovery_equals_the_dense_formula(scene, settings):
    from lensblur.highlights import analyse_clipped

    linear, coc = clipped_scene(2) if scene == "day" else night_photo(3)
    found_lamps = False
    for clean in (True, False):
        expected = reference_recovery(linear, coc, settings, clean)
        for analysis in (None, analyse_clipped(linear, settings)):
            got = sparse_recovery(linear, coc, settings, clean, analysis=analysis)
            np.testing.assert_array_equal(got[0][0], expected[0][0])
            np.testing.assert_array_equal(got[0][1], expected[0][1])
            np.testing.assert_array_equal(got[1], expected[1])
            assert (got[2] is None) == (expected[2] is None)
            if got[2] is not None:
                found_lamps = True
                np.testing.assert_array_equal(got[2], expected[2])
    assert found_lamps == (scene == "night" and settings.lamps)


def test_sparse_recovery_nothing_defocused_is_none():
    linear, coc = clipped_scene(0)
    assert sparse_recovery(linear, np.zeros_like(coc), Highlights()) is None
    from lensblur.highlights import analyse_clipped

    assert sparse_recovery(linear, np.zeros_like(coc), Highlights(),
                           analysis=analyse_clipped(linear, Highlights())) is None


def test_bad_depth_while_the_analysis_thread_runs_is_one_line_and_exit_1(tmp_path):
    """The depth stage fails while the highlight analysis is still running beside it: one line,
    exit 1, and no abort from a thread left inside OpenCV at exit."""
    photo = tmp_path / "big.png"
    values = np.tile(picture(150, 200), (10, 10, 1))  # 1500×2000 with many clipped spots
    Image.fromarray(values).save(photo, compress_level=1)
    depth = tmp_path / "depth.png"
    depth.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    done = subprocess.run([sys.executable, "-m", "lensblur", "render", str(photo), "--depth", str(depth),
                           "-o", str(tmp_path / "out.jpg")], capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1, done.stderr
    assert len(lines) == 1 and lines[0].startswith("lensblur: error:") and "depth" in lines[0]
    assert not (tmp_path / "out.jpg").exists()


def handed_over_scene():
    """A photo with clipped lights in its defocused part, its disparity and a lens with recovery
    and automatic grain on (grain reads the photo's noise)."""
    from lensblur.lens import Lens

    linear, _ = clipped_scene(2)
    disparity = np.repeat(np.linspace(0.1, 0.9, linear.shape[1], dtype=np.float32)[None], linear.shape[0], axis=0)
    return linear, disparity, Lens(blur=14.0, focus_disparity=0.85, grain="auto")


def test_render_scatter_hands_over_the_image_only_when_told():
    """overwrite_image=True boosts the highlights in the caller's array and writes the result there:
    the same picture as the default render, which never touches its input."""
    from lensblur.renderers.scatter import render_scatter

    linear, disparity, lens = handed_over_scene()
    before = linear.copy()
    kept = render_scatter(linear, disparity, lens)
    np.testing.assert_array_equal(linear, before)
    assert not np.shares_memory(kept, linear) and (kept > 1).any()  # highlights were boosted
    given = linear.copy()
    np.testing.assert_array_equal(render_scatter(given, disparity, lens, overwrite_image=True), kept)
    no_grain = lens.with_(grain=None)
    given = linear.copy()
    result = render_scatter(given, disparity, no_grain, overwrite_image=True)
    np.testing.assert_array_equal(result, render_scatter(linear, disparity, no_grain))
    assert np.shares_memory(result, given)  # no full-size copy: the render lives in the photo's memory


def test_api_render_never_modifies_the_callers_array():
    """lensblur.render (and render_with, which the web app and batch reach) leaves the caller's
    float32 array as it was, highlights boosted or not."""
    from lensblur import api
    from lensblur.renderers import render_with

    linear, disparity, lens = handed_over_scene()
    before = linear.copy()
    first = api.render(linear, disparity, lens=lens)
    second = render_with("scatter", linear, disparity, lens)
    np.testing.assert_array_equal(linear, before)
    np.testing.assert_array_equal(first, second)
    assert (first > 1).any()


def test_cli_hands_its_photo_to_the_renderer_and_writes_the_same_file(tmp_path, monkeypatch):
    """The command gives the decoded photo to the scatter renderer (overwrite_image): the file is the
    one a render on a copy writes."""
    import lensblur.commands.render as render_command

    values, args = lights_photo_command(tmp_path, seed=5)
    seen = []
    real = render_command.render_with

    def recorded(name, image, *rest, **options):
        seen.append(options.get("overwrite_image"))
        return real(name, image, *rest, **options)

    monkeypatch.setattr(render_command, "render_with", recorded)
    assert main(args + ["-o", str(tmp_path / "handed.png")]) == 0

    def on_a_copy(name, image, *rest, **options):
        options.pop("overwrite_image", None)
        return real(name, image.copy(), *rest, **options)

    monkeypatch.setattr(render_command, "render_with", on_a_copy)
    assert main(args + ["-o", str(tmp_path / "copy.png")]) == 0
    assert seen == [True]
    a = np.asarray(Image.open(tmp_path / "handed.png"))
    np.testing.assert_array_equal(a, np.asarray(Image.open(tmp_path / "copy.png")))
    assert (a != values).any()
    assert main(args + ["--renderer", "naive", "-o", str(tmp_path / "naive.png")]) == 0  # takes no such option


def test_mask_positions_equal_numpys_nonzero():
    from lensblur.masks import mask_positions

    rng = np.random.default_rng(7)
    strided = (rng.uniform(size=(60, 90)) > 0.7)[::2, 1::3]  # a view: not contiguous
    for mask in (rng.uniform(size=(37, 53)) > 0.8, np.zeros((5, 7), bool), np.ones((3, 4), bool),
                 rng.uniform(size=(1, 9)) > 0.5, strided, strided.T):
        rows, columns = mask_positions(mask)
        expected = np.nonzero(mask)
        np.testing.assert_array_equal(rows, expected[0])
        np.testing.assert_array_equal(columns, expected[1])
        assert rows.dtype == expected[0].dtype
    with pytest.raises(ValueError):
        mask_positions(np.zeros((2, 3, 4), bool))


def old_spots(clipped):
    """light_spots as before: 32-bit labels of the whole mask, small components by area."""
    import math

    from lensblur.highlights import SPOT_RADIUS_FRACTION

    height, width = clipped.shape
    max_area = math.pi * max(2.0, SPOT_RADIUS_FRACTION * math.hypot(height, width)) ** 2
    _, labels, stats, centroids = cv2.connectedComponentsWithStats(clipped.astype(np.uint8), connectivity=8)
    small = stats[:, cv2.CC_STAT_AREA] <= max_area
    small[0] = False
    return small[labels], centroids[small]


@pytest.mark.parametrize("kind", ["few", "many", "none", "offset box"])
def test_spots_with_16_bit_labels_or_the_fallback_are_as_before(kind):
    """Spots and centroids found on the clipped pixels' box with 16-bit labels equal those of the
    old full-frame 32-bit labelling; beyond 65535 components the 32-bit fallback gives them too."""
    from lensblur.highlights import _spots

    rng = np.random.default_rng(11)
    clipped = np.zeros((700, 700), bool)
    if kind == "many":  # isolated pixels every other row and column: 122 500 components
        clipped[::2, ::2] = True
        clipped[100:160, 200:300] = True  # and one large area
    elif kind == "few":
        clipped = cv2.dilate((rng.uniform(size=(700, 700)) > 0.999).astype(np.uint8), np.ones((3, 3))) > 0
        clipped[300:420, 10:200] = True
    elif kind == "offset box":
        clipped[250:260, 400:415] = True
        clipped[300, 600] = True
    spots, centroids = _spots(clipped)
    expected_spots, expected_centroids = old_spots(clipped)
    np.testing.assert_array_equal(spots, expected_spots)
    np.testing.assert_allclose(centroids, expected_centroids, rtol=0, atol=1e-9)
    assert spots.any() == (kind != "none")


def test_dark_share_counted_in_bands_equals_the_full_frame_count():
    from lensblur.color import luminance
    from lensblur.lamps import _dark_open

    rng = np.random.default_rng(12)
    linear = (rng.uniform(size=(600, 301, 3)) ** 4).astype(np.float32)
    clipped = rng.uniform(size=(600, 301)) > 0.7
    level = srgb_to_linear(np.float32(0.2))
    dark = luminance(linear) < level
    expected = np.count_nonzero(dark) - np.count_nonzero(dark & clipped)
    assert 0 < expected < dark.size
    assert _dark_open(linear, clipped, level) == expected
    assert _dark_open(linear, clipped, level, rows=7) == expected
