"""``lensblur export d2f --format onnx``: the whole D2F pipeline as one ONNX graph.

Input ``image``: 1×3×H×W float32 sRGB in [0, 1] at the exported size. Outputs ``bokeh``
(1×3×H×W sRGB in [0, 1], stage 1 + fusion) and ``defocus`` (1×1×h×w at the working size, level
scale [0, 1]). The renderer runs as direct depthwise convolutions (the FFT path does not
export), the kernels and layer count fixed by the exported size.
"""

from __future__ import annotations

import warnings
from pathlib import Path

DEFAULT_SIZE = (384, 576)
OPSET = 17


def export_onnx(checkpoint, out_path, height: int, width: int) -> dict:
    """Write the ONNX model of a D2F checkpoint (None: the shipped one) for H×W inputs to
    ``out_path`` atomically; returns a summary (path, size, opset, bytes)."""
    import torch

    from lensblur.errors import InputError
    from lensblur.io.atomic import atomic_output
    from lensblur.systems.d2f.model import working_size
    from lensblur.systems.d2f.renderer import load_d2f

    if height < 64 or width < 64:
        raise InputError(f"D2F export size must be at least 64×64, got {width}×{height}")
    model = load_d2f(checkpoint)
    model.render_method = "direct"
    example = torch.rand(1, 3, height, width)
    with atomic_output(out_path, overwrite=True) as temporary, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes on the fixed sizes, which are fixed on purpose
        torch.onnx.export(model, (example,), str(temporary), input_names=["image"],
                          output_names=["bokeh", "defocus"], opset_version=OPSET, dynamo=False)
    work_h, work_w = working_size(height, width)
    return {"system": "d2f", "onnx": str(out_path), "input": f"image 1x3x{height}x{width} sRGB [0, 1]",
            "outputs": f"bokeh 1x3x{height}x{width}, defocus 1x1x{work_h}x{work_w}", "opset": OPSET,
            "bytes": Path(out_path).stat().st_size}
