"""Tone (transfer) curves of ICC profiles: encoded values ↔ linear light.

Only the per-channel tone curves are used (``rTRC``/``gTRC``/``bTRC``, or ``kTRC`` for grey
profiles); primaries are left alone, so pixels stay in the profile's own RGB space (a Display P3
photo is rendered in linear Display P3 and written back with its own profile). A profile without
such tags (or one that cannot be parsed) is treated as sRGB.

Per-pixel work goes through lookup tables built once per curve from the exact float64 formulas:
decoding integers indexes a table of every level, encoding interpolates a 16384-step float32 table
over √linear in one numba pass (the square root spreads the steep dark end of the curve over many
steps; the error is at most about half a 16-bit level, 1/500 of an 8-bit one). Integer output up to
8 bits skips the interpolation: the levels that table rounds to are found once per curve as
thresholds over linear (:func:`_level_steps`), and each value's level is looked up among them.
Pillow's LittleCMS binding (``PIL.ImageCms``) was not used here: it transforms 8-bit and 16-bit
images only, while the pixels here are linear floats.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass

import cv2
import numpy as np

from lensblur.color import linear_to_srgb, srgb_to_linear


@dataclass(frozen=True)
class ToneCurve:
    """One channel's ICC tone curve, mapping encoded values in [0, 1] to linear light in [0, 1].

    kind "srgb": the IEC 61966-2-1 curve; "para": the ICC parametric function
    Y = (aX + b)^g + e for X >= d, else cX + f, with ``params`` = (g, a, b, c, d, e, f) (every
    ``para`` type 0-4 is expressed in this form; a plain gamma is ``curv`` with one entry);
    "table": a sampled curve, ``table`` holding the linear values at evenly spaced encoded inputs.
    """

    kind: str
    params: tuple[float, ...] = ()
    table: tuple[float, ...] = ()

    def decode(self, encoded: np.ndarray) -> np.ndarray:
        """Encoded values in [0, 1] (clipped) to linear light in [0, 1], float32."""
        x = np.clip(np.asarray(encoded, dtype=np.float64), 0.0, 1.0)
        if self.kind == "srgb":
            return srgb_to_linear(x.astype(np.float32))
        if self.kind == "table":
            table = np.asarray(self.table)
            y = np.interp(x, np.linspace(0.0, 1.0, table.size), table)
        else:
            g, a, b, c, d, e, f = self.params
            y = np.where(x >= d, np.maximum(a * x + b, 0.0) ** g + e, c * x + f)
        return np.clip(y, 0.0, 1.0).astype(np.float32)

    def encode(self, linear: np.ndarray) -> np.ndarray:
        """Linear light (clipped to [0, 1]) to encoded values in [0, 1], float32: the inverse of decode,
        through a float32 table over √linear (:func:`_encode_table`)."""
        linear = np.asarray(linear, dtype=np.float32)
        return _lookup(linear[..., None], (self,))[..., 0]

    def encode_exact(self, linear: np.ndarray) -> np.ndarray:
        """:meth:`encode` evaluated in float64 on every value (slow; builds the tables)."""
        y = np.clip(np.asarray(linear, dtype=np.float64), 0.0, 1.0)
        if self.kind == "srgb":
            return linear_to_srgb(y.astype(np.float32))
        if self.kind == "table":
            table = _increasing(np.asarray(self.table))
            x = np.interp(y, table, np.linspace(0.0, 1.0, table.size))
        else:
            g, a, b, c, d, e, f = self.params
            y_d = max(a * d + b, 0.0) ** g + e
            high = (np.maximum(y - e, 0.0) ** (1.0 / g) - b) / a if a and g else np.full_like(y, d)
            low = (y - f) / c if c else np.full_like(y, d)
            x = np.where(y >= y_d, high, low)
        return np.clip(x, 0.0, 1.0).astype(np.float32)


SRGB = ToneCurve("srgb")

ENCODE_STEPS = 16384


@functools.lru_cache(maxsize=64)
def _encode_table(curve: ToneCurve) -> np.ndarray:
    """Encoded values at linear = (i / ENCODE_STEPS)², i = 0..ENCODE_STEPS, plus one repeat at the
    end (so index ENCODE_STEPS + 1 exists for the interpolation of linear = 1), float32."""
    roots = np.linspace(0.0, 1.0, ENCODE_STEPS + 1)
    table = curve.encode_exact(roots * roots)
    return np.append(table, table[-1]).astype(np.float32)


@functools.lru_cache(maxsize=64)
def _level_steps(curve: ToneCurve, levels: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The integer levels 0..levels that the interpolated table of ``curve`` rounds to, as
    thresholds over linear (lensblur.io.tone_lookup.level_steps): thresholds, bucket start levels
    and the level of linear <= 0. Read-only arrays (cached)."""
    from lensblur.io.tone_lookup import BUCKETS, level_steps

    thresholds = np.empty(levels + 2, np.float32)
    start = np.empty(BUCKETS + 1, np.int32)
    low = level_steps(_encode_table(curve), levels, thresholds, start)
    thresholds.flags.writeable = False
    start.flags.writeable = False
    return thresholds, start, int(low)


