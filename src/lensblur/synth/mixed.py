"""The training-data engine: mixed scenes toward the recipes of DeepLens (section 4.2) and DBSI.

A mixed scene (``make_mixed_scene``) is a stack of layers, back to front, every one drawn from the
scene's own random generator (same seed → byte-identical files):

1. **Background**: a random crop of one of scikit-image's bundled pictures (every 2-D or RGB one
   it ships, ``BACKGROUNDS``) or a procedural texture (multi-octave noise, a linear or radial
   gradient, stripes, a checkerboard), flipped at random and colour-jittered (gain, per-channel
   tint, saturation, gamma). Its disparity is constant, a vertical ramp or a tilted plane
   (linear in x and y, ``tilted_plane``). Clipped lights use the lamp model of
   :mod:`lensblur.synth.night` (points of 1–2 px at linear radiance 30–300, lamp cores of
   several pixels at 6–60, sodium/warm/LED tints) in 60 % of scenes.
2. **A surface** (55 %): a floor (alpha 1 below an anti-aliased horizon, disparity linear in the
   row, nearer towards the bottom) or a side wall (disparity linear in the column), i.e. tilted
   planes with continuous depth.
3. **One to three matted objects**, each a fronto-parallel layer nearer than all behind it, whose
   alpha is drawn at 4× and area-averaged (fractional coverage at every edge): a person
   (:mod:`lensblur.synth.people`), a fur/hair tuft (hundreds of strands 0.25–1 px wide: alpha
   strictly between 0 and 1 along them), a plant (stems and leaves), thin structures (a fence,
   wires, twigs) or a blob with strands (the older ``make_scene`` object); a third of the
   objects are the scikit-image horse silhouette with fur along its outline.

The camera focuses on the nearest object in 55 % of scenes (portrait-like), on another object,
the surface or the background otherwise. The largest blur radius is 6–24 px × min(H, W)/384.
The ground truth is :func:`lensblur.synth.thinlens.render_ground_truth` of this scene (exact
accumulation buffer, HDR: the lamps keep their energy in their bokeh discs); the input is the
all-in-focus camera image, clipped to 8 bits. ``subject`` is the nearest object's alpha (the
foreground segmentation target of DeepLens' depth module, Eq. 1).
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np

from lensblur.aperture import Aperture
from lensblur.color import srgb_to_linear
from lensblur.synth import night
from lensblur.synth.people import _person_texture, _silhouette
from lensblur.synth.scene import _SUPERSAMPLE, Layer, Scene, _draw_blob, _draw_strand, _noise_texture

# Every picture scikit-image 0.26 ships inside its wheel (the others need a download).
BACKGROUNDS = ("astronaut", "brick", "camera", "cat", "cell", "checkerboard", "chelsea", "clock", "coffee", "coins",
               "colorwheel", "grass", "gravel", "hubble_deep_field", "immunohistochemistry", "logo",
               "microaneurysms", "moon", "page", "retina", "rocket", "shepp_logan_phantom", "text")
OBJECT_KINDS = ("person", "fur", "plant", "thin", "blob", "horse")


def make_mixed_scene(rng: np.random.Generator, height: int, width: int, *,
                     max_coc: float | None = None) -> tuple[Scene, np.ndarray, dict]:
    """A random mixed scene of ``height``×``width`` pixels (at least 32 each; see module doc).

    rng: the only source of randomness. max_coc: the largest |c| in pixels (default uniform in
    [6, 24] × min(H, W)/384). Returns (scene, subject alpha float32 H×W in [0, 1], a plain dict
    describing the scene: background, surface, object kinds, lamps, focus target).
    """
    scale = min(height, width) / 384.0
    rgb, background_name = background_texture(rng, height, width)
    back_far = float(rng.uniform(0.0, 0.25))
    back_near = back_far + float(rng.uniform(0.0, 0.2))
    shape = str(rng.choice(["flat", "ramp", "tilted"]))
    if shape == "flat":
        disparity = np.full((height, width), back_far, np.float32)
    elif shape == "ramp":
        disparity = tilted_plane(height, width, back_far, back_near, angle=90.0)
    else:
        disparity = tilted_plane(height, width, back_far, back_near, angle=float(rng.uniform(0, 360)))
    lamps = []
    if rng.uniform() < 0.6:
        for _ in range(int(rng.integers(2, 21))):
            lamp = night._random_lamp(rng, width, height, scale)
            night._paint_disc(rgb, lamp.x, lamp.y, lamp.radius, np.array(lamp.radiance, np.float32))
            lamps.append(lamp)
    layers = [Layer(rgb, np.ones((height, width), np.float32), disparity)]
    nearest = float(disparity.max())

    surface = "none"
    if rng.uniform() < 0.55:
        surface = "floor" if rng.uniform() < 0.65 else "wall"
        near = float(rng.uniform(nearest + 0.1, min(nearest + 0.45, 0.75)))
        layers.append(_surface(rng, height, width, surface, nearest + 0.02, near))
        nearest = near

    count = int(rng.integers(1, 4))
    depths = np.sort(rng.uniform(nearest + 0.05, 1.0, size=count)) if nearest < 0.9 else \
        np.linspace(nearest + 0.02, 1.0, count)
    kinds = []
    for d in depths:
        kind = str(rng.choice(OBJECT_KINDS, p=[0.25, 0.15, 0.15, 0.15, 0.1, 0.2]))
        alpha, colour = _object(rng, height, width, kind, scale)
        layers.append(Layer(colour, alpha, np.full((height, width), d, np.float32)))
        kinds.append(kind)

    choice = rng.uniform()
    if choice < 0.55:
        target, focus = "subject", float(depths[-1])
    elif choice < 0.7:
        target, focus = "object", float(rng.choice(depths))
    elif choice < 0.8 and surface != "none":
        target, focus = "surface", float(np.median(layers[1].disparity[layers[1].alpha > 0.5]))
    elif choice < 0.9:
        target, focus = "background", float(np.median(disparity))
    else:
        target, focus = "between", float(rng.uniform(back_far, depths[-1]))
    radius = float(max_coc if max_coc is not None else rng.uniform(6.0, 24.0) * scale)
    spread = max(abs(back_far - focus), abs(float(depths[-1]) - focus), 0.05)
    if rng.uniform() < 0.3:
        aperture = Aperture(int(rng.integers(5, 10)), float(rng.uniform(0, 360)), float(rng.uniform(0, 0.5)))
    else:
        aperture = Aperture()
    scene = Scene(layers, focus, radius / spread, aperture)
    info = {"background": background_name, "background_shape": shape, "surface": surface, "objects": kinds,
            "lamps": len(lamps), "focus_on": target}
    return scene, layers[-1].alpha.copy(), info


def tilted_plane(height: int, width: int, far: float, near: float, angle: float) -> np.ndarray:
    """Disparity of a plane tilted away from the camera: float32 H×W, exactly linear in x and y,
    from ``far`` at the image edge the direction ``angle`` (degrees; 90 = towards the bottom)
    points away from, to ``near`` at the opposite edge."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    gx, gy = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    t = gx * x + gy * y
    t = (t - t.min()) / max(t.max() - t.min(), 1e-9)
    return (far + (near - far) * t).astype(np.float32)


