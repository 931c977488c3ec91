"""The MegaDepth hourglass (Li & Snavely, CVPR 2018), laid out like the authors' checkpoint.

The network is the "Depth in the Wild" hourglass of Chen et al. (2016): a 7×7 stem conv
(3 → 128) with batch norm, four nested hourglass levels built from inception modules, and a
3×3 conv (64 → 1) that predicts log-depth. The authors' PyTorch release
(``pytorch_DIW_scratch.py``, converted from Torch7) expresses it as one nested
``nn.Sequential`` of ConcatTable / Concat / CAddTable containers, so the checkpoint's keys are
positional, e.g. ``module.0.weight``, ``module.1.running_mean``,
``module.3.0.0.1.2.3.weight`` (``module.`` from the DataParallel wrapper it was saved from).
This module rebuilds the same tree with readable container classes whose child indices, and
so whose state-dict keys, equal the original's: :func:`load_megadepth` loads that file with
strict key and shape checking.

Sizes: the input is N×3×H×W sRGB in [0, 1] (no mean/std normalisation), H and W multiples of
16 (four 2× poolings); the output is N×1×H×W log-depth (arbitrary scale and offset).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lensblur.errors import InputError
from lensblur.models import load_tensors

FEATURE_CHANNELS = 64
"""Channels of the feature map before the final conv (what DBSI's last layer reads)."""

SIZE_MULTIPLE = 16
"""Height and width of the input must be multiples of this (four 2× poolings)."""

PREFIXES = ("module.", "netG.", "model.")
"""Key prefixes stripped (repeatedly, in any order) from a checkpoint before loading."""

# Inception configurations [[c1], [k, reduce, out], ...] as in the Torch7 / official code:
# the first entry is a 1×1 branch with c1 outputs; each other entry is 1×1 (reduce) → k×k (out).
_A32 = [[32], [3, 32, 32], [5, 32, 32], [7, 32, 32]]
_A64 = [[64], [3, 32, 64], [5, 32, 64], [7, 32, 64]]
_B32 = [[32], [3, 64, 32], [5, 64, 32], [7, 64, 32]]
_C16 = [[16], [3, 32, 16], [7, 32, 16], [11, 32, 16]]
_D16 = [[16], [3, 64, 16], [7, 64, 16], [11, 64, 16]]
_E32 = [[32], [3, 64, 32], [7, 64, 32], [11, 64, 32]]
_E64 = [[64], [3, 64, 64], [7, 64, 64], [11, 64, 64]]


class Fork(nn.ModuleList):
    """Torch7 ConcatTable: every child sees the same input; returns the list of their outputs."""

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Apply each child to ``x``."""
        return [branch(x) for branch in self]


class Concat(nn.ModuleList):
    """Torch7 Concat along channels: children see the same input, outputs are concatenated."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenate the children's outputs on dim 1."""
        return torch.cat([branch(x) for branch in self], dim=1)


class Sum(nn.Module):
    """Torch7 CAddTable: the element-wise sum of a list of equally shaped tensors."""

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        """Sum the tensors of ``xs``."""
        total = xs[0]
        for x in xs[1:]:
            total = total + x
        return total


def _conv_bn_relu(cin: int, cout: int, kernel: int) -> list[nn.Module]:
    # Inner batch norms of the released model have no affine weight/bias (Torch7 converter).
    return [nn.Conv2d(cin, cout, kernel, padding=(kernel - 1) // 2),
            nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1, affine=False), nn.ReLU()]


def inception(in_channels: int, config: list[list[int]]) -> Concat:
    """Chen et al.'s inception module: parallel 1×1 and 1×1→k×k conv-BN-ReLU branches, concatenated.

    in_channels: input channels. config: ``[[c1], [k, reduce, out], ...]``; output channels are
    ``c1 + Σ out``; spatial size is kept (``same`` padding).
    """
    branches = [nn.Sequential(*_conv_bn_relu(in_channels, config[0][0], 1))]
    for kernel, reduce, out in config[1:]:
        branches.append(nn.Sequential(*_conv_bn_relu(in_channels, reduce, 1),
                                      *_conv_bn_relu(reduce, out, kernel)))
    return Concat(branches)


def _level(lower: list[nn.Module], skip: list[nn.Module], lower_first: bool) -> nn.Sequential:
    """One hourglass level: a pooled path and a full-resolution path, summed."""
    paths = [nn.Sequential(*lower), nn.Sequential(*skip)]
    if not lower_first:
        paths.reverse()
    return nn.Sequential(Fork(paths), Sum())


def scaled_config(config: list[list[int]], width: float) -> list[list[int]]:
    """An inception configuration with every channel count multiplied by ``width`` (rounded, at
    least 1); kernel sizes are kept. ``width=1`` returns the official configuration."""
    def scale(channels: int) -> int:
        return max(1, int(round(channels * width)))

    return [[scale(config[0][0])]] + [[kernel, scale(reduce), scale(out)] for kernel, reduce, out in config[1:]]


def _outputs(config: list[list[int]]) -> int:
    return config[0][0] + sum(out for _, _, out in config[1:])


class _Inceptions:
    """The seven inception configurations of the hourglass at one width, and their output sizes."""

    def __init__(self, width: float) -> None:
        self.a32, self.a64, self.b32, self.c16, self.d16, self.e32, self.e64 = (
            scaled_config(c, width) for c in (_A32, _A64, _B32, _C16, _D16, _E32, _E64))
        self.wide = _outputs(self.a64)      # 256 at width 1
        self.narrow = _outputs(self.a32)    # 128 at width 1
        self.features = _outputs(self.c16)  # 64 at width 1


def _channels1(c: _Inceptions) -> nn.Sequential:
    """Innermost level (256 → 256 channels at width 1, 1/8 → 1/16 resolution)."""
    return _level([nn.AvgPool2d(2, 2), inception(c.wide, c.a64), inception(c.wide, c.a64),
                   inception(c.wide, c.a64), nn.Upsample(scale_factor=2)],
                  [inception(c.wide, c.a64), inception(c.wide, c.a64)], lower_first=False)


def _channels2(c: _Inceptions) -> nn.Sequential:
    """Level 2 (256 → 256 channels at width 1, 1/4 resolution)."""
    return _level([nn.AvgPool2d(2, 2), inception(c.wide, c.a64), inception(c.wide, c.a64), _channels1(c),
                   inception(c.wide, c.a64), inception(c.wide, c.e64), nn.Upsample(scale_factor=2)],
                  [inception(c.wide, c.a64), inception(c.wide, c.e64)], lower_first=False)


def _channels3(c: _Inceptions) -> nn.Sequential:
    """Level 3 (128 → 128 channels at width 1, 1/2 resolution)."""
    return _level([nn.MaxPool2d(2, 2), inception(c.narrow, c.a32), inception(c.narrow, c.a64), _channels2(c),
                   inception(c.wide, c.a64), inception(c.wide, c.a32), nn.Upsample(scale_factor=2)],
                  [inception(c.narrow, c.a32), inception(c.narrow, c.e32)], lower_first=True)


def _channels4(c: _Inceptions) -> nn.Sequential:
    """Outermost level (128 → 64 channels at width 1, full resolution)."""
    return _level([nn.MaxPool2d(2, 2), inception(c.narrow, c.a32), inception(c.narrow, c.a32), _channels3(c),
                   inception(c.narrow, c.b32), inception(c.narrow, c.c16), nn.Upsample(scale_factor=2)],
                  [inception(c.narrow, c.d16)], lower_first=True)


class MegaDepthHourglass(nn.Sequential):
    """The MegaDepth / DIW hourglass; children 0–4 are the released checkpoint's top level.

    0: Conv2d(in_channels, 128, 7), 1: BatchNorm2d(128) (affine), 2: ReLU, 3: the four nested
    levels (128 → 64 channels), 4: Conv2d(64, 1, 3) → log-depth.
    Input N×in_channels×H×W (sRGB in [0, 1] first), H and W multiples of :data:`SIZE_MULTIPLE`;
    output N×1×H×W.

    width: multiplies every channel count (0 < width ≤ 4; e.g. 0.25 gives a network with about
    1/16 of the parameters and 16 feature channels); in_channels: input channels (extra ones
    after RGB, e.g. DBSI's disparity). The defaults (1.0, 3) are exactly the released layout.
    """

    def __init__(self, width: float = 1.0, in_channels: int = 3) -> None:
        if not 0 < width <= 4:
            raise InputError(f"hourglass width must be in (0, 4], got {width}")
        if in_channels < 1:
            raise InputError(f"hourglass input channels must be >= 1, got {in_channels}")
        channels = _Inceptions(width)
        super().__init__(nn.Conv2d(in_channels, channels.narrow, 7, padding=3), nn.BatchNorm2d(channels.narrow),
                         nn.ReLU(), _channels4(channels), nn.Conv2d(channels.features, 1, 3, padding=1))
        self.width = float(width)
        self.feature_channels = channels.features

    @property
    def in_channels(self) -> int:
        """Input channels the stem conv takes (3 for the released model)."""
        return self[0].in_channels

    @property
    def head(self) -> nn.Conv2d:
        """The final 3×3 conv (features → 1 channel, log-depth); DBSI replaces or re-heads it."""
        return self[4]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The N×F×H×W feature map before the final conv (after the last ReLU and skip sum), with
        F = :attr:`feature_channels` (64 at width 1).

        x: N×in_channels×H×W (sRGB in [0, 1] first), H and W multiples of 16.
        """
        _check_size(x, self.in_channels)
        for index in range(4):
            x = self[index](x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log-depth N×1×H×W (natural log, arbitrary scale) of N×3×H×W sRGB input in [0, 1]."""
        return self.head(self.forward_features(x))


def _check_size(x: torch.Tensor, channels: int = 3) -> None:
    if x.ndim != 4 or x.shape[1] != channels:
        raise InputError(f"MegaDepth input must be N×{channels}×H×W, got shape {tuple(x.shape)}")
    height, width = x.shape[-2:]
    if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE or height == 0 or width == 0:
        raise InputError(f"MegaDepth input height and width must be positive multiples of "
                         f"{SIZE_MULTIPLE}, got {width}×{height}")


def count_parameters(model: nn.Module) -> int:
    """Number of learnable parameters (running statistics excluded)."""
    return sum(p.numel() for p in model.parameters())


def remap_state_dict(state: dict) -> "OrderedDict[str, torch.Tensor]":
    """Strip DataParallel / wrapper prefixes (``module.``, ``netG.``, ``model.``) from every key.

    A dict that holds the weights under ``state_dict``, ``netG`` or ``model`` (a training
    checkpoint) is unwrapped first. Raises InputError when no tensor mapping is found.
    """
    for wrapper in ("state_dict", "netG", "model"):
        inner = state.get(wrapper) if isinstance(state, dict) else None
        if isinstance(inner, dict):
            state = inner
            break
    if not isinstance(state, dict) or not state or not all(torch.is_tensor(v) for v in state.values()):
        raise InputError("not a MegaDepth checkpoint: expected a state dict of tensors")
    remapped: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, value in state.items():
        key = str(key)
        stripped = True
        while stripped:
            stripped = False
            for prefix in PREFIXES:
                if key.startswith(prefix):
                    key, stripped = key[len(prefix):], True
        remapped[key] = value
    return remapped


def check_state_dict(model: nn.Module, state: dict, limit: int = 3) -> None:
    """Raise InputError naming the first ``limit`` missing, unexpected or mis-shaped keys.

    ``num_batches_tracked`` counters are optional (checkpoints from PyTorch < 0.4 lack them).
    """
    expected = {k: v.shape for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    given = {k: v.shape for k, v in state.items() if not k.endswith("num_batches_tracked")}
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    shapes = [f"{k} {tuple(given[k])} (expected {tuple(expected[k])})"
              for k in expected if k in given and given[k] != expected[k]]
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)):
        if items:
            more = f" and {len(items) - limit} more" if len(items) > limit else ""
            problems.append(f"{label}: {', '.join(items[:limit])}{more}")
    if problems:
        raise InputError("checkpoint does not match the MegaDepth hourglass layout: " + "; ".join(problems))


