"""``--renderer d2f``: D2F on a photo alone (Luo et al., "Defocus to Focus"; docs/d2f.md).

The network sees only the image: the disparity map and the lens settings are not used (D2F
hallucinates the defocus and learned one look, focused on the nearest subject, from its training
set). ``lens.aperture``, ``lens.highlights``, ``lens.grain`` and the other lens options are
ignored; clipped highlights are handled by D2F's own fixed boost (notes §4.2).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from lensblur.color import linear_to_srgb, srgb_to_linear
from lensblur.errors import InputError
from lensblur.renderers import register

SHIPPED = Path(__file__).resolve().parent / "weights" / "d2f.pt"
"""The shipped checkpoint (docs/d2f.md gives the commands that made it)."""


@functools.lru_cache(maxsize=8)
def _load(path: str, modified: float):
    import torch

    from lensblur.systems.d2f.model import build
    from lensblur.training.checkpoint import load_checkpoint

    payload = load_checkpoint(path, "d2f")
    try:
        model = build(payload.get("config", {}).get("model", {}))
        model.load_state_dict({k: (v.float() if torch.is_floating_point(v) else v)
                               for k, v in payload["model"].items()}, strict=True)
    except (RuntimeError, KeyError, TypeError, ValueError, AttributeError) as error:
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise InputError(f"checkpoint {path}: does not match the D2F model it describes ({first})") from None
    return model.eval()


def load_d2f(checkpoint: str | Path | None = None):
    """The D2F model of a checkpoint path (None: the shipped one), in eval mode. Cached per path
    and modification time; one-line InputError on any problem."""
    from lensblur.models import require_torch

    require_torch()
    path = Path(checkpoint) if checkpoint is not None else SHIPPED
    if not path.is_file():
        hint = "" if checkpoint is not None else ": reinstall lensblur or train one (docs/d2f.md)"
        raise InputError(f"checkpoint {path}: no such file{hint}")
    return _load(str(path.resolve()), path.stat().st_mtime)


def predict(model, srgb: np.ndarray, *, fusion: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Run D2F on one sRGB H×W×3 image in [0, 1]. Returns (bokeh, defocus): bokeh sRGB float32
    H×W×3 in [0, 1] (without ``fusion``: the upsampled stage-1 render, no sharp-image blend);
    defocus float32 h×w on the level scale [0, 1] at the working size (about half)."""
    import torch

    from lensblur.systems.d2f.model import resize, working_size

    srgb = np.asarray(srgb, np.float32)
    if srgb.ndim != 3 or srgb.shape[2] != 3:
        raise InputError(f"D2F needs an H×W×3 image, got shape {srgb.shape}")
    height, width = srgb.shape[:2]
    image = torch.from_numpy(np.ascontiguousarray(srgb.transpose(2, 0, 1)))[None]
    model.render_method = "auto"
    with torch.no_grad():
        small = resize(image, *working_size(height, width))
        bokeh_small, defocus = model.stage_one(small)
        out = model.stage_two(image, bokeh_small, defocus)[0] if fusion else resize(bokeh_small, height, width).clamp(0, 1)
    return out[0].permute(1, 2, 0).numpy().astype(np.float32), defocus[0, 0].numpy().astype(np.float32)


@register("d2f")
def render_d2f(image: np.ndarray, disparity: np.ndarray, lens, matte: np.ndarray | None = None, *,
               checkpoint: str | Path | None = None, fusion: bool = True) -> np.ndarray:
    """D2F bokeh of a linear H×W×3 float32 image; returns linear float32 H×W×3.

    checkpoint: a checkpoint path (None: the shipped one). fusion: False returns the stage-1
    render upsampled, without the fusion stage (an ablation). ``disparity``, ``lens`` and
    ``matte`` are not used: D2F works from the image alone.
    """
    model = load_d2f(checkpoint)
    srgb = linear_to_srgb(np.clip(np.asarray(image, np.float32), 0.0, 1.0)).astype(np.float32)
    out, _ = predict(model, srgb, fusion=fusion)
    return srgb_to_linear(out).astype(np.float32)
