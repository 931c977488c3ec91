"""The classical portrait renderer of Xu et al., "Rendering Portraitures from Monocular Camera
and Beyond" (ECCV 2018), Sec. 3.3, Eq. 4–10 (docs/portrait.md has the details and choices).

1. The subject: the caller's matte, else MediaPipe's person segmentation, else (no model, or no
   person in the picture) the in-focus region of the disparity, |c| ≤ IN_FOCUS_RADIUS.
2. Its alpha: KNN matting (pymatting) on a trimap whose unknown band is ±MATTING_BAND pixels
   around the segmentation boundary (a soft matte from the caller is used as it is).
3. The background is blurred with the segmentation-guided disk kernel (Eq. 5–6): a normalised
   convolution over background pixels only, so the subject never bleeds into it.
   - selfie mode (Eq. 4): one disk for the whole background;
   - whole-body mode (Eq. 10): the disparity is split into K = 6 layers by graph cut
     (lensblur.systems.xu_portrait.depth_layers), each layer gets its own disk, and the layers are
     feathered together with a Gaussian.
4. The sharp subject is composited over the blurred background with its alpha.
5. Optionally (foreground=True, not in the paper) layers in front of the focus are blurred over
   what lies behind them.

Blur radii follow the project's lens: a layer's radius is |K·(mean disparity of the layer − d_f)|
(through lensblur.lens.signed_coc, so the focus range counts), and the disk takes the lens's
aperture shape. Work is in linear light, with clipped highlights recovered first as in scatter.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from scipy import ndimage

from lensblur.aperture import Aperture
from lensblur.color import linear_to_srgb
from lensblur.depth.refine import guided_filter
from lensblur.errors import InputError
from lensblur.grain import add_grain, estimate_noise
from lensblur.highlights import recover_highlights
from lensblur.lens import Lens, signed_coc
from lensblur.renderers import register
from lensblur.systems.xu_portrait.depth_layers import ENERGY, LAYERS, SMOOTHNESS, split_depth_layers
from lensblur.systems.xu_portrait.knn_matting import knn_matte
from lensblur.renderers.reference import aperture_kernel
from lensblur.renderers.subject import SURE_NOT, split_foreground_background

MODES = ("auto", "selfie", "body")
MATTING = ("auto", "knn", "none")
IN_FOCUS_RADIUS = 1.0      # |c| in pixels up to which the disparity fallback counts a pixel as subject
MIN_PERSON = 0.01          # share of the frame a segmented person must cover to count as found
PERSON_FOCUS = 0.5         # a person blurred more than this share of the rest's mean blur is not the subject
SELFIE_COVER = 0.35        # auto mode: a person covering this share of the frame is a selfie …
SELFIE_FACE = 0.2          # … as is one whose largest face is this tall, relative to the image height
REFINE_SIDE = 512          # long side in pixels at which the person mask is snapped to the photo's edges
MATTING_BAND = 10          # half-width in pixels of the trimap's unknown band (the paper's 10 px)
MATTING_SIDE = 640         # long side in pixels of the grid the KNN matting solver sees
DIRECT_RADIUS = 12.0       # larger disks are convolved on a grid reduced by powers of two
FEATHER_FRACTION = 0.002   # Gaussian σ feathering the layers (Eq. 10), as a share of the diagonal (≥ 1 px)
OCCLUDER_GAP = 0.5         # body mode: nearer than a layer by this share of its radius (≥ 1 px): an occluder
NEAR_MARGIN = 2            # foreground option: px a near layer's mask grows by
COVERED = 1e-3             # kernel share of background pixels below which a pixel has no estimate


@register("portrait")
def render_portrait(image: np.ndarray, disparity: np.ndarray, lens: Lens, matte: np.ndarray | None = None,
                    mode: str = "auto", matting: str = "auto", occlusion: bool = True,
                    foreground: bool = False, energy: str = ENERGY) -> np.ndarray:
    """Render with the portrait system of Xu et al. (see the module docstring).

    image: linear float32 H×W×3 in [0, 1]; disparity: float32 H×W in [0, 1] (1 = nearest);
    lens: blur K, focus disparity and range, aperture, highlights and grain are honoured (rim and
    cat's eye are not); matte: optional subject alpha H×W in [0, 1] kept sharp.
    mode: "selfie" (one disk for all background, Eq. 4), "body" (graph-cut depth layers, Eq. 10)
        or "auto": selfie when a person (given matte or segmentation) covers at least
        SELFIE_COVER of the frame or has a face at least SELFIE_FACE of the image height tall,
        else body; the disparity fallback always renders as body.
    matting: "auto" (KNN matting of a hard segmentation; a soft matte from the caller is used
        as is), "knn" (always KNN matting) or "none" (the segmentation is the alpha).
    occlusion: body mode leaves nearer depth layers out of each layer's kernel (default); False
        leaves out only the subject, as the paper's Eq. 10 does.
    foreground: body mode blurs layers in front of the focus over what lies behind them, the
        subject included (an extension; the paper keeps "no foreground blur", the default False).
    energy: body mode's depth-layer energy, "paper" (Eq. 8–9 as printed, default) or "project"
        (lensblur.systems.xu_portrait.depth_layers).
    Returns linear float32 H×W×3 (recovered highlights may exceed 1).
    """
    image, disparity, matte = _checked(image, disparity, matte)
    if mode not in MODES:
        raise InputError(f"unknown portrait mode {mode!r}: choose from {', '.join(MODES)}")
    if matting not in MATTING:
        raise InputError(f"unknown matting {matting!r}: choose from {', '.join(MATTING)}")
    coc = signed_coc(disparity, lens.blur, lens.focus_disparity, lens.focus_range)
    if not (np.abs(coc) >= 0.5).any():
        return image.copy()
    segmentation, alpha, source, face_height = subject_alpha(image, coc, matte, matting)
    if mode == "auto":
        mode = choose_mode(segmentation, source, face_height)
    radiance = recover_highlights(image, coc, lens.highlights)
    if alpha.min() >= 1.0:
        result = image.copy()
    else:
        # only pure background feeds the kernel (Eq. 6): no pixel holding any subject colour
        background_weight = ((alpha <= SURE_NOT) & ~segmentation).astype(np.float32)
        near_layers = []
        if mode == "selfie":
            background = blur_selfie(radiance, coc, background_weight, lens)
        else:
            background = blur_layers(radiance, disparity, coc, background_weight, segmentation, lens,
                                     occlusion=occlusion, foreground=foreground, energy=energy)
            if foreground:
                background, near_layers = background
        behind, hidden_alpha = image, alpha
        if near_layers:
            hidden_alpha, behind = _behind_near_layers(image, alpha, near_layers)
        result = composite(behind, hidden_alpha, background)
        if near_layers:
            result = spread_foreground(result, radiance, near_layers, lens.aperture)
    if lens.grain is not None:
        sigma = estimate_noise(image) if lens.grain == "auto" else float(lens.grain)
        result = add_grain(result, coc * (1 - alpha), sigma)
    return result


def _checked(image, disparity, matte):
    """Validated float32 copies/views of the inputs; InputError on bad shapes or values."""
    image = np.asarray(image)
    disparity = np.asarray(disparity)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 2 or image.shape[1] < 2:
        raise InputError(f"image must be H×W×3 (at least 2×2), got shape {image.shape}")
    if disparity.shape != image.shape[:2]:
        raise InputError(f"disparity shape {disparity.shape} does not match the image's {image.shape[:2]}")
    image = np.ascontiguousarray(image, dtype=np.float32)
    disparity = np.ascontiguousarray(disparity, dtype=np.float32)
    if not np.isfinite(image).all() or not np.isfinite(disparity).all():
        raise InputError("image and disparity must be finite (no NaN or infinity)")
    disparity = np.clip(disparity, 0.0, 1.0)
    if matte is not None:
        matte = np.asarray(matte, dtype=np.float32)
        if matte.shape != image.shape[:2]:
            raise InputError(f"matte shape {matte.shape} does not match the image's {image.shape[:2]}")
        if not np.isfinite(matte).all():
            raise InputError("matte must be finite (no NaN or infinity)")
        matte = np.clip(matte, 0.0, 1.0)
    return image, disparity, matte


def subject_alpha(image: np.ndarray, coc: np.ndarray, matte: np.ndarray | None, matting: str = "auto"):
    """The subject: (hard segmentation H×W bool, alpha H×W float32 in [0, 1], source, face height).

    source: "matte" (the caller's), "person" (MediaPipe selfie segmentation found a person
    covering at least MIN_PERSON of the frame) or "in-focus" (|c| ≤ IN_FOCUS_RADIUS); face height:
    the tallest detected face's height over the image height (0 when not looked for).
    """
    face_height = 0.0
    if matte is not None:
        segmentation, source = matte > 0.5, "matte"
    else:
        segmentation, face_height = _person(image, coc)
        source = "person"
        if segmentation is None:
            segmentation, source = np.abs(coc) <= IN_FOCUS_RADIUS, "in-focus"
    if matting == "none" or (matting == "auto" and matte is not None and is_soft(matte)):
        alpha = matte if matte is not None and matting == "auto" else segmentation.astype(np.float32)
    else:
        alpha = knn_alpha(image, segmentation)
    return segmentation, alpha.astype(np.float32, copy=False), source, face_height


def _person(image: np.ndarray, coc: np.ndarray) -> tuple[np.ndarray | None, float]:
    """MediaPipe person segmentation (hard) and the tallest face's height over the image height,
    or (None, 0) when there is no person: the models are missing, the segmentation covers less
    than MIN_PERSON of the frame, no face is detected inside it (the selfie model also answers on
    textures and animals), or it is not in focus (mean |c| over it above PERSON_FOCUS times the
    mean |c| over the rest: the lens focuses elsewhere)."""
    from lensblur.depth import people

    if not people.models_available():
        return None, 0.0
    srgb = linear_to_srgb(np.clip(image, 0.0, 1.0))
    person = refine_person(srgb, people.segment_person(srgb))
    if person.mean() < MIN_PERSON or person.all():
        return None, 0.0
    blur = np.abs(coc)
    if blur[person].mean() > PERSON_FOCUS * blur[~person].mean():
        return None, 0.0
    height, width = person.shape
    faces = [face for face in people.detect_faces(srgb)
             if person[min(int(face.center[1]), height - 1), min(int(face.center[0]), width - 1)]]
    if not faces:
        return None, 0.0
    return person, max(face.box[3] - face.box[1] for face in faces) / height


def refine_person(srgb: np.ndarray, probability: np.ndarray, side: int = REFINE_SIDE) -> np.ndarray:
    """The network's coarse (256×256) person probability snapped to the photo's edges: a guided
    filter (guide: the sRGB photo at ``side`` pixels long side, radius side/128) of the
    probability, thresholded at 0.5 and brought back to full size. Returns H×W bool."""
    height, width = probability.shape
    scale = min(1.0, side / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(srgb, size, interpolation=cv2.INTER_AREA) if scale < 1 else srgb
    small_probability = cv2.resize(probability, size, interpolation=cv2.INTER_AREA) if scale < 1 else probability
    soft = guided_filter(np.ascontiguousarray(small, np.float32), np.ascontiguousarray(small_probability, np.float32),
                         radius=max(2, side // 128), eps=1e-3)
    return cv2.resize(soft.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR) > 0.5


def is_soft(matte: np.ndarray) -> bool:
    """True when a matte already holds fractional alpha along its outline: at least as many
    pixels strictly between SURE_NOT and 1 − SURE_NOT as there are outline pixels, halved."""
    hard = matte > 0.5
    outline = int((hard[:, 1:] != hard[:, :-1]).sum() + (hard[1:, :] != hard[:-1, :]).sum())
    fractional = int(((matte > SURE_NOT) & (matte < 1 - SURE_NOT)).sum())
    return outline > 0 and 2 * fractional >= outline


def knn_alpha(image: np.ndarray, segmentation: np.ndarray, band: int = MATTING_BAND) -> np.ndarray:
    """KNN matting on the trimap with an unknown band of ``band`` pixels either side of the
    segmentation boundary (lensblur.systems.xu_portrait.knn_matting); alpha is exactly 0/1 off the band."""
    return knn_matte(image, segmentation, band=band, max_side=MATTING_SIDE)


def choose_mode(segmentation: np.ndarray, source: str, face_height: float) -> str:
    """The auto mode rule: "selfie" for a person (matte or segmentation) covering at least
    SELFIE_COVER of the frame or with a face at least SELFIE_FACE of the height, else "body"."""
    if source == "in-focus":
        return "body"
    if segmentation.mean() >= SELFIE_COVER or face_height >= SELFIE_FACE:
        return "selfie"
    return "body"


def guided_disk_blur(radiance: np.ndarray, weight: np.ndarray, radius: float,
                     aperture) -> tuple[np.ndarray, np.ndarray]:
    """Segmentation-guided disk blur (Eq. 6) as a normalised convolution.

    radiance: linear H×W×3; weight: H×W in [0, 1], 1 on pixels allowed to contribute (background);
    radius: disk radius in pixels; aperture: the disk's shape (lensblur.aperture.Aperture).
    Returns (Σ_j w_ij·weight_j·I_j / Σ_j w_ij·weight_j, Σ_j w_ij·weight_j): the blurred
    background (0 where the kernel holds no background) and the share of the kernel it covers.
    Disks beyond DIRECT_RADIUS are convolved on a grid reduced by a power of two (the result is
    smooth at that scale); image borders count as no background.
    """
    height, width = weight.shape
    stacked = np.concatenate([radiance * weight[..., None], weight[..., None]], axis=2).astype(np.float32)
    if radius < 0.5:
        sums = stacked
    else:
        scale = 1 if radius <= DIRECT_RADIUS else 2 ** math.ceil(math.log2(radius / DIRECT_RADIUS))
        if scale > 1:
            small = (max(1, -(-width // scale)), max(1, -(-height // scale)))
            stacked = cv2.resize(stacked, small, interpolation=cv2.INTER_AREA)
        kernel = aperture_kernel(aperture, float(radius) / scale)
        sums = cv2.filter2D(stacked, -1, kernel, borderType=cv2.BORDER_CONSTANT)
        if scale > 1:
            sums = cv2.resize(sums, (width, height), interpolation=cv2.INTER_LINEAR)
    coverage = np.maximum(sums[..., 3], 0.0)
    blurred = sums[..., :3] / np.maximum(coverage, COVERED)[..., None]
    blurred[coverage < COVERED] = 0.0
    return blurred, coverage


def layer_radius(coc: np.ndarray, pixels: np.ndarray) -> float:
    """|mean c| over the layer's pixels, in pixels (the lens's blur of the layer's mean disparity)."""
    return float(abs(coc[pixels].mean())) if pixels.any() else 0.0


def blur_selfie(radiance: np.ndarray, coc: np.ndarray, background_weight: np.ndarray, lens: Lens) -> np.ndarray:
    """Eq. 4–6: the whole background blurred with one guided disk of radius |mean c| over it."""
    background = background_weight > 0
    radius = layer_radius(coc, background if background.any() else np.ones_like(background))
    blurred, coverage = guided_disk_blur(radiance, background_weight, radius, lens.aperture)
    return _fill_uncovered(blurred, coverage >= COVERED)


def blur_layers(radiance: np.ndarray, disparity: np.ndarray, coc: np.ndarray, background_weight: np.ndarray,
                segmentation: np.ndarray, lens: Lens, layers: int = LAYERS, smoothness: float = SMOOTHNESS,
                occlusion: bool = True, foreground: bool = False, energy: str = ENERGY):
    """Eq. 10 without the subject term: graph-cut depth layers of the background, each blurred with
    its own guided disk and feathered into the others with a Gaussian.

    The labelling runs on a reduced grid (lensblur.systems.xu_portrait.depth_layers); subject pixels take
    the layer of the nearest background pixel, so the background behind the subject's outline
    continues the layers around it. A layer's membership is its indicator smoothed by a Gaussian
    of σ = FEATHER_FRACTION of the diagonal (at least 1 px), upsampled to full size.
    occlusion: also leave occluders out of each layer's kernel (an extension of Eq. 6 from the
    person to the depth layers, so a far layer's blur does not pick up the colour of things in
    front of it): pixels whose disparity exceeds the layer's (98th percentile) by more than
    OCCLUDER_GAP·radius (at least 1 px) of blur. Parts of one smooth surface that fell into
    neighbouring layers still blur together. False is the paper's Eq. 10 (only the subject is
    left out).
    foreground: layers in front of the focus (mean c > 0.5 px) are left out like the subject and
    returned to be spread over the result (see :func:`spread_foreground`).
    Returns the background H×W×3, or with ``foreground`` (background, [(mask H×W, radius), ...]
    of the near layers, farthest first).
    """
    height, width = disparity.shape
    split = split_depth_layers(disparity, layers, smoothness, exclude=segmentation, energy=energy)
    small_size = split.labels.shape[::-1]
    reduce = (lambda a: cv2.resize(a, small_size, interpolation=cv2.INTER_AREA)) if split.scale > 1 else (lambda a: a)
    subject_small = reduce(segmentation.astype(np.float32)) >= 0.5
    coc_small, disparity_small = reduce(coc), reduce(disparity)
    radii, near_layers = {}, []
    for label in range(split.count):
        own = (split.labels == label) & ~subject_small
        if own.any():
            radii[label] = layer_radius(coc_small, own)
            if foreground and float(coc_small[own].mean()) > 0.5:
                near_layers.append(label)
    hidden = subject_small | np.isin(split.labels, near_layers)
    labels = split.labels
    if hidden.any() and not hidden.all():
        _, (iy, ix) = ndimage.distance_transform_edt(hidden, return_indices=True)
        labels = labels[iy, ix]
    upsample = (lambda a: cv2.resize(a, (width, height), interpolation=cv2.INTER_LINEAR)) if split.scale > 1 \
        else (lambda a: a)
    # grown by NEAR_MARGIN px towards the subject, so the mixed pixels between a near object and
    # the subject go with the object (they would otherwise pass for background inside the subject)
    grow = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * NEAR_MARGIN + 1,) * 2)
    by_subject = cv2.dilate(segmentation.astype(np.uint8), grow) > 0 if near_layers else None
    near_masks = []
    for label in sorted(near_layers, key=lambda l: split.centres[l]):
        mask = upsample(((split.labels == label) & ~subject_small).astype(np.float32)) >= 0.5
        near_masks.append((mask | ((cv2.dilate(mask.astype(np.uint8), grow) > 0) & by_subject), radii[label]))
    if near_masks:
        near_full = np.logical_or.reduce([mask for mask, _ in near_masks])
        background_weight = background_weight * ~near_full
        if hidden.all():
            # nothing behind the near layers but the (sharp) subject: it continues behind them
            return _fill_uncovered(radiance, ~near_full), near_masks
    sigma = max(1.0, FEATHER_FRACTION * math.hypot(height, width)) / split.scale
    total = np.zeros((height, width, 3), np.float32)
    total_weight = np.zeros((height, width), np.float32)
    for label in range(split.count):
        pixels = labels == label
        if not pixels.any() or label in near_layers or label not in radii:
            continue
        membership = upsample(cv2.GaussianBlur(pixels.astype(np.float32), (0, 0), sigma))
        radius = radii[label]
        weight = background_weight
        if occlusion:
            # in front of the layer by more than OCCLUDER_GAP of blur: an occluder, not the same surface
            own = (split.labels == label) & ~subject_small
            front = np.float32(np.percentile(disparity_small[own], 98)
                               + max(1.0, OCCLUDER_GAP * radius) / max(lens.blur, 1e-6))
            weight = background_weight * (disparity <= front)
        blurred, coverage = guided_disk_blur(radiance, weight, radius, lens.aperture)
        share = membership * (coverage >= COVERED)
        total += share[..., None] * blurred
        total_weight += share
    covered = total_weight > 1e-4
    total /= np.maximum(total_weight, 1e-4)[..., None]
    background = _fill_uncovered(total, covered)
    return (background, near_masks) if foreground else background


