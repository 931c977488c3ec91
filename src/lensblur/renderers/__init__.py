"""Renderers behind one interface, registered by name.

A renderer is a function ``fn(image, disparity, lens, matte=None) -> image`` where ``image`` is
linear RGB float32 H×W×3 (values may exceed 1 only after highlight recovery, which the renderer
does itself according to ``lens.highlights``), ``disparity`` is float32 H×W in [0, 1]
(1 = nearest), ``lens`` a :class:`lensblur.lens.Lens` and ``matte`` an optional float32 H×W
subject alpha in [0, 1]. It returns linear RGB float32 H×W×3.

Adding a renderer is one module that calls :func:`register`, plus its name in ``_MODULES``.
"""

from __future__ import annotations

import importlib
from typing import Callable

import numpy as np

from lensblur.errors import InputError

RenderFunction = Callable[..., np.ndarray]

_RENDERERS: dict[str, RenderFunction] = {}
_MODULES = {
    "scatter": "lensblur.renderers.scatter",
    "identity": "lensblur.renderers.reference",
    "naive": "lensblur.renderers.reference",
    "gegl": "lensblur.renderers.gegl",
}
DEFAULT_RENDERER = "scatter"


def register(name: str) -> Callable[[RenderFunction], RenderFunction]:
    """Decorator that makes a render function available under ``name``."""

    def decorate(function: RenderFunction) -> RenderFunction:
        _RENDERERS[name] = function
        return function

    return decorate


def get_renderer(name: str) -> RenderFunction:
    """The render function registered as ``name``; InputError for an unknown name."""
    if name not in _RENDERERS and name in _MODULES:
        importlib.import_module(_MODULES[name])
    if name not in _RENDERERS:
        raise InputError(f"unknown renderer {name!r}: choose from {', '.join(available_renderers())}")
    return _RENDERERS[name]


def available_renderers() -> list[str]:
    """Names of all renderers, registered or importable."""
    return sorted(set(_RENDERERS) | set(_MODULES))
