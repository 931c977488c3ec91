"""Person-like foreground layers for portrait scenes (opt-in; ``make_scene`` is unchanged).

A person is one fronto-parallel layer whose alpha is a silhouette drawn from simple parts: an
elliptic head, a neck, a torso rising from the bottom edge (a rounded trapezoid: half-body or
selfie framing) or a whole body with legs, two arms as thick curved strokes, and hair: a filled
cap over the head plus thin hair-like strands (0.5–2 px) leaving it. Skin, hair and clothes get
their own colours and textures (scikit-image's bundled photos, as :mod:`lensblur.synth.scene`).

    make_portrait_scene(rng, height, width) -> (Scene, person_alpha)

The person is the nearest layer and the camera focuses on it, as in a portrait; behind it lie the
usual background (flat or a ramp, with HDR point lights) and optionally one middle layer.
``person_alpha`` (float32 H×W in [0, 1]) is the exact segmentation of the person.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from lensblur.aperture import Aperture
from lensblur.color import srgb_to_linear
from lensblur.synth.scene import _SUPERSAMPLE, Layer, Scene, _background, _foreground, _photo_sources, _texture

_SKIN_TONES = np.array([[0.96, 0.80, 0.69], [0.87, 0.68, 0.55], [0.76, 0.57, 0.43], [0.55, 0.38, 0.26],
                        [0.36, 0.24, 0.16]], np.float32)  # sRGB
_HAIR_TONES = np.array([[0.08, 0.06, 0.05], [0.30, 0.20, 0.12], [0.55, 0.40, 0.22], [0.80, 0.68, 0.45],
                        [0.45, 0.45, 0.45]], np.float32)  # sRGB


def make_portrait_scene(rng: np.random.Generator, height: int, width: int, *, photo_dir=None,
                        max_coc: float | None = None, whole_body: bool | None = None) -> tuple[Scene, np.ndarray]:
    """A random portrait: background, optional middle layer, a person in focus in front.

    rng: the only source of randomness. height, width: pixels (at least 32 each).
    max_coc: largest |c| in pixels (default uniform in [6, 24] scaled by min(H, W)/384).
    whole_body: draw legs and a smaller figure (default: 30 % of scenes).
    Returns the scene (layers back to front, focus on the person) and the person's alpha.
    """
    sources = _photo_sources(photo_dir)
    scale = min(height, width) / 384.0
    background = _background(rng, height, width, sources, None)
    layers = [background]
    back_near = float(background.disparity.max())
    person_d = float(rng.uniform(max(back_near + 0.25, 0.6), 0.95))
    if rng.uniform() < 0.4:  # a middle layer (furniture, plants) between background and person
        middle_d = float(rng.uniform(back_near + 0.05, person_d - 0.1))
        layers.append(_foreground(rng, height, width, sources, middle_d, scale))
    whole = bool(rng.uniform() < 0.3) if whole_body is None else whole_body
    alpha, head = _silhouette(rng, height, width, whole)
    rgb = _person_texture(rng, alpha, head, sources)
    layers.append(Layer(rgb, alpha, np.full((height, width), person_d, np.float32)))

    target = float(max_coc if max_coc is not None else rng.uniform(6.0, 24.0) * scale)
    spread = max(person_d - float(background.disparity.min()), 0.05)
    if rng.uniform() < 0.2:
        aperture = Aperture(int(rng.integers(5, 10)), float(rng.uniform(0, 360)), 0.3)
    else:
        aperture = Aperture()
    return Scene(layers, person_d, target / spread, aperture), alpha


def person_silhouette(rng: np.random.Generator, height: int, width: int, *, whole_body: bool = False) -> np.ndarray:
    """Anti-aliased alpha (float32 H×W in [0, 1]) of a head-torso-arms figure with hair strands."""
    return _silhouette(rng, height, width, whole_body)[0]


def _silhouette(rng, height: int, width: int, whole_body: bool) -> tuple[np.ndarray, tuple[float, float, float]]:
    """The alpha and the head (centre x, centre y, radius) in output pixels."""
    hi_h, hi_w = height * _SUPERSAMPLE, width * _SUPERSAMPLE
    mask = np.zeros((hi_h, hi_w), np.uint8)
    size = hi_h * (rng.uniform(0.45, 0.7) if whole_body else rng.uniform(0.8, 1.15))
    cx = rng.uniform(0.3, 0.7) * hi_w
    head_r = size * (0.075 if whole_body else 0.14)
    head_cy = hi_h - size + head_r * 1.2 if whole_body else hi_h - size * 0.72
    head_cy = max(head_cy, head_r * 1.3)
    tilt = rng.uniform(-12, 12)
    cv2.ellipse(mask, (int(cx), int(head_cy)), (int(head_r * 0.82), int(head_r)), tilt, 0, 360, 255, -1, cv2.LINE_AA)
    neck_w = head_r * 0.45
    neck_bottom = head_cy + head_r * 1.55
    _fill(mask, [(cx - neck_w, head_cy), (cx + neck_w, head_cy), (cx + neck_w, neck_bottom),
                 (cx - neck_w, neck_bottom)])

    shoulder_y = neck_bottom - head_r * 0.1
    shoulder_half = head_r * rng.uniform(1.7, 2.4)
    torso_bottom = hi_h + 10 if not whole_body else shoulder_y + size * 0.38
    waist_half = shoulder_half * rng.uniform(0.75, 1.05)
    shoulder_top = shoulder_y - head_r * 0.15
    torso = [(cx - shoulder_half * 0.55, shoulder_top), (cx + shoulder_half * 0.55, shoulder_top),
             (cx + shoulder_half, shoulder_y + head_r * 0.5), (cx + waist_half, torso_bottom),
             (cx - waist_half, torso_bottom), (cx - shoulder_half, shoulder_y + head_r * 0.5)]
    _fill(mask, torso)
    arm_width = max(2, int(head_r * rng.uniform(0.5, 0.75)))
    for side in (-1, 1):
        start = np.array([cx + side * shoulder_half * 0.9, shoulder_y + head_r * 0.5])
        length = size * (0.35 if whole_body else 0.5)
        bend = rng.uniform(-0.6, 0.9)
        elbow = start + length * 0.5 * np.array([side * math.sin(0.25 + 0.3 * bend), math.cos(0.25 + 0.3 * bend)])
        hand = elbow + length * 0.5 * np.array([side * math.sin(-0.6 * bend), math.cos(0.6 * bend)])
        cv2.polylines(mask, [np.round([start, elbow, hand]).astype(np.int32)], False, 255, arm_width, cv2.LINE_AA)
    if whole_body:
        leg_width = max(2, int(head_r * 0.8))
        for side in (-1, 1):
            hip = np.array([cx + side * waist_half * 0.5, torso_bottom - head_r * 0.3])
            foot = np.array([cx + side * waist_half * rng.uniform(0.4, 1.2), min(hi_h - 2.0, hip[1] + size * 0.45)])
            cv2.line(mask, tuple(np.round(hip).astype(int)), tuple(np.round(foot).astype(int)), 255, leg_width,
                     cv2.LINE_AA)

    # Hair: a cap over the top of the head, then strands leaving it.
    cap_axes = (int(head_r * rng.uniform(0.9, 1.15)), int(head_r * rng.uniform(1.0, 1.25)))
    cv2.ellipse(mask, (int(cx), int(head_cy - head_r * 0.12)), cap_axes, tilt, 180, 360, 255, -1, cv2.LINE_AA)
    for _ in range(int(rng.integers(12, 40))):
        angle = rng.uniform(math.pi * 0.9, math.pi * 2.1)
        root = np.array([cx + math.cos(angle) * head_r * 0.85, head_cy + math.sin(angle) * head_r * 0.95])
        heading = angle + rng.uniform(-0.5, 0.5)
        length = head_r * rng.uniform(0.3, 1.4)
        points = [root]
        for _ in range(3):
            heading += rng.uniform(-0.5, 0.5) + 0.15  # strands droop
            points.append(points[-1] + length / 3 * np.array([math.cos(heading), math.sin(heading)]))
        thickness = max(1, int(round(rng.uniform(0.5, 2.0) * _SUPERSAMPLE)))
        cv2.polylines(mask, [_bezier(points)], False, 255, thickness, cv2.LINE_AA)
    alpha = cv2.resize(mask.astype(np.float32) / 255.0, (width, height), interpolation=cv2.INTER_AREA)
    head = (cx / _SUPERSAMPLE, head_cy / _SUPERSAMPLE, head_r / _SUPERSAMPLE)
    return np.clip(alpha, 0, 1).astype(np.float32), head


def _fill(mask: np.ndarray, points) -> None:
    cv2.fillPoly(mask, [np.round(np.array(points)).astype(np.int32)], 255, lineType=cv2.LINE_AA)


def _bezier(controls) -> np.ndarray:
    p0, p1, p2, p3 = controls
    t = np.linspace(0, 1, 40)[:, None]
    curve = (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t ** 2 * p2 + t ** 3 * p3
    return np.round(curve).astype(np.int32)


def _person_texture(rng: np.random.Generator, alpha: np.ndarray, head, sources) -> np.ndarray:
    """Linear radiance of the person: hair on and around the top of the head, a skin face and
    neck, clothes texture below the shoulders."""
    height, width = alpha.shape
    cx, cy, radius = head
    clothes = _texture(rng, height, width, sources) * rng.uniform(0.4, 1.1, size=3).astype(np.float32)
    skin = srgb_to_linear(_SKIN_TONES[int(rng.integers(len(_SKIN_TONES)))] * rng.uniform(0.9, 1.05))
    hair = srgb_to_linear(_HAIR_TONES[int(rng.integers(len(_HAIR_TONES)))] * rng.uniform(0.85, 1.1))
    detail = 0.85 + 0.3 * _texture(rng, height, width, sources)[..., :1]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    distance = np.hypot((xs - cx) / 0.82, ys - cy) / max(radius, 1e-3)
    in_face = np.clip((1.0 - distance) * radius / 1.5, 0, 1) * np.clip((ys - (cy - 0.35 * radius)) / 1.5, 0, 1)
    neck = np.clip((cy + 1.55 * radius - ys) / 1.5, 0, 1) * np.clip((0.45 * radius - np.abs(xs - cx)) / 1.5, 0, 1)
    skin_share = np.maximum(in_face, neck * (ys > cy))[..., None]
    hair_share = np.clip((cy + 0.6 * radius - ys) / 2.0, 0, 1)[..., None] * (1 - skin_share)
    clothes_share = 1 - skin_share - hair_share
    rgb = (skin_share * skin + hair_share * hair) * detail + clothes_share * clothes
    return np.ascontiguousarray(np.clip(rgb, 0, None), dtype=np.float32)