def _behind_near_layers(image: np.ndarray, alpha: np.ndarray, near_layers):
    """What the near layers hide of the subject: each hidden pixel takes the alpha of the nearest
    visible pixel, and the colour of a smooth extension of the visible image, so a near strand
    across the sharp subject hides the subject, not the blurred background."""
    near = np.logical_or.reduce([mask for mask, _ in near_layers])
    if not near.any() or near.all():
        return alpha, image
    _, (iy, ix) = ndimage.distance_transform_edt(near, return_indices=True)
    alpha = np.where(near, alpha[iy, ix], alpha).astype(np.float32)
    behind = np.where(near[..., None], _fill_uncovered(image, ~near), image).astype(np.float32)
    return alpha, behind


def spread_foreground(result: np.ndarray, radiance: np.ndarray, near_layers, aperture) -> np.ndarray:
    """Lay each near layer, blurred by its disk, over ``result`` (farthest first): premultiplied
    colour P = disk * (I·mask) and coverage A = disk * mask, result ← P + (1 − A)·result, both
    divided by the kernel's share inside the image so objects at the frame's edge stay opaque."""
    ones = np.ones(result.shape[:2], np.float32)
    for mask, radius in near_layers:
        blurred, coverage = guided_disk_blur(radiance, mask.astype(np.float32), radius, aperture)
        inside = guided_disk_blur(np.zeros_like(result), ones, radius, aperture)[1]
        share = np.clip(coverage / np.maximum(inside, COVERED), 0.0, 1.0)[..., None]
        result = (share * blurred + (1 - share) * result).astype(np.float32)
    return result


