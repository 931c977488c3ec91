"""Depth upsampling benchmark: bilinear vs guided enlargement of low-resolution depth maps.

Phones store disparity at a fraction of the photo's resolution (Apple 768×576 for 4032×3024).
Enlarged bilinearly, a depth edge becomes a ramp one map pixel wide that misses the subject's
outline: background pixels get part of the subject's disparity and the subject's edge part of
the background's blur, and the in-focus edge glows. This script measures what guided upsampling
(lensblur.io.depth.fit_to_image, ``--depth-upsample guided``) changes.

(a) Synthetic scenes with exact ground truth (lensblur.synth, the quality benchmark's layered
    scenes and mixed scenes with tilted planes, fur and thin plants): the true disparity is
    area-averaged down ``--factor`` times, as a phone's map, enlarged back by each method, and
    rendered with the scatter renderer; PSNR against the exact thin-lens render over the whole
    image and over the band within 20 px of a true depth edge, and the disparity error there.
(b) Real phone photos with embedded low-resolution depth (../shared/samples): a crop at the
    in-focus subject's edge is rendered with the map enlarged each way (lens as the CLI chooses it
    by default) and scored with a halo measure (see ``halo_bands``); the crops are saved side by
    side in benchmarks/results/depth_upsample.png.

    python benchmarks/depth_upsample.py                  # both parts, results in benchmarks/results/
    python benchmarks/depth_upsample.py --count 4 --skip-real
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

from lensblur.api import make_lens
from lensblur.color import linear_to_srgb
from lensblur.depth.refine import photo_guide, upsample_where_explained
from lensblur.depth_source import choose_depth
from lensblur.io.depth import fit_to_image
from lensblur.io.images import read_image
from lensblur.lens import focus_disparity_at
from lensblur.metrics import boundary_mask, boundary_psnr, psnr
from lensblur.renderers import render_with

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from quality import dataset  # noqa: E402 - the quality benchmark's cached scene sets

SAMPLES = HERE.parent.parent / "shared" / "samples"
BAND = 20  # px either side of a true depth edge for the boundary-band scores
# Real samples: file, a 400×400 crop (x, y of its top-left corner) on the subject's edge, and the
# point focused on (None: the CLI's default, here the vase's front).
REAL = [("apple/image-with-depth.jpg", "vase's right shoulder on the dark wall", (2050, 1700), None),
        ("apple/pug.heic", "pug's head and ear on the wall", (1850, 1400), (2200, 1750)),
        ("apple/image-with-matte.jpg", "hair on the wall", (1500, 120), (1700, 420))]
CROP = 400
# Regions inside one surface (x0, y0, x1, y1), where guided must not invent depth from texture.
SURFACES = [("apple/image-with-depth.jpg", "wood table top", (200, 2700, 1000, 3500)),
            ("apple/image-with-depth.jpg", "dark wall", (400, 200, 1000, 800)),
            ("apple/pug.heic", "textured wall", (1000, 200, 2000, 1000))]


def methods() -> dict:
    """name → function(photo linear H×W×3, small map) → full-size map. The shipped default is
    'guided'; the variants answer which guide space and regularisation work best."""
    def bilinear(pixels, small):
        return fit_to_image(small, *pixels.shape[:2], pixels, "bilinear")

    def guided(pixels, small):
        return fit_to_image(small, *pixels.shape[:2], pixels, "guided")

    def variant(space, **options):
        return lambda pixels, small: upsample_where_explained(photo_guide(pixels, space), small, **options)

    return {"bilinear": bilinear, "guided (sRGB grey, r 2, eps 1e-3)": guided,
            "guided, linear grey guide": variant("linear"),
            "guided, eps 1e-4": variant("srgb", eps=1e-4),
            "guided, eps 1e-2": variant("srgb", eps=1e-2),
            "guided, r 1": variant("srgb", radius=1)}


def srgb8(linear: np.ndarray) -> np.ndarray:
    return np.round(linear_to_srgb(linear) * 255).astype(np.uint8)


def synthetic(count: int, factor: int, kinds: list[str]) -> list[dict]:
    """Per scene and method: render PSNR, boundary-band PSNR and band disparity error."""
    rows = []
    for kind in kinds:
        folder = dataset(count, 2026, 384, 576, kind=kind)
        from lensblur.evaluate import iter_samples

        for sample in iter_samples(folder, "synth"):
            truth = sample.disparity
            height, width = truth.shape
            small = cv2.resize(truth, (round(width / factor), round(height / factor)), interpolation=cv2.INTER_AREA)
            band = boundary_mask(truth, BAND)
            for name, method in methods().items():
                start = time.process_time()
                up = method(sample.image, small)
                seconds = time.process_time() - start
                out = srgb8(render_with("scatter", sample.image, up, sample.lens))
                rows.append({"kind": kind, "scene": sample.name, "method": name, "psnr": psnr(out, sample.gt),
                             "band_psnr": boundary_psnr(out, sample.gt, band),
                             "band_disparity_mae": float(np.abs(up - truth)[band].mean()), "cpu_s": seconds})
            print(f"{kind} {sample.name}: " + ", ".join(f"{r['band_psnr']:.2f}" for r in rows[-len(methods()):]),
                  file=sys.stderr)
    return rows


def halo_bands(reference: np.ndarray, focus: float, tolerance: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """(outer, inner) bool bands at the in-focus subject's edge, from a map that neither method
    made: ``reference`` is the embedded map enlarged by nearest neighbour (blocky, but unbiased).

    The subject is where the reference is within ``tolerance`` of the focus disparity. outer: 6 to
    30 px outside it, on the background; inner: 2 to 12 px inside it. The photo's background is
    already out of focus, so re-blurring it right changes it by a few levels; a glow carries the
    subject's colour out over it (a large outer difference), and a subject edge that gets part of
    the background's blur is smeared (a large inner difference)."""
    subject = np.abs(reference - focus) <= tolerance
    subject = ndimage.binary_opening(subject, iterations=2)
    outside = ndimage.distance_transform_edt(~subject)
    inside = ndimage.distance_transform_edt(subject)
    return (outside >= 6) & (outside <= 30), (inside >= 2) & (inside <= 12)


