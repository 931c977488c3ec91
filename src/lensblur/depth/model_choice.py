"""Which depth model estimates a photo's depth: the option, the environment, the settings file.

Precedence: ``--depth-model`` (or the API's ``model=``) > ``LENSBLUR_DEPTH_MODEL`` > ``depth-model``
in the settings file (lensblur.config) > the weight-free automatic estimate. ``--depth-model none``
asks for the weight-free estimate whatever is set. The preset of an ONNX model comes with its model
from the same place (``--depth-preset``, ``LENSBLUR_DEPTH_PRESET``, ``depth-preset``); the option
``--depth-preset`` applies to any of them.

A model is written ``PATH.onnx`` (or ``onnx:PATH``), ``deeplens:PATH`` (a depth checkpoint from
``lensblur train deeplens --module depth``; a bare ``PATH.pt`` means the same), ``deeplens`` (the
depth module shipped with lensblur) or
``megadepth:PATH``. A model that is set but broken is an error naming where it was set, never a
silent fall back to the estimate. See docs/depth-models.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lensblur import config
from lensblur.depth import DepthEstimate, get_estimator
from lensblur.errors import InputError

ENV_MODEL = "LENSBLUR_DEPTH_MODEL"
ENV_PRESET = "LENSBLUR_DEPTH_PRESET"
NONE = "none"
KINDS = ("onnx", "deeplens", "megadepth")
OPTION = "--depth-model"


@dataclass(frozen=True)
class DepthModel:
    """A depth model and where it was chosen.

    kind: "onnx", "deeplens" or "megadepth" (the registered estimator's name).
    path: the model file as given (user ``~`` expanded).
    preset: ONNX preset name, or None for the default (depth-anything-v2) and other kinds.
    origin: where it was set: "--depth-model", "LENSBLUR_DEPTH_MODEL" or "settings file PATH".
    """

    kind: str
    path: str
    preset: str | None
    origin: str

    @property
    def spec(self) -> str:
        """The model as the option writes it: PATH.onnx, deeplens:PATH or megadepth:PATH."""
        return self.path if self.kind == "onnx" and self.path.lower().endswith(".onnx") else f"{self.kind}:{self.path}"

    def describe(self) -> str:
        """One line for -v, info, the batch manifest and the web app: model PATH (kind; from where)."""
        detail = f"{self.kind}, preset {self.preset or 'depth-anything-v2'}" if self.kind == "onnx" else self.kind
        return f"model {self.path} ({detail}; set by {self.origin})"


def parse_model(text: str, preset: str | None = None, origin: str = OPTION) -> DepthModel:
    """A :class:`DepthModel` from its written form (see the module docstring); InputError when the
    kind cannot be told."""
    text = str(text).strip()
    kind, _, rest = text.partition(":")
    if kind in KINDS and rest:
        path = rest
    elif text.lower().endswith(".onnx"):
        kind, path = "onnx", text
    elif text.lower().endswith(".pt"):
        kind, path = "deeplens", text
    elif text.lower() == "deeplens":  # the depth module shipped with lensblur
        from lensblur.training.checkpoint import shipped_checkpoint

        kind, path = "deeplens", str(shipped_checkpoint("deeplens-depth"))
    else:
        raise InputError(f"depth model {text!r} (set by {origin}): write PATH.onnx, deeplens, deeplens:PATH "
                         "or megadepth:PATH")
    if preset and kind != "onnx":
        raise InputError(f"depth preset {preset!r} (set by {origin}) is for ONNX models, not {kind}")
    return DepthModel(kind, str(Path(path).expanduser()), preset or None, origin)


def resolve_model(option: str | DepthModel | None = None, preset: str | None = None,
                  fallback: str | None = None) -> DepthModel | None:
    """The model to estimate depth with, or None for the weight-free estimate (precedence above).

    option: the ``--depth-model`` value (``none`` = the weight-free estimate), or a DepthModel
    already resolved (returned as it is); preset: the ``--depth-preset`` value, which overrides
    the preset set with the model; fallback: the model when none is given or set, below the
    settings file (:func:`own_depth_model`).
    """
    if isinstance(option, DepthModel):
        return option
    if option is not None and option.strip().lower() == NONE:
        return None
    if option:
        return parse_model(option, preset, OPTION)
    if os.environ.get(ENV_MODEL, "").strip():
        return parse_model(os.environ[ENV_MODEL], preset or os.environ.get(ENV_PRESET) or None, ENV_MODEL)
    settings = config.load()
    if settings.get("depth-model", "").strip():
        return parse_model(settings["depth-model"], preset or settings.get("depth-preset"),
                           f"settings file {config.config_path()}")
    return parse_model(fallback, None, "the renderer") if fallback else None


def own_depth_model(renderer: str | None) -> str | None:
    """The depth model a renderer brings for photos without depth when none is given or set
    (``deeplens``: the paper's single-image path through its shipped depth module), else None."""
    return "deeplens" if renderer == "deeplens" else None


def resolve_for_workers(option: str | None, preset: str | None, fallback: str | None = None) -> DepthModel | str:
    """The model resolved here, with an absolute path, for processes on other machines that see
    neither this environment nor this settings file; ``"none"`` for the weight-free estimate.
    fallback: the model when none is given or set (:func:`own_depth_model`).
    InputError when the model file does not exist (before any photo is started)."""
    model = resolve_model(option, preset, fallback)
    if model is None:
        return NONE
    path = Path(model.path).resolve()
    if not path.is_file():
        raise InputError(f"depth model {model.path} (set by {model.origin}): no such file")
    return DepthModel(model.kind, str(path), model.preset, model.origin)


def run_model(model: DepthModel, pixels: np.ndarray) -> DepthEstimate:
    """Estimate depth of linear H×W×3 ``pixels`` with ``model``; failures name where it was set."""
    options = {"model_path": model.path}
    if model.preset:
        options["preset"] = model.preset
    try:
        return get_estimator(model.kind)(pixels, **options)
    except InputError as error:
        if model.origin == ENV_MODEL:
            fix = f"change or unset {ENV_MODEL}"
        elif model.origin.startswith("settings file"):
            fix = "change it with 'lensblur config set depth-model PATH'"
        else:
            raise
        raise InputError(f"{error} (depth model set by {model.origin}; {fix}, or give --depth-model none)") from None


def check_model(model: DepthModel) -> DepthEstimate:
    """Load ``model`` and run it on a small test picture: InputError when it is not a depth model
    of a known shape (wrong file, input or output shape, preset). Returns the test estimate."""
    height, width = 48, 64
    ramp = np.linspace(0.05, 0.95, width, dtype=np.float32)
    pixels = np.repeat(np.tile(ramp, (height, 1))[..., None], 3, axis=2)
    estimate = run_model(model, pixels)
    if estimate.disparity.shape != (height, width) or not np.isfinite(estimate.disparity).all():
        raise InputError(f"depth model {model.path}: its output is not one finite map per picture")
    return estimate
