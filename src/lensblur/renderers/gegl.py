"""GIMP's lens blur (``gegl:lens-blur``) as a renderer, through the ``gegl`` command.

The linear image is written as a 16-bit sRGB PNG, the blur radius per pixel as a 16-bit grey
mask |c|/R (R the largest |c|; GEGL reads the mask as perceptual grey, so the stored value is
the radius fraction), and ``gegl -o out.png -- load path=in.png lens-blur radius=R
aux=[ load path=mask.png ]`` runs; the 16-bit result is read back and decoded to linear.
Highlights above 1 are clipped on the way in (GEGL's own highlight-factor stays at its GIMP
default of 0). Aperture shape, focus range and matte are ignored: GEGL has a disc only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import cv2
import numpy as np

from lensblur.color import linear_to_srgb, srgb_to_linear
from lensblur.errors import LensblurError
from lensblur.lens import Lens, signed_coc
from lensblur.renderers import register

GEGL_TIMEOUT_S = 600


def gegl_executable() -> str:
    """Path of the ``gegl`` command; LensblurError when it is not installed."""
    path = shutil.which("gegl")
    if path is None:
        raise LensblurError("the gegl renderer needs the gegl command (Debian/Ubuntu: apt-get install gegl)")
    return path


@register("gegl")
def render_gegl(image: np.ndarray, disparity: np.ndarray, lens: Lens, matte=None) -> np.ndarray:
    """Lens blur by GEGL with a per-pixel radius mask; linear float32 H×W×3 in and out."""
    radius = np.abs(signed_coc(disparity, lens.blur, lens.focus_disparity, lens.focus_range))
    largest = float(radius.max()) if radius.size else 0.0
    if largest <= 0.0:
        return np.array(image, dtype=np.float32, copy=True)
    mask = np.round(radius / largest * 65535.0).astype(np.uint16)
    encoded = np.round(linear_to_srgb(image) * 65535.0).astype(np.uint16)
    result = run_gegl_lens_blur(encoded, mask, largest)
    return srgb_to_linear(result.astype(np.float32) / np.float32(65535.0))


def run_gegl_lens_blur(encoded: np.ndarray, mask: np.ndarray | None, radius: float) -> np.ndarray:
    """Run gegl:lens-blur on a uint16 sRGB H×W×3 image with an optional uint16 radius mask.

    radius: the largest blur radius in pixels. Returns uint16 sRGB H×W×3.
    """
    executable = gegl_executable()
    with tempfile.TemporaryDirectory(prefix="lensblur-gegl-") as folder:
        source = os.path.join(folder, "in.png")
        target = os.path.join(folder, "out.png")
        cv2.imwrite(source, np.ascontiguousarray(encoded[..., ::-1]))
        command = [executable, "-o", target, "--", "load", f"path={source}", "lens-blur", f"radius={radius:.4f}"]
        if mask is not None:
            mask_path = os.path.join(folder, "mask.png")
            cv2.imwrite(mask_path, mask)
            command += ["aux=[", "load", f"path={mask_path}", "]"]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=GEGL_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise LensblurError(f"gegl took longer than {GEGL_TIMEOUT_S} s") from None
        result = cv2.imread(target, cv2.IMREAD_UNCHANGED)
        if done.returncode != 0 or result is None:
            detail = (done.stderr or "").strip().splitlines()
            raise LensblurError(f"gegl lens-blur failed: {detail[-1] if detail else 'no output'}")
    if result.ndim == 2:
        result = np.repeat(result[..., None], 3, axis=2)
    result = result[..., 2::-1]
    if result.dtype == np.uint8:
        result = result.astype(np.uint16) * 257
    return np.ascontiguousarray(result)
