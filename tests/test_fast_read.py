"""Faster reading for ``lensblur render`` (issue 14): PNG photos decoded by OpenCV and integer depth
maps scaled in float32 give exactly what the Pillow / float64 paths gave; damaged files still get
one line and exit 1."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

import lensblur.io.images as images
from lensblur.errors import InputError
from lensblur.io.depth import _scaled, read_depth
from lensblur.io.images import read_image

ROOT = Path(__file__).resolve().parents[1]
SRGB_PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()  # a real RGB profile


def _picture(height=37, width=53, channels=3, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x + y) % 256, (x * y) % 256], axis=-1)[..., :channels]
    return np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)


@pytest.fixture
def only_thread(monkeypatch):
    """As in the command line reading its photo: the process's only Python thread (earlier tests
    in this process may have left the kernels' thread pool running)."""
    monkeypatch.setattr(images.threading, "active_count", lambda: 1)


def _spy_on(monkeypatch, module, name) -> list:
    """Replace ``module.name`` (an OpenCV path returning None when it declines) by a spy; the
    returned list gets, per call, whether the path was taken."""
    taken = []
    original = getattr(module, name)

    def spy(*args):
        result = original(*args)
        taken.append(result is not None)
        return result

    monkeypatch.setattr(module, name, spy)
    return taken


def _read_both(path, monkeypatch):
    """(read through the OpenCV path, was it taken, read through Pillow alone)."""
    taken = _spy_on(monkeypatch, images, "_opencv_png")
    fast = read_image(path)
    monkeypatch.setattr(images, "_opencv_png", lambda *args: None)
    slow = read_image(path)
    return fast, any(taken), slow


def _same(a, b):
    assert np.array_equal(a.pixels, b.pixels)
    assert (a.alpha is None) == (b.alpha is None)
    if a.alpha is not None:
        assert np.array_equal(a.alpha, b.alpha)
    assert (a.icc_profile, a.exif, a.bit_depth, a.format, a.grey) == (b.icc_profile, b.exif, b.bit_depth, b.format,
                                                                      b.grey)


def _with_broken_pixel_data(png: bytes) -> bytes:
    """The PNG with its deflate stream broken inside the first IDAT chunk, whose CRC is then
    recomputed: every chunk is sound, the pixel data is not (libpng fails inside it)."""
    data = bytearray(png)
    start = data.index(b"IDAT") + 4
    length = struct.unpack(">I", data[start - 8:start - 4])[0]
    data[start + 10:start + 40] = b"\xff" * 30
    data[start + length:start + length + 4] = struct.pack(">I", zlib.crc32(bytes(data[start - 4:start + length])))
    return bytes(data)


def _with_chunk_after_pixels(png: bytes, kind: bytes, payload: bytes) -> bytes:
    chunk = struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    return png[:-12] + chunk + png[-12:]  # before IEND


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_opencv_png_equals_pillow_on_8bit(tmp_path, monkeypatch, only_thread, mode):
    channels = len(mode)
    array = _picture(channels=channels)
    path = tmp_path / f"in-{mode}.png"
    Image.fromarray(array[..., 0] if channels == 1 else array, mode).save(path)
    fast, taken, slow = _read_both(path, monkeypatch)
    assert taken
    _same(fast, slow)
    assert fast.grey == (mode == "L") and (fast.alpha is not None) == (mode == "RGBA")


def test_opencv_png_with_plain_chunks(tmp_path, monkeypatch, only_thread):
    path = tmp_path / "dpi.png"
    Image.fromarray(_picture()).save(path, dpi=(300, 300))  # a pHYs chunk
    fast, taken, slow = _read_both(path, monkeypatch)
    assert taken
    _same(fast, slow)


@pytest.mark.parametrize("case", ["palette", "palette-transparent", "rgb-trns", "grey16", "rgb16", "grey-alpha",
                                  "exif-after-pixels", "text-after-pixels", "bad-crc", "grey-4bit", "exif-icc",
                                  "bad-icc"])
