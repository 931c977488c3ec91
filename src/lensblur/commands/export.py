"""``lensblur export``: a learned system's network as a file for other runtimes (ONNX)."""

from __future__ import annotations

import argparse
import importlib

from lensblur.errors import InputError

NAME = "export"
HELP = "export a learned system's network (bggan, d2f) to ONNX for phones and other runtimes"
EXAMPLES = """examples:
  lensblur export bggan --format onnx --out bggan.onnx
  lensblur export bggan --format onnx --out bggan-1024.onnx --size 1024x1536 --checkpoint my-bggan.pt
  lensblur export d2f --format onnx --out d2f.onnx

Needs torch and onnx (pip install 'lensblur[torch]' onnx). The graph has a fixed input size.
"""

EXPORTERS = {"bggan": "lensblur.systems.bggan.export", "d2f": "lensblur.systems.d2f.export"}
"""System name → module with ``export_onnx(checkpoint_path_or_None, out_path, height, width) -> dict``."""


def _size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().replace("×", "x").split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be HxW, e.g. 1024x1536, got {text!r}") from None
    return height, width


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``lensblur export``."""
    parser.add_argument("system", choices=sorted(EXPORTERS), help="the system to export")
    parser.add_argument("--format", default="onnx", choices=["onnx"], help="file format (default onnx)")
    parser.add_argument("--out", required=True, metavar="FILE", help="file to write")
    parser.add_argument("--checkpoint", metavar="CKPT", help="checkpoint to export (default: the shipped one)")
    parser.add_argument("--size", type=_size, default=(1024, 1536), metavar="HxW",
                        help="input size the graph is fixed to (default 1024x1536, EBB!'s)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def run(args: argparse.Namespace) -> int:
    """Export and print the summary as ``key: value`` lines."""
    from lensblur.io.atomic import check_output
    from lensblur.models import require_torch

    require_torch()
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise InputError("exporting to ONNX needs the onnx package: pip install onnx==1.23.2") from None
    check_output(args.out, overwrite=args.overwrite)
    module = importlib.import_module(EXPORTERS[args.system])
    summary = module.export_onnx(args.checkpoint, args.out, *args.size)
    for key, value in summary.items():
        print(f"{key}: {value}")
    return 0
