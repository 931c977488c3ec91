"""People: MediaPipe's selfie segmentation and short-range face detector, run with LiteRT.

The two .tflite models (Apache-2.0) come from the ``mediapipe==0.10.21`` wheel; put them in
``src/lensblur/depth/models/`` with ``python scripts/fetch_models.py``. Images are H×W×3 float32
in [0, 1], sRGB-encoded (what the networks were trained on); coordinates are pixels of that image.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lensblur.errors import InputError

MODEL_DIR = Path(__file__).resolve().parent / "models"
SELFIE_MODEL = "selfie_segmentation.tflite"
FACE_MODEL = "face_detection_short_range.tflite"


@dataclass
class Face:
    """A detected face: box (x0, y0, x1, y1) in pixels, score in [0, 1], six (x, y) keypoints
    (right eye, left eye, nose tip, mouth, right ear tragion, left ear tragion) in pixels."""

    box: tuple[float, float, float, float]
    score: float
    keypoints: np.ndarray

    @property
    def center(self) -> tuple[float, float]:
        """Centre (x, y) of the box in pixels."""
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)

    @property
    def area(self) -> float:
        """Box area in pixels²."""
        return max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1])


def models_available(model_dir: Path = MODEL_DIR) -> bool:
    """True when both .tflite files are present in ``model_dir``."""
    return (model_dir / SELFIE_MODEL).is_file() and (model_dir / FACE_MODEL).is_file()


@functools.lru_cache(maxsize=4)
def _interpreter(path: str) -> tuple[object, threading.Lock]:
    """The LiteRT interpreter of a model file and the lock that must be held while using it: an
    interpreter holds its tensors itself, so two threads may not set, invoke and read it at once."""
    if not Path(path).is_file():
        raise InputError(f"model file {path} is missing: run `python scripts/fetch_models.py` to fetch "
                         "MediaPipe's person-segmentation and face models")
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise InputError("people detection needs LiteRT: pip install ai-edge-litert==2.3.0") from None
    with _quiet_stderr():  # LiteRT logs "INFO: Created TensorFlow Lite XNNPACK delegate" on fd 2
        interpreter = Interpreter(model_path=path, num_threads=2)
        interpreter.allocate_tensors()
    return interpreter, threading.Lock()


@contextlib.contextmanager
def _quiet_stderr():
    """Silence the process's standard error (file descriptor 2) for native libraries' logs."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _run(name: str, tensor: np.ndarray, model_dir: Path) -> list[np.ndarray]:
    interpreter, lock = _interpreter(str(model_dir / name))
    with lock:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], tensor[None].astype(np.float32))
        interpreter.invoke()
        return [interpreter.get_tensor(d["index"])[0].copy() for d in interpreter.get_output_details()]


def segment_person(image: np.ndarray, model_dir: Path = MODEL_DIR) -> np.ndarray:
    """Person probability H×W float32 in [0, 1] at the image's size (selfie segmentation, 256×256).

    image: H×W×3 float32 sRGB in [0, 1]. The network sees the whole image squeezed to 256×256
    (as MediaPipe does); its output is resized back bilinearly (coarse: refine it to the edges).
    """
    height, width = image.shape[:2]
    tensor = cv2.resize(np.asarray(image[..., :3], np.float32), (256, 256), interpolation=cv2.INTER_AREA)
    (mask,) = _run(SELFIE_MODEL, np.clip(tensor, 0.0, 1.0), model_dir)
    mask = np.clip(mask[..., 0], 0.0, 1.0).astype(np.float32)
    return cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR)


@functools.lru_cache(maxsize=1)
def face_anchors() -> np.ndarray:
    """SSD anchors of the short-range face detector: 896×2 centres (x, y) in [0, 1].

    MediaPipe's options: 128×128 input, 4 layers with strides 8, 16, 16, 16, two anchors per cell
    and layer, fixed anchor size, offset 0.5; consecutive layers of equal stride share a grid.
    """
    strides = [8, 16, 16, 16]
    anchors = []
    layer = 0
    while layer < len(strides):
        count = 0
        stride = strides[layer]
        while layer < len(strides) and strides[layer] == stride:
            count += 2
            layer += 1
        cells = 128 // stride
        ys, xs = np.mgrid[0:cells, 0:cells]
        centres = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], axis=-1).reshape(-1, 1, 2)
        anchors.append(np.repeat(centres, count, axis=1).reshape(-1, 2))
    return np.concatenate(anchors).astype(np.float32)