def real(margin: int = 72) -> tuple[list[dict], list[np.ndarray]]:
    """Per real sample and method: mean |render − photo| (8-bit levels) in the outer and inner
    bands; and the crop rows for the sheet (photo, render per method)."""
    rows, sheet = [], []
    for relative, what, (x0, y0), focus_point in REAL:
        path = SAMPLES / relative
        if not path.exists():
            print(f"skipping {relative}: not in {SAMPLES}", file=sys.stderr)
            continue
        photo = read_image(path)
        height, width = photo.pixels.shape[:2]
        base = choose_depth(str(path), photo.pixels, upsample="bilinear")
        from lensblur.io.embedded import find_embedded_depth

        small = find_embedded_depth(str(path)).disparity
        reference = cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)
        # The CLI's default blur, 2 % of the width per unit disparity, focused on the subject.
        point = focus_point or base.focus_point or (width / 2, height / 2)
        focus = focus_disparity_at(base.disparity, *point)
        lens = make_lens(base.disparity, blur=0.02 * width, focus_disparity=focus)
        ya, yb = max(0, y0 - margin), min(height, y0 + CROP + margin)
        xa, xb = max(0, x0 - margin), min(width, x0 + CROP + margin)
        inner = (slice(y0 - ya, y0 - ya + CROP), slice(x0 - xa, x0 - xa + CROP))
        pixels = np.ascontiguousarray(base.pixels[ya:yb, xa:xb])
        original = srgb8(pixels[inner])
        outer_band, inner_band = (band[ya:yb, xa:xb][inner] for band in halo_bands(reference, focus))
        tiles = [original]
        for name in ("bilinear", "guided (sRGB grey, r 2, eps 1e-3)", "guided, r 1"):
            start = time.process_time()
            up = methods()[name](base.pixels, small)
            seconds = time.process_time() - start
            out = srgb8(render_with("scatter", pixels, np.ascontiguousarray(up[ya:yb, xa:xb]), lens)[inner])
            diff = np.abs(out.astype(np.float32) - original).mean(axis=2)
            rows.append({"sample": relative, "edge": what, "method": name,
                         "outer": float(diff[outer_band].mean()), "inner": float(diff[inner_band].mean()),
                         "map": f"{small.shape[1]}×{small.shape[0]} → {width}×{height}", "cpu_s": seconds})
            if len(tiles) < 3:  # the sheet: photo, bilinear, the default guided
                tiles.append(out)
            print(f"{relative} {name}: outer {rows[-1]['outer']:.2f} inner {rows[-1]['inner']:.2f} "
                  f"({seconds:.2f} s CPU)", file=sys.stderr)
        sheet.append(np.hstack([np.pad(t, ((4, 4), (4, 4), (0, 0)), constant_values=255) for t in tiles]))
    return rows, sheet