def background_texture(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, str]:
    """A jittered linear-radiance float32 H×W×3 texture in [0, 1] and its source's name."""
    if rng.uniform() < 0.7:
        name = str(rng.choice(BACKGROUNDS))
        photo = _skimage_picture(name)
        zoom = rng.uniform(1.0, 2.0) * max(height / photo.shape[0], width / photo.shape[1])
        size = (max(width, math.ceil(photo.shape[1] * zoom)), max(height, math.ceil(photo.shape[0] * zoom)))
        big = cv2.resize(photo, size, interpolation=cv2.INTER_AREA if zoom < 1 else cv2.INTER_CUBIC)
        y = int(rng.integers(0, big.shape[0] - height + 1))
        x = int(rng.integers(0, big.shape[1] - width + 1))
        srgb = np.clip(big[y:y + height, x:x + width], 0, 1)
    else:
        name = str(rng.choice(["noise", "gradient", "radial", "stripes", "checker"]))
        srgb = _procedural(rng, height, width, name)
    if rng.uniform() < 0.5:
        srgb = srgb[:, ::-1]
    return colour_jitter(rng, srgb_to_linear(np.ascontiguousarray(srgb, np.float32))), name


def colour_jitter(rng: np.random.Generator, linear: np.ndarray) -> np.ndarray:
    """Random gain (0.5–1.3), per-channel tint (0.75–1), saturation (0.4–1.4) and gamma (0.8–1.25)
    of a linear image, clipped to [0, 1]; float32."""
    grey = linear.mean(axis=2, keepdims=True)
    out = grey + (linear - grey) * np.float32(rng.uniform(0.4, 1.4))
    out = np.clip(out, 0, 1) ** np.float32(rng.uniform(0.8, 1.25))
    out = out * rng.uniform(0.75, 1.0, size=3).astype(np.float32) * np.float32(rng.uniform(0.5, 1.3))
    return np.clip(out, 0, 1).astype(np.float32)


