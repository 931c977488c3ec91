"""Edge matte: matted two-layer rendering along depth steps (lensblur.renderers.edge_matte)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import lensblur
from lensblur.color import linear_to_srgb
from lensblur.lens import Lens, signed_coc
from lensblur.renderers.edge_matte import band_width, edge_subject, find_steps, ramp_width
from lensblur.renderers.scatter import render_scatter
from test_cli import run_cli

SUBJECT = np.array([0.8, 0.7, 0.5], np.float32)  # cream, like the vase
WALL = np.array([0.03, 0.035, 0.05], np.float32)  # dark wall
RADIUS = 40.0


def _coverage(height: int, width: int, shift: float = 0.0) -> np.ndarray:
    """Share of each pixel inside a disc of RADIUS px at the centre (8×8 supersampled): the
    mixed pixels a camera records along an outline."""
    ss = 8
    y, x = np.mgrid[0:height * ss, 0:width * ss].astype(np.float32)
    inside = (np.hypot((y + 0.5) / ss - height / 2, (x + 0.5) / ss - width / 2 - shift) < RADIUS).astype(np.float32)
    return inside.reshape(height, ss, width, ss).mean(axis=(1, 3))


def step_scene(height=128, width=160):
    """An in-focus cream disc with anti-aliased (mixed) edge pixels over a dark far wall; the
    depth map is a phone's: a quarter of the size, its edge 1.5 px off the outline, enlarged
    bilinearly. Returns linear image, disparity, coverage (alpha) of the disc."""
    alpha = _coverage(height, width)
    rng = np.random.default_rng(1)
    wall = WALL + rng.normal(0, 0.002, (height, width, 3)).astype(np.float32)
    image = alpha[..., None] * SUBJECT + (1 - alpha[..., None]) * wall
    exact = np.where(_coverage(height, width, shift=1.5) > 0.5, 0.9, 0.2).astype(np.float32)
    small = cv2.resize(exact, (width // 4, height // 4), interpolation=cv2.INTER_AREA)
    disparity = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.clip(image, 0, 1).astype(np.float32), disparity, alpha


def _glow(render: np.ndarray, alpha: np.ndarray) -> float:
    """Mean excess brightness (8-bit levels) over the wall 3–15 px outside the disc."""
    outside = cv2.distanceTransform((alpha < 0.01).astype(np.uint8), cv2.DIST_L2, 5)
    ring = (outside >= 3) & (outside <= 15)
    wall_level = float(linear_to_srgb(WALL).mean() * 255)
    return float((linear_to_srgb(np.clip(render, 0, 1)) * 255).mean(axis=2)[ring].mean() - wall_level)


def test_glow_outside_a_sharp_subject_drops_with_the_edge_matte():
    image, disparity, alpha = step_scene()
    lens = Lens(blur=20.0, focus_disparity=0.9, highlights=None, edge_matte=True)
    off = render_scatter(image, disparity, lens.with_(edge_matte=False))
    on = render_scatter(image, disparity, lens)
    glow_off, glow_on = _glow(off, alpha), _glow(on, alpha)
    assert glow_off > 4.0  # the scene does show the fault
    assert glow_on < 0.5 * glow_off, (glow_off, glow_on)
    # the subject stays sharp and its edge keeps its soft pixels
    inside = cv2.erode((alpha > 0.99).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0  # beyond the map's ramp
    assert np.abs(on[inside] - image[inside]).max() < 0.05
    assert np.abs(on[alpha > 0.99] - image[alpha > 0.99]).mean() < 0.5 * np.abs(off[alpha > 0.99]
                                                                                - image[alpha > 0.99]).mean()
    edge = (alpha > 0.2) & (alpha < 0.8)
    assert np.abs(on[edge] - image[edge]).mean() < np.abs(off[edge] - image[edge]).mean() + 0.01


def test_matte_is_soft_only_along_the_step():
    image, disparity, alpha = step_scene()
    coc = signed_coc(disparity, 20.0, 0.9)
    layers = edge_subject(image, disparity, coc)
    assert layers is not None
    matte = layers.matte
    soft = (matte > 0.02) & (matte < 0.98)
    distance_to_edge = np.abs(cv2.distanceTransform((alpha < 0.5).astype(np.uint8), cv2.DIST_L2, 5)
                              - cv2.distanceTransform((alpha >= 0.5).astype(np.uint8), cv2.DIST_L2, 5))
    assert soft.any() and distance_to_edge[soft].max() <= band_width(*matte.shape) + 3
    # the matte follows the photo's coverage, not the map's shifted edge
    band = (alpha > 0.1) & (alpha < 0.9)
    assert np.abs(matte[band] - alpha[band]).mean() < 0.25
    # far from the step nothing changes
    far = distance_to_edge > 30
    assert (matte[far] == 0).all() or (matte[far & (alpha < 0.5)] == 0).all()
    assert np.array_equal(layers.background[matte == 0], image[matte == 0])
    # F and B reproduce the photo in the band (up to where a colour would go below 0)
    composite = matte[..., None] * layers.foreground + (1 - matte[..., None]) * layers.background
    assert np.abs(composite[soft] - image[soft]).mean() < 0.01


def test_a_map_as_sharp_as_the_photo_is_left_alone():
    image, _, alpha = step_scene()
    exact = np.where(alpha > 0.5, 0.9, 0.2).astype(np.float32)  # the step exactly on the outline
    coc = signed_coc(exact, 20.0, 0.9)
    steps = find_steps(coc)
    assert steps is not None and ramp_width(coc, steps) < 1.0
    assert edge_subject(image, exact, coc) is None
    _, phone_map, _ = step_scene()
    phone_coc = signed_coc(phone_map, 20.0, 0.9)
    assert ramp_width(phone_coc, find_steps(phone_coc)) > 1.0


@pytest.mark.parametrize("case", ["ramp", "blurrier_near_side", "small_step", "noise"])
def test_renders_without_such_steps_are_unchanged(case):
    image, disparity, _ = step_scene()
    lens = Lens(blur=20.0, focus_disparity=0.9, highlights=None, edge_matte=True)
    if case == "ramp":  # continuous depth: a tilted floor
        disparity = np.tile(np.linspace(0, 1, disparity.shape[0], dtype=np.float32)[:, None], (1, disparity.shape[1]))
    elif case == "blurrier_near_side":  # focus on the wall: the disc is the blurred one
        lens = lens.with_(focus_disparity=0.2)
    elif case == "small_step":  # a step of 1 px of blur
        lens = lens.with_(blur=1.4)
    else:  # a noisy map: "steps" everywhere
        disparity = np.random.default_rng(2).uniform(0, 1, disparity.shape).astype(np.float32)
    assert find_steps(signed_coc(disparity, lens.blur, lens.focus_disparity)) is None
    on = render_scatter(image, disparity, lens)
    off = render_scatter(image, disparity, lens.with_(edge_matte=False))
    assert np.array_equal(on, off)


def test_a_given_matte_takes_precedence():
    image, disparity, alpha = step_scene()
    lens = Lens(blur=20.0, focus_disparity=0.9, highlights=None, edge_matte=True)
    on = render_scatter(image, disparity, lens, matte=alpha)
    off = render_scatter(image, disparity, lens.with_(edge_matte=False), matte=alpha)
    assert np.array_equal(on, off)


def test_api_option():
    image, disparity, alpha = step_scene()
    encoded = np.round(linear_to_srgb(image) * 255).astype(np.uint8)
    on = lensblur.render(encoded, disparity, blur=20.0, focus_disparity=0.9, highlights=False, edge_matte=True)
    off = lensblur.render(encoded, disparity, blur=20.0, focus_disparity=0.9, highlights=False)
    assert on.dtype == np.uint8 and not np.array_equal(on, off)
    assert _glow(image_from(on), alpha) < 0.5 * _glow(image_from(off), alpha)
    assert lensblur.make_lens(disparity, edge_matte=False).edge_matte is False
    assert lensblur.make_lens(disparity).edge_matte is False  # opt-in: it costs more than the render
    assert lensblur.make_lens(disparity, edge_matte=True).edge_matte is True


def image_from(encoded: np.ndarray) -> np.ndarray:
    from lensblur.color import srgb_to_linear

    return srgb_to_linear(encoded.astype(np.float32) / 255)


def test_cli_option_and_verbose_report(tmp_path):
    image, disparity, alpha = step_scene()
    photo, depth = tmp_path / "disc.png", tmp_path / "disc_depth.png"
    cv2.imwrite(str(photo), cv2.cvtColor(np.round(linear_to_srgb(image) * 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(depth), np.round(disparity * 65535).astype(np.uint16))
    common = [photo, "--depth", depth, "--focus", "80,64", "--blur", "20", "--highlights", "off", "-v"]
    on = run_cli("render", *common, "--edge-matte", "on", "-o", tmp_path / "on.png")
    off = run_cli("render", *common, "-o", tmp_path / "off.png")
    assert on.returncode == 0 and off.returncode == 0, on.stderr + off.stderr
    assert on.stdout == "" and off.stdout == ""  # nothing from the matting library leaks
    assert "edge matte: on, matting" in on.stderr
    assert "edge matte: off" in off.stderr
    rendered = {name: image_from(cv2.cvtColor(cv2.imread(str(tmp_path / f"{name}.png")), cv2.COLOR_BGR2RGB))
                for name in ("on", "off")}
    assert _glow(rendered["on"], alpha) < 0.5 * _glow(rendered["off"], alpha)
    bad = run_cli("render", *common, "--edge-matte", "maybe", "-o", tmp_path / "bad.png")
    assert bad.returncode == 2 and "--edge-matte" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "bad.png").exists()
    sharp_map = tmp_path / "sharp_depth.png"
    cv2.imwrite(str(sharp_map), np.where(alpha > 0.5, 65535, 13107).astype(np.uint16))
    sharp = run_cli("render", photo, "--depth", sharp_map, "--focus", "80,64", "--blur", "20", "-v", "--edge-matte", "on",
                    "-o", tmp_path / "sharp.png")
    assert sharp.returncode == 0 and "as sharp as the photo" in sharp.stderr
    info = run_cli("info", photo)
    assert info.returncode == 0 and "edge matte: off (render --edge-matte on" in info.stdout


def test_concurrent_matting_solves_leave_stdout_as_it_was():
    """solve_alpha silences pymatting by swapping sys.stdout: threads doing it at once (the web
    app) must not leave one of their StringIO objects behind as the process's stdout."""
    import sys
    from concurrent.futures import ThreadPoolExecutor

    from lensblur.depth.matting import solve_alpha, trimap_from_mask

    image, _, alpha = step_scene()
    trimap = trimap_from_mask(alpha, 3)
    before = sys.stdout
    with ThreadPoolExecutor(4) as pool:
        mattes = list(pool.map(lambda _: solve_alpha(image, trimap), range(8)))
    assert sys.stdout is before
    assert all(np.array_equal(matte, mattes[0]) for matte in mattes)
