"""Training of the learned renderers (``lensblur train SYSTEM``); needs torch.

``TRAINERS`` maps a system name to the module that trains it. Each such module defines
``HELP`` (one line), ``add_arguments(parser)`` for its own options and
``train(args, progress) -> dict``, where ``args`` also carries the common options of
``lensblur train`` (data, out, resume, seed, threads, layout, split, limit) and ``progress`` is a
tqdm-like bar factory ``progress(total, description)``. The returned dict is a summary printed
as ``key: value`` lines.

Shared pieces: :mod:`lensblur.training.data` (datasets as arrays, crops and flips),
:mod:`lensblur.training.checkpoint` (atomic save, resume, loading with ``weights_only=True``),
:func:`descend` (one optimiser step with the divergence check and the progress bar).
"""

TRAINERS = {
    "portrait-rnn": "lensblur.systems.xu_portrait.training",
    "dbsi": "lensblur.systems.dbsi.training",
    "deeplens": "lensblur.systems.deeplens.training",
    "bggan": "lensblur.systems.bggan.training",
    "d2f": "lensblur.systems.d2f.training",
}


def size_argument(multiple: int = 1, minimum: int = 1):
    """An argparse ``type`` for ``HxW`` sizes in pixels, each side at least ``minimum`` and a
    multiple of ``multiple``; returns (height, width)."""
    import argparse

    def parse(text: str) -> tuple[int, int]:
        try:
            height, width = (int(v) for v in text.lower().split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"size must be HxW, got {text!r}") from None
        if height < minimum or width < minimum:
            raise argparse.ArgumentTypeError(f"size must be at least {minimum}x{minimum}, got {text!r}")
        if height <= 0 or width <= 0 or height % multiple or width % multiple:
            raise argparse.ArgumentTypeError(f"size must be positive multiples of {multiple}, got {text!r}")
        return height, width

    return parse


def descend(optimizer, loss, recent: list, bar, where: str) -> float:
    """One optimiser step on ``loss`` (a scalar torch tensor) and its bookkeeping.

    Raises InputError "training diverged at WHERE (loss nan)" when the loss is not finite (where:
    e.g. "phase 1 step 30"), before any update; otherwise appends the loss to ``recent`` and shows
    the mean of its last 20 values on the tqdm-like ``bar``. Returns the loss as a float.
    """
    import math

    import numpy as np

    from lensblur.errors import InputError

    value = float(loss.detach())
    if not math.isfinite(value):
        raise InputError(f"training diverged at {where} (loss {value})")
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    recent.append(value)
    bar.update(1)
    bar.set_postfix(loss=f"{np.mean(recent[-20:]):.4f}")
    return value