def _procedural(rng, height: int, width: int, kind: str) -> np.ndarray:
    """An sRGB float32 H×W×3 procedural texture in [0, 1]."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    a, b = rng.uniform(0, 1, 3).astype(np.float32), rng.uniform(0, 1, 3).astype(np.float32)
    if kind == "noise":
        from lensblur.color import linear_to_srgb

        return linear_to_srgb(_noise_texture(rng, height, width))
    if kind == "gradient":
        angle = rng.uniform(0, 2 * math.pi)
        t = math.cos(angle) * x + math.sin(angle) * y
    elif kind == "radial":
        t = np.hypot(x - rng.uniform(0, width), y - rng.uniform(0, height))
    elif kind == "stripes":
        angle = rng.uniform(0, math.pi)
        t = 0.5 + 0.5 * np.sin((math.cos(angle) * x + math.sin(angle) * y) * 2 * math.pi / rng.uniform(6, 40))
    else:
        cell = rng.uniform(8, 48)
        t = ((np.floor(x / cell) + np.floor(y / cell)) % 2).astype(np.float32)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    return (a + (b - a) * t[..., None]).astype(np.float32)


@functools.lru_cache(maxsize=len(BACKGROUNDS))
def _skimage_picture(name: str) -> np.ndarray:
    """scikit-image's picture ``name`` as sRGB float32 H×W×3 in [0, 1]."""
    import skimage.data

    pixels = np.asarray(getattr(skimage.data, name)())
    if pixels.dtype == np.bool_:
        pixels = pixels.astype(np.float32)
    elif np.issubdtype(pixels.dtype, np.integer):
        pixels = pixels.astype(np.float32) / np.float32(np.iinfo(pixels.dtype).max)
    pixels = np.clip(pixels.astype(np.float32), 0, 1)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    return np.ascontiguousarray(pixels[..., :3])


