"""The "auto" depth estimator: a plausible disparity for a photo that has no depth.

No depth network: the subject is found (a person with MediaPipe's selfie segmentation and face
detector when the models are installed, else the most salient region) and put in front of a
scene background: the layout prior (lower rows nearer) plus weight-free cues from the photo, its
own defocus (lensblur.depth.defocus) and its occlusion boundaries (lensblur.depth.occlusion),
smoothed along the image's edges. The subject stands at its ground contact. Its mask is refined
to the image's edges with the guided filter and turned into a soft matte by alpha matting in a
thin band around its edge. All analysis happens at ``work_side`` pixels, only compositing touches
full resolution (about 1 s of CPU for a 12 MP photo). See docs/depth-auto.md.
"""

from __future__ import annotations

import cv2
import numpy as np

from lensblur.color import linear_to_srgb, srgb_to_lab
from lensblur.depth import DepthEstimate, register
from lensblur.depth.matting import matte_band
from lensblur.depth.refine import guided_filter, guided_upsample
from lensblur.errors import InputError
from lensblur.lens import median_value

FAR, NEAR_BACKGROUND, SUBJECT = 0.05, 0.5, 0.8
CONTACT_LIFT = 0.05  # a standing subject is this much nearer than the ground where it stands
DEFOCUS_WEIGHT, OCCLUSION_WEIGHT = 0.15, 0.05  # disparity units for the strongest cue signal
MIN_BLUR_SPREAD = 0.5  # px at work size: edge blur varying less than this is an all-in-focus photo
CUES = ("defocus", "occlusion", "contact")
OCCLUSION_SIDE = 256  # px: long side of the segmentation the occlusion cue runs on
# px: on a thumbnail smaller than this on a side there are too few edges to measure blur, too few
# pixels per region to order, nothing the person/face models can recognise (upscaled to their
# input they hallucinate faces in noise) and no edge band wider than a pixel to matte.
MIN_CUE_SIDE = 64
_GRAY = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def spectral_residual_saliency(gray: np.ndarray, side: int = 64, sigma: float = 2.5) -> np.ndarray:
    """Spectral-residual saliency (Hou & Zhang, CVPR 2007) of a gray image, float32 H×W in [0, 1].

    gray: H×W, any range. The image is resized to side×side pixels, the log amplitude spectrum
    minus its 3×3 local mean (the "residual") is recombined with the phase and inverted; the
    squared magnitude, blurred with a Gaussian of ``sigma`` pixels (at ``side`` scale) and resized
    back, is normalised so its maximum is 1.
    """
    height, width = gray.shape[:2]
    small = cv2.resize(np.asarray(gray, np.float32), (side, side), interpolation=cv2.INTER_AREA)
    spectrum = np.fft.fft2(small)
    log_amplitude = np.log(np.abs(spectrum) + 1e-8)
    phase = np.angle(spectrum)
    residual = log_amplitude - cv2.blur(log_amplitude.astype(np.float32), (3, 3), borderType=cv2.BORDER_REFLECT)
    saliency = np.abs(np.fft.ifft2(np.exp(residual + 1j * phase))) ** 2
    saliency = cv2.GaussianBlur(saliency.astype(np.float32), (0, 0), sigma)
    saliency = cv2.resize(saliency, (width, height), interpolation=cv2.INTER_LINEAR)
    return _normalise(saliency)


def sharpness_map(gray: np.ndarray, radius: int) -> np.ndarray:
    """Local Laplacian energy (in-focus detail), smoothed over ``radius`` pixels; float32 in [0, 1]."""
    laplacian = cv2.Laplacian(np.asarray(gray, np.float32), cv2.CV_32F, ksize=3)
    energy = cv2.blur(laplacian * laplacian, (2 * radius + 1, 2 * radius + 1))
    return _normalise(np.sqrt(np.maximum(energy, 0.0)))


def contrast_map(image: np.ndarray, radius: int) -> np.ndarray:
    """Colour distance (CIELAB) of each pixel's neighbourhood from the image's median; float32 in [0, 1].

    image: H×W×3 sRGB-encoded in [0, 1]; radius: smoothing radius in pixels.
    """
    lab = cv2.blur(srgb_to_lab(image), (2 * radius + 1, 2 * radius + 1))
    median = np.array([median_value(channel) for channel in lab.reshape(-1, 3).T], dtype=lab.dtype)
    distance = np.linalg.norm(lab - median, axis=-1)
    return _normalise(distance)


def centre_prior(height: int, width: int, sigma: float = 0.3) -> np.ndarray:
    """Gaussian centre weight, float32 H×W in (0, 1]; sigma as a fraction of each dimension."""
    y = (np.arange(height, dtype=np.float32) + 0.5) / height - 0.5
    x = (np.arange(width, dtype=np.float32) + 0.5) / width - 0.5
    return np.exp(-(y[:, None] ** 2 + x[None, :] ** 2) / (2 * sigma * sigma)).astype(np.float32)


