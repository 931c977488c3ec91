"""Night scenes with HDR lamps, and the photo a stopped-down camera takes of them.

A night scene (``make_night_scene``) is a dark background layer (buildings or trees over a
water-like plane in its lower part), HDR lamps on it of several sizes (points of 1–2 px and
lamps whose cores span many pixels, linear radiance 6–300 × a tint), their reflections in the
water (vertically stretched, dimmer copies), and a dark foreground silhouette in focus. The
ground truth is the exact thin-lens image of the true radiance (``thinlens.render_ground_truth``)
clipped like the camera clips.

The input (``small_aperture_photo``) is what a camera at a small aperture records of the same
radiance: the pinhole view plus veiling glare (a wide power-law halo holding 2–8 % of each
light's energy) and diffraction starburst spikes (2·n thin rays for an n-blade diaphragm, 6 or 8
blades), then clipped to 8 bits. Glare and spikes are artefacts of the sharp photo; the truth has
neither. Their parameters are drawn per scene, so a highlight model is not fitted to one glare shape.

``make_daylight_scene`` makes the daylight cases that must not sparkle: a clipped sunlit wall
seen through leaves, pavement with glints, a large clipped water surface, an overexposed sky, a
white wall. Their clipped parts are surfaces only a little above the clip level (1.05–2).

Lamps are returned as ``Lamp`` records (centre, core radius, radiance, whether a reflection), so
benchmarks can measure each light's disc in the renders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from lensblur.aperture import Aperture
from lensblur.synth.scene import Layer, Scene, _draw_blob, _draw_strand, _noise_texture, _SUPERSAMPLE, paint_shape
from lensblur.synth.thinlens import encode_srgb8, render_pinhole

DAYLIGHT_KINDS = ("leaves", "glints", "water", "sky", "wall")


@dataclass(frozen=True)
class Lamp:
    """One light painted into a scene: centre (x, y) in pixels, core radius in pixels, linear
    radiance (RGB, the brightest channel 6–300), reflection: True for a reflection in the water."""

    x: float
    y: float
    radius: float
    radiance: tuple[float, float, float]
    reflection: bool = False


@dataclass(frozen=True)
class Glare:
    """The stopped-down camera's artefacts: share of each light's energy in the veiling-glare halo
    (0.02–0.08), the halo's core width r0 (px) and power-law exponent p (halo ∝ (1 + (r/r0)²)^(−p/2)),
    the number of starburst rays, their share of the energy and their length scale (px)."""

    share: float = 0.03
    r0: float = 2.0
    power: float = 3.0
    rays: int = 12
    ray_share: float = 0.004
    ray_length: float = 20.0
    rotation: float = 0.0


def make_night_scene(rng: np.random.Generator, height: int, width: int, *, lamps: int | None = None,
                     max_coc: float | None = None) -> tuple[Scene, list[Lamp]]:
    """A random night scene of ``height``×``width`` pixels and the lamps in it.

    rng: the only source of randomness (same state → same scene). lamps: number of lamps
    (default 4–16; about half of them are reflected in the water). max_coc: the background's
    blur radius in pixels (default 8–20 × min(H, W)/384).
    """
    scale = min(height, width) / 384.0
    horizon = int(height * rng.uniform(0.55, 0.75))
    rgb = _dark_background(rng, height, width, horizon)
    far, near = rng.uniform(0.0, 0.1), rng.uniform(0.15, 0.3)
    rows = np.arange(height, dtype=np.float32)
    # buildings at one distance above the horizon; the water comes nearer towards the bottom
    column = np.where(rows < horizon, far, far + (near - far) * (rows - horizon) / max(height - horizon, 1))
    disparity = np.repeat(column.astype(np.float32)[:, None], width, axis=1)
    count = int(lamps if lamps is not None else rng.integers(4, 17))
    painted: list[Lamp] = []
    for _ in range(count):
        lamp = _random_lamp(rng, width, horizon, scale)
        _paint_disc(rgb, lamp.x, lamp.y, lamp.radius, np.array(lamp.radiance, np.float32))
        painted.append(lamp)
        mirror_y = 2 * horizon - lamp.y
        if rng.uniform() < 0.6 and mirror_y < height - 2:
            reflection = Lamp(lamp.x, mirror_y, lamp.radius, tuple(float(v) * rng.uniform(0.1, 0.35)
                                                                     for v in lamp.radiance), True)
            _paint_streak(rgb, reflection, stretch=rng.uniform(2.0, 5.0))
            painted.append(reflection)
    background = Layer(rgb, np.ones((height, width), np.float32), disparity)
    front_d = float(rng.uniform(0.6, 0.9))
    front = _silhouette(rng, height, width, front_d, scale)
    blur_radius = float(max_coc if max_coc is not None else rng.uniform(8.0, 20.0) * scale)
    blur = blur_radius / max(front_d - far, 0.05)
    aperture = Aperture() if rng.uniform() < 0.7 else Aperture(int(rng.integers(6, 10)), float(rng.uniform(0, 60)), 0.3)
    return Scene([background, front], front_d, blur, aperture), painted


def lamp_discs(lamps: list[Lamp], radius_rows: np.ndarray,
               front_alpha: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Where each lamp's bokeh disc lies, for measuring it: (inner, whole) bool H×W masks per lamp
    whose disc is unoccluded by the foreground (``front_alpha`` ≤ 0.02 over it), at least 3 px in
    radius and inside the frame. radius_rows: |c| of the background per image row (px); inner:
    within 0.7·|c| of the centre; whole: within |c| + the core radius.
    """
    height, width = front_alpha.shape
    y, x = np.mgrid[0:height, 0:width]
    discs = []
    for lamp in lamps:
        radius = float(radius_rows[int(min(max(round(lamp.y), 0), height - 1))])
        distance = np.hypot(x - lamp.x, y - lamp.y)
        whole = distance <= radius + lamp.radius
        inner = distance <= 0.7 * radius
        if radius < 3 or front_alpha[whole].max(initial=0) > 0.02 or inner.sum() < 0.9 * math.pi * (0.7 * radius) ** 2:
            continue
        discs.append((inner, whole))
    return discs


