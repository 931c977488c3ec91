"""``lensblur eval``: score renderers against ground truth on a dataset folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from lensblur.commands.options import finite_float, non_negative_float, positive_int
from lensblur.errors import InputError, OutputError
from lensblur.progress import progress_bar

NAME = "eval"
HELP = "measure renderers (PSNR, SSIM, boundary PSNR, time) against ground truth"
EXAMPLES = """examples:
  lensblur synth scenes --count 16 --seed 2026
  lensblur eval --data scenes --renderer identity --renderer naive --renderer scatter
  lensblur eval --data EBB --split val294 --renderer scatter --disparity-dir ebb_depth --limit 50
  lensblur eval --data EBB --protocol dbsi-val294 --lpips lpips-alex.pt
  lensblur eval --data scenes --protocol deeplens

Protocols print a paper's own table (DBSI Table 1 on Val294, DeepLens Table 2, Xu Table 2) with
the paper's reported numbers beside ours; docs/evaluation.md says which renderer stands for which
method. They replace --renderer.

Datasets: a lensblur synth folder; any folder of X_image.* + X_disparity.* + X_gt.*; or EBB!
(original/ + bokeh/ folders of same-name jpgs, or train/original + train/bokeh). Writes
results.csv, results.json and sheet.png to --out (and protocol.md with --protocol).
"""

DEFAULT_RENDERERS = ["identity", "naive", "scatter"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``lensblur eval``."""
    parser.add_argument("--data", required=True, metavar="DIR", help="dataset folder")
    parser.add_argument("--renderer", action="append", metavar="NAME",
                        help="renderer to measure; repeat for several (default: identity, naive, scatter)")
    parser.add_argument("--protocol", choices=["dbsi-val294", "deeplens", "xu"],
                        help="run a paper's own table instead of --renderer (on EBB!, dbsi-val294 uses Val294)")
    parser.add_argument("--out", default="lensblur-eval", metavar="DIR",
                        help="folder for results.csv, results.json and sheet.png (default ./lensblur-eval)")
    parser.add_argument("--limit", type=positive_int, metavar="N", help="use only the first N samples")
    parser.add_argument("--layout", default="auto", choices=["auto", "synth", "folders", "ebb"],
                        help="dataset layout (default: detect)")
    parser.add_argument("--split", default="all", choices=["all", "val294", "train4400"],
                        help="EBB! subset: DBSI's Val294 (images 4400-4693) or the other 4400 (default all)")
    parser.add_argument("--disparity-dir", metavar="DIR", help="EBB!: folder of disparity maps named like the photos")
    parser.add_argument("--blur", type=non_negative_float, metavar="K",
                        help="blur K in pixels where the data has no metadata (default 2.5%% of the width)")
    parser.add_argument("--focus", type=finite_float, metavar="D",
                        help="focus disparity where the data has no metadata (default: at the image centre)")
    parser.add_argument("--sheet", type=int, default=4, metavar="N", help="scenes in the side-by-side sheet (default 4)")
    parser.add_argument("--lpips", metavar="WEIGHTS", help="also compute LPIPS with these AlexNet+head weights (needs torch)")
    cluster = parser.add_mutually_exclusive_group()
    cluster.add_argument("--workers", type=int, default=0, metavar="N",
                         help="score on a local Dask cluster of N worker processes (default 0: in this process, "
                              "so that the seconds are not shared between workers)")
    cluster.add_argument("--scheduler", metavar="tcp://HOST:8786", help="score on this existing Dask cluster "
                         "(the data must be at the same path on its workers); see docs/batch.md")


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the table and write the result files."""
    from lensblur import evaluate, protocols
    from lensblur.batch.cluster import open_client

    protocol = protocols.get_protocol(args.protocol) if getattr(args, "protocol", None) else None
    if protocol and args.renderer:
        raise InputError("--protocol chooses its own renderers: leave out --renderer")
    names = protocol.renderers if protocol else args.renderer or DEFAULT_RENDERERS
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} is a file: give a folder for the results")
    layout = evaluate.detect_layout(args.data) if args.layout == "auto" else args.layout
    if protocol:
        args.split = protocols.paper_split(protocol, layout, args.split)
    samples = evaluate.sample_loaders(args.data, layout, split=args.split, limit=args.limit, blur=args.blur,
                                      focus=args.focus, disparity_dir=args.disparity_dir)
    with open_client(args.workers, args.scheduler) as client, \
            progress_bar(len(samples), "eval", getattr(args, "quiet", False)) as bar:
        results, sheet = evaluate.evaluate(samples, names, sheet_count=args.sheet, lpips_weights=args.lpips,
                                           progress=lambda: bar.update(1), client=client)
    if not results.rows:
        raise InputError("no renderer produced a result: " + "; ".join(results.notes))
    results.layout = layout
    extra = {"data": str(args.data), "split": args.split}
    if protocol:
        extra["protocol"] = protocol.name
    paths = evaluate.write_results(out, results, extra)
    sheet_path = evaluate.write_sheet(out / "sheet.png", sheet)
    print(f"{len(samples)} images from {args.data} ({layout})")
    if protocol:
        label = protocols.data_label(layout, args.split, len(samples))
        print(protocols.format_text(protocol, results.summary, label))
        table = out / "protocol.md"
        table.write_text(protocols.format_markdown(protocol, results.summary, label))
        paths["protocol"] = table
    else:
        print(evaluate.format_table(results.summary))
    for note in results.notes:
        print(f"note: {note}")
    written = [paths["csv"], paths["json"]] + ([paths["protocol"]] if "protocol" in paths else []) \
        + ([sheet_path] if sheet_path else [])
    print("wrote " + ", ".join(str(p) for p in written))
    return 0
