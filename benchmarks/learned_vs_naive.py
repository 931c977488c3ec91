"""Are the learned renderers worth choosing? Each against the naive blend on fresh scenes.

Three fresh scene sets no shipped checkpoint was trained on (cached in benchmarks/data/): the
training-data engine's mixed scenes (``lensblur synth --kind mixed``, seed 9001), the older
layered kind (seed 9002) and a confirmation set of mixed scenes (seed 9003) that no checkpoint
choice looked at, all 256×384 by default; every renderer gets the true disparity, focus
and blur K of each scene (the shape of DeepLens' table 2 and DBSI's table 5) except
``deeplens-image``, DeepLens from the image alone: its shipped depth module predicts the
disparity, the focus is the predicted disparity at the pixel the scene focuses on (where the true
disparity is nearest d_f), and K is rescaled by the ratio of the true to the predicted disparity
range so that the largest blur is comparable. PSNR/SSIM on 8-bit sRGB against the exact
thin-lens ground truth; Δ naive is the PSNR difference to the naive blend on the same scenes.

    python benchmarks/learned_vs_naive.py                     # -> benchmarks/results/learned_vs_naive.{md,json,png}
    python benchmarks/learned_vs_naive.py --count 4 --dbsi /tmp/dbsi.pt --out /tmp/bench   # try a checkpoint
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import quality  # noqa: E402  (the cached scene sets)

from lensblur import evaluate  # noqa: E402
from lensblur.renderers import get_renderer, register  # noqa: E402

SETS = [("mixed", 9001), ("layered", 9002), ("mixed", 9003)]   # 9003: a confirmation set, tuned on by no one
RENDERERS = ["naive", "scatter", "dbsi", "dbsi-image", "deeplens", "deeplens-image", "bggan", "d2f", "portrait",
             "portrait-rnn"]
WHAT = {
    "naive": "reference: per-pixel disc gather (the blend to beat)",
    "scatter": "project default: depth-aware scatter",
    "dbsi": "DBSI, depth-conditioned disc-stack variant in linear light (default of --renderer dbsi), true depth",
    "dbsi-image": "DBSI, the paper's image-only network",
    "deeplens": "DeepLens rendering network, true depth (in-focus pass-through, clipped light added)",
    "deeplens-image": "DeepLens from the image alone (shipped depth module)",
    "dbsi-candidate": "DBSI depth-conditioned retrained on 247 engine scenes (250 steps, kernels 25,75,151,251); not shipped",
    "deeplens-candidate": "DeepLens fine-tuned 250 steps on 247 engine scenes; not shipped",
    "bggan": "BGGAN, image only (focus learned from EBB!-like data)",
    "d2f": "D2F, true depth",
    "portrait": "Xu et al., classical pipeline, true depth",
    "portrait-rnn": "Xu et al., learned recursive filter, true depth",
}


def register_variants(dbsi: str | None, deeplens: str | None, depth: str | None, candidates: str | None = None) -> None:
    """Register the benchmark's renderer names that are not plain registry entries, and point
    ``dbsi``/``deeplens`` at other checkpoints when given. candidates: a folder holding other
    ``dbsi-depth.pt`` and ``deeplens.pt``, scored as extra rows ``dbsi-candidate`` and
    ``deeplens-candidate`` next to the shipped ones."""
    from lensblur.lens import Lens
    from lensblur.systems.dbsi.renderer import render_dbsi
    from lensblur.systems.deeplens.depth_estimator import predict
    from lensblur.systems.deeplens.renderer import render_deeplens

    @register("dbsi-image")
    def _dbsi_image(image, disparity, lens, matte=None):
        return render_dbsi(image, disparity, lens, checkpoint="image")

    if dbsi:
        register("dbsi")(lambda image, disparity, lens, matte=None: render_dbsi(image, disparity, lens,
                                                                                checkpoint=dbsi))
    if deeplens:
        register("deeplens")(lambda image, disparity, lens, matte=None: render_deeplens(image, disparity, lens,
                                                                                        checkpoint=deeplens))

    if candidates:
        register("dbsi-candidate")(lambda image, disparity, lens, matte=None: render_dbsi(
            image, disparity, lens, checkpoint=str(Path(candidates) / "dbsi-depth.pt")))
        register("deeplens-candidate")(lambda image, disparity, lens, matte=None: render_deeplens(
            image, disparity, lens, checkpoint=str(Path(candidates) / "deeplens.pt")))

    @register("deeplens-image")
    def _deeplens_image(image, disparity, lens, matte=None):
        predicted, _ = predict(image, depth)
        y, x = np.unravel_index(int(np.argmin(np.abs(disparity - lens.focus_disparity))), disparity.shape)
        focus = float(np.median(predicted[max(y - 1, 0):y + 2, max(x - 1, 0):x + 2]))
        spread = max(float(predicted.max() - predicted.min()), 0.05)
        blur = lens.blur * float(disparity.max() - disparity.min()) / spread
        matched = Lens(blur=blur, focus_disparity=focus, focus_range=lens.focus_range, aperture=lens.aperture)
        return render_deeplens(image, predicted, matched, checkpoint=deeplens)


def run_set(kind: str, seed: int, count: int, height: int, width: int, names: list[str], sheet: int):
    folder = quality.dataset(count, seed, height, width, kind=kind)
    samples = list(evaluate.iter_samples(folder, "synth"))
    return evaluate.evaluate(samples, names, sheet_count=sheet)


def per_scene(rows: list[dict], name: str) -> str:
    """One line: ``name``'s PSNR minus the naive blend's on each scene (dB), and how many are > 0."""
    naive = {r["scene"]: r["psnr"] for r in rows if r["renderer"] == "naive"}
    deltas = [r["psnr"] - naive[r["scene"]] for r in rows if r["renderer"] == name and r["scene"] in naive]
    if not deltas:
        return ""
    return (f"- per-scene Δ naive of {name}: " + ", ".join(f"{d:+.2f}" for d in deltas)
            + f" ({sum(d > 0 for d in deltas)} of {len(deltas)} above naive)")


def table(summary: list[dict], naive_psnr: float) -> list[str]:
    lines = ["| renderer | PSNR | Δ naive | SSIM | boundary PSNR | s/image | what |", "|---|---:|---:|---:|---:|---:|---|"]
    for row in summary:
        name = row["renderer"]
        lines.append(f"| {name} | {row['psnr']:.2f} | {row['psnr'] - naive_psnr:+.2f} | {row['ssim']:.4f} | "
                     f"{row['boundary_psnr']:.2f} | {row['seconds']:.3f} | {WHAT.get(name, '')} |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("renderers", nargs="*", default=RENDERERS, help="renderer names (default: all above)")
    parser.add_argument("--count", type=int, default=16, help="scenes per set (default 16)")
    parser.add_argument("--size", default="256x384", help="HxW (default 256x384)")
    parser.add_argument("--dbsi", help="a DBSI checkpoint to score as 'dbsi' instead of the shipped default")
    parser.add_argument("--deeplens", help="a DeepLens render checkpoint instead of the shipped one")
    parser.add_argument("--depth", help="a DeepLens depth checkpoint instead of the shipped one")
    parser.add_argument("--candidates", metavar="DIR",
                        help="also score dbsi-depth.pt and deeplens.pt from DIR (e.g. a retraining not shipped) as "
                             "dbsi-candidate and deeplens-candidate")
    parser.add_argument("--out", default=str(HERE / "results"), help="results folder (default benchmarks/results)")
    parser.add_argument("--sets", default=",".join(f"{k}:{s}" for k, s in SETS), metavar="KIND:SEED,...",
                        help="scene sets (default mixed:9001,layered:9002,mixed:9003)")
    parser.add_argument("--per-scene", nargs="*", default=["dbsi", "deeplens"], metavar="NAME",
                        help="renderers whose per-scene Δ naive is listed under each table (default dbsi deeplens)")
    args = parser.parse_args(argv)
    try:
        sets = [(kind, int(seed)) for kind, seed in (item.split(":") for item in args.sets.split(","))]
    except ValueError:
        parser.error(f"--sets takes KIND:SEED,... (e.g. mixed:9003), got {args.sets!r}")
    height, width = (int(v) for v in args.size.lower().split("x"))
    register_variants(args.dbsi, args.deeplens, args.depth, args.candidates)
    if args.candidates:
        extra = [n for n in ("dbsi-candidate", "deeplens-candidate") if n not in args.renderers]
        args.renderers = args.renderers + extra
    for name in args.renderers:
        get_renderer(name)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = ["# Learned renderers against the naive blend on unseen scenes", "",
              f"`python benchmarks/learned_vs_naive.py` ({args.count} scenes per set, {height}×{width}; "
              "see the script's docstring for the protocol). Timings are upper bounds on a shared 2-core machine.", ""]
    record, sheets = {"settings": {"count": args.count, "size": args.size, "python": platform.python_version(),
                                   "checkpoints": {"dbsi": args.dbsi, "deeplens": args.deeplens, "depth": args.depth,
                                                   "candidates": args.candidates}},
                      "sets": {}}, []
    for kind, seed in sets:
        start = time.perf_counter()
        results, sheet = run_set(kind, seed, args.count, height, width, args.renderers, 2)
        naive = next((r["psnr"] for r in results.summary if r["renderer"] == "naive"), float("nan"))
        report += [f"## {kind} scenes (seed {seed})", ""] + table(results.summary, naive) + [""]
        listed = [per_scene(results.rows, name) for name in args.per_scene if name in args.renderers]
        report += [line for line in listed if line] + ([""] if any(listed) else [])
        report += [f"- note: {note}" for note in results.notes]
        key = f"{kind}-{seed}" if kind in record["sets"] else kind    # the second mixed set: "mixed-9003"
        record["sets"][key] = {"seed": seed, "summary": results.summary, "rows": results.rows,
                               "seconds": time.perf_counter() - start}
        sheets += sheet
    (out / "learned_vs_naive.md").write_text("\n".join(report) + "\n")
    (out / "learned_vs_naive.json").write_text(json.dumps(record, indent=1, default=float))
    evaluate.write_sheet(out / "learned_vs_naive.png", sheets, tile_height=96)
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
