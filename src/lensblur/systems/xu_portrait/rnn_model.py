"""The learned half of the portrait DoF system of Xu et al. (2018): SPN refinement of the
segmentation and disparity, then the spatially-variant recursive filter (one checkpoint).

Arrays in, arrays out: :func:`render` takes linear RGB float32 H×W×3, disparity and a coarse
segmentation (float32 H×W in [0, 1]) and returns linear RGB float32 H×W×3.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from lensblur.color import linear_to_srgb, srgb_to_linear
from lensblur.highlights import recover_highlights
from lensblur.lens import Highlights, signed_coc
from lensblur.systems.xu_portrait.recursive_filter import RecursiveFilterNet
from lensblur.systems.xu_portrait.spn import SpatialPropagationNet

SYSTEM = "portrait-rnn"
GUIDE_SIDE = 384  # longest side in pixels the filter's guidance CNN sees at inference (cost control)


class PortraitRNN(nn.Module):
    """``spn`` (:class:`SpatialPropagationNet`) and ``filter`` (:class:`RecursiveFilterNet`)."""

    def __init__(self, spn: dict | None = None, filter: dict | None = None):  # noqa: A002 - checkpoint key
        super().__init__()
        self.spn = SpatialPropagationNet(**(spn or {}))
        self.filter = RecursiveFilterNet(**(filter or {}))

    def config(self) -> dict:
        """Plain values that rebuild this model."""
        return {"spn": dict(self.spn.config), "filter": dict(self.filter.config)}

    @classmethod
    def from_checkpoint(cls, payload: dict) -> "PortraitRNN":
        """The model of a loaded checkpoint payload (float16 storage is cast back to float32)."""
        config = payload["config"]
        model = cls(config.get("spn"), config.get("filter"))
        state = {key: value.float() if value.is_floating_point() else value for key, value in payload["model"].items()}
        model.load_state_dict(state)
        model.eval()
        return model


def encode_srgb(linear: torch.Tensor) -> torch.Tensor:
    """sRGB encoding of a linear tensor, clipped to [0, 1] first (differentiable)."""
    linear = linear.clamp(0.0, 1.0)
    high = 1.055 * linear.clamp_min(0.0031308) ** (1 / 2.4) - 0.055
    return torch.where(linear <= 0.0031308, 12.92 * linear, high)


def _tensor(array: np.ndarray) -> torch.Tensor:
    array = np.ascontiguousarray(array, dtype=np.float32)
    if array.ndim == 2:
        return torch.from_numpy(array)[None, None]
    return torch.from_numpy(array).permute(2, 0, 1)[None].contiguous()


def filter_inputs(image: np.ndarray, disparity: np.ndarray, segmentation: np.ndarray, focus_disparity: float,
                  blur: float, focus_range: float = 0.0, highlights: Highlights | None = Highlights(),
                  linear: np.ndarray | None = None) -> list[torch.Tensor]:
    """The five 1×C×H×W tensors :class:`RecursiveFilterNet` takes.

    image: sRGB uint8 H×W×3 or sRGB float in [0, 1] (ignored for the linear values when
    ``linear`` is given); disparity, segmentation: float32 H×W in [0, 1]; focus_disparity: d_f;
    blur: K in pixels; highlights: clipped-highlight recovery applied to the filtered image.
    """
    encoded = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else np.asarray(image, np.float32)
    if linear is None:
        linear = srgb_to_linear(encoded)
    coc = signed_coc(disparity, blur, focus_disparity, focus_range)
    boosted = recover_highlights(np.asarray(linear, np.float32), coc, highlights)
    return [_tensor(boosted), _tensor(encoded), _tensor(disparity), _tensor(segmentation), _tensor(coc)]


@torch.no_grad()
def refine_maps(model: PortraitRNN, encoded: np.ndarray, segmentation: np.ndarray,
                disparity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SPN-refined (segmentation, disparity), float32 H×W in [0, 1]; ``encoded`` is sRGB float."""
    logits, refined = model.spn(_tensor(encoded), _tensor(segmentation), _tensor(disparity))
    return (torch.sigmoid(logits)[0, 0].numpy().astype(np.float32),
            refined[0, 0].clamp(0, 1).numpy().astype(np.float32))


@torch.no_grad()
def render(model: PortraitRNN, image: np.ndarray, disparity: np.ndarray, segmentation: np.ndarray, *,
           focus_disparity: float, blur: float, focus_range: float = 0.0,
           highlights: Highlights | None = Highlights(), refine: bool = True) -> np.ndarray:
    """Linear RGB float32 H×W×3 in [0, 1]: refine the maps with the SPN (when ``refine``), then run
    the recursive filter. image: linear float32 H×W×3; disparity, segmentation: float32 H×W."""
    linear = np.clip(np.asarray(image, np.float32), 0.0, 1.0)
    encoded = linear_to_srgb(linear)
    if refine:
        segmentation, disparity = refine_maps(model, encoded, segmentation, disparity)
    inputs = filter_inputs(encoded, disparity, segmentation, focus_disparity, blur, focus_range, highlights, linear)
    stride = max(model.filter.guide_stride, -(-max(linear.shape[:2]) // GUIDE_SIDE))
    out = model.filter(*inputs, guide_stride=stride)
    return np.ascontiguousarray(out[0].permute(1, 2, 0).clamp(0, 1).numpy(), dtype=np.float32)
