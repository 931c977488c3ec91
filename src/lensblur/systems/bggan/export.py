"""``lensblur export bggan``: Glass-Net as an ONNX graph for phones (section 2.3).

The graph takes ``image`` (1×3×H×W, sRGB scaled to [-1, 1]) and returns ``bokeh`` (same shape
and range) at the fixed size it was exported for; the instance norm is exported as average
pools, subtractions, products, a square root and a division, so no InstanceNormalization or
axis-reducing op (ReduceMean, ReduceSum, …) is in it and phone GPU delegates run every op.
TFLite is not written: no converter from PyTorch or ONNX to TFLite installs from PyPI without
TensorFlow (docs/bggan.md).
"""

from __future__ import annotations

import collections
import os
import warnings
from pathlib import Path

from lensblur.errors import InputError
from lensblur.io.atomic import atomic_output

FORBIDDEN_OPS = ("InstanceNormalization", "ReduceMean", "ReduceSum", "ReduceSumSquare",
                 "ReduceL2", "ReduceMax", "ReduceMin", "ReduceProd", "GlobalAveragePool", "LayerNormalization")
"""Ops that must not appear in the exported graph (section 2.3). BatchNormalization (the batch-norm
ablation) may: at inference it is a per-channel scale and shift, which GPU delegates run."""

OPSET = 17


def export_onnx(checkpoint: str | os.PathLike | None, out_path: str | os.PathLike, height: int, width: int) -> dict:
    """Write the Glass-Net of ``checkpoint`` (None: the shipped one) as ONNX for H×W inputs
    (multiples of 8) to ``out_path`` atomically (replacing it); returns a summary (file, size, ops, parameters).
    A batch-norm checkpoint exports BatchNormalization nodes holding its running statistics."""
    import torch

    from lensblur.systems.bggan.model import SIZE_MULTIPLE, count_parameters
    from lensblur.systems.bggan.renderer import load_bggan

    if height <= 0 or width <= 0 or height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
        raise InputError(f"export size must be positive multiples of {SIZE_MULTIPLE}, got {height}x{width}")
    model, _ = load_bggan(checkpoint)
    example = torch.zeros(1, 3, height, width)
    with atomic_output(out_path, overwrite=True) as temporary, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), str(temporary), input_names=["image"], output_names=["bokeh"],
                          opset_version=OPSET, dynamo=False, do_constant_folding=True)
    ops = graph_ops(out_path)
    bad = sorted(set(ops) & set(FORBIDDEN_OPS))
    if bad:
        Path(out_path).unlink()
        raise InputError(f"the exported graph holds {', '.join(bad)}, which phone GPU delegates do not run")
    return {"file": str(out_path), "size": f"{height}x{width}", "bytes": Path(out_path).stat().st_size,
            "parameters": count_parameters(model), "norm": model.config["norm"],
            "ops": ", ".join(f"{name} {count}" for name, count in sorted(ops.items()))}


def graph_ops(path: str | os.PathLike) -> collections.Counter:
    """How often each op type occurs in an ONNX file's main graph."""
    import onnx

    return collections.Counter(node.op_type for node in onnx.load(str(path)).graph.node)