def random_glare(rng: np.random.Generator, scale: float = 1.0) -> Glare:
    """Glare and starburst parameters of a stopped-down lens, drawn at random (see module doc)."""
    return Glare(share=float(rng.uniform(0.02, 0.08)), r0=float(rng.uniform(1.5, 3.0) * scale),
                 power=float(rng.uniform(2.6, 3.4)), rays=int(2 * rng.choice([6, 8])),
                 ray_share=float(rng.uniform(0.004, 0.015)), ray_length=float(rng.uniform(10, 30) * scale),
                 rotation=float(rng.uniform(0, 180)))


def small_aperture_photo(scene: Scene, glare: Glare) -> np.ndarray:
    """What a camera at a small aperture records of ``scene``: the pinhole view plus glare and
    starburst rays around every pixel brighter than the clip level, clipped, sRGB uint8 H×W×3."""
    return encode_srgb8(add_glare(render_pinhole(scene), glare))


def add_glare(linear: np.ndarray, glare: Glare) -> np.ndarray:
    """``linear`` (float32 H×W×3, HDR) with the energy above 1 of each pixel spread by the glare
    halo and starburst kernel (``glare.share + glare.ray_share`` of it; the rest stays in place)."""
    source = np.maximum(linear - 1.0, 0.0).astype(np.float32)  # only lights make visible glare
    kernel = glare_kernel(glare)
    spread = np.stack([cv2.filter2D(source[..., k], -1, kernel, borderType=cv2.BORDER_CONSTANT)
                       for k in range(3)], axis=2)
    kept = 1.0 - glare.share - glare.ray_share
    return (linear - source * (1 - kept) + spread).astype(np.float32)


def glare_kernel(glare: Glare) -> np.ndarray:
    """The halo plus starburst kernel (float32, square, odd size), summing to share + ray_share."""
    reach = int(math.ceil(max(6 * glare.ray_length, 24 * glare.r0)))
    y, x = np.mgrid[-reach:reach + 1, -reach:reach + 1].astype(np.float32)
    r = np.hypot(x, y)
    halo = (1 + (r / glare.r0) ** 2) ** (-glare.power / 2)
    halo[reach, reach] = 0
    halo *= glare.share / halo.sum()
    angle = np.arctan2(y, x)
    step = 2 * math.pi / glare.rays
    offset = (angle - math.radians(glare.rotation)) % step
    across = r * np.abs(np.sin(np.minimum(offset, step - offset)))  # distance from the nearest ray
    rays = np.exp(-0.5 * (across / 0.7) ** 2) * np.exp(-r / glare.ray_length) / np.maximum(r, 1.0)
    rays[reach, reach] = 0
    rays *= glare.ray_share / rays.sum()
    return (halo + rays).astype(np.float32)


