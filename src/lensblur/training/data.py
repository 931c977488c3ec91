"""Training data for the learned renderers: dataset folders as arrays, crops and flips.

Any layout that ``lensblur eval`` reads trains too (see :mod:`lensblur.evaluate`): the project's
synthetic scenes (``lensblur synth``, exact ground truth, disparity, focus and blur K in the
metadata), ``X_image/_disparity/_gt`` folders, and EBB! (``original/`` + ``bokeh/``, or under ``train/``,
with ``--split train4400`` keeping DBSI's Val294 out of training).

Images here are sRGB float32 in [0, 1] (what the learned models of the papers take); the
disparity is float32 in [0, 1], 1 = nearest.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from lensblur.errors import InputError
from lensblur.evaluate import iter_samples


@dataclass
class TrainingPair:
    """One example. image, target: sRGB float32 H×W×3 in [0, 1]; disparity: float32 H×W in [0, 1];
    focus_disparity in [0, 1]; blur: K in pixels at the stored size; has_disparity False for EBB!
    without maps (the disparity is then a flat placeholder)."""

    name: str
    image: np.ndarray
    target: np.ndarray
    disparity: np.ndarray
    focus_disparity: float
    blur: float
    has_disparity: bool = True


def load_pairs(folder, *, layout: str = "auto", split: str = "all", limit: int | None = None,
               disparity_dir=None, size: tuple[int, int] | None = None) -> list[TrainingPair]:
    """All examples of a dataset folder, in name order, held in memory.

    split: all, val294 or train4400 (EBB! only). limit: keep only the first N. size: (H, W) to
    resize every example to as it is read (so that EBB!'s 1024×1536 pairs are never all held at
    full size); None keeps the stored size.
    """
    pairs = []
    for sample in iter_samples(folder, layout, split=split, limit=limit, disparity_dir=disparity_dir):
        pair = TrainingPair(sample.name, sample.image_srgb8.astype(np.float32) / 255.0,
                            sample.gt.astype(np.float32) / 255.0, sample.disparity,
                            float(sample.lens.focus_disparity), float(sample.lens.blur), sample.has_disparity)
        pairs.append(resize_pair(pair, *size) if size else pair)
    if not pairs:
        raise InputError(f"no training examples in {folder}")
    return pairs


def resize_pair(pair: TrainingPair, height: int, width: int) -> TrainingPair:
    """The example resampled to height×width (area filter when shrinking); blur K scales with
    the width, since it is measured in pixels."""
    if pair.image.shape[:2] == (height, width):
        return pair
    shrinking = height * width < pair.image.shape[0] * pair.image.shape[1]
    method = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR

    def resize(array):
        return cv2.resize(array, (width, height), interpolation=method)

    return TrainingPair(pair.name, resize(pair.image), resize(pair.target), resize(pair.disparity),
                        pair.focus_disparity, pair.blur * width / pair.image.shape[1], pair.has_disparity)


def random_crop(rng: np.random.Generator, arrays: list[np.ndarray], height: int, width: int) -> list[np.ndarray]:
    """The same random height×width window of every array (all share their first two sizes);
    an array smaller than the window is returned whole."""
    full_h, full_w = arrays[0].shape[:2]
    top = int(rng.integers(0, max(full_h - height, 0) + 1))
    left = int(rng.integers(0, max(full_w - width, 0) + 1))
    return [array[top:top + height, left:left + width] for array in arrays]


def random_flips(rng: np.random.Generator, arrays: list[np.ndarray], vertical: bool = True) -> list[np.ndarray]:
    """The same random horizontal (and, if ``vertical``, vertical) flip of every array, as the
    papers augment; returns contiguous copies."""
    if rng.random() < 0.5:
        arrays = [array[:, ::-1] for array in arrays]
    if vertical and rng.random() < 0.5:
        arrays = [array[::-1] for array in arrays]
    return [np.ascontiguousarray(array) for array in arrays]


def load_resized(args, height: int, width: int) -> list[TrainingPair]:
    """The examples of a ``lensblur train`` run (``args.data``, ``layout``, ``split``, ``limit``)
    resized to height×width as they are read."""
    return load_pairs(args.data, layout=args.layout, split=args.split, limit=args.limit, size=(height, width))
