"""Random layered scenes with known geometry, for exact thin-lens ground truth.

A scene is a stack of fronto-parallel layers, back to front: a fully opaque background whose
disparity is constant or a smooth ramp (farther at the top), and 1 to 3 foreground layers at
constant, nearer disparities whose soft alpha holds blobs and thin structures (hair-like strands,
twigs). HDR point lights (linear radiance 4 to 40) on the background make bokeh discs.
Follows the synthetic data set of DeepLens (Wang et al. 2018, section 4.2), with hidden content
behind every occluder known so the blurred image can be computed exactly.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from lensblur.aperture import Aperture
from lensblur.color import srgb_to_linear
from lensblur.errors import InputError

# Photos and textures bundled with scikit-image (no download needed).
_COLOUR_SOURCES = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field",
                   "immunohistochemistry", "retina")
_GREY_SOURCES = ("brick", "grass", "gravel", "camera", "moon", "coins")
_PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"}
FOCUS_CHOICES = ("any", "nearest")
_SUPERSAMPLE = 4  # shapes are drawn at 4× and area-downsampled for anti-aliased alpha


@dataclass
class Layer:
    """One fronto-parallel layer.

    rgb: linear radiance float32 H×W×3 (not premultiplied; point lights exceed 1).
    alpha: coverage float32 H×W in [0, 1].
    disparity: float32 H×W in [0, 1], 1 = nearest.
    """

    rgb: np.ndarray
    alpha: np.ndarray
    disparity: np.ndarray


@dataclass
class Scene:
    """Layers back to front plus the lens that images them.

    focus_disparity: d_f in [0, 1]. blur: K in pixels per unit disparity. aperture: bokeh shape.
    seed: the seed the scene was made from (informational, may be None).
    """

    layers: list[Layer]
    focus_disparity: float
    blur: float
    aperture: Aperture = field(default_factory=Aperture)
    seed: list[int] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.layers[0].alpha.shape

    def coc(self, layer: Layer) -> np.ndarray:
        """Signed circle-of-confusion radius in pixels of a layer, c = K·(D − d_f)."""
        return (np.float32(self.blur) * (layer.disparity - np.float32(self.focus_disparity))).astype(np.float32)

    def max_coc(self) -> float:
        """The largest |c| in pixels over all layer pixels with alpha > 0."""
        radius = 0.0
        for layer in self.layers:
            covered = layer.alpha > 0
            if covered.any():
                radius = max(radius, float(np.abs(self.coc(layer)[covered]).max()))
        return radius


def make_scene(rng: np.random.Generator, height: int, width: int, *, photo_dir: str | Path | None = None,
               max_coc: float | None = None, foreground_layers: int | None = None,
               point_lights: int | None = None, focus: str = "any") -> Scene:
    """A random layered scene of ``height``×``width`` pixels.

    rng: the only source of randomness (same generator state → same scene).
    photo_dir: optional folder of photos used as textures instead of scikit-image's bundled ones.
    max_coc: the largest |c| in pixels; default uniform in [8, 24] scaled by min(H, W)/384.
    foreground_layers: 1 to 3 (default random). point_lights: number of HDR spots (default 6–30).
    focus: ``"any"`` (a foreground layer, the background or in between, at random) or
    ``"nearest"`` (always the nearest foreground layer, as the EBB! pairs are focused; the same
    random draws are made, so the scene is otherwise identical to the ``"any"`` one).
    """
    if focus not in FOCUS_CHOICES:
        raise InputError(f"focus must be one of {', '.join(FOCUS_CHOICES)}, got {focus!r}")
    sources = _photo_sources(photo_dir)
    n_front = int(foreground_layers if foreground_layers is not None else rng.integers(1, 4))
    scale = min(height, width) / 384.0

    background = _background(rng, height, width, sources, point_lights)
    back_near = float(background.disparity.max())
    front_d = np.sort(rng.uniform(back_near + 0.1, 1.0, size=n_front)) if back_near < 0.85 else \
        np.linspace(back_near + 0.02, 1.0, n_front)
    layers = [background]
    for d in front_d:
        layers.append(_foreground(rng, height, width, sources, float(d), scale))

    # Focus on a foreground layer (portrait-like), on the background, or in between.
    focus_choice, choice = focus, rng.uniform()
    if choice < 0.5:
        focus = float(rng.choice(front_d))
    elif choice < 0.75:
        focus = float(np.median(background.disparity))
    else:
        focus = float(rng.uniform(background.disparity.min(), front_d.max()))
    if focus_choice == "nearest":
        focus = float(front_d.max())
    target = float(max_coc if max_coc is not None else rng.uniform(8.0, 24.0) * scale)
    spread = max(abs(float(background.disparity.min()) - focus), abs(float(front_d.max()) - focus), 0.05)
    blur = target / spread

    if rng.uniform() < 0.35:
        aperture = Aperture(int(rng.integers(5, 10)), float(rng.uniform(0, 360)), float(rng.uniform(0, 0.5)))
    else:
        aperture = Aperture()
    return Scene(layers, focus, blur, aperture)


def _background(rng, height, width, sources, point_lights) -> Layer:
    rgb = _texture(rng, height, width, sources)
    if rng.uniform() < 0.5:
        disparity = np.full((height, width), rng.uniform(0.0, 0.35), np.float32)
    else:
        top = rng.uniform(0.0, 0.25)
        bottom = top + rng.uniform(0.1, 0.35)
        disparity = np.repeat(np.linspace(top, bottom, height, dtype=np.float32)[:, None], width, axis=1)
    n_lights = int(point_lights if point_lights is not None else rng.integers(6, 31))
    _add_point_lights(rng, rgb, n_lights)
    return Layer(rgb, np.ones((height, width), np.float32), disparity)


def _add_point_lights(rng, rgb: np.ndarray, count: int) -> None:
    """Paint small (1–3 px) HDR spots of linear radiance 4–40 into ``rgb`` in place."""
    height, width = rgb.shape[:2]
    for _ in range(count):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        size = rng.uniform(1.0, 3.0)
        tint = rng.uniform(0.6, 1.0, size=3)
        tint /= tint.max()
        radiance = rng.uniform(4.0, 40.0) * tint
        reach = int(math.ceil(size)) + 1
        x0, x1 = max(int(cx) - reach, 0), min(int(cx) + reach + 1, width)
        y0, y1 = max(int(cy) - reach, 0), min(int(cy) + reach + 1, height)
        if x0 >= x1 or y0 >= y1:
            continue
        # Coverage of a disc of diameter `size` per pixel, by 4×4 supersampling.
        sub = (np.arange(4) + 0.5) / 4
        ys = (np.arange(y0, y1)[:, None] + sub[None, :]).reshape(-1)
        xs = (np.arange(x0, x1)[:, None] + sub[None, :]).reshape(-1)
        inside = (xs[None, :] - cx) ** 2 + (ys[:, None] - cy) ** 2 <= (size / 2) ** 2
        cover = inside.reshape(y1 - y0, 4, x1 - x0, 4).mean(axis=(1, 3)).astype(np.float32)
        patch = rgb[y0:y1, x0:x1]
        patch[:] = patch * (1 - cover[..., None]) + cover[..., None] * radiance.astype(np.float32)


def _foreground(rng, height, width, sources, disparity: float, scale: float) -> Layer:
    hi_h, hi_w = height * _SUPERSAMPLE, width * _SUPERSAMPLE
    mask = np.zeros((hi_h, hi_w), np.uint8)
    n_blobs = int(rng.integers(1, 4))
    for _ in range(n_blobs):
        _draw_blob(rng, mask, scale)
    n_strands = int(rng.integers(3, 15))
    for _ in range(n_strands):
        _draw_strand(rng, mask, scale)
    alpha = cv2.resize(mask.astype(np.float32) / 255.0, (width, height), interpolation=cv2.INTER_AREA)
    if rng.uniform() < 0.3:  # sometimes a soft (feathered) edge, as hair or motion would give
        alpha = cv2.GaussianBlur(alpha, (0, 0), rng.uniform(0.5, 1.5))
    rgb = _texture(rng, height, width, sources)
    if rng.uniform() < 0.5:
        rgb *= rng.uniform(0.3, 1.2, size=3).astype(np.float32)
    return Layer(rgb, np.clip(alpha, 0, 1).astype(np.float32), np.full((height, width), disparity, np.float32))


def _draw_blob(rng, mask: np.ndarray, scale: float) -> None:
    """A filled smooth random closed shape (a star-convex polygon with low-frequency radius)."""
    hi_h, hi_w = mask.shape
    cx, cy = rng.uniform(0.1, 0.9) * hi_w, rng.uniform(0.2, 1.0) * hi_h
    base = rng.uniform(0.08, 0.3) * min(hi_h, hi_w)
    angles = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    radius = np.full_like(angles, base)
    for k in range(1, 5):
        radius += base * rng.uniform(0, 0.25 / k) * np.cos(k * angles + rng.uniform(0, 2 * np.pi))
    points = np.stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)], axis=1)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 255, lineType=cv2.LINE_AA)


def _draw_strand(rng, mask: np.ndarray, scale: float) -> None:
    """A thin curved line (cubic Bézier), 0.5–3 px wide at output resolution."""
    hi_h, hi_w = mask.shape
    start = np.array([rng.uniform(0, hi_w), rng.uniform(0, hi_h)])
    length = rng.uniform(0.15, 0.6) * min(hi_h, hi_w)
    heading = rng.uniform(0, 2 * np.pi)
    controls = [start]
    for _ in range(3):
        heading += rng.uniform(-0.9, 0.9)
        controls.append(controls[-1] + length / 3 * np.array([np.cos(heading), np.sin(heading)]))
    p0, p1, p2, p3 = controls
    t = np.linspace(0, 1, 120)[:, None]
    curve = (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t ** 2 * p2 + t ** 3 * p3
    thickness = max(1, int(round(rng.uniform(0.5, 3.0) * scale * _SUPERSAMPLE)))
    cv2.polylines(mask, [np.round(curve).astype(np.int32)], False, 255, thickness, lineType=cv2.LINE_AA)


def _texture(rng, height: int, width: int, sources: list) -> np.ndarray:
    """A linear float32 H×W×3 texture: a random crop of a photo, or procedural noise."""
    if rng.uniform() < 0.15 or not sources:
        return _noise_texture(rng, height, width)
    photo = _load_source(sources[int(rng.integers(len(sources)))])
    zoom = rng.uniform(1.0, 1.6) * max(height / photo.shape[0], width / photo.shape[1])
    big = cv2.resize(photo, (max(width, int(math.ceil(photo.shape[1] * zoom))),
                             max(height, int(math.ceil(photo.shape[0] * zoom)))),
                     interpolation=cv2.INTER_AREA if zoom < 1 else cv2.INTER_CUBIC)
    y = int(rng.integers(0, big.shape[0] - height + 1))
    x = int(rng.integers(0, big.shape[1] - width + 1))
    crop = np.clip(big[y:y + height, x:x + width], 0, 1)
    if rng.uniform() < 0.5:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(srgb_to_linear(crop), dtype=np.float32)


def _noise_texture(rng, height: int, width: int) -> np.ndarray:
    """Smooth coloured multi-octave noise, linear float32 in [0, 1]."""
    out = np.zeros((height, width, 3), np.float32)
    for octave in range(1, 6):
        cells = 2 ** octave
        small = rng.uniform(0, 1, size=(cells + 1, int(cells * width / height) + 1, 3)).astype(np.float32)
        out += cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC) / octave
    out -= out.min()
    out /= max(float(out.max()), 1e-6)
    return srgb_to_linear(out)


def _photo_sources(photo_dir) -> list:
    if photo_dir is None:
        return [("skimage", name) for name in _COLOUR_SOURCES + _GREY_SOURCES]
    paths = sorted(p for p in Path(photo_dir).iterdir() if p.suffix.lower() in _PHOTO_SUFFIXES)
    return [("file", str(p)) for p in paths]


@functools.lru_cache(maxsize=32)
def _load_source(source: tuple) -> np.ndarray:
    """An sRGB-encoded float32 H×W×3 photo in [0, 1]."""
    kind, name = source
    if kind == "skimage":
        import skimage.data

        pixels = getattr(skimage.data, name)()
    else:
        pixels = cv2.imread(name, cv2.IMREAD_COLOR)
        if pixels is None:
            raise ValueError(f"cannot read texture photo {name}")
        pixels = pixels[..., ::-1]
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    scale = 65535.0 if pixels.dtype == np.uint16 else 255.0
    return np.ascontiguousarray(pixels[..., :3], dtype=np.float32) / np.float32(scale)
