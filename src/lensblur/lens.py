"""Lens settings, camera → blur scale K, focus selection and the signed circle of confusion.

Conventions (docs/conventions.md): disparity D in [0, 1] with 1 = nearest; the signed
circle-of-confusion radius in pixels is c = K·(D − d_f), positive in front of the focal plane.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from lensblur.aperture import Aperture
from lensblur.errors import InputError
from lensblur.io.limits import LimitError

# The largest circle of confusion allowed: a tenth of the image diagonal (never less than 64 px).
# Render time and memory grow with the radius; beyond this the picture is a uniform wash anyway.
MAX_RADIUS_FRACTION = 0.1
MIN_RADIUS_LIMIT = 64.0


@dataclass(frozen=True)
class Highlights:
    """Radiance recovery of clipped highlights before blurring.

    threshold: encoded-luminance level in (0, 1] from which a pixel counts as clipped.
    strength: how far recovered radiance may exceed 1.0 (0 turns recovery off); a fully clipped
        light spot is boosted up to 1 + strength times its value (large clipped areas get a
        tenth of that); a night lamp gets its radiance estimated from its glare, scaled by
        strength / 6 (see lensblur.highlights).
    lamps: model night lamps (energy from their glare, glare and spikes removed; lensblur.lamps);
        False keeps the size rule alone for every clipped area.
    """

    threshold: float = 0.99
    strength: float = 6.0
    lamps: bool = True

    def __post_init__(self):
        if not 0.0 < self.threshold < 1.0 or not 0.0 <= self.strength <= 1000.0:
            raise InputError(f"highlight threshold must be in (0, 1) and strength >= 0, got "
                             f"{self.threshold} and {self.strength}")

    @property
    def enabled(self) -> bool:
        return self.strength > 0


@dataclass(frozen=True)
class Lens:
    """Everything a renderer needs besides the image and its disparity.

    blur: K, the circle-of-confusion radius in pixels for a disparity difference of 1
        (0 to a few hundred; a typical portrait uses 10 to 60 at 1500 px width).
    focus_disparity: d_f in [0, 1], the disparity that is perfectly sharp.
    focus_range: half-width in disparity of a band around d_f kept fully sharp (0 to 1).
    aperture: the bokeh shape.
    highlights: clipped-highlight recovery; None turns it off.
    grain: film-grain amount added to blurred regions: None for off, "auto" to match the input's
        noise, or a standard deviation in encoded (sRGB) units (0 to 0.1).
    rim: share of each bokeh disc's energy in a bright outer ring (0 to 1; 0 = uniform discs).
    cat_eye: mechanical vignetting (0 to 1): discs turn into cat's eyes towards the corners.
    edge_matte: where the disparity steps from a sharp near side to a much blurrier far side,
        matte the edge and render the near side as its own layer (lensblur.renderers.edge_matte;
        scatter renderer only; off by default: it
        takes two to three times the rest of the render on a phone photo).
    """

    blur: float = 20.0
    focus_disparity: float = 0.5
    focus_range: float = 0.0
    aperture: Aperture = field(default_factory=Aperture)
    highlights: Highlights | None = field(default_factory=Highlights)
    grain: str | float | None = None
    rim: float = 0.0
    cat_eye: float = 0.0
    edge_matte: bool = False

    def __post_init__(self):
        if not np.isfinite(self.blur) or self.blur < 0:
            raise InputError(f"blur must be a finite number >= 0, got {self.blur}")
        if not 0.0 <= self.focus_disparity <= 1.0:
            raise InputError(f"focus disparity must be in [0, 1], got {self.focus_disparity}")
        if not 0.0 <= self.focus_range <= 1.0:
            raise InputError(f"focus range must be in [0, 1], got {self.focus_range}")
        if not 0.0 <= self.rim <= 1.0 or not 0.0 <= self.cat_eye <= 1.0:
            raise InputError("rim and cat's-eye strengths must be in [0, 1]")

    def with_(self, **changes) -> "Lens":
        """A copy with some fields changed."""
        return replace(self, **changes)


def signed_coc(disparity: np.ndarray, blur: float, focus_disparity: float,
               focus_range: float = 0.0) -> np.ndarray:
    """Signed circle-of-confusion radius in pixels, c = K·(D − d_f), float32 H×W.

    Disparities within ``focus_range`` of ``focus_disparity`` get c = 0; outside the band the
    distance is measured from the band's edge, so blur grows continuously from it.
    """
    offset = np.asarray(disparity, dtype=np.float32) - np.float32(focus_disparity)
    if focus_range > 0:
        offset = np.sign(offset) * np.maximum(np.abs(offset) - np.float32(focus_range), np.float32(0))
    offset *= np.float32(blur)  # in place: a fresh float32 array, no second full-size copy
    return offset


def largest_radius(disparity: np.ndarray, lens: Lens) -> float:
    """The largest |c| in pixels that ``lens`` gives on ``disparity`` (H×W in [0, 1])."""
    low, high = float(np.min(disparity)), float(np.max(disparity))
    extent = max(high - lens.focus_disparity, lens.focus_disparity - low, 0.0)
    return float(lens.blur) * max(extent - lens.focus_range, 0.0)


def radius_limit(height: int, width: int) -> float:
    """The largest blur radius in pixels allowed on a height × width image:
    max(MAX_RADIUS_FRACTION × diagonal, MIN_RADIUS_LIMIT)."""
    return max(MAX_RADIUS_FRACTION * float(np.hypot(height, width)), MIN_RADIUS_LIMIT)


def check_blur_radius(disparity: np.ndarray, lens: Lens) -> None:
    """LimitError (one line) when the largest blur radius exceeds :func:`radius_limit`."""
    height, width = disparity.shape[:2]
    radius, limit = largest_radius(disparity, lens), radius_limit(height, width)
    if radius > limit:
        raise LimitError(f"the largest blur radius would be {radius:.0f} px (blur K = {lens.blur:g}), over the "
                         f"limit of {limit:.0f} px ({MAX_RADIUS_FRACTION:.0%} of the image diagonal): "
                         f"use a smaller --blur or a larger f-number")


def blur_from_camera(focal_length_mm: float, f_number: float, sensor_width_mm: float,
                     image_width_px: int, focus_distance_m: float, near_m: float,
                     far_m: float = float("inf")) -> float:
    """K in pixels from a camera: K = (W/w) · f²·S / (2N(S − f)) · (1/Zn − 1/Zf).

    focal_length_mm: f (1 to 2000); f_number: N (0.7 to 64); sensor_width_mm: w;
    image_width_px: W; focus_distance_m: S (must exceed f); near_m, far_m: the metric depths
    that disparity 1 and 0 stand for (far may be infinite).
    """
    if focal_length_mm <= 0 or f_number <= 0 or sensor_width_mm <= 0 or image_width_px <= 0:
        raise InputError("focal length, f-number, sensor width and image width must be positive")
    if not 0 < near_m < far_m:
        raise InputError(f"need 0 < near < far, got near={near_m} far={far_m}")
    f = focal_length_mm
    s = focus_distance_m * 1000.0
    if s <= f:
        raise InputError("the focus distance must be farther than the focal length")
    inv_range_per_mm = (1.0 / near_m - (0.0 if np.isinf(far_m) else 1.0 / far_m)) / 1000.0
    return float(image_width_px / sensor_width_mm * f * f * s / (2 * f_number * (s - f)) * inv_range_per_mm)


def depth_at_disparity(disparity: float, near_m: float, far_m: float = float("inf")) -> float:
    """Metric depth in metres of a disparity in [0, 1] for the range [near_m, far_m]."""
    inv_far = 0.0 if np.isinf(far_m) else 1.0 / far_m
    inv = disparity * (1.0 / near_m - inv_far) + inv_far
    return float("inf") if inv <= 0 else 1.0 / inv


def focus_disparity_at(disparity: np.ndarray, x: float, y: float, window: int | None = None) -> float:
    """The disparity to focus on at pixel (x, y), robust to edges and noise.

    Takes the median of the 3×3 neighbourhood at the point, then the median of the values in a
    larger window (default 2% of the image diagonal) that lie within 0.05 of it, so a click next
    to a depth edge picks the surface under the cursor, not a mix of both sides.
    """
    height, width = disparity.shape
    if not (0 <= x < width and 0 <= y < height):
        raise InputError(f"focus point ({x:g}, {y:g}) is outside the {width}×{height} image")
    xi, yi = int(x), int(y)
    centre = median_value(disparity[max(yi - 1, 0):yi + 2, max(xi - 1, 0):xi + 2])
    if window is None:
        window = max(3, int(0.02 * np.hypot(height, width)))
    patch = disparity[max(yi - window, 0):yi + window + 1, max(xi - window, 0):xi + window + 1]
    near_centre = patch[np.abs(patch - centre) <= 0.05]
    return median_value(near_centre) if near_centre.size else centre


def median_value(values: np.ndarray) -> float:
    """np.median of the finite ``values`` (any shape, flattened), the same number, without
    np.median's first call importing numpy.ma (about 20 ms of every command's start-up)."""
    flat = np.ravel(values)
    middle = flat.size // 2
    if flat.size % 2:
        return float(np.partition(flat, middle)[middle])
    low, high = np.partition(flat, (middle - 1, middle))[middle - 1:middle + 1]
    return float((low + high) / 2)  # as np.median: the mean of the two in the array's own dtype
