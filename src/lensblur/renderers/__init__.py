"""Renderers behind one interface, registered by name.

A renderer is a function ``fn(image, disparity, lens, matte=None) -> image`` where ``image`` is
linear RGB float32 H×W×3 (values may exceed 1 only after highlight recovery, which the renderer
does itself according to ``lens.highlights``), ``disparity`` is float32 H×W in [0, 1]
(1 = nearest), ``lens`` a :class:`lensblur.lens.Lens` and ``matte`` an optional float32 H×W
subject alpha in [0, 1]. It returns linear RGB float32 H×W×3. A renderer may accept more
keyword options (the learned ones take ``checkpoint``, a path to a checkpoint other than the
shipped one); :func:`render_with` checks them against its signature.

Adding a renderer is one module that calls :func:`register`, plus its name in ``_MODULES``.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import threading
from typing import Callable

import numpy as np

from lensblur.errors import InputError
from lensblur.io.images import SILENT_THREAD

RenderFunction = Callable[..., np.ndarray]

_RENDERERS: dict[str, RenderFunction] = {}
_MODULES = {
    "scatter": "lensblur.renderers.scatter",
    "identity": "lensblur.renderers.reference",
    "naive": "lensblur.renderers.reference",
    "gegl": "lensblur.renderers.gegl",
    "portrait": "lensblur.systems.xu_portrait.renderer",
    "portrait-rnn": "lensblur.systems.xu_portrait.rnn_renderer",
    "dbsi": "lensblur.systems.dbsi.renderer",
    "dbsi-paper": "lensblur.systems.dbsi.renderer",
    "saliency-baseline": "lensblur.systems.dbsi.renderer",
    "deeplens": "lensblur.systems.deeplens.renderer",
    "bggan": "lensblur.systems.bggan.renderer",
    "d2f": "lensblur.systems.d2f.renderer",
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


def import_in_background(name: str) -> threading.Thread | None:
    """Start importing renderer ``name``'s module (and with it the kernels it loads) on another
    thread, for a caller about to spend a while in code that releases the GIL, such as decoding
    a photo: the import then takes none of the caller's time. Returns the thread, to be joined
    before the caller imports anything more (two threads importing at once could meet at a
    circular import); None when there is nothing to import. An import error is left for
    :func:`get_renderer` to raise on the caller's thread."""
    module = _MODULES.get(name)
    if name in _RENDERERS or module is None or module in sys.modules:
        return None

    def load() -> None:
        try:
            importlib.import_module(module)
        except BaseException:  # noqa: BLE001 - get_renderer imports it again and reports it
            pass

    # named silent: it prints nothing, so the photo's decoder may still silence stderr meanwhile
    thread = threading.Thread(target=load, name=SILENT_THREAD, daemon=True)
    thread.start()
    return thread


def available_renderers() -> list[str]:
    """Names of all renderers, registered or importable."""
    return sorted(set(_RENDERERS) | set(_MODULES))


def render_with(name: str, image: np.ndarray, disparity: np.ndarray, lens, matte: np.ndarray | None = None,
                **options) -> np.ndarray:
    """Run renderer ``name``; ``options`` (e.g. ``checkpoint=PATH``) must be keyword parameters
    it declares, else InputError naming the option."""
    function = get_renderer(name)
    accepted = inspect.signature(function).parameters
    for option in options:
        if option not in accepted:
            raise InputError(f"renderer {name!r} takes no {option} option")
    return function(image, disparity, lens, matte=matte, **options)
