"""``lensblur batch``: render whole folders of photos, locally in parallel or on a Dask cluster."""

from __future__ import annotations

import argparse
import sys

from lensblur.commands.render import _check_quality, add_render_options
from lensblur.errors import LensblurError
from lensblur.progress import progress_bar

NAME = "batch"
HELP = "render lens blur on many photos (folders, globs) in parallel or on a Dask cluster"
EXAMPLES = """examples:
  lensblur batch ~/Pictures/portraits -o blurred                 # depth the phones embedded
  lensblur batch shoot/ --recursive --depth-dir shoot-depth -o out --name '{stem}_bokeh.png'
  lensblur batch 'raw/*.heic' -o out --blur 40 --shape blades:7 --workers 4
  lensblur batch /shared/photos -o /shared/out --scheduler tcp://10.0.0.5:8786

Every 'render' option applies to each photo. OUTDIR/manifest.jsonl gets one row per photo
(input, output, depth source, focus, K, seconds, status, error); a rerun skips photos already
done. Exit 0 when all succeeded, 1 when any failed (the manifest says which), 2 for usage.
See docs/batch.md for clusters.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``lensblur batch``: its own, then every ``render`` option."""
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="photos, folders or glob patterns")
    parser.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="folder for the outputs")
    parser.add_argument("--name", default="{stem}_bokeh.{ext}", metavar="PATTERN",
                        help="output file name from {stem}, {ext} and {name} of the input; the extension "
                             "sets the format (default '{stem}_bokeh.{ext}')")
    parser.add_argument("-r", "--recursive", action="store_true", help="also take photos in subfolders "
                        "(mirrored under OUTDIR) and let ** in patterns match subfolders")
    parser.add_argument("--depth-dir", metavar="DIR", help="depth maps named like the photos (STEM.png, "
                        "STEM_depth.tif, STEM_disparity.npy, ...) instead of --depth")
    parser.add_argument("--manifest", metavar="PATH", help="manifest file, JSON lines or .csv "
                        "(default OUTDIR/manifest.jsonl)")
    cluster = parser.add_mutually_exclusive_group()
    cluster.add_argument("--workers", type=int, metavar="N", help="worker processes of the local Dask cluster "
                         "(default: the CPU cores; 0 renders in this process, one photo at a time)")
    cluster.add_argument("--scheduler", metavar="tcp://HOST:8786", help="run on this existing Dask cluster; "
                         "inputs and OUTDIR must be at the same paths on its workers")
    add_render_options(parser)


def run(args: argparse.Namespace) -> int:
    """Render the batch; exit 1 (one line on stderr) when any photo failed."""
    from lensblur.aot import prefer_jit
    from lensblur.batch import run_batch

    prefer_jit()  # many photos: numba's parallel kernels pay back their import
    _check_quality(args.quality)
    with progress_bar(0, "batch", args.quiet) as bar:
        def step(row: dict | None, total: int) -> None:
            if row is None:
                bar.reset(total=total)
                return
            bar.update(1)
            if args.verbose and row["status"] != "done":
                bar.write(f"failed: {row['input']}: {row['error']}", file=sys.stderr)

        summary = run_batch(args.inputs, args.output, args, name=args.name, recursive=args.recursive,
                            depth_dir=args.depth_dir, manifest=args.manifest, workers=args.workers,
                            scheduler=args.scheduler, progress=step)
    if not args.quiet:
        print(f"{len(summary.done)} rendered, {len(summary.failed)} failed, {len(summary.skipped)} already done; "
              f"manifest {summary.manifest}")
    if summary.failed:
        first = summary.failed[0]
        raise LensblurError(f"{len(summary.failed)} of {len(summary.done) + len(summary.failed)} photos failed "
                            f"(first: {first['input']}: {first['error']}); see {summary.manifest}")
    return 0