def _surface(rng, height: int, width: int, kind: str, far: float, near: float) -> Layer:
    """A floor (alpha 1 below a horizon, disparity linear in the row) or a side wall (alpha 1 on
    one side of a vertical edge, disparity linear in the column), anti-aliased edge."""
    rgb, _ = background_texture(rng, height, width)
    hi = np.zeros((height * _SUPERSAMPLE, width * _SUPERSAMPLE), np.float32)
    if kind == "floor":
        edge = int(rng.uniform(0.35, 0.75) * height * _SUPERSAMPLE)
        hi[edge:] = 1
        disparity = np.zeros((height, width), np.float32)
        rows = np.arange(height, dtype=np.float32)
        start = edge / _SUPERSAMPLE
        disparity[:] = (far + (near - far) * np.clip((rows - start) / max(height - 1 - start, 1), 0, 1))[:, None]
    else:
        edge = int(rng.uniform(0.2, 0.45) * width * _SUPERSAMPLE)
        left = rng.uniform() < 0.5
        hi[:, :edge] = 1
        cols = np.arange(width, dtype=np.float32)
        stop = edge / _SUPERSAMPLE
        disparity = np.repeat((near + (far - near) * np.clip(cols / max(stop, 1), 0, 1))[None, :], height, axis=0)
        if not left:
            hi, disparity = hi[:, ::-1], disparity[:, ::-1]
    alpha = cv2.resize(np.ascontiguousarray(hi), (width, height), interpolation=cv2.INTER_AREA)
    return Layer(rgb, np.clip(alpha, 0, 1).astype(np.float32), np.ascontiguousarray(disparity, np.float32))


