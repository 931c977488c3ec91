"""Checkpoints of the learned renderers: one torch file holding tensors and plain values only.

Layout: ``{"format": "lensblur-checkpoint", "system": str, "config": dict, "model": state_dict,
"step": int, "optimizer": state_dict | None, "history": list}``. Every value is a tensor or a
plain Python value, so :func:`load_checkpoint` reads it with ``weights_only=True`` (no code from
the file runs). Writes are atomic, so an interrupted save never leaves a half-written file.
"""

from __future__ import annotations

import os
from pathlib import Path

from lensblur.errors import InputError
from lensblur.io.atomic import atomic_output
from lensblur.models import load_tensors, require_torch

FORMAT = "lensblur-checkpoint"
SYSTEMS_DIR = Path(__file__).resolve().parent.parent / "systems"


def save_checkpoint(path: str | os.PathLike, system: str, config: dict, model_state: dict, *, step: int = 0,
                    optimizer_state: dict | None = None, history: list | None = None) -> Path:
    """Write a checkpoint atomically (replacing ``path`` if it exists); returns the path.

    config: plain values (numbers, strings, lists, dicts) that rebuild the model.
    history: optional list of plain dicts (e.g. loss per step) kept for resuming and reports.
    """
    torch = require_torch()
    payload = {"format": FORMAT, "system": system, "config": dict(config), "model": model_state,
               "step": int(step), "optimizer": optimizer_state, "history": list(history or [])}
    with atomic_output(path, overwrite=True) as temporary:
        torch.save(payload, temporary)
    return Path(path)


def load_checkpoint(path: str | os.PathLike, system: str | None = None) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` on the CPU with ``weights_only=True``.

    system: when given, the checkpoint must belong to it. Any failure (missing file, not a torch
    file, pickled objects, another system) raises a one-line InputError.
    """
    payload = load_tensors(path, "checkpoint")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"checkpoint {path}: not a lensblur checkpoint (no '{FORMAT}' marker)")
    if system is not None and payload.get("system") != system:
        raise InputError(f"checkpoint {path} is for {payload.get('system')!r}, not {system!r}")
    return payload


def shipped_checkpoint(name: str) -> Path:
    """Path of a checkpoint shipped inside the package (``lensblur/systems/<system>/weights/NAME.pt``);
    InputError naming the command that makes it when it is missing."""
    found = sorted(SYSTEMS_DIR.glob(f"*/weights/{name}.pt"))
    if not found:
        raise InputError(f"the shipped checkpoint {name}.pt is missing from {SYSTEMS_DIR}/*/weights: "
                         f"reinstall lensblur or train one (docs/training.md) and pass it with --checkpoint")
    return found[0]


def half_state(state: dict) -> dict:
    """A state dict with floating-point tensors stored as float16 (for shipping)."""
    import torch

    return {k: (v.half() if torch.is_floating_point(v) else v) for k, v in state.items()}


def ship_checkpoint(source: str | os.PathLike, target: str | os.PathLike, *, half: bool = True) -> Path:
    """Copy a training checkpoint for shipping: the same system, config, weights, step and loss
    history, without the optimiser state, floating-point weights as float16 when ``half`` (the
    loaders convert back). Returns the target path."""
    payload = load_checkpoint(source)
    state = half_state(payload["model"]) if half else payload["model"]
    return save_checkpoint(target, payload["system"], payload["config"], state, step=payload["step"],
                           history=payload["history"])
