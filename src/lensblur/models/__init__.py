"""Torch modules shared by several systems, and the torch helpers every learned system uses
(torch is imported only inside these modules).

``megadepth``: the MegaDepth single-view depth hourglass (Li & Snavely 2018), loadable from the
authors' released checkpoint and shared as the backbone of DBSI and by ``lensblur.depth.megadepth``.

Each published system lives in its own folder ``lensblur/systems/<paper>/`` (model, renderer
entry, training, shipped weights in ``weights/``; see docs/training.md).
"""

import os
from pathlib import Path

from lensblur.errors import InputError, LensblurError


def require_torch():
    """The ``torch`` module, or a one-line LensblurError saying how to install it."""
    try:
        import torch
    except ImportError:
        raise LensblurError("this needs PyTorch, an optional extra: pip install 'lensblur[torch]' "
                            "(which pins torch==2.13.0, the CPU build)") from None
    return torch


def load_tensors(path: str | os.PathLike, what: str):
    """Read a torch file on the CPU with ``weights_only=True`` (tensors and plain values only, so
    no code from the file runs). what: how the error names the file, e.g. "checkpoint".
    Any failure (missing, truncated, not a torch file, pickled objects) raises a one-line InputError."""
    torch = require_torch()
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} {path}: no such file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - pickle/zip/torch raise many types; one line for the user
        text = str(error).strip()
        reason = text.splitlines()[0][:200] if text else type(error).__name__
        if not any(character.isalpha() for character in reason):  # torch reports a bare magic number
            reason = "unrecognised contents"
        if "can still be loaded" in text:  # torch's wording when only the weights_only check failed
            reason = "it holds pickled objects, not only tensors; save a state_dict instead"
        elif "weights only load failed" in text.lower():
            reason = "unrecognised contents"
        raise InputError(f"{what} {path}: not a PyTorch checkpoint ({reason})") from None