def _fill_uncovered(values: np.ndarray, covered: np.ndarray, aperture=None) -> np.ndarray:
    """``values`` (H×W×3) with the pixels outside ``covered`` replaced by a smooth extension of the
    covered ones: normalised disk averages of growing radius (4, 8, 16, … px), each pixel taking
    the smallest that reaches covered pixels (a nearest-pixel copy would draw radial streaks)."""
    if covered.all() or not covered.any():
        return values
    out = values.copy()
    todo = ~covered
    weight = covered.astype(np.float32)
    radius = 4.0
    while todo.any() and radius <= 2 * max(covered.shape):
        blurred, coverage = guided_disk_blur(values, weight, radius, aperture or Aperture())
        ready = todo & (coverage >= COVERED)
        out[ready] = blurred[ready]
        todo &= ~ready
        radius *= 2
    out[todo] = values[covered].mean(axis=0)  # only when the covered pixels are a vanishing few
    return out


def composite(image: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Eq. 4's compositing with a matte: α·F + (1 − α)·background, where F is the subject colour
    unmixed from the image along soft edges (lensblur.renderers.subject), so the sharp background
    mixed into edge pixels does not come along with the subject."""
    soft = (alpha > SURE_NOT) & (alpha < 1 - SURE_NOT)
    foreground = split_foreground_background(image, alpha)[0] if soft.any() else image
    a = alpha[..., None]
    return (a * foreground + (1 - a) * background).astype(np.float32)