def surfaces() -> list[dict]:
    """|guided − bilinear| in disparity over regions inside one textured surface: texture copied
    into depth would show here."""
    rows = []
    for relative, what, (x0, y0, x1, y1) in SURFACES:
        path = SAMPLES / relative
        if not path.exists():
            continue
        photo = read_image(path)
        from lensblur.io.embedded import find_embedded_depth

        small = find_embedded_depth(str(path)).disparity
        maps = [methods()[name](photo.pixels, small)[y0:y1, x0:x1]
                for name in ("bilinear", "guided (sRGB grey, r 2, eps 1e-3)")]
        diff = np.abs(maps[1] - maps[0])
        rows.append({"sample": relative, "surface": what, "mean": float(diff.mean()),
                     "p99": float(np.percentile(diff, 99)), "max": float(diff.max()),
                     "range": float(np.ptp(maps[0]))})
    return rows


def mean_of(rows, key, **match) -> float:
    """Mean of ``key`` over the rows whose fields equal ``match`` (nan when none)."""
    values = [r[key] for r in rows if all(r[k] == v for k, v in match.items())]
    return float(np.mean(values)) if values else float("nan")


def common_arguments(description: str) -> argparse.ArgumentParser:
    """The options this benchmark and benchmarks/edge_matte.py share."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=6, help="synthetic scenes per kind (default 6)")
    parser.add_argument("--factor", type=int, default=5, help="map downsampling factor (default 5, as Apple's)")
    parser.add_argument("--kinds", default="layered,mixed", help="synthetic scene kinds (default layered,mixed)")
    parser.add_argument("--skip-real", action="store_true", help="only the synthetic part")
    parser.add_argument("--out", default=str(HERE / "results"), help="results folder")
    return parser


def write_sheet(rows: list[np.ndarray], path: Path) -> None:
    """Stack sheet rows (uint8 RGB, padded white to the widest) into one PNG."""
    width = max(r.shape[1] for r in rows)
    sheet = np.vstack([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


def main(argv=None) -> int:
    args = common_arguments(__doc__).parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    lines = ["# Depth upsampling: bilinear vs guided (`python benchmarks/depth_upsample.py`)", "",
             f"## (a) Synthetic scenes, true disparity area-averaged {args.factor}× down and enlarged back", "",
             f"{args.count} scenes per kind, 384×576, seed 2026, scatter renderer vs the exact thin-lens render "
             f"(8-bit sRGB). Band: within {BAND} px of a true depth edge. CPU s: the enlargement alone.", "",
             "| kind | method | PSNR dB | band PSNR dB | band disparity MAE | CPU s |", "|---|---|---:|---:|---:|---:|"]
    rows = synthetic(args.count, args.factor, args.kinds.split(","))
    for kind in args.kinds.split(","):
        for name in methods():
            lines.append(f"| {kind} | {name} | {mean_of(rows, 'psnr', kind=kind, method=name):.2f} | "
                         f"{mean_of(rows, 'band_psnr', kind=kind, method=name):.2f} | "
                         f"{mean_of(rows, 'band_disparity_mae', kind=kind, method=name):.4f} | "
                         f"{mean_of(rows, 'cpu_s', kind=kind, method=name):.3f} |")
    if not args.skip_real:
        real_rows, sheet = real()
        lines += ["", "## (b) Real photos with embedded low-resolution depth: halo measure", "",
                  "Mean |render − photo| in 8-bit levels over a 400×400 crop at the subject's edge, in a band "
                  "6–30 px outside the in-focus subject (outer: subject colour glowing onto the background) "
                  "and 2–12 px inside it (inner: the sharp edge smeared). Lower is better for both. The "
                  "subject comes from the embedded map enlarged by nearest neighbour, so neither method "
                  "defines the bands. CPU s: enlarging the whole map to the photo (process CPU time on a "
                  "shared, busy 2-core machine: upper bounds).", "",
                  "| sample | edge | map | method | outer | inner | CPU s |", "|---|---|---|---|---:|---:|---:|"]
        for r in real_rows:
            lines.append(f"| {r['sample']} | {r['edge']} | {r['map']} | {r['method']} | {r['outer']:.2f} | "
                         f"{r['inner']:.2f} | {r['cpu_s']:.2f} |")
        lines += ["", "Inside one textured surface, |guided − bilinear| in disparity (texture copied into depth "
                  "would show here; for scale, the surface's own disparity range):", "",
                  "| sample | surface | mean | 99th percentile | max | surface's range |", "|---|---|---:|---:|---:|---:|"]
        for r in surfaces():
            lines.append(f"| {r['sample']} | {r['surface']} | {r['mean']:.4f} | {r['p99']:.4f} | {r['max']:.4f} | "
                         f"{r['range']:.3f} |")
        if sheet:
            write_sheet(sheet, out / "depth_upsample.png")
            lines += ["", "Sheet `depth_upsample.png`: per row photo crop | render, bilinear map | render, "
                      "guided map (rows: " + "; ".join(r[1] for r in REAL) + ")."]
    (out / "depth_upsample.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