def _weighted_nms(boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray, iou_threshold: float):
    """MediaPipe's weighted non-max suppression: overlapping boxes are averaged by score."""
    order = np.argsort(-scores)
    remaining = list(order)
    kept = []
    while remaining:
        best = remaining[0]
        b = boxes[best]
        others = boxes[remaining]
        ix0 = np.maximum(b[0], others[:, 0]); iy0 = np.maximum(b[1], others[:, 1])
        ix1 = np.minimum(b[2], others[:, 2]); iy1 = np.minimum(b[3], others[:, 3])
        inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
        area = lambda q: (q[..., 2] - q[..., 0]) * (q[..., 3] - q[..., 1])  # noqa: E731
        iou = inter / np.maximum(area(b) + area(others) - inter, 1e-12)
        group = [remaining[i] for i in np.nonzero(iou > iou_threshold)[0]]
        weights = scores[group][:, None]
        box = (boxes[group] * weights).sum(0) / weights.sum()
        kps = (keypoints[group] * weights[:, :, None]).sum(0) / weights.sum()
        kept.append((box, float(scores[best]), kps))
        remaining = [r for r in remaining if r not in set(group)]
    return kept


def detect_faces(image: np.ndarray, min_score: float = 0.5, iou_threshold: float = 0.3,
                 model_dir: Path = MODEL_DIR) -> list[Face]:
    """Faces in ``image`` (H×W×3 float32 sRGB in [0, 1]), best first.

    The image is letterboxed to a square and scaled to 128×128 (input range [−1, 1]); the 896 SSD
    outputs are decoded against :func:`face_anchors`, scored with a sigmoid, kept above
    ``min_score`` (0–1) and merged by weighted non-max suppression at ``iou_threshold``. The
    short-range model finds faces within ~2 m of the camera (faces ≳ 1/8 of the frame).
    """
    height, width = image.shape[:2]
    side = max(height, width)
    pad_y, pad_x = (side - height) / 2, (side - width) / 2
    scale = 128 / side
    # letterbox by affine warp: pixel p of the image goes to (p + pad) · scale
    matrix = np.array([[scale, 0, pad_x * scale], [0, scale, pad_y * scale]], dtype=np.float32)
    small = image[..., :3]
    if side > 512:  # anti-alias before the warp
        step = side / 512
        small = cv2.resize(np.asarray(small, np.float32), (max(1, round(width / step)), max(1, round(height / step))),
                           interpolation=cv2.INTER_AREA)
        matrix[:, :2] *= step
    tensor = cv2.warpAffine(np.asarray(small, np.float32), matrix, (128, 128), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    tensor = np.clip(tensor, 0, 1) * 2.0 - 1.0
    outputs = _run(FACE_MODEL, tensor, model_dir)
    raw = next(o for o in outputs if o.shape[-1] == 16)
    logits = next(o for o in outputs if o.shape[-1] == 1)[:, 0]
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits.astype(np.float64), -100, 100)))
    keep = scores >= min_score
    if not keep.any():
        return []
    anchors = face_anchors()[keep]
    raw = raw[keep] / 128.0
    centre = raw[:, 0:2] + anchors
    size = raw[:, 2:4]
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    keypoints = raw[:, 4:16].reshape(-1, 6, 2) + anchors[:, None, :]
    faces = []
    for box, score, kps in _weighted_nms(boxes, scores[keep], keypoints, iou_threshold):
        # back from the 128×128 letterbox (unit coordinates) to image pixels
        box_px = box.reshape(2, 2) * side - np.array([pad_x, pad_y])
        kps_px = kps * side - np.array([pad_x, pad_y])
        x0, y0 = np.clip(box_px[0], 0, [width, height]); x1, y1 = np.clip(box_px[1], 0, [width, height])
        faces.append(Face((float(x0), float(y0), float(x1), float(y1)), score, kps_px.astype(np.float32)))
    return faces
