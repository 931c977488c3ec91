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
    ``lens.focus_disparity`` and ``lens.focus_range``. The network sees the clipped sRGB image
    (as in the paper); with ``lens.highlights`` on, the radiance that clipping took from
    defocused lights (lensblur.highlights) is blurred by the ``scatter`` renderer and added
    (:func:`clipped_light`), so lamps become bright discs. The bokeh shape, rim and cat's eye
    reach only that added light; ``matte`` is ignored."""
    from lensblur.models import require_torch

    require_torch()
    from lensblur.systems.deeplens.session import DeepLensSession

    session = DeepLensSession(image, disparity, checkpoint)
    output = session.render(lens.focus_disparity, lens.blur, lens.focus_range)
    light = clipped_light(image, session.disparity, lens)   # the session's sanitised disparity
    return output if light is None else output + light


def clipped_light(image: np.ndarray, disparity: np.ndarray, lens) -> np.ndarray | None:
    """The defocused share of the radiance clipped highlights lost, linear float32 H×W×3 ≥ 0, or
    None when nothing is boosted (no clipped light out of focus, or ``lens.highlights`` None).

    The gain of lensblur.highlights (lamps at their estimated radiance, large clipped areas
    barely, sharp pixels not at all) gives the light above the clip level; the occlusion-aware
    ``scatter`` renderer spreads it as the lens would (not in the paper, docs/deeplens.md).
    """
    from lensblur.highlights import recover_highlights
    from lensblur.lens import signed_coc
    from lensblur.renderers.scatter import render_scatter

    if lens.highlights is None:
        return None
    clipped = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    coc = signed_coc(disparity, lens.blur, lens.focus_disparity, lens.focus_range)
    radiance = recover_highlights(clipped, coc, lens.highlights)
    if radiance is clipped:
        return None
    extra = np.maximum(radiance - clipped, 0.0)
    if not extra.any():
        return None
    return np.maximum(render_scatter(extra, disparity, lens.with_(highlights=None, grain=None)), 0.0)
