"""Camera parameters read from EXIF, used to turn f-number and focal length into a blur scale."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

_EXIF_IFD = 0x8769
_F_NUMBER = 0x829D
_FOCAL_LENGTH = 0x920A
_FOCAL_LENGTH_35MM = 0xA405
_FULL_FRAME_WIDTH_MM = 36.0


@dataclass(frozen=True)
class CameraExif:
    """What EXIF says about the lens; each field None when absent.

    focal_length_mm: real focal length; f_number: the f-number the photo was taken at;
    sensor_width_mm: derived from the 35 mm-equivalent focal length (36 mm × f / f35).
    """

    focal_length_mm: float | None = None
    f_number: float | None = None
    sensor_width_mm: float | None = None


def camera_from_exif(exif: bytes | None) -> CameraExif:
    """Parse focal length, f-number and sensor width from a raw EXIF block (never raises)."""
    if not exif:
        return CameraExif()
    try:
        parsed = Image.Exif()
        parsed.load(exif)
        tags = dict(parsed.get_ifd(_EXIF_IFD))
    except Exception:  # noqa: BLE001 - a damaged EXIF block only means no camera data
        return CameraExif()
    focal = _positive(tags.get(_FOCAL_LENGTH))
    f_number = _positive(tags.get(_F_NUMBER))
    focal_35 = _positive(tags.get(_FOCAL_LENGTH_35MM))
    sensor = _FULL_FRAME_WIDTH_MM * focal / focal_35 if focal and focal_35 else None
    return CameraExif(focal, f_number, sensor)


def _positive(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if number > 0 else None
