"""Quality benchmark: renderers against exact thin-lens ground truth on a fixed synthetic set.

Generates (once, cached in benchmarks/data/) 16 scenes of 384×576 with seed 2026, runs the
renderers named on the command line and writes benchmarks/results/quality.{md,csv,json}.

    python benchmarks/quality.py                      # identity naive gegl scatter
    python benchmarks/quality.py scatter naive --count 4
"""

from __future__ import annotations

import argparse
import platform
import shutil
import sys
import time
from pathlib import Path

from lensblur import evaluate
from lensblur.synth.dataset import generate

HERE = Path(__file__).resolve().parent
DEFAULT_RENDERERS = ["identity", "naive", "gegl", "scatter"]


def dataset(count: int, seed: int, height: int, width: int, refresh: bool = False, focus: str = "any",
            kind: str = "layered") -> Path:
    """The cached scene folder for these settings, generated when missing or incomplete.
    focus: "any" (the project's benchmark) or "nearest" (the same scenes focused on the
    nearest subject, for image-only models trained that way). kind: a ``lensblur synth --kind``."""
    prefix = ("synth" if focus == "any" else f"synth-{focus}") + ("" if kind == "layered" else f"-{kind}")
    folder = HERE / "data" / f"{prefix}-{seed}-{count}-{height}x{width}"
    complete = folder.is_dir() and len(list(folder.glob("*_gt.png"))) == count
    if refresh or not complete:
        shutil.rmtree(folder, ignore_errors=True)
        start = time.perf_counter()
        generate(folder, count, seed, height, width, workers=2, focus=focus, kind=kind)
        print(f"generated {count} scenes in {time.perf_counter() - start:.1f} s -> {folder}", file=sys.stderr)
    return folder


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("renderers", nargs="*", default=DEFAULT_RENDERERS,
                        help="renderer names (default: identity naive gegl scatter); unavailable ones are skipped")
    parser.add_argument("--count", type=int, default=16, help="scenes (default 16)")
    parser.add_argument("--seed", type=int, default=2026, help="seed (default 2026)")
    parser.add_argument("--size", default="384x576", help="HxW (default 384x576)")
    parser.add_argument("--refresh", action="store_true", help="regenerate the cached scenes")
    parser.add_argument("--out", default=str(HERE / "results"), help="results folder (default benchmarks/results)")
    args = parser.parse_args(argv)
    height, width = (int(v) for v in args.size.lower().split("x"))

    folder = dataset(args.count, args.seed, height, width, args.refresh)
    samples = list(evaluate.iter_samples(folder, "synth"))
    results, sheet = evaluate.evaluate(samples, args.renderers, sheet_count=4)
    results.layout = "synth"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"count": args.count, "seed": args.seed, "size": args.size, "python": platform.python_version(),
                "machine": platform.machine()}
    evaluate.write_results(out, results, {"settings": settings})
    (out / "results.csv").replace(out / "quality.csv")
    (out / "results.json").replace(out / "quality.json")
    evaluate.write_sheet(out / "quality_sheet.png", sheet)
    table = evaluate.format_markdown(results.summary)
    notes = "".join(f"- {note}\n" for note in results.notes)
    (out / "quality.md").write_text(
        f"# Quality: renderers vs exact thin-lens ground truth\n\n"
        f"{args.count} synthetic scenes, {args.size}, seed {args.seed} (`python benchmarks/quality.py`).\n"
        f"PSNR/SSIM on 8-bit sRGB; boundary PSNR over the band within the local blur radius (>= 2 px) of\n"
        f"depth edges; s/image is the render call alone, after a warm-up call.\n\n{table}\n\n"
        + (f"Notes:\n\n{notes}" if notes else ""))
    print(evaluate.format_table(results.summary))
    for note in results.notes:
        print(f"note: {note}")
    print(f"wrote {out / 'quality.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
