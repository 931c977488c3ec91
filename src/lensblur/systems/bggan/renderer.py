"""``--renderer bggan``: Glass-Net (BGGAN, Qian et al. 2020) renders the bokeh from the image alone.

Runs the shipped checkpoint (``weights/bggan.pt``) or ``checkpoint=PATH`` (``lensblur train
bggan``). The network never sees the disparity, the focus or the lens: like the paper, it renders
the one look it learned (focus on the nearest subject, the blur strength of its training data).
``lens.aperture``, ``lens.highlights``, ``lens.grain`` and the focus settings are ignored.

The network runs at the scale it was trained at (the short side of its training scenes, stored
in the checkpoint), because a learned blur is measured in pixels of that scale; the result is
brought back to full size and the photo's own detail is kept wherever the network left the
image unchanged (in focus). ``work_size=0`` runs at full resolution, as the paper does on EBB!.
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np

from lensblur.color import linear_to_srgb, srgb_to_linear
from lensblur.errors import InputError
from lensblur.renderers import register

SHIPPED = "bggan"
SIZE_FLOOR = 8
KEEP_DETAIL = 0.02
"""sRGB change (mean of the channels) below which a pixel counts as left in focus by the network."""


@functools.lru_cache(maxsize=8)
def _load(path: str, modified: float):
    import torch

    from lensblur.systems.bggan.model import build
    from lensblur.training.checkpoint import load_checkpoint

    payload = load_checkpoint(path, "bggan")
    config = payload.get("config", {})
    try:
        model = build(config.get("model", {}))
        model.load_state_dict({k: (v.float() if torch.is_floating_point(v) else v)
                               for k, v in payload["model"].items()}, strict=True)
    except (RuntimeError, KeyError, TypeError, ValueError) as error:
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise InputError(f"checkpoint {path}: does not match the Glass-Net it describes ({first})") from None
    return model.eval(), int(config.get("scene_short_side") or 0)


def load_bggan(checkpoint: str | Path | None = None):
    """(Glass-Net in eval mode, short side in pixels of its training scenes or 0) of a checkpoint
    path or, for None, the shipped one. Cached per path and modification time."""
    from lensblur.training.checkpoint import shipped_checkpoint

    path = shipped_checkpoint(SHIPPED) if checkpoint is None else Path(checkpoint)
    if not path.is_file():
        raise InputError(f"checkpoint {path}: no such file")
    return _load(str(path.resolve()), path.stat().st_mtime)


def run_glass_net(model, srgb: np.ndarray) -> np.ndarray:
    """Glass-Net on one H×W×3 sRGB image in [0, 1] at its own size (reflect-padded to a multiple
    of 8 and cropped back); returns H×W×3 float32 sRGB in [0, 1]."""
    import torch

    from lensblur.systems.bggan.model import SIZE_MULTIPLE

    height, width = srgb.shape[:2]
    pad_h, pad_w = -height % SIZE_MULTIPLE, -width % SIZE_MULTIPLE
    tensor = torch.from_numpy(np.ascontiguousarray(srgb.transpose(2, 0, 1)))[None] * 2 - 1
    if pad_h or pad_w:
        mode = "reflect" if pad_h < height and pad_w < width else "replicate"
        tensor = torch.nn.functional.pad(tensor, (0, pad_w, 0, pad_h), mode=mode)
    with torch.no_grad():
        out = model(tensor)[0, :, :height, :width]
    return ((out.permute(1, 2, 0).numpy() + 1) / 2).clip(0, 1).astype(np.float32)


def render_srgb(model, srgb: np.ndarray, work_size: int) -> np.ndarray:
    """The bokeh of an sRGB H×W×3 image in [0, 1] with the network run where the image's short
    side is ``work_size`` pixels (0 or larger than the image: at full size); float32 sRGB."""
    height, width = srgb.shape[:2]
    scale = work_size / min(height, width) if work_size else 1.0
    if scale >= 1.0:
        return run_glass_net(model, srgb)
    small_size = (max(SIZE_FLOOR, round(width * scale)), max(SIZE_FLOOR, round(height * scale)))
    small = cv2.resize(srgb, small_size, interpolation=cv2.INTER_AREA)
    change = run_glass_net(model, small) - small

    def up(array):
        return cv2.resize(array, (width, height), interpolation=cv2.INTER_LINEAR)

    change_full = up(change)
    detail = srgb - up(small)                       # what the downscale removed
    keep = np.exp(-(np.abs(change_full).mean(axis=2, keepdims=True) / KEEP_DETAIL) ** 2)
    return np.clip(srgb - detail * (1 - keep) + change_full, 0, 1).astype(np.float32)


@register("bggan")
def render_bggan(image: np.ndarray, disparity: np.ndarray, lens, matte: np.ndarray | None = None, *,
                 checkpoint: str | Path | None = None, work_size: int | None = None) -> np.ndarray:
    """BGGAN bokeh of a linear H×W×3 float32 image; returns linear float32 H×W×3.

    checkpoint: a checkpoint path (default: the shipped one). work_size: short side in pixels at
    which the network runs (default: its training scenes'; 0 = full resolution). disparity,
    lens and matte are not used: the network sees the image only.
    """
    from lensblur.models import require_torch

    require_torch()
    model, trained_short_side = load_bggan(checkpoint)
    if work_size is not None and work_size < 0:
        raise InputError(f"work_size must be 0 (full size) or a number of pixels, got {work_size}")
    srgb = linear_to_srgb(np.clip(np.asarray(image, np.float32), 0.0, 1.0)).astype(np.float32)
    out = render_srgb(model, srgb, trained_short_side if work_size is None else int(work_size))
    return srgb_to_linear(out).astype(np.float32)
