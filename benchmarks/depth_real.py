"""Real-photo depth benchmark of the automatic estimate; writes benchmarks/results/depth_real.{md,json,png}.

Every photo in ../shared/samples that carries a depth map, read through the project's own readers
(lensblur.depth_source.choose_depth): Apple MPF disparity (image-with-depth, image-with-matte),
Apple HEIC (pug.heic), Google GDepth (lens_blur_dahlias), depthy's flowers and hut (separate
*-depth.jpg files that store depth, dark = near: the sign is flipped), BokehMe 13/21 with their
16-bit disparities; plus scikit-image's Middlebury motorcycle (stereo disparity, invalid pixels
skipped). No RGB-D data set installable from a package ships its data (they download at run time),
so none is included.

Each photo is brought to ``--side`` pixels on the long side, then per estimator variant:
- Spearman rank correlation of the estimate with the stored disparity (lensblur.metrics);
- ordinal error on 20,000 random point pairs (WHDR-style, as benchmarks/depth.py);
- render level: the photo rendered by the default renderer with the estimate (and its matte)
  against the same photo rendered with the stored map (and its matte, if any) as the reference,
  PSNR in dB on 8-bit sRGB; same focus point (the phone's stored focus point, else a point on the
  stored map's nearest 10 %, i.e. its subject) and the same blur (K = ``--blur`` × long side px
  per unit disparity). The floor is one whole-image Gaussian blur, its σ fitted to the reference
  (best PSNR over a grid): an estimate is useful only where it beats that.

Samples marked "tune" (Apple, BokehMe) were looked at while developing the cues; the others are
held out. The sheet shows photo | stored map | one column per variant (disparity, white = near).

    python benchmarks/depth_real.py [--side 768] [--blur 0.04] [--depth-model PATH.onnx [--depth-preset NAME]]

With --depth-model a column "model" scores that model (a monocular network you have, or
``deeplens`` for the depth module shipped with lensblur) beside the weight-free variants.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import cv2
import numpy as np
import skimage.data

from lensblur.api import render
from lensblur.color import srgb_to_linear
from lensblur.depth import people
from lensblur.depth.auto import estimate_auto
from lensblur.depth_source import EMBEDDED, choose_depth, estimate_depth
from lensblur.io.depth import fit_to_image, normalize_depth
from lensblur.io.images import read_image
from lensblur.metrics import depth_rank_correlation, ordinal_error, psnr
from lensblur.synth.thinlens import encode_srgb8

ROOT = Path(__file__).resolve().parents[1]
SAMPLES_DIR = ROOT.parent / "shared" / "samples"
OUT = ROOT / "benchmarks" / "results"

# name, photo, depth file (None = embedded), depth stored as distance (flip), set, licence
SAMPLES = [
    ("apple/image-with-depth", "apple/image-with-depth.jpg", None, False, "tune", "MIT"),
    ("apple/image-with-matte", "apple/image-with-matte.jpg", None, False, "tune", "MIT"),
    ("apple/pug", "apple/pug.heic", None, False, "tune", "BSD-3"),
    ("bokehme/13", "bokehme/13.jpg", "bokehme/13.png", False, "tune", "Apache-2.0"),
    ("bokehme/21", "bokehme/21.jpg", "bokehme/21.png", False, "tune", "Apache-2.0"),
    ("google/lens_blur_dahlias", "google/lens_blur_dahlias.jpg", None, False, "held out", "MIT"),
    ("depthy/flowers", "google/depthy_flowers-image.jpg", "google/depthy_flowers-depth.jpg", True, "held out", "MIT"),
    ("depthy/hut", "google/depthy_hut-image.jpg", "google/depthy_hut-depth.jpg", True, "held out", "MIT"),
]
MIDDLEBURY = "middlebury/motorcycle"

# estimator variants: label -> keyword options of estimate_auto (before = layout prior + subject only)
VARIANTS = {"before": {"cues": False}, "after": {},
            "no defocus": {"cues": ("occlusion", "contact")}, "no occlusion": {"cues": ("defocus", "contact")},
            "no contact": {"cues": ("defocus", "occlusion")}}
SHEET = ["before", "after"]  # the variants the sheet shows


def load_samples(side: int):
    """Yield (name, set, licence, linear pixels h×w×3, stored disparity h×w, valid h×w, matte or None,
    focus point or None) with the photo at ``side`` px on the long side."""
    for name, photo, depth_file, flip, subset, licence in SAMPLES:
        path = SAMPLES_DIR / photo
        if not path.is_file():
            print(f"skipping {name}: {path} is absent")
            continue
        pixels = read_image(path).pixels
        spec = EMBEDDED if depth_file is None else str(SAMPLES_DIR / depth_file)
        choice = choose_depth(str(path), pixels, spec)
        disparity = 1.0 - choice.disparity if flip else choice.disparity
        full_h, full_w = choice.pixels.shape[:2]
        small = _resize(choice.pixels, side)
        h, w = small.shape[:2]
        focus = None
        if choice.focus_point is not None:
            focus = (choice.focus_point[0] * w / full_w, choice.focus_point[1] * h / full_h)
        matte = None if choice.matte is None else fit_to_image(choice.matte, h, w)
        yield (name, subset, licence, small, fit_to_image(disparity, h, w), np.ones((h, w), bool), matte, focus)
    left, _, truth = skimage.data.stereo_motorcycle()
    small = _resize(srgb_to_linear(left.astype(np.float32) / 255), side)
    h, w = small.shape[:2]
    valid = np.isfinite(truth) & (truth > 0)
    valid_small = cv2.resize(valid.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
    stored = fit_to_image(normalize_depth(np.where(valid, truth, np.nan), "disparity"), h, w)
    yield (MIDDLEBURY, "held out", "Middlebury (photo not shown)", small, stored, valid_small, None, None)


def _resize(pixels: np.ndarray, side: int) -> np.ndarray:
    h, w = pixels.shape[:2]
    scale = min(1.0, side / max(h, w))
    if scale == 1.0:
        return np.ascontiguousarray(pixels, np.float32)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(np.asarray(pixels, np.float32), size, interpolation=cv2.INTER_AREA)


def subject_point(disparity: np.ndarray, matte: np.ndarray | None) -> tuple[float, float]:
    """A pixel on the stored map's subject: on the matte if any, else on its nearest 10 %, the
    one closest to that region's centroid."""
    region = matte > 0.5 if matte is not None and (matte > 0.5).any() else disparity >= np.quantile(disparity, 0.9)
    ys, xs = np.nonzero(region)
    k = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
    return float(xs[k]), float(ys[k])