def load_state(model: MegaDepthHourglass, state: dict) -> MegaDepthHourglass:
    """Load a (possibly prefixed) state dict into ``model`` strictly; InputError on any mismatch."""
    state = remap_state_dict(state)
    check_state_dict(model, state)
    for key, buffer in model.state_dict().items():  # fill optional counters so strict loading passes
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = buffer.clone()
    model.load_state_dict(state, strict=True)
    return model


def load_megadepth(path: str | os.PathLike) -> MegaDepthHourglass:
    """Build the hourglass and load the authors' ``best_generalization_net_G.pth`` (or any state
    dict of the same layout, with or without ``module.`` / ``netG.`` / ``model.`` prefixes).

    Loaded on the CPU with ``weights_only=True`` (no code from the file is run); returned in eval
    mode. Every failure (no file, not a checkpoint, wrong layout) raises a one-line InputError.
    """
    state = load_tensors(path, "MegaDepth weights")
    try:
        model = load_state(MegaDepthHourglass(), state)
    except InputError as error:
        raise InputError(f"MegaDepth weights {path}: {error}") from None
    return model.eval()


def predict_log_depth(model: nn.Module, srgb: np.ndarray) -> np.ndarray:
    """Run ``model`` on one h×w×3 sRGB float image in [0, 1] (h, w multiples of 16).

    Returns the network's h×w float32 natural-log depth (arbitrary scale and offset). Runs in eval
    mode without gradients, on the device of the model's parameters.
    """
    model.eval()
    device = next(model.parameters()).device
    tensor = torch.from_numpy(np.ascontiguousarray(np.asarray(srgb, dtype=np.float32).transpose(2, 0, 1)))
    with torch.no_grad():
        output = model(tensor[None].to(device))
    return output[0, 0].float().cpu().numpy()
