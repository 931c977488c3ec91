"""``lensblur export``: write a learned system as an ONNX model (needs torch and onnx)."""

from __future__ import annotations

import argparse
import importlib

from lensblur.errors import InputError

NAME = "export"
HELP = "export a learned system (d2f) as an ONNX model"
EXAMPLES = """examples:
  lensblur export d2f --format onnx --out d2f.onnx
  lensblur export d2f --format onnx --out d2f.onnx --checkpoint my-d2f.pt --size 768x1024

The exported graph has a fixed input size (--size, default 384x576); docs/d2f.md describes its
inputs and outputs.
"""

EXPORTERS = {
    "d2f": "lensblur.systems.d2f.export",
}
"""System name → module defining ``export_onnx(checkpoint_or_None, out_path, height, width) -> dict``."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``lensblur export``."""
    parser.add_argument("system", choices=sorted(EXPORTERS), help="the learned system to export")
    parser.add_argument("--format", default="onnx", choices=["onnx"], help="output format (onnx)")
    parser.add_argument("--out", required=True, metavar="FILE", help="file to write (.onnx)")
    parser.add_argument("--checkpoint", metavar="CKPT", help="checkpoint to export (default: the shipped one)")
    parser.add_argument("--size", default="384x576", metavar="HxW", help="input size of the graph (default 384x576)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def run(args: argparse.Namespace) -> int:
    """Export and print the exporter's summary as ``key: value`` lines."""
    from pathlib import Path

    from lensblur.commands.synth import parse_size
    from lensblur.models import require_torch

    height, width = parse_size(args.size)
    if Path(args.out).exists() and not args.overwrite:
        raise InputError(f"{args.out} exists: pass --overwrite to replace it")
    require_torch()
    summary = importlib.import_module(EXPORTERS[args.system]).export_onnx(args.checkpoint, args.out, height, width)
    for key, value in summary.items():
        print(f"{key}: {value}")
    return 0