def gaussian_floor(pixels: np.ndarray, reference8: np.ndarray, max_sigma: float) -> tuple[float, float]:
    """(best PSNR, its σ in px) of one whole-image Gaussian blur of ``pixels`` against the reference."""
    best = (-np.inf, 0.0)
    for sigma in np.geomspace(0.5, max(1.0, max_sigma), 14):
        blurred = cv2.GaussianBlur(pixels, (0, 0), float(sigma), borderType=cv2.BORDER_REFLECT)
        best = max(best, (psnr(encode_srgb8(blurred), reference8), float(sigma)))
    return best


def evaluate(side: int, blur_fraction: float) -> tuple[list[dict], list[tuple]]:
    rows, sheet_rows = [], []
    for name, subset, licence, pixels, stored, valid, stored_matte, focus in load_samples(side):
        h, w = stored.shape
        blur = blur_fraction * max(h, w)
        point = focus if focus is not None else subject_point(stored, stored_matte)
        reference8 = encode_srgb8(render(pixels, stored, blur=blur, focus=point, matte=stored_matte))
        floor, sigma = gaussian_floor(pixels, reference8, blur / 4)
        row = {"sample": name, "set": subset, "size": [w, h], "focus": [round(point[0]), round(point[1])],
               "blur_px": round(blur, 1), "gaussian_floor_psnr": round(floor, 2), "gaussian_sigma": round(sigma, 2)}
        estimates = {}
        for label, options in VARIANTS.items():
            start = time.process_time()
            # a depth model (--depth-model) runs through the same code as `lensblur render --depth-model`
            estimate = estimate_depth(pixels, options["model"], options["preset"]) if "model" in options else estimate_auto(pixels, **options)
            seconds = time.process_time() - start
            disparity = fit_to_image(estimate.disparity, h, w)
            rendered8 = encode_srgb8(render(pixels, disparity, blur=blur, focus=point, matte=estimate.matte))
            row[label] = {"spearman": round(depth_rank_correlation(disparity, stored, valid), 3),
                          "ordinal_error": round(ordinal_error(np.where(valid, disparity, 0), np.where(valid, stored, 0)), 3),
                          "render_psnr": round(psnr(rendered8, reference8), 2), "cpu_s": round(seconds, 2),
                          "notes": estimate.notes}
            estimates[label] = disparity
        rows.append(row)
        sheet_rows.append((name, licence, None if name == MIDDLEBURY else pixels, stored, estimates))
        print(name, {k: {m: v for m, v in row[k].items() if m != "notes"} for k in VARIANTS}, "floor", row["gaussian_floor_psnr"])
    return rows, sheet_rows