def layout_prior(height: int, width: int, far: float = FAR, near: float = NEAR_BACKGROUND) -> np.ndarray:
    """Scene-layout disparity: ``far`` at the top row rising linearly to ``near`` at the bottom row.

    A ground plane seen from eye height: lower rows are nearer. float32 H×W in [far, near].
    """
    rows = np.linspace(far, near, height, dtype=np.float32)
    return np.broadcast_to(rows[:, None], (height, width))


def saliency_map(image: np.ndarray) -> np.ndarray:
    """Subject likelihood of an sRGB image (H×W×3 in [0, 1]): spectral residual, sharpness and
    colour contrast, weighted by a centre prior; float32 H×W in [0, 1]."""
    height, width = image.shape[:2]
    gray = image @ _GRAY
    radius = max(2, int(round(max(height, width) / 48)))
    combined = (0.35 * spectral_residual_saliency(gray) + 0.3 * sharpness_map(gray, radius)
                + 0.35 * contrast_map(image, radius))
    return _normalise(combined * centre_prior(height, width))


GRABCUT_SIDE = 360


def salient_subject(image: np.ndarray, iterations: int = 3) -> np.ndarray:
    """Hard mask (bool H×W) of the main salient subject of an sRGB image (H×W×3 in [0, 1]).

    The saliency map seeds GrabCut (probable foreground above 0.5, background below 0.15, the
    outer 3 % of the frame sure background); the largest connected region is kept. Returns an
    all-False mask when nothing stands out (the region would cover < 1 % or > 60 % of the frame).
    """
    height, width = image.shape[:2]
    saliency = saliency_map(image)
    seeds = np.full((height, width), cv2.GC_PR_BGD, np.uint8)
    seeds[saliency > 0.5] = cv2.GC_PR_FGD
    seeds[saliency < 0.15] = cv2.GC_BGD
    border = max(1, int(round(0.03 * min(height, width))))
    seeds[:border], seeds[-border:], seeds[:, :border], seeds[:, -border:] = cv2.GC_BGD, cv2.GC_BGD, cv2.GC_BGD, cv2.GC_BGD
    mask = saliency > 0.5
    if (seeds == cv2.GC_PR_FGD).any():
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        # GrabCut's cost grows fast with size: cut at most GRABCUT_SIDE pixels on the long side
        step = max(1, -(-max(height, width) // GRABCUT_SIDE))
        image8 = (np.clip(image[::step, ::step], 0, 1) * 255).astype(np.uint8)
        small_seeds = np.ascontiguousarray(seeds[::step, ::step])
        try:
            cv2.grabCut(image8, small_seeds, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
            cut = ((small_seeds == cv2.GC_FGD) | (small_seeds == cv2.GC_PR_FGD)).astype(np.uint8)
            mask = cv2.resize(cut, (width, height), interpolation=cv2.INTER_NEAREST) > 0
        except cv2.error:
            pass
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros((height, width), bool)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    mask = labels == largest
    # a smooth outline: ragged GrabCut edges would make the matting band (and its solve) large
    sigma = max(1.0, max(height, width) / 128)
    mask = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigma) > 0.5
    if not 0.01 <= mask.mean() <= 0.6:
        return np.zeros((height, width), bool)
    return mask


def _normalise(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array, np.float32)
    low, high = float(array.min()), float(array.max())
    return np.zeros_like(array) if high - low < 1e-12 else (array - low) / (high - low)


def _people(small: np.ndarray, notes: list[str]):
    """Person mask (soft, at the small size) and the largest face, or (None, None)."""
    from lensblur.depth import people

    if not people.models_available():
        notes.append("people models not installed (python scripts/fetch_models.py): looked for a salient subject")
        return None, None
    person = people.segment_person(small)
    faces = people.detect_faces(small)
    area = (person > 0.5).mean()
    if area < 0.03 or (not faces and area < 0.1):  # small faceless blobs are false positives
        if faces:
            notes.append(f"{len(faces)} face(s) found but no person region: ignored")
        return None, None
    face = max(faces, key=lambda f: f.area) if faces else None
    return person, face


def contact_disparity(mask: np.ndarray, background: np.ndarray, lift: float = CONTACT_LIFT,
                      nearest: float = SUBJECT) -> float:
    """Disparity of a subject standing on the ground: the background's disparity where it meets the
    ground, plus ``lift``.

    mask: bool H×W subject. background: H×W disparity of the scene behind (lower rows nearer).
    The contact row is the subject's lowest row (its 99th percentile, so a stray pixel does not
    count). A subject cut by the bottom of the frame has no visible contact: it gets ``nearest``.
    Returns a disparity in [background there, nearest].
    """
    height = mask.shape[0]
    rows = np.nonzero(mask)[0]
    contact = int(np.percentile(rows, 99))
    if contact >= height - 1 - max(1, height // 50):
        return float(nearest)
    columns = np.nonzero(mask[contact])[0]
    ground = float(np.median(background[contact, columns])) if columns.size else float(np.median(background[contact]))
    return float(min(nearest, ground + lift))


def cue_background(small_srgb: np.ndarray, mask: np.ndarray, notes: list[str],
                   use: frozenset[str] = frozenset(CUES)) -> np.ndarray:
    """Scene disparity behind the subject from the layout prior, the photo's own defocus and its
    occlusion boundaries; float32 h×w (the size of ``small_srgb``, sRGB in [0, 1]).

    mask: bool h×w subject (may be empty). use: the cues to add ("defocus", "occlusion").
    Defocus says how far a point is from the focal plane, not on which side: the subject's own
    blur is the focal plane; blur means in front below the subject's ground contact and in
    blurred regions that reach the bottom of the frame (foreground leaves, a ledge), behind
    elsewhere. notes: gets one line per cue used. The sum is smoothed by the guided filter, so
    it changes only where the image has edges.
    """
    height, width = small_srgb.shape[:2]
    fused = np.array(layout_prior(height, width))
    if min(height, width) < MIN_CUE_SIDE:
        notes.append(f"image under {MIN_CUE_SIDE} px on a side: no defocus or occlusion cues")
        use = frozenset()
    if "defocus" in use:
        fused += DEFOCUS_WEIGHT * _defocus_term(small_srgb, mask, notes)
    if "occlusion" in use:
        from lensblur.depth.occlusion import occlusion_depth, segment

        step = max(1, -(-max(height, width) // OCCLUSION_SIDE))
        labels = segment(small_srgb[::step, ::step])
        order = occlusion_depth(labels)
        scale = float(np.percentile(np.abs(order), 95))
        if scale > 1e-6:
            order = cv2.resize(np.clip(order / scale, -1, 1), (width, height), interpolation=cv2.INTER_NEAREST)
            fused += OCCLUSION_WEIGHT * order
            notes.append(f"occlusion: {int(labels.max()) + 1} regions ordered by the convexity of their boundaries")
    gray = cv2.cvtColor(np.asarray(small_srgb, np.float32), cv2.COLOR_RGB2GRAY)
    smooth = guided_filter(gray, fused, radius=max(2, max(height, width) // 32), eps=1e-2)
    return np.clip(smooth, 0.0, 1.0).astype(np.float32)


def _defocus_term(small_srgb: np.ndarray, mask: np.ndarray, notes: list[str]) -> np.ndarray:
    """Signed defocus depth in [-1, 1] (bigger = nearer), h×w; zeros for an all-in-focus photo."""
    from lensblur.depth.defocus import defocus_map

    height, width = small_srgb.shape[:2]
    sigma, spread = defocus_map(small_srgb, side=max(height, width))
    confidence = float(np.clip((spread - MIN_BLUR_SPREAD) / MIN_BLUR_SPREAD, 0.0, 1.0))
    if confidence == 0:
        notes.append(f"defocus: edge blur varies by {spread:.1f} px only: no depth from it")
        return np.zeros((height, width), np.float32)
    focal = float(np.median(sigma[mask])) if mask.any() else float(np.percentile(sigma, 10))
    distance = np.clip((sigma - focal) / max(spread, 1e-6), 0.0, 1.0)
    in_front = np.zeros((height, width), bool)
    if mask.any():
        in_front[int(np.percentile(np.nonzero(mask)[0], 99)):] = True
    count, labels, stats, _ = cv2.connectedComponentsWithStats((distance > 0.5).astype(np.uint8), connectivity=8)
    for region in range(1, count):
        if stats[region, cv2.CC_STAT_TOP] + stats[region, cv2.CC_STAT_HEIGHT] >= height:
            in_front |= labels == region
    notes.append(f"defocus: edge blur varies by {spread:.1f} px (weight {confidence:.2f}): blurrier = farther "
                 "from the subject's plane, in front where the blur reaches the bottom of the frame")
    return (confidence * np.where(in_front, distance, -distance)).astype(np.float32)


@register("auto")
def estimate_auto(image: np.ndarray, *, work_side: int = 512, matte: bool = True, people: bool = True,
                  subject_disparity: float = SUBJECT, matte_side: int = 320, matte_method: str = "cf",
                  cues: bool | tuple[str, ...] = True) -> DepthEstimate:
    """Plausible disparity, subject matte and focus point for a photo without depth.

    image: linear RGB float32 H×W×3 in [0, 1]. work_side: long side in pixels at which the
    subject is found. matte: compute a soft matte along the subject edge (else a hard one).
    people: use the person/face models when installed. subject_disparity: disparity of the
    subject in (0.5, 1]. matte_side: long side in pixels of the band crop the matting solver sees.
    matte_method: "cf" (closed-form) or "knn". cues: True for all of :data:`CUES` (the photo's
    defocus and occlusion boundaries added to the layout prior, the subject at its ground
    contact), a tuple of some of them, or False for the estimator before these cues (layout prior
    0.05 → 0.5 and a subject at ``subject_disparity``). With cues the disparity is spread to
    [0, 1], as embedded maps are. Returns the disparity, the matte (None when no subject was
    found), and the focus point in full-resolution pixels (largest face, else subject centroid).
    """
    use = frozenset(CUES if cues is True else cues or ())
    if not use <= set(CUES):
        raise InputError(f"unknown cues {sorted(use - set(CUES))}: choose from {CUES}")
    image = np.asarray(image, dtype=np.float32)[..., :3]
    height, width = image.shape[:2]
    scale = min(1.0, work_side / max(height, width))
    small_w, small_h = max(1, round(width * scale)), max(1, round(height * scale))
    small_linear = cv2.resize(image, (small_w, small_h), interpolation=cv2.INTER_AREA) if scale < 1 else image
    small = linear_to_srgb(small_linear)
    notes: list[str] = []
    thumbnail = min(height, width) < MIN_CUE_SIDE
    if people and thumbnail:
        notes.append(f"image under {MIN_CUE_SIDE} px on a side: people models not run")
    person, face = _people(small, notes) if people and not thumbnail else (None, None)
    focus = None
    if person is not None:
        # refine the coarse 256×256 network mask to the photo's edges
        soft = np.clip(guided_filter(small, person, radius=max(2, work_side // 128), eps=1e-3), 0, 1)
        mask = soft > 0.5
        notes.append(f"person found ({100 * mask.mean():.0f} % of the frame): subject = person")
        if face is not None:
            focus = (face.center[0] / scale, face.center[1] / scale)
            notes.append(f"focus on the largest face (score {face.score:.2f}) at x={focus[0]:.0f}, y={focus[1]:.0f}")
        else:
            notes.append("no face found: focus on the person's centroid")
    else:
        mask = salient_subject(small)
        if mask.any():
            notes.append(f"no person: salient subject covers {100 * mask.mean():.0f} % of the frame")
        else:
            notes.append("no person and no salient subject: scene-layout depth only, focus on the centre")
    if focus is None and mask.any():
        ys, xs = np.nonzero(mask)
        focus = (float(xs.mean()) / scale, float(ys.mean()) / scale)
        if person is None:
            notes.append(f"focus on the subject's centroid at x={focus[0]:.0f}, y={focus[1]:.0f}")
    if focus is None:
        focus = (width / 2, height / 2)
    if cues is not False:
        small_background = cue_background(small, mask, notes, use)
        gray_small = small_linear @ _GRAY  # linear light: no 12 MP gamma curve, the guide only needs its edges
        gray_full = gray_small if scale == 1 else image @ _GRAY
        background = np.clip(guided_upsample(gray_full, gray_small, small_background, radius=2, eps=1e-3), 0, 1)
        if mask.any() and "contact" in use:
            subject_disparity = contact_disparity(mask, small_background, nearest=subject_disparity)
            notes.append(f"subject at disparity {subject_disparity:.2f} (its ground contact)")
    else:
        background = layout_prior(height, width)
    if not mask.any():
        return DepthEstimate(_full_range(background, cues is not False), None, focus, notes)
    if matte and not thumbnail:
        # nearest upsampling is enough: matte_band snaps the edge to the full-resolution image
        full_mask = cv2.resize(mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
        alpha = matte_band(image, full_mask, max_side=matte_side, method=matte_method)
        notes.append("matte: soft only in a band around the subject edge (alpha matting at reduced resolution)")
    else:
        alpha = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    alpha = alpha.astype(np.float32)
    disparity = background + (np.float32(subject_disparity) - background) * alpha
    return DepthEstimate(_full_range(disparity, cues is not False), alpha, focus, notes)


def _full_range(disparity: np.ndarray, stretch: bool) -> np.ndarray:
    """float32 copy; with ``stretch``, spread to [0, 1] as embedded and file depth maps are
    (lensblur.io.depth normalises by min and max), so one --blur means the same with either."""
    disparity = np.asarray(disparity, np.float32)
    if not stretch:
        return np.ascontiguousarray(disparity)
    low, high = float(disparity.min()), float(disparity.max())
    return ((disparity - low) / (high - low)).astype(np.float32) if high - low > 1e-6 else np.ones_like(disparity)
