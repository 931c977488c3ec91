"""Colour-mapped depth pictures: telling them from grey maps, naming their colormap, reading them back.

Depth networks often save their output as a colour picture (matplotlib's ``Spectral_r`` in Depth
Anything's demos, ``magma``/``inferno``/``viridis``/``turbo``/``jet`` elsewhere). Such a picture is
a depth map only through its colormap: :func:`invert_colormap` maps each pixel to the position
(0–1) of the nearest of the colormap's 256 colours.

Where the tables come from (no matplotlib needed):

- viridis, inferno, magma, plasma, cividis, turbo: OpenCV's ``applyColorMap`` tables
  (``cv2.COLORMAP_*``), which hold the same 256 colours as matplotlib's maps of those names;
- Spectral: the 11 colours of ColorBrewer's "Spectral" diverging scheme (Cynthia Brewer,
  colorbrewer2.org), linearly interpolated to 256 entries — how matplotlib builds its
  ``Spectral`` from the same 11 colours;
- jet: matplotlib's piecewise-linear definition of jet (anchors listed in ``_JET``), sampled at
  256 points. OpenCV's COLORMAP_JET differs from it by up to 9 of 256 steps.

A name ending in ``_r`` is the reversed map, as in matplotlib. See docs/io.md.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from lensblur.errors import InputError

_OPENCV = {"viridis": cv2.COLORMAP_VIRIDIS, "inferno": cv2.COLORMAP_INFERNO, "magma": cv2.COLORMAP_MAGMA,
           "plasma": cv2.COLORMAP_PLASMA, "cividis": cv2.COLORMAP_CIVIDIS, "turbo": cv2.COLORMAP_TURBO}
_SPECTRAL = ("9e0142", "d53e4f", "f46d43", "fdae61", "fee08b", "ffffbf", "e6f598", "abdda4", "66c2a5",
             "3288bd", "5e4fa2")  # ColorBrewer Spectral, 11 classes, from 0 to 1
_JET = {  # (position, value) anchors of each channel
    "red": ((0.0, 0.0), (0.35, 0.0), (0.66, 1.0), (0.89, 1.0), (1.0, 0.5)),
    "green": ((0.0, 0.0), (0.125, 0.0), (0.375, 1.0), (0.64, 1.0), (0.91, 0.0), (1.0, 0.0)),
    "blue": ((0.0, 0.5), (0.11, 1.0), (0.34, 1.0), (0.65, 0.0), (1.0, 0.0)),
}
BASE_NAMES = ("Spectral", "viridis", "inferno", "magma", "plasma", "cividis", "turbo", "jet")
NAMES = tuple(name + suffix for name in BASE_NAMES for suffix in ("", "_r"))
# How depth networks usually save disparity (near = high end): the name to suggest for a match.
_USUAL = {"Spectral": "Spectral_r"}
COLOUR_SPREAD = 12      # 8-bit levels: a pixel whose channels differ by more is coloured
COLOUR_FRACTION = 0.05  # a picture with more such pixels is a colour picture, not a grey map
MATCH_DISTANCE = 15.0   # 8-bit RGB distance: the median pixel of a picture of a colormap lies nearer


@lru_cache(maxsize=None)
def colormap_table(name: str) -> np.ndarray:
    """The 256×3 uint8 RGB table of colormap ``name`` (one of :data:`NAMES`), entry i for value i/255."""
    base, reverse = (name[:-2], True) if name.endswith("_r") else (name, False)
    if base in _OPENCV:
        ramp = np.arange(256, dtype=np.uint8)[None]
        table = cv2.applyColorMap(ramp, _OPENCV[base])[0, :, ::-1]
    elif base == "Spectral":
        anchors = np.array([[int(code[i:i + 2], 16) for i in (0, 2, 4)] for code in _SPECTRAL], np.float64)
        where = np.linspace(0, 1, len(anchors))
        x = np.linspace(0, 1, 256)
        table = np.stack([np.interp(x, where, anchors[:, c]) for c in range(3)], axis=1)
    elif base == "jet":
        x = np.linspace(0, 1, 256)
        table = np.stack([np.interp(x, *zip(*_JET[c])) for c in ("red", "green", "blue")], axis=1) * 255
    else:
        raise InputError(f"unknown colormap {name!r}: choose from {', '.join(NAMES)}")
    table = np.clip(np.round(table), 0, 255).astype(np.uint8)
    table = table[::-1] if reverse else table
    table.flags.writeable = False
    return table


def check_name(name: str) -> str:
    """``name`` when it is a known colormap (case-insensitive, answered in its canonical case)."""
    for known in NAMES:
        if known.lower() == str(name).strip().lower():
            return known
    raise InputError(f"unknown colormap {name!r}: choose from {', '.join(NAMES)}")


def to_rgb8(values: np.ndarray) -> np.ndarray:
    """H×W×3 uint8 RGB from an H×W×C integer or float RGB(A) picture (alpha dropped; 16-bit scaled)."""
    values = np.asarray(values)[..., :3]
    if values.dtype == np.uint8:
        return values
    if np.issubdtype(values.dtype, np.integer):
        top = 65535.0 if values.max(initial=0) > 255 else 255.0
    else:
        top = 1.0 if np.nanmax(values, initial=0) <= 1.0 else float(np.nanmax(values))
    return np.clip(np.round(np.nan_to_num(values.astype(np.float64) / top) * 255), 0, 255).astype(np.uint8)


def is_colour(rgb8: np.ndarray) -> bool:
    """Whether an H×W×3 uint8 picture is coloured (its channels differ on more than 5 % of pixels)
    rather than grey stored as RGB."""
    spread = rgb8.max(axis=2).astype(np.int16) - rgb8.min(axis=2)
    return float(np.mean(spread > COLOUR_SPREAD)) > COLOUR_FRACTION


@lru_cache(maxsize=None)
def _tree(name: str):
    """A search tree over the table's distinct colours and the position (0–255) each stands for:
    a colour the table repeats (jet's saturated blue, entries 28–32) stands for the mean of them."""
    from scipy.spatial import cKDTree  # only for colour pictures: keeps scipy out of start-up

    colours, inverse = np.unique(colormap_table(name), axis=0, return_inverse=True)
    positions = np.bincount(inverse.ravel(), weights=np.arange(256)) / np.bincount(inverse.ravel())
    return cKDTree(colours.astype(np.float32)), positions


def _nearest(rgb8: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(position 0–255, RGB distance) of each pixel's nearest table colour, over unique colours."""
    packed = (rgb8[..., 0].astype(np.uint32) << 16) | (rgb8[..., 1].astype(np.uint32) << 8) | rgb8[..., 2]
    unique, inverse = np.unique(packed.ravel(), return_inverse=True)
    colours = np.stack([(unique >> 16) & 255, (unique >> 8) & 255, unique & 255], axis=1).astype(np.float32)
    tree, positions = _tree(name)
    distance, index = tree.query(colours, k=1)
    shape = rgb8.shape[:2]
    return positions[index][inverse].reshape(shape), distance[inverse].reshape(shape)


def guess_colormap(rgb8: np.ndarray) -> str | None:
    """The colormap an H×W×3 uint8 picture was most likely drawn with (the name depth networks use
    for near = high end, e.g. Spectral_r), or None when no known colormap fits it."""
    step = max(1, int(np.sqrt(rgb8.shape[0] * rgb8.shape[1] / 40_000)))
    sample = np.ascontiguousarray(rgb8[::step, ::step])
    fits = {name: float(np.median(_nearest(sample, name)[1])) for name in BASE_NAMES}
    best = min(fits, key=fits.get)
    return _USUAL.get(best, best) if fits[best] <= MATCH_DISTANCE else None


def invert_colormap(rgb8: np.ndarray, name: str, label: str = "depth map") -> np.ndarray:
    """The value (float32 H×W in [0, 1]) each pixel of a picture drawn with colormap ``name``
    encodes: the position of its nearest table colour, i/255 (the 3×3 median where the colour is
    not exactly on the table). InputError when the picture does not
    look drawn with that map (median distance to it above 15 8-bit levels)."""
    name = check_name(name)
    index, distance = _nearest(np.asarray(rgb8, np.uint8), name)
    typical = float(np.median(distance))
    if typical > MATCH_DISTANCE:
        guess = guess_colormap(rgb8)
        hint = f" (it looks like {guess})" if guess and guess.removesuffix("_r") != name.removesuffix("_r") else ""
        raise InputError(f"{label}: its colours are not those of the {name} colormap (typical distance "
                         f"{typical:.0f} of 255){hint}")
    # JPEG leaves isolated wrong colours at sharp colour edges (ringing, chroma subsampling) that
    # land anywhere on the map and would stretch the map's range: a pixel whose colour is not
    # exactly a table colour takes the 3×3 median instead (exact pixels, e.g. of a PNG, are kept).
    values = (index / 255.0).astype(np.float32)
    inexact = distance > 0.5
    return np.where(inexact, cv2.medianBlur(values, 3), values) if inexact.any() else values
