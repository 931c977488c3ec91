"""``deeplens``: the learned DeepLens renderer (Wang et al. 2018), lens blur + guided upsampling.

Runs the shipped checkpoint (``lensblur/systems/deeplens/weights/deeplens.pt``) or ``checkpoint=PATH``
on the given disparity. Without one (CLI: no depth map and none embedded; API: ``disparity=None``)
the paper's depth prediction module (``estimate.py``, shipped ``weights/deeplens-depth.pt``)
predicts it from the image first. See docs/deeplens.md.
"""

from __future__ import annotations

import numpy as np

from lensblur.renderers import register


@register("deeplens")
def render_deeplens(image: np.ndarray, disparity: np.ndarray, lens, matte: np.ndarray | None = None,
                    checkpoint: str | None = None) -> np.ndarray:
    """Linear RGB float32 H×W×3 → linear RGB float32 H×W×3 with K = ``lens.blur``, d_f =
    ``lens.focus_disparity`` and ``lens.focus_range``. The bokeh shape, highlight recovery,
    rim, cat's eye and ``matte`` are not modelled by the network and are ignored."""
    from lensblur.models import require_torch

    require_torch()
    from lensblur.systems.deeplens.session import DeepLensSession

    session = DeepLensSession(image, disparity, checkpoint)
    return session.render(lens.focus_disparity, lens.blur, lens.focus_range)