def _lookup(linear: np.ndarray, curves, levels: int = 0) -> np.ndarray:
    """``linear`` (…×C, C = len(curves)) through each channel's table in one numba pass
    (lensblur.io.tone_lookup): float32 encoded values, or integers 0..levels (uint8 for 255,
    uint16 for 65535) when ``levels`` is given. NaN counts as 0. Up to 255 levels on three curves
    the integers come from :func:`_level_steps` (``quantize_steps``): the same numbers, faster."""
    from lensblur.io.tone_lookup import encode_channels, quantize_channels, quantize_steps  # only encoders pay

    linear = np.ascontiguousarray(linear, dtype=np.float32)
    flat = linear.reshape(-1, len(curves))
    if 0 < levels <= 255 and len(curves) == 3:
        steps = [_level_steps(curve, levels) for curve in curves]
        out = np.empty(flat.shape, dtype=np.uint8)
        quantize_steps(flat, np.stack([s[0] for s in steps]), np.stack([s[1] for s in steps]),
                       np.array([s[2] for s in steps], np.int32), out, 0, flat.shape[0])
        return out.reshape(linear.shape)
    tables = np.stack([_encode_table(curve) for curve in curves])
    if levels:
        out = np.empty(flat.shape, dtype=np.uint8 if levels <= 255 else np.uint16)
        quantize_channels(flat, tables, levels, out, 0, flat.shape[0])
    else:
        out = np.empty(flat.shape, dtype=np.float32)
        encode_channels(flat, tables, out, 0, flat.shape[0])
    return out.reshape(linear.shape)


def gamma_curve(gamma: float) -> ToneCurve:
    """The pure power curve linear = encoded^gamma (gamma > 0, e.g. 2.2 or 563/256 for Adobe RGB)."""
    return ToneCurve("para", (float(gamma), 1.0, 0.0, 0.0, 0.0, 0.0, 0.0))


def tone_curves(icc_profile: bytes | None) -> tuple[ToneCurve, ToneCurve, ToneCurve]:
    """The red, green and blue tone curves of an ICC profile (three sRGB curves when there is none).

    A grey profile's ``kTRC`` is returned three times. Unparseable profiles and profiles without
    tone-curve tags (e.g. LUT-only ICC v4 profiles) fall back to sRGB.
    """
    if not icc_profile:
        return (SRGB, SRGB, SRGB)
    try:
        tags = _tag_table(icc_profile)
        if all(sig in tags for sig in (b"rTRC", b"gTRC", b"bTRC")):
            return tuple(_parse_curve(icc_profile, *tags[sig]) for sig in (b"rTRC", b"gTRC", b"bTRC"))
        if b"kTRC" in tags:
            grey = _parse_curve(icc_profile, *tags[b"kTRC"])
            return (grey, grey, grey)
    except (struct.error, ValueError, IndexError, ZeroDivisionError):
        pass
    return (SRGB, SRGB, SRGB)


def colour_space(icc_profile: bytes | None) -> str | None:
    """The profile's data colour space signature, e.g. "RGB", "GRAY", "CMYK" (None if unreadable)."""
    if not icc_profile or len(icc_profile) < 20:
        return None
    return icc_profile[16:20].decode("latin-1").strip()


