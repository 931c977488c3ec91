"""Subject matte from a hard mask: trimap around the mask edge, then alpha matting in that band.

Matting (pymatting's closed-form or KNN solver) runs on the bounding box of the band, downscaled
so its long side is at most ``max_side`` pixels; the alpha is brought back to full size with the
fast guided filter and composited so that the matte is fractional only inside the band and
exactly 0/1 elsewhere.
"""

from __future__ import annotations

import contextlib
import io
import threading

import cv2
import numpy as np

from lensblur.depth.refine import guided_upsample


def trimap_from_mask(mask: np.ndarray, band: int) -> np.ndarray:
    """Trimap of a mask: 1 = sure foreground, 0 = sure background, 0.5 = unknown.

    mask: H×W, foreground where > 0.5. band: half-width in pixels of the unknown band around the
    mask edge (≥ 1). Returns float32 H×W with values in {0, 0.5, 1}.
    """
    hard = (np.asarray(mask) > 0.5).astype(np.uint8)
    size = 2 * max(1, int(band)) + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    sure_fg = cv2.erode(hard, kernel, borderType=cv2.BORDER_REPLICATE)
    maybe_fg = cv2.dilate(hard, kernel, borderType=cv2.BORDER_REPLICATE)
    trimap = np.full(hard.shape, 0.5, dtype=np.float32)
    trimap[maybe_fg == 0] = 0.0
    trimap[sure_fg == 1] = 1.0
    return trimap


_QUIET_STDOUT = threading.Lock()  # held while pymatting runs with stdout redirected


def solve_alpha(image: np.ndarray, trimap: np.ndarray, method: str = "cf") -> np.ndarray:
    """Alpha matte for ``trimap`` on ``image`` (H×W×3 in [0, 1]) with pymatting.

    method: "cf" (closed-form, Levin et al. 2008) or "knn" (Chen et al. 2013). Returns float32
    H×W in [0, 1]; equal to the trimap outside its unknown region.
    """
    from pymatting import estimate_alpha_cf, estimate_alpha_knn

    image64 = np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0)
    trimap64 = np.asarray(trimap, dtype=np.float64)
    if not np.any(trimap64 == 0.5) or not np.any(trimap64 == 1.0) or not np.any(trimap64 == 0.0):
        return np.clip(trimap64, 0, 1).astype(np.float32)
    solver = estimate_alpha_knn if method == "knn" else estimate_alpha_cf
    # pymatting prints a "PERFORMANCE WARNING" on stdout when its preconditioner needs a diagonal
    # shift (it then retries with one): that is no concern of the user's, and stdout may hold an
    # image. redirect_stdout swaps the process-wide sys.stdout, so concurrent solves (web app
    # threads) take turns: otherwise one could restore another's StringIO as the process's stdout.
    with _QUIET_STDOUT, contextlib.redirect_stdout(io.StringIO()):
        alpha = solver(image64, trimap64, laplacian_kwargs={}, cg_kwargs={"maxiter": 300})
    return np.clip(alpha, 0.0, 1.0).astype(np.float32)


def matte_band(image: np.ndarray, mask: np.ndarray, band: int | None = None, max_side: int = 320,
               method: str = "cf", guide_gray: np.ndarray | None = None) -> np.ndarray:
    """Soft subject matte along the edge of ``mask``, hard (0/1) away from it.

    image: H×W×3 in [0, 1] (linear light suits the colour-line model: edges mix linearly). mask:
    H×W, foreground where > 0.5 (uint8 masks must hold 0/1). band: half-width of the soft band in full-resolution pixels (default
    1 % of the long side, at least 3). max_side: long side in pixels of the crop the matting
    solver sees. guide_gray: optional precomputed H×W gray of ``image``. Returns float32 H×W in [0, 1].
    """
    hard = np.asarray(mask) > 0.5 if np.asarray(mask).dtype != np.uint8 else np.asarray(mask).view(bool)
    height, width = hard.shape
    if band is None:
        band = max(3, int(round(0.01 * max(height, width))))
    if not hard.any() or hard.all():
        return hard.astype(np.float32)
    # the band at full size, computed cheaply at a reduced scale
    rows, cols = np.flatnonzero(hard.any(axis=1)), np.flatnonzero(hard.any(axis=0))
    y0, y1 = max(0, rows[0] - 2 * band), min(height, rows[-1] + 2 * band + 1)
    x0, x1 = max(0, cols[0] - 2 * band), min(width, cols[-1] + 2 * band + 1)
    crop_h, crop_w = y1 - y0, x1 - x0
    scale = min(1.0, max_side / max(crop_h, crop_w))
    small_w, small_h = max(8, int(round(crop_w * scale))), max(8, int(round(crop_h * scale)))
    crop_image = np.ascontiguousarray(image[y0:y1, x0:x1, :3], dtype=np.float32)
    small_image = cv2.resize(crop_image, (small_w, small_h), interpolation=cv2.INTER_AREA)
    small_mask = cv2.resize(hard[y0:y1, x0:x1].astype(np.float32), (small_w, small_h), interpolation=cv2.INTER_AREA)
    small_band = max(1, int(round(band * scale)))
    trimap = trimap_from_mask(small_mask, small_band)
    alpha_small = solve_alpha(small_image, trimap, method)
    # guided upsampling keeps the alpha's edges on the full-resolution image's edges
    if guide_gray is None:
        crop_gray = crop_image @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    else:
        crop_gray = np.asarray(guide_gray[y0:y1, x0:x1], dtype=np.float32)
    small_gray = small_image @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    alpha_crop = np.clip(guided_upsample(crop_gray, small_gray, alpha_small, radius=2, eps=1e-4), 0.0, 1.0)
    unknown = cv2.resize((trimap == 0.5).astype(np.uint8), (crop_w, crop_h), interpolation=cv2.INTER_NEAREST).astype(bool)
    out = hard.astype(np.float32)  # 0/1 away from the band
    region = out[y0:y1, x0:x1]
    region[unknown] = alpha_crop[unknown]
    return out
