"""Depth estimators behind one interface, registered by name.

An estimator is a function ``fn(image, **options) -> DepthEstimate`` where ``image`` is the
photo's linear RGB float32 H×W×3 in [0, 1]. It returns disparity (1 = nearest) at the image's
size, and optionally a subject matte and a suggested focus point. Adding an estimator is one
module that calls :func:`register`, plus its name in ``_MODULES``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from lensblur.errors import InputError


@dataclass
class DepthEstimate:
    """What an estimator found.

    disparity: float32 H×W in [0, 1], 1 = nearest, at the image's size.
    matte: float32 H×W subject alpha in [0, 1], or None.
    focus_point: (x, y) pixel the estimator suggests focusing on (a face, the main subject), or None.
    notes: one-line explanations (what was detected, what was chosen and why).
    """

    disparity: np.ndarray
    matte: np.ndarray | None = None
    focus_point: tuple[float, float] | None = None
    notes: list[str] = field(default_factory=list)


Estimator = Callable[..., DepthEstimate]

_ESTIMATORS: dict[str, Estimator] = {}
_MODULES: dict[str, str] = {
    "auto": "lensblur.depth.auto",
    "onnx": "lensblur.depth.onnx_model",
    "megadepth": "lensblur.depth.megadepth",
    "deeplens": "lensblur.systems.deeplens.estimate",
}


def register(name: str) -> Callable[[Estimator], Estimator]:
    """Decorator that makes a depth estimator available under ``name``."""

    def decorate(function: Estimator) -> Estimator:
        _ESTIMATORS[name] = function
        return function

    return decorate


def get_estimator(name: str) -> Estimator:
    """The estimator registered as ``name``; InputError for an unknown name."""
    if name not in _ESTIMATORS and name in _MODULES:
        try:
            importlib.import_module(_MODULES[name])
        except ImportError as error:
            raise InputError(f"depth estimator {name!r} is not available here ({error}): give a depth map with "
                             "--depth FILE") from None
    if name not in _ESTIMATORS:
        raise InputError(f"unknown depth estimator {name!r}: choose from {', '.join(sorted(set(_ESTIMATORS) | set(_MODULES)))}")
    return _ESTIMATORS[name]