def _object(rng, height: int, width: int, kind: str, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(alpha float32 H×W, linear rgb float32 H×W×3) of one matted object of ``kind``."""
    if kind == "person":
        alpha, head = _silhouette(rng, height, width, bool(rng.uniform() < 0.3))
        return alpha, _person_texture(rng, alpha, head, [("skimage", n) for n in ("coffee", "brick", "grass")])
    hi_h, hi_w = height * _SUPERSAMPLE, width * _SUPERSAMPLE
    mask = np.zeros((hi_h, hi_w), np.uint8)
    if kind == "fur":
        _draw_blob(rng, mask, scale)
        fur_edge(rng, mask, int(rng.integers(150, 400)), rng.uniform(4, 16) * scale)
    elif kind == "plant":
        _draw_plant(rng, mask, scale)
    elif kind == "thin":
        _draw_thin(rng, mask, scale)
    elif kind == "horse":
        _draw_horse(rng, mask)
        fur_edge(rng, mask, int(rng.integers(100, 300)), rng.uniform(2, 8) * scale)
    else:
        for _ in range(int(rng.integers(1, 3))):
            _draw_blob(rng, mask, scale)
        for _ in range(int(rng.integers(2, 10))):
            _draw_strand(rng, mask, scale)
    alpha = cv2.resize(mask.astype(np.float32) / 255.0, (width, height), interpolation=cv2.INTER_AREA)
    rgb, _ = background_texture(rng, height, width)
    if kind == "plant":
        rgb = rgb * np.array([0.35, 0.8, 0.3], np.float32)
    elif kind in ("fur", "horse"):
        rgb = 0.3 * rgb + 0.7 * srgb_to_linear(rng.uniform(0.1, 0.9, 3).astype(np.float32))
    return np.clip(alpha, 0, 1).astype(np.float32), np.ascontiguousarray(rgb, np.float32)


def fur_edge(rng: np.random.Generator, mask: np.ndarray, strands: int, length: float) -> None:
    """Draw ``strands`` hairs (1 px at the 4× mask: 0.25 px at output size, so fractional alpha)
    leaving the outline of what ``mask`` (uint8, in place) holds, each ``length`` output px long
    on average, curving a little."""
    contours, _ = cv2.findContours((mask > 127).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return
    outline = np.concatenate([c[:, 0, :] for c in contours]).astype(np.float64)
    centre = outline.mean(axis=0)
    for _ in range(strands):
        root = outline[int(rng.integers(len(outline)))]
        heading = math.atan2(root[1] - centre[1], root[0] - centre[0]) + rng.uniform(-0.7, 0.7)
        size = rng.uniform(0.4, 1.6) * length * _SUPERSAMPLE
        points = [root]
        for _ in range(3):
            heading += rng.uniform(-0.35, 0.35)
            points.append(points[-1] + size / 3 * np.array([math.cos(heading), math.sin(heading)]))
        thickness = 1 if rng.uniform() < 0.7 else 2
        t = np.linspace(0, 1, 24)[:, None]
        p0, p1, p2, p3 = points
        curve = (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t ** 2 * p2 + t ** 3 * p3
        cv2.polylines(mask, [np.round(curve).astype(np.int32)], False, 255, thickness, cv2.LINE_AA)


def _draw_plant(rng, mask: np.ndarray, scale: float) -> None:
    """Stems rising from the bottom, each with elliptic leaves along it."""
    hi_h, hi_w = mask.shape
    for _ in range(int(rng.integers(1, 4))):
        x = rng.uniform(0.1, 0.9) * hi_w
        top = rng.uniform(0.1, 0.6) * hi_h
        bend = rng.uniform(-0.2, 0.2) * hi_w
        t = np.linspace(0, 1, 40)[:, None]
        stem = np.hstack([x + bend * t ** 2, hi_h - (hi_h - top) * t])
        width = max(1, int(rng.uniform(0.8, 3.0) * scale * _SUPERSAMPLE))
        cv2.polylines(mask, [np.round(stem).astype(np.int32)], False, 255, width, cv2.LINE_AA)
        for _ in range(int(rng.integers(3, 12))):
            at = stem[int(rng.integers(5, len(stem)))]
            length = rng.uniform(8, 30) * scale * _SUPERSAMPLE
            angle = rng.uniform(0, 360)
            centre = at + 0.5 * length * np.array([math.cos(math.radians(angle)), math.sin(math.radians(angle))])
            cv2.ellipse(mask, (int(centre[0]), int(centre[1])), (int(length / 2), max(1, int(length / 5))), angle,
                        0, 360, 255, -1, cv2.LINE_AA)


def _draw_thin(rng, mask: np.ndarray, scale: float) -> None:
    """A fence (evenly spaced thin posts and a rail), wires, or twigs."""
    hi_h, hi_w = mask.shape
    if rng.uniform() < 0.5:
        spacing = rng.uniform(12, 40) * scale * _SUPERSAMPLE
        width = max(1, int(rng.uniform(0.5, 3.0) * scale * _SUPERSAMPLE))
        top = int(rng.uniform(0.2, 0.6) * hi_h)
        for x in np.arange(rng.uniform(0, spacing), hi_w, spacing):
            cv2.line(mask, (int(x), top), (int(x), hi_h), 255, width, cv2.LINE_AA)
        cv2.line(mask, (0, top + 3 * width), (hi_w, top + 3 * width), 255, width, cv2.LINE_AA)
    else:
        for _ in range(int(rng.integers(3, 12))):
            _draw_strand(rng, mask, scale)


@functools.lru_cache(maxsize=1)
def _horse() -> np.ndarray:
    import skimage.data

    return np.ascontiguousarray(~np.asarray(skimage.data.horse()), dtype=np.uint8) * 255


def _draw_horse(rng, mask: np.ndarray) -> None:
    """scikit-image's horse silhouette, scaled to 40–90 % of the height, flipped at random."""
    hi_h, hi_w = mask.shape
    horse = _horse()
    if rng.uniform() < 0.5:
        horse = horse[:, ::-1]
    size = rng.uniform(0.4, 0.9) * hi_h / horse.shape[0]
    h, w = max(1, int(horse.shape[0] * size)), max(1, int(horse.shape[1] * size))
    h, w = min(h, hi_h), min(w, hi_w)
    small = cv2.resize(horse, (w, h), interpolation=cv2.INTER_LINEAR)
    y = int(rng.integers(0, hi_h - h + 1))
    x = int(rng.integers(0, hi_w - w + 1))
    np.maximum(mask[y:y + h, x:x + w], small, out=mask[y:y + h, x:x + w])
