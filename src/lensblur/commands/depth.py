"""``lensblur depth``: write the disparity map the render pipeline would use."""

from __future__ import annotations

import argparse

from lensblur.commands.render import add_depth_arguments, input_files, load_depth
from lensblur.io.depth import check_png_output, write_disparity_png, write_disparity_preview
from lensblur.io.images import read_image

NAME = "depth"
HELP = "write the disparity map the pipeline would use (16-bit PNG) and a colour preview"
EXAMPLES = """examples:
  lensblur depth portrait.jpg -o disparity.png --preview preview.png   # the depth the phone embedded
  lensblur depth photo.jpg --depth raw_depth.tif --depth-kind depth --near 0.4 --far 10 -o disparity.png
  lensblur depth photo.jpg --depth d.png -o disparity.png --preview preview.png
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``lensblur depth``."""
    parser.add_argument("input", help="the photo the depth belongs to")
    parser.add_argument("-o", "--output", required=True, help="16-bit PNG disparity (1 = nearest)")
    parser.add_argument("--preview", help="colour-mapped PNG preview of the disparity")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("-v", "--verbose", action="store_true", help="say where the depth came from")
    add_depth_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Read the photo for its size, load and fit the depth, write the outputs."""
    inputs = input_files(args)
    check_png_output(args.output, args.overwrite, inputs)
    if args.preview:
        check_png_output(args.preview, args.overwrite, inputs + [args.output])
    photo = read_image(args.input, max_pixels=args.max_pixels)
    disparity = load_depth(args, photo).disparity
    write_disparity_png(args.output, disparity, overwrite=args.overwrite)
    if args.preview:
        write_disparity_preview(args.preview, disparity, overwrite=args.overwrite)
    return 0