def lamp_colour(rng: np.random.Generator) -> np.ndarray:
    """A lamp tint (sodium orange, warm white, cool LED), brightest channel 1."""
    tints = np.array([[1.0, 0.55, 0.2], [1.0, 0.85, 0.6], [0.8, 0.9, 1.0], [1.0, 1.0, 1.0]], np.float32)
    tint = tints[int(rng.integers(len(tints)))] * rng.uniform(0.9, 1.0, size=3).astype(np.float32)
    return tint / tint.max()


def _random_lamp(rng, width, horizon, scale) -> Lamp:
    if rng.uniform() < 0.5:
        radius = rng.uniform(0.5, 1.2)                    # a point: 1–2 px
        level = rng.uniform(30.0, 300.0)
    else:
        radius = rng.uniform(1.5, 5.0) * scale           # a lamp with a core of many pixels
        level = rng.uniform(6.0, 60.0)
    x = rng.uniform(0.03, 0.97) * width
    y = rng.uniform(0.05, 0.9) * horizon
    return Lamp(float(x), float(y), float(radius), tuple(float(v) for v in level * lamp_colour(rng)))


def _dark_background(rng, height, width, horizon) -> np.ndarray:
    """Night sky, building/tree masses with a few faint windows, dark water below the horizon."""
    texture = _noise_texture(rng, height, width)
    sky = np.array([0.004, 0.006, 0.012], np.float32) * rng.uniform(0.5, 2.0)
    rgb = np.empty((height, width, 3), np.float32)
    rgb[:] = sky
    # a skyline: blocks of varying height filled with dim texture
    x = 0
    while x < width:
        w = int(rng.uniform(0.05, 0.2) * width)
        top = int(horizon - rng.uniform(0.1, 0.6) * horizon)
        rgb[top:horizon, x:x + w] = texture[top:horizon, x:x + w] * rng.uniform(0.01, 0.04)
        x += w
    water = texture[horizon:] * np.array([0.3, 0.5, 0.8], np.float32) * rng.uniform(0.005, 0.02)
    rgb[horizon:] = water
    return rgb


def _paint_disc(rgb, cx, cy, radius, radiance) -> None:
    """Anti-aliased disc of ``radius`` px at (cx, cy) with ``radiance``, over ``rgb`` in place."""
    _paint_ellipse(rgb, cx, cy, radius, radius, radiance)


def _paint_streak(rgb, lamp: Lamp, stretch: float) -> None:
    _paint_ellipse(rgb, lamp.x, lamp.y, lamp.radius, lamp.radius * stretch + 1.0,
                   np.array(lamp.radiance, np.float32))


def _paint_ellipse(rgb, cx, cy, rx, ry, radiance) -> None:
    rx, ry = max(rx, 0.5), max(ry, 0.5)
    paint_shape(rgb, cx, cy, int(math.ceil(rx)) + 1, int(math.ceil(ry)) + 1, radiance,
                lambda dx, dy: (dx / rx) ** 2 + (dy / ry) ** 2 <= 1)


def _silhouette(rng, height, width, disparity, scale) -> Layer:
    """A dark foreground layer in focus: a blob (a person, a post) and a few strands (a railing, twigs)."""
    mask = np.zeros((height * _SUPERSAMPLE, width * _SUPERSAMPLE), np.uint8)
    _draw_blob(rng, mask, scale)
    for _ in range(int(rng.integers(1, 5))):
        _draw_strand(rng, mask, scale)
    alpha = cv2.resize(mask.astype(np.float32) / 255.0, (width, height), interpolation=cv2.INTER_AREA)
    rgb = _noise_texture(rng, height, width) * np.float32(rng.uniform(0.01, 0.05))
    return Layer(rgb, np.clip(alpha, 0, 1).astype(np.float32), np.full((height, width), disparity, np.float32))