def test_other_pngs_go_through_pillow_unchanged(tmp_path, monkeypatch, only_thread, case):
    path = tmp_path / f"{case}.png"
    array = _picture()
    if case == "palette":
        Image.fromarray(array).convert("P", palette=Image.Palette.ADAPTIVE).save(path)
    elif case == "palette-transparent":
        Image.fromarray(array).convert("P", palette=Image.Palette.ADAPTIVE).save(path, transparency=3)
    elif case == "rgb-trns":
        Image.fromarray(array).save(path, transparency=(10, 20, 30))
    elif case == "grey16":
        Image.fromarray((array[..., 0].astype(np.uint16) * 257)).save(path)
    elif case == "rgb16":
        import cv2

        cv2.imwrite(str(path), array[..., ::-1].astype(np.uint16) * 257)
    elif case == "grey-alpha":
        Image.fromarray(array[..., :2], "LA").save(path)
    elif case == "grey-4bit":
        Image.fromarray(array[..., 0] // 17 * 17).convert("L").save(path, bits=4)
    elif case == "exif-icc":
        exif = Image.Exif()
        exif[0x0112] = 6
        Image.fromarray(array).save(path, exif=exif.tobytes(), icc_profile=SRGB_PROFILE)
    elif case == "bad-icc":  # libpng would print "iCCP: too short" on stderr
        Image.fromarray(array).save(path, icc_profile=b"not a profile")
    else:
        Image.fromarray(array).save(path)
        data = path.read_bytes()
        if case == "exif-after-pixels":
            exif = Image.Exif()
            exif[0x0112] = 3
            data = _with_chunk_after_pixels(data, b"eXIf", exif.tobytes())
        elif case == "text-after-pixels":
            data = _with_chunk_after_pixels(data, b"tEXt", b"Comment\0after the pixels")
        else:  # a flipped bit in an ancillary chunk's CRC: Pillow decides, as before
            data = _with_chunk_after_pixels(data, b"tEXt", b"Comment\0x")
            data = data[:-13] + bytes([data[-13] ^ 1]) + data[-12:]
        path.write_bytes(data)
    try:
        fast, taken, slow = _read_both(path, monkeypatch)
    except InputError:
        monkeypatch.setattr(images, "_opencv_png", lambda *args: None)
        with pytest.raises(InputError):
            read_image(path)
        return
    assert not taken
    _same(fast, slow)
    if case == "exif-icc":
        assert fast.pixels.shape[:2] == (53, 37) and fast.icc_profile == SRGB_PROFILE


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.95, 0.999])
def test_truncated_png_is_one_line_and_exit_1(tmp_path, cut):
    whole = tmp_path / "whole.png"
    Image.fromarray(_picture(200, 300)).save(whole)
    data = whole.read_bytes()
    path = tmp_path / "cut.png"
    path.write_bytes(data[:int(len(data) * cut)])
    with pytest.raises(InputError, match="cannot read image"):
        read_image(path)
    done = subprocess.run([sys.executable, "-m", "lensblur", "render", str(path), "-o", str(tmp_path / "out.jpg"),
                           "--blur", "2", "--depth", str(whole)], capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1 and "cannot read image" in done.stderr
    assert not (tmp_path / "out.jpg").exists()


@pytest.mark.parametrize("damaged", ["photo", "depth map"])
def test_png_with_damaged_pixel_data_but_sound_chunks_is_one_line(tmp_path, damaged):
    """A deflate stream broken inside a chunk whose CRC was recomputed, in the photo or in its
    16-bit grey depth map: libpng fails (its print kept off stderr, the clipped-highlight thread
    running beside the depth read or not), Pillow reports in one line, nothing is written."""
    photo, depth = tmp_path / "photo.png", tmp_path / "depth.png"
    Image.fromarray(_picture(64, 64)).save(photo)
    Image.fromarray((np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 15).astype(np.uint16)).save(depth)
    broken = photo if damaged == "photo" else depth
    broken.write_bytes(_with_broken_pixel_data(broken.read_bytes()))
    done = subprocess.run([sys.executable, "-m", "lensblur", "render", str(photo), "-o", str(tmp_path / "out.jpg"),
                           "--blur", "2", "--depth", str(depth)], capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert done.returncode == 1
    message = "cannot read image" if damaged == "photo" else "depth map"
    assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr
    assert "libpng" not in done.stderr
    assert not (tmp_path / "out.jpg").exists()


def test_stderr_is_given_back_and_other_threads_mean_pillow(tmp_path, monkeypatch, capfd):
    import os
    import threading

    path = tmp_path / "in.png"
    Image.fromarray(_picture()).save(path)
    with monkeypatch.context() as alone:
        alone.setattr(images.threading, "active_count", lambda: 1)
        fast, taken, slow = _read_both(path, alone)
    assert taken
    os.write(2, b"still here\n")
    assert capfd.readouterr().err == "still here\n"
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert threading.active_count() > 1
        fast, taken, slow = _read_both(path, monkeypatch)  # a web server's threads: no fd games
    finally:
        release.set()
        other.join()
    assert not taken
    _same(fast, slow)


def test_integer_maps_scale_exactly_as_in_float64():
    for dtype in (np.uint8, np.uint16, np.int8, np.int16, np.uint32):
        info = np.iinfo(dtype)
        levels = np.arange(0, min(info.max, 70_000) + 1, dtype=np.int64)
        if dtype == np.uint32:
            levels = np.concatenate([levels, np.random.default_rng(0).integers(0, info.max, 10_000), [info.max]])
        values = levels.astype(dtype)
        expected = (values.astype(np.float64) / info.max).astype(np.float32)
        assert np.array_equal(_scaled(values, info.max), expected)


def test_sixteen_bit_map_file_reads_as_before(tmp_path):
    values = (np.random.default_rng(2).integers(0, 65536, (40, 60))).astype(np.uint16)
    path = tmp_path / "map.png"
    Image.fromarray(values).save(path)
    assert np.array_equal(read_depth(path), (values.astype(np.float64) / 65535).astype(np.float32))


def test_a_silent_thread_importing_meanwhile_keeps_the_opencv_path(tmp_path, monkeypatch):
    # the command line imports its renderer on a thread named SILENT_THREAD while it reads the
    # photo (lensblur.renderers.import_in_background): that thread prints nothing, so it does not
    # send the photo to Pillow; any other thread still does (as test_stderr_is_given_back_... checks)
    import threading

    path = tmp_path / "in.png"
    Image.fromarray(_picture()).save(path)
    release = threading.Event()
    silent = threading.Thread(target=release.wait, name=images.SILENT_THREAD)
    silent.start()
    # this thread and the silent one (earlier tests in this process may have left pools running)
    monkeypatch.setattr(images.threading, "active_count", lambda: 2)
    try:
        fast, taken, slow = _read_both(path, monkeypatch)
    finally:
        release.set()
        silent.join()
    assert taken
    _same(fast, slow)
    fast, taken, slow = _read_both(path, monkeypatch)  # the other thread is not a silent one
    assert not taken


@pytest.mark.parametrize("bits", [8, 16])
def test_grey_depth_png_through_opencv_equals_pillow(tmp_path, monkeypatch, only_thread, bits):
    import lensblur.io.depth as depth_io

    rng = np.random.default_rng(bits)
    dtype = np.uint8 if bits == 8 else np.uint16
    values = rng.integers(0, np.iinfo(dtype).max + 1, (37, 53)).astype(dtype)
    path = tmp_path / "map.png"
    Image.fromarray(values).save(path)
    with monkeypatch.context() as spied:
        taken = _spy_on(spied, depth_io, "opencv_grey_png")
        samples = depth_io._load(path)
        fast = read_depth(path)
    with monkeypatch.context() as declined:
        declined.setattr(depth_io, "opencv_grey_png", lambda *args: None)
        slow = read_depth(path)
    assert taken == [True, True]
    assert samples.dtype == dtype and np.array_equal(samples, values)
    assert np.array_equal(fast, slow)

    # a chunk OpenCV and Pillow might read differently: Pillow reads it
    path.write_bytes(_with_chunk_after_pixels(path.read_bytes(), b"tEXt", b"comment\x00depth"))
    taken = _spy_on(monkeypatch, depth_io, "opencv_grey_png")
    assert np.array_equal(read_depth(path), slow) and taken == [False]


def test_damaged_grey_depth_png_gets_one_line(tmp_path, only_thread):
    path = tmp_path / "map.png"
    Image.fromarray(np.arange(64 * 48, dtype=np.uint16).reshape(48, 64)).save(path)
    data = bytearray(path.read_bytes())
    path.write_bytes(bytes(data[:len(data) // 2]))  # truncated inside the pixels
    with pytest.raises(InputError) as caught:
        read_depth(path)
    assert "depth map" in str(caught.value) and "\n" not in str(caught.value)
