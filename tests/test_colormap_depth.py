"""Colour-mapped depth pictures given as --depth FILE: refused with the colormap's name, or read
back with --depth-colormap NAME; grey stored as RGB still loads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from lensblur.errors import InputError
from lensblur.io.colormaps import BASE_NAMES, NAMES, colormap_table, guess_colormap, invert_colormap
from lensblur.io.depth import read_depth

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "astronaut.jpg"
EXAMPLE_DEPTH = REPO / "examples" / "astronaut_disparity.png"


def ramp(height=40, width=256) -> np.ndarray:
    """A horizontal ramp 0 → 1 over 256 columns (one per colormap entry)."""
    return np.tile(np.linspace(0, 1, width, dtype=np.float32), (height, 1))


def draw(values: np.ndarray, name: str) -> np.ndarray:
    """values in [0, 1] as a uint8 RGB picture of colormap ``name`` (as matplotlib would save it)."""
    index = np.clip((values * 256).astype(int), 0, 255)
    return colormap_table(name)[index]


def save_rgb(path: Path, rgb: np.ndarray, quality: int | None = None) -> Path:
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if quality else []
    cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]), params)
    return path


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.run([sys.executable, "-m", "lensblur", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def test_tables_are_the_published_colours():
    assert colormap_table("viridis")[0].tolist() == [68, 1, 84] and colormap_table("viridis")[255].tolist() == [253, 231, 37]
    assert colormap_table("magma")[255].tolist() == [252, 253, 191]
    assert colormap_table("Spectral")[0].tolist() == [158, 1, 66] and colormap_table("Spectral")[255].tolist() == [94, 79, 162]
    assert colormap_table("Spectral_r")[0].tolist() == [94, 79, 162]
    assert colormap_table("jet")[0].tolist() == [0, 0, 128] and colormap_table("jet")[255].tolist() == [128, 0, 0]
    for name in NAMES:
        assert colormap_table(name).shape == (256, 3)


@pytest.mark.parametrize("name", NAMES)
def test_a_ramp_through_each_colormap_round_trips(tmp_path, name):
    values = ramp()
    path = save_rgb(tmp_path / f"{name}.png", draw(values, name))
    back = read_depth(path, colormap=name)
    # a run of equal table colours (jet's saturated blue, 5 entries) reads back as its middle
    assert np.abs(back - values).max() <= 2.5 / 255
    with pytest.raises(InputError) as refused:  # without the name: refused, naming the map
        read_depth(path)
    message = str(refused.value)
    assert "\n" not in message and "--depth-colormap" in message
    assert name.removesuffix("_r") in message


def test_a_depth_anything_style_jpeg_reads_back_close(tmp_path):
    rng = np.random.default_rng(0)
    smooth = cv2.GaussianBlur(rng.uniform(0, 1, (120, 160)).astype(np.float32), (0, 0), 12)
    values = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    path = save_rgb(tmp_path / "depth_vis.jpg", draw(values, "Spectral_r"), quality=95)
    assert guess_colormap(cv2.imread(str(path))[..., ::-1]) == "Spectral_r"
    back = read_depth(path, colormap="Spectral_r")
    assert np.median(np.abs(back - values)) < 3 / 255 and np.corrcoef(back.ravel(), values.ravel())[0, 1] > 0.99


def test_a_colour_photo_is_refused_as_depth(tmp_path):
    with pytest.raises(InputError, match="is a colour image, not a depth map"):
        read_depth(EXAMPLE)
    with pytest.raises(InputError, match="not those of the magma colormap"):
        read_depth(EXAMPLE, colormap="magma")
    with pytest.raises(InputError, match="unknown colormap"):
        invert_colormap(np.zeros((2, 2, 3), np.uint8), "rainbow")


def test_grey_stored_as_rgb_still_loads(tmp_path):
    grey = np.round(ramp() * 255).astype(np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    for path in (save_rgb(tmp_path / "g.png", rgb), save_rgb(tmp_path / "g.jpg", rgb, quality=90)):
        assert np.abs(read_depth(path) - ramp()).max() <= 3 / 255
    rgba = np.concatenate([rgb, np.full_like(grey[..., None], 255)], axis=2)
    cv2.imwrite(str(tmp_path / "g4.png"), rgba)
    assert np.abs(read_depth(tmp_path / "g4.png") - ramp()).max() <= 1 / 255
    grey16 = np.repeat((ramp() * 65535).astype(np.uint16)[..., None], 3, axis=2)
    cv2.imwrite(str(tmp_path / "g16.png"), grey16)
    assert np.abs(read_depth(tmp_path / "g16.png") - ramp()).max() < 1e-4  # full 16-bit precision kept


def test_rgba_and_16_bit_colour_maps_read_back(tmp_path):
    rgb = draw(ramp(), "turbo")
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=2)
    cv2.imwrite(str(tmp_path / "t.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))  # plt.imsave writes RGBA
    assert np.abs(read_depth(tmp_path / "t.png", colormap="turbo") - ramp()).max() <= 2 / 255
    cv2.imwrite(str(tmp_path / "t16.png"), rgb[..., ::-1].astype(np.uint16) * 257)
    assert np.abs(read_depth(tmp_path / "t16.png", colormap="turbo") - ramp()).max() <= 2 / 255


def test_cli_refuses_a_colour_mapped_map_in_one_line_and_reads_it_with_the_name(tmp_path):
    disparity = cv2.imread(str(EXAMPLE_DEPTH), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
    path = save_rgb(tmp_path / "astronaut_Spectral_r.png", draw(disparity, "Spectral_r"))
    out = tmp_path / "out.png"
    result = run_cli("render", EXAMPLE, "--depth", path, "-o", out)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "Spectral_r" in lines[0] and not out.exists()
    result = run_cli("render", EXAMPLE, "--depth", EXAMPLE, "-o", out)
    assert result.returncode == 1 and "is a colour image" in result.stderr and not out.exists()
    result = run_cli("depth", EXAMPLE, "--depth", path, "--depth-colormap", "spectral_r", "-o", out, "-v")
    assert result.returncode == 0, result.stderr
    assert "colour-mapped with Spectral_r" in result.stderr
    back = cv2.imread(str(out), cv2.IMREAD_UNCHANGED).astype(np.float32) / 65535
    expected = disparity  # positions on the colormap are in [0, 1]: used as given, not stretched (docs/io.md)
    assert np.abs(back - expected).max() <= 3 / 255
    # the same picture as JPEG: its edge artefacts must not stretch the range (median 3×3)
    save_rgb(tmp_path / "astronaut_Spectral_r.jpg", draw(disparity, "Spectral_r"), quality=90)
    jpeg = read_depth(tmp_path / "astronaut_Spectral_r.jpg", colormap="Spectral_r")
    assert np.median(np.abs(jpeg - expected)) < 4 / 255
    result = run_cli("depth", EXAMPLE, "--depth", path, "--depth-colormap", "rainbow", "-o", tmp_path / "x.png")
    assert result.returncode == 2 and "unknown colormap" in result.stderr


def test_every_base_name_is_guessed_from_its_own_picture():
    rng = np.random.default_rng(1)
    values = cv2.GaussianBlur(rng.uniform(0, 1, (60, 80)).astype(np.float32), (0, 0), 6)
    values = (values - values.min()) / (values.max() - values.min())
    for name in BASE_NAMES:
        guessed = guess_colormap(draw(values, name))
        assert guessed is not None and guessed.removesuffix("_r") == name