def decode(encoded: np.ndarray, icc_profile: bytes | None) -> np.ndarray:
    """H×W×3 encoded values in [0, 1] to linear light in the profile's own primaries, float32."""
    curves = tone_curves(icc_profile)
    out = np.empty(encoded.shape, dtype=np.float32)
    for channel, curve in enumerate(curves):
        out[..., channel] = curve.decode(encoded[..., channel])
    return out


def decode_integers(values: np.ndarray, icc_profile: bytes | None) -> np.ndarray:
    """uint8 or uint16 H×W×C encoded values (C ≤ 3 curves used in order) to linear float32, via
    one lookup table per channel (much faster than evaluating the curves per pixel)."""
    levels = np.iinfo(values.dtype).max
    ramp = np.arange(levels + 1, dtype=np.float32) / np.float32(levels)
    curves = tone_curves(icc_profile)
    channels = values.shape[-1]
    if values.dtype == np.uint8 and channels in (1, 3) and values.ndim == 3:
        # OpenCV's LUT: 8-bit in, one float32 table per channel, all channels in one threaded pass
        table = np.stack([curves[c].decode(ramp) for c in range(channels)], axis=-1)[None]
        out = cv2.LUT(np.ascontiguousarray(values), table)
        return out.reshape(values.shape)
    out = np.empty(values.shape, dtype=np.float32)
    for channel in range(values.shape[-1]):
        out[..., channel] = curves[channel].decode(ramp)[values[..., channel]]
    return out


def encode(linear: np.ndarray, icc_profile: bytes | None) -> np.ndarray:
    """H×W×3 linear light (clipped to [0, 1]) to encoded values in [0, 1] through the profile's curves."""
    return _lookup(linear, tone_curves(icc_profile))


def encode_levels(linear: np.ndarray, icc_profile: bytes | None, levels: int = 255) -> np.ndarray:
    """:func:`encode` rounded to integer levels in the same pass: uint8 for ``levels`` = 255,
    uint16 for 65535. NaN becomes 0, +inf the top level."""
    return _lookup(linear, tone_curves(icc_profile), levels)


def _tag_table(profile: bytes) -> dict[bytes, tuple[int, int]]:
    if len(profile) < 132 or profile[36:40] != b"acsp":
        raise ValueError("not an ICC profile")
    (count,) = struct.unpack_from(">I", profile, 128)
    tags = {}
    for index in range(min(count, 1000)):
        sig, offset, size = struct.unpack_from(">4sII", profile, 132 + 12 * index)
        tags[sig] = (offset, size)
    return tags


# Number of s15Fixed16 parameters of each ICC parametric curve type.
_PARA_COUNTS = {0: 1, 1: 3, 2: 4, 3: 5, 4: 7}


def _parse_curve(profile: bytes, offset: int, size: int) -> ToneCurve:
    kind = profile[offset:offset + 4]
    if kind == b"curv":
        (count,) = struct.unpack_from(">I", profile, offset + 8)
        if count == 0:
            return gamma_curve(1.0)
        values = struct.unpack_from(f">{count}H", profile, offset + 12)
        if count == 1:
            return gamma_curve(values[0] / 256.0)
        return ToneCurve("table", table=tuple(v / 65535.0 for v in values))
    if kind == b"para":
        (function,) = struct.unpack_from(">H", profile, offset + 8)
        if function not in _PARA_COUNTS:
            raise ValueError(f"unknown parametric curve type {function}")
        raw = struct.unpack_from(f">{_PARA_COUNTS[function]}i", profile, offset + 12)
        p = [v / 65536.0 for v in raw]
        if function == 0:
            return gamma_curve(p[0])
        g, a, b = p[:3]
        if function == 1:
            return ToneCurve("para", (g, a, b, 0.0, -b / a, 0.0, 0.0))
        if function == 2:
            return ToneCurve("para", (g, a, b, 0.0, -b / a, p[3], p[3]))
        if function == 3:
            return ToneCurve("para", (g, a, b, p[3], p[4], 0.0, 0.0))
        return ToneCurve("para", tuple(p))
    raise ValueError(f"unsupported curve type {kind!r}")


def _increasing(table: np.ndarray) -> np.ndarray:
    # np.interp needs increasing sample points; flat or noisy tables get a negligible ramp.
    table = np.maximum.accumulate(table)
    return table + np.arange(table.size) * 1e-12
