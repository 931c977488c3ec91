"""``lensblur synth``: write a folder of random layered scenes with exact thin-lens ground truth."""

from __future__ import annotations

import argparse

from lensblur.errors import InputError
from lensblur.progress import progress_bar

NAME = "synth"
HELP = "generate synthetic scenes with exact lens-blur ground truth (for eval and training)"
EXAMPLES = """examples:
  lensblur synth scenes --count 16 --seed 2026 --size 384x576
  lensblur synth scenes --count 100 --seed 7 --size 768x1024 --workers 2 --layers
  lensblur synth scenes --count 10 --photos ~/Pictures/textures
  lensblur synth nearest-scenes --count 200 --size 256x384 --focus nearest
  lensblur synth night --kind night --count 12 --seed 2026 --size 320x480
  lensblur synth train --kind mixed --count 5000 --seed 101 --size 256x384 --workers 2

Per scene NNNN: _image.png (8-bit sRGB, all in focus, highlights clipped), _disparity.png
(16-bit, 1 = nearest), _gt.png (8-bit sRGB ground truth), _meta.json (focus, blur K, aperture,
seed) and with --layers _layers.npz. The same seed gives the same files on any machine.
--kind night: street lamps and their reflections at night; _image.png is then what a stopped-down
camera records (glare and starbursts added, clipped), _meta.json also lists the lamps and glare.
--kind mixed: the training-data engine (many backgrounds, people, fur, plants, thin structures,
floors and walls, lamps); also _mask.png, the nearest object's alpha (docs/training.md).
"""


def parse_size(text: str) -> tuple[int, int]:
    """``HxW`` (e.g. 384x576) → (height, width) in pixels."""
    try:
        height, width = (int(part) for part in text.lower().replace("×", "x").split("x"))
    except ValueError:
        raise InputError(f"size must look like HEIGHTxWIDTH, e.g. 384x576, got {text!r}") from None
    if height < 8 or width < 8:
        raise InputError(f"size must be at least 8x8, got {text}")
    return height, width


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``lensblur synth``."""
    parser.add_argument("out", help="folder to write the scenes into (created if missing)")
    parser.add_argument("--count", type=int, default=16, metavar="N", help="number of scenes (default 16)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    parser.add_argument("--size", default="384x576", metavar="HxW", help="scene size in pixels (default 384x576)")
    cluster = parser.add_mutually_exclusive_group()
    cluster.add_argument("--workers", type=int, metavar="N", help="worker processes of the local Dask cluster "
                         "(default: the CPU cores; 0 works in this process)")
    cluster.add_argument("--scheduler", metavar="tcp://HOST:8786", help="run on this existing Dask cluster "
                         "(OUT must be at the same path on its workers); see docs/batch.md")
    parser.add_argument("--layers", action="store_true", help="also save the layers and linear ground truth (.npz)")
    parser.add_argument("--photos", metavar="DIR", help="folder of photos to use as textures "
                        "(default: scikit-image's bundled photos and procedural noise)")
    parser.add_argument("--kind", choices=("layered", "night", "mixed"), default="layered",
                        help="layered (default): random layers with point lights; night: lamps with glare; "
                             "mixed: the training-data engine (docs/training.md)")
    parser.add_argument("--focus", default="any", choices=["any", "nearest"],
                        help="focus plane: any (random: a subject, the background or between; default) or "
                             "nearest (always the nearest subject, as EBB! is; for image-only models)")
    parser.add_argument("--overwrite", action="store_true", help="write into a folder that already holds scenes")


def run(args: argparse.Namespace) -> int:
    """Generate the scenes and print where they went."""
    from lensblur.synth.dataset import generate

    height, width = parse_size(args.size)
    with progress_bar(args.count, "scenes", getattr(args, "quiet", False)) as bar:
        generate(args.out, args.count, args.seed, height, width, workers=args.workers, scheduler=args.scheduler,
                 layers=args.layers, photo_dir=args.photos, overwrite=args.overwrite,
                 kind=getattr(args, "kind", "layered"), focus=getattr(args, "focus", "any"),
                 progress=lambda: bar.update(1))
    if not getattr(args, "quiet", False):
        print(f"wrote {args.count} scenes of {height}x{width} to {args.out}")
    return 0