def make_daylight_scene(rng: np.random.Generator, height: int, width: int, kind: str | None = None,
                        *, max_coc: float | None = None) -> Scene:
    """A daylight scene whose clipped parts are bright surfaces, not lights (see module doc).

    kind: one of DAYLIGHT_KINDS (default: drawn from rng). The camera image is
    ``thinlens.camera_image(scene)`` (no glare: a daylight photo's clipped surfaces are barely
    above the clip level); the truth is the thin-lens render, clipped.
    """
    kind = kind if kind is not None else str(rng.choice(DAYLIGHT_KINDS))
    if kind not in DAYLIGHT_KINDS:
        raise ValueError(f"unknown daylight scene kind {kind!r}")
    scale = min(height, width) / 384.0
    texture = _noise_texture(rng, height, width)
    rows = np.arange(height, dtype=np.float32)[:, None]
    far = float(rng.uniform(0.0, 0.15))
    disparity = np.full((height, width), far, np.float32)
    bright = np.float32(rng.uniform(1.05, 2.0))
    if kind == "leaves":        # a sunlit wall (clipped) behind a layer of leaves
        rgb = (0.85 + 0.15 * texture) * bright * np.array([1.0, 0.95, 0.85], np.float32)
    elif kind == "glints":      # pavement with small specular glints
        rgb = 0.15 + 0.25 * texture
        glints = rng.uniform(size=(height, width)) < 0.004
        glints = cv2.dilate(glints.astype(np.uint8), np.ones((2, 2), np.uint8)).astype(bool)
        rgb[glints] = bright * np.array([1.0, 1.0, 0.97], np.float32)
        disparity = np.repeat(np.linspace(far, far + 0.3, height, dtype=np.float32)[:, None], width, axis=1)
    elif kind == "water":       # a large clipped water surface, sun reflected over half of it
        rgb = 0.1 + 0.2 * texture * np.array([0.5, 0.8, 1.0], np.float32)
        band = (rows > 0.4 * height) & (rows < 0.8 * height)
        sparkle = np.repeat(band, width, axis=1) & (texture[..., 0] > 0.25)
        rgb[sparkle] = bright
        disparity = np.repeat(np.linspace(far, far + 0.3, height, dtype=np.float32)[:, None], width, axis=1)
    elif kind == "sky":         # an overexposed sky over a textured hillside
        rgb = 0.05 + 0.4 * texture
        line = (0.35 + 0.1 * np.sin(np.arange(width) / (40 * scale) + rng.uniform(0, 6))) * height
        sky = rows < line[None, :]
        rgb[sky] = bright * np.array([0.95, 0.98, 1.0], np.float32)
    else:                       # a white wall with a dark window and door
        rgb = np.broadcast_to(bright * np.array([1.0, 1.0, 0.98], np.float32), (height, width, 3)).copy()
        rgb *= (0.85 + 0.15 * texture)
        y0, x0 = int(rng.uniform(0.1, 0.4) * height), int(rng.uniform(0.1, 0.6) * width)
        rgb[y0:y0 + height // 4, x0:x0 + width // 5] = 0.03
    background = Layer(rgb.astype(np.float32), np.ones((height, width), np.float32), disparity)
    front_d = float(rng.uniform(0.6, 0.9))
    mask = np.zeros((height * _SUPERSAMPLE, width * _SUPERSAMPLE), np.uint8)
    blobs = int(rng.integers(4, 9)) if kind == "leaves" else 1
    for _ in range(blobs):
        _draw_blob(rng, mask, scale)
    if kind == "leaves":
        for _ in range(int(rng.integers(4, 10))):
            _draw_strand(rng, mask, scale)
    alpha = cv2.resize(mask.astype(np.float32) / 255.0, (width, height), interpolation=cv2.INTER_AREA)
    colour = (np.array([0.25, 0.45, 0.15], np.float32) if kind == "leaves"
              else rng.uniform(0.2, 0.6, 3).astype(np.float32))
    front_rgb = (0.3 + 0.7 * _noise_texture(rng, height, width)) * colour
    front = Layer(front_rgb.astype(np.float32), np.clip(alpha, 0, 1).astype(np.float32),
                  np.full((height, width), front_d, np.float32))
    blur_radius = float(max_coc if max_coc is not None else rng.uniform(8.0, 20.0) * scale)
    return Scene([background, front], front_d, blur_radius / max(front_d - far, 0.05), Aperture())