def write_sheet(sheet_rows: list[tuple], path: Path, height: int = 150) -> None:
    """One row per sample: photo | stored map | each variant's estimate; small thumbnails."""
    labels = ["photo", "stored"] + list(SHEET)
    tiles = []
    for name, _, pixels, stored, estimates in sheet_rows:
        h, w = stored.shape
        size = (max(1, round(w * height / h)), height)
        def grey(d):
            d = (d - d.min()) / max(1e-6, float(d.max() - d.min()))
            return cv2.cvtColor(cv2.resize((d * 255).astype(np.uint8), size, interpolation=cv2.INTER_AREA), cv2.COLOR_GRAY2RGB)
        photo = (np.full((height, size[0], 3), 64, np.uint8) if pixels is None
                 else cv2.resize(encode_srgb8(pixels), size, interpolation=cv2.INTER_AREA))
        row = [photo, grey(stored)] + [grey(estimates[k]) for k in SHEET]
        cell = max(t.shape[1] for t in row)
        row = [cv2.copyMakeBorder(t, 18, 2, 2, 2 + cell - t.shape[1], cv2.BORDER_CONSTANT, value=(255, 255, 255)) for t in row]
        for t, label in zip(row, labels):
            cv2.putText(t, f"{name} {label}" if label == "photo" else label, (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(row)
    width = max(sum(t.shape[1] for t in row) for row in tiles)
    lines = [np.hstack(row + ([np.full((row[0].shape[0], width - sum(t.shape[1] for t in row), 3), 255, np.uint8)]
                             if width > sum(t.shape[1] for t in row) else [])) for row in tiles]
    cv2.imwrite(str(path), cv2.cvtColor(np.vstack(lines), cv2.COLOR_RGB2BGR))


def write_report(rows: list[dict], side: int, blur_fraction: float) -> str:
    lines = ["# Depth on real photos: the automatic estimate against stored depth", "",
             f"`python benchmarks/depth_real.py --side {side} --blur {blur_fraction}"
             + (f" --depth-model {VARIANTS['model']['model']}" if "model" in VARIANTS else "") + "`; machine "
             f"{platform.processor() or platform.machine()}, people models "
             f"{'installed' if people.models_available() else 'absent'}. Photos at {side} px on the long side; "
             f"blur K = {blur_fraction} × long side px per unit disparity. Spearman: higher is better; ordinal error "
             "(20,000 pairs): lower is better; render PSNR (dB, vs the render with the stored map): higher is "
             "better, and must beat the whole-image Gaussian floor (σ fitted to the reference).", ""]
    groups = [("all", rows), ("tune", [r for r in rows if r["set"] == "tune"]),
              ("held out", [r for r in rows if r["set"] == "held out"])]
    for title, metric, floor in (("Spearman rank correlation (higher is better)", "spearman", False),
                                 ("Ordinal error, 20,000 pairs (lower is better)", "ordinal_error", False),
                                 ("Render PSNR in dB against the stored-map render (higher is better)", "render_psnr", True)):
        lines += [f"## {title}", "", "| sample | set |" + (" Gaussian floor |" if floor else "")
                  + "".join(f" {v} |" for v in VARIANTS), "|---|---|" + ("---|" if floor else "") + "---|" * len(VARIANTS)]
        for row in rows:
            lines.append(f"| {row['sample']} | {row['set']} |" + (f" {row['gaussian_floor_psnr']:.2f} |" if floor else "")
                         + "".join(f" {row[v][metric]:.3f} |" if not floor else f" {row[v][metric]:.2f} |" for v in VARIANTS))
        for label, chosen in groups:
            if chosen:
                digits = 2 if floor else 3
                cells = "".join(f" {np.mean([r[v][metric] for r in chosen]):.{digits}f} |" for v in VARIANTS)
                floor_cell = f" {np.mean([r['gaussian_floor_psnr'] for r in chosen]):.2f} |" if floor else ""
                lines.append(f"| **mean, {label}** ({len(chosen)}) | |{floor_cell}{cells}")
        lines.append("")
    lines += ["## Summary", "", "| variant | min Spearman | samples where the render beats the floor | mean CPU s per estimate |", "|---|---|---|---|"]
    for v in VARIANTS:
        beats = sum(r[v]["render_psnr"] > r["gaussian_floor_psnr"] for r in rows)
        lines.append(f"| {v} | {min(r[v]['spearman'] for r in rows):.3f} | {beats} / {len(rows)} | "
                     f"{np.mean([r[v]['cpu_s'] for r in rows]):.2f} |")
    lines += ["", "Sheet: `benchmarks/results/depth_real.png` (photo | stored map | estimates; white = near).", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=768, help="long side in pixels the photos are brought to")
    parser.add_argument("--blur", type=float, default=0.04, help="blur K as a fraction of the long side")
    parser.add_argument("--depth-model", metavar="PATH.onnx|deeplens[:PATH]|megadepth:PATH",
                        help="also score this depth model (as render's --depth-model; with --depth-preset)")
    parser.add_argument("--depth-preset", metavar="NAME", help="the ONNX model's preset")
    args = parser.parse_args()
    if args.depth_model:
        VARIANTS["model"] = {"model": args.depth_model, "preset": args.depth_preset}
        SHEET.append("model")
    rows, sheet_rows = evaluate(args.side, args.blur)
    OUT.mkdir(parents=True, exist_ok=True)
    report = write_report(rows, args.side, args.blur)
    (OUT / "depth_real.md").write_text(report)
    (OUT / "depth_real.json").write_text(json.dumps(rows, indent=1) + "\n")
    write_sheet(sheet_rows, OUT / "depth_real.png")
    print(report)


if __name__ == "__main__":
    main()
